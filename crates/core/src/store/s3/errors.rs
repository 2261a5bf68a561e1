//! Explaining a failed request: what failed, on which object, and what to do.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::S3Client;
use super::classify::{HttpResponse, Op, classify, is_redirect};
use crate::error::{Error, ErrorKind, Hint, Step};

impl S3Client {
    /// Turns a failed request into a library error whose message says what failed, on
    /// which object, and what to do.
    pub(crate) fn error<E>(&self, op: Op, what: &str, err: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        tracing::debug!(target: "jetvault::s3", op = ?op, what, error = ?err, "S3 request failed");
        let doing: &str = op.into();
        let service = match err {
            SdkError::ServiceError(e) => {
                Some((e.raw().status().as_u16(), e.err().code(), e.err().message()))
            }
            SdkError::ResponseError(e) if e.raw().status().as_u16() >= 300 => {
                Some((e.raw().status().as_u16(), None, None))
            }
            _ => None,
        };
        let Some((status, code, detail)) = service else {
            return self.transport_error(doing, what, err);
        };
        let kind = classify(op, status, code);
        // S3 names the bucket's region on a redirect.
        let bucket_region = err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        let answer = match (code, detail) {
            (Some(c), Some(d)) if !d.is_empty() => format!("HTTP {status} {c}: {d}"),
            (Some(c), _) => format!("HTTP {status} {c}"),
            _ => format!("HTTP {status}"),
        };
        let at = self.target();
        let message = match kind {
            ErrorKind::NotFound => format!("{what} not found ({answer} from {at})"),
            ErrorKind::AlreadyExists => {
                format!("{what} already exists: another writer created it first ({answer})")
            }
            ErrorKind::PreconditionFailed => format!(
                "{what} changed since it was read: another writer updated it first ({answer}); \
                 read it again and retry"
            ),
            ErrorKind::Config
                if code == Some("NoSuchBucket") || op == Op::CheckBucket && status == 404 =>
            {
                format!(
                    "cannot {doing} {what}: the bucket does not exist at {at} ({answer}); \
                     create it (e.g. `aws s3 mb s3://BUCKET`) or fix the store URL"
                )
            }
            ErrorKind::Config if is_redirect(status, code) => format!(
                "cannot {doing} {what}: the bucket is not in region {} ({answer}); set the \
                 bucket's region{} in s3.region or AWS_REGION",
                self.region,
                bucket_region.map_or_else(String::new, |r| format!(" ({r})"))
            ),
            ErrorKind::Config => format!(
                "cannot {doing} {what}: access denied by {at} ({answer}); check the AWS \
                 credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the \
                 instance role) and that their policy allows s3:GetObject, s3:PutObject, \
                 s3:ListBucket and s3:DeleteObject on the bucket (S3 also answers 403 for \
                 a missing object when s3:ListBucket is not allowed)"
            ),
            ErrorKind::TooLarge => format!("cannot {doing} {what}: too large for S3 ({answer})"),
            ErrorKind::Unavailable => {
                format!("cannot {doing} {what}: {at} answered {answer}; retry later")
            }
            _ => format!("cannot {doing} {what}: unexpected answer from {at}: {answer}"),
        };
        let error = Error::new(kind, message);
        match kind {
            ErrorKind::Config | ErrorKind::Unavailable => error.with_next(Hint::steps(
                "then check the whole setup, again if it persists",
                [Step::Doctor],
            )),
            _ => error,
        }
    }

    fn transport_error<E, R>(&self, doing: &str, what: &str, err: &SdkError<E, R>) -> Error
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let at = self.target();
        if let Some(cause) = credentials_cause(err) {
            return Error::config(format!(
                "cannot {doing} {what} at {at}: no usable AWS credentials ({cause}); set \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an \
                 instance or pod role is available"
            ))
            .with_next(Hint::steps("then check the whole setup", [Step::Doctor]));
        }
        let cause = root_cause(err);
        let error = Error::unavailable(format!(
            "cannot reach S3 at {at} to {doing} {what}: {cause}"
        ));
        if self.endpoint.is_some() {
            error.with_next(Hint::steps(
                "check the endpoint and that the server is running, then the whole setup",
                [Step::S3Endpoint, Step::Doctor],
            ))
        } else {
            error.with_next(Hint::steps(
                "check the network and the region (s3.region or AWS_REGION), then the whole \
                 setup",
                [Step::Doctor],
            ))
        }
    }
}

/// The innermost error of a chain: the reason a person can act on ("Connection refused").
pub(super) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

/// The deepest error of a chain that is about credentials, if any: the SDK reports a
/// failed credential chain as a dispatch failure, which is not a network problem.
fn credentials_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut found = None;
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("credential") {
            found = Some(text);
        }
        cur = e.source();
    }
    found
}
