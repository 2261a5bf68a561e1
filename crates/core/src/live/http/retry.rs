//! Backing off when the platform asks for it: a `429 Too Many Requests`, or a
//! `503 Service Unavailable` that says when to come back (`Retry-After`), is retried a
//! bounded number of times after the wait the platform asked for (in seconds or as an
//! HTTP date), or after an exponential backoff when a 429 says nothing. A 503 without
//! `Retry-After` is not retried here: it is an outage, not a request to slow down, and
//! the callers that re-read (restore) do so themselves. After the last retry the answer
//! is the error it always was (same kind, same exit code).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How many times a request is sent again after a 429 or a 503 with `Retry-After`.
pub const MAX_RETRIES: u32 = 3;

/// The longest wait honoured: a `Retry-After` asking for more is not waited for (the
/// answer is returned at once as the error it is).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The first backoff of a 429 without `Retry-After`; doubled at each retry.
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);

/// The wait a `Retry-After` value asks for at `now`: delay-seconds or an HTTP date
/// (a date in the past is no wait); `None` when absent or unreadable.
#[must_use]
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Whether the answer `status` with `headers` is retried after `attempt` retries
/// already made, and after how long.
#[must_use]
pub fn backoff(
    status: StatusCode,
    headers: &HeaderMap,
    attempt: u32,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if attempt >= MAX_RETRIES {
        return None;
    }
    let asked = retry_after(headers, now);
    let wait = match status {
        StatusCode::TOO_MANY_REQUESTS => asked.unwrap_or(BASE_BACKOFF * 2u32.pow(attempt)),
        StatusCode::SERVICE_UNAVAILABLE => asked?,
        _ => return None,
    };
    (wait <= MAX_WAIT).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:05 GMT"), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn retries_429_and_503_with_retry_after_a_bounded_number_of_times() {
        let now = Utc::now();
        let none = HeaderMap::new();
        let too_many = StatusCode::TOO_MANY_REQUESTS;
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(backoff(too_many, &none, 0, now), Some(BASE_BACKOFF));
        assert_eq!(backoff(too_many, &none, 2, now), Some(BASE_BACKOFF * 4));
        assert_eq!(backoff(too_many, &none, MAX_RETRIES, now), None);
        assert_eq!(
            backoff(too_many, &headers("2"), 0, now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            backoff(unavailable, &none, 0, now),
            None,
            "a bare 503 is an outage"
        );
        assert_eq!(
            backoff(unavailable, &headers("1"), 1, now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            backoff(unavailable, &headers("3600"), 0, now),
            None,
            "too long to wait"
        );
        assert_eq!(
            backoff(StatusCode::INTERNAL_SERVER_ERROR, &headers("1"), 0, now),
            None
        );
    }
}
