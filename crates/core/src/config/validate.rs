//! What serde can't check: ranges, cron syntax, token sources, URLs.

use std::collections::BTreeMap;

use super::{Config, LiveConfig, SecretSource, Sse};
use crate::error::{Error, Result};
use crate::store::StoreUrl;

impl Config {
    /// Checks what serde can't: ranges, cron syntax, token sources, the store URL.
    ///
    /// # Errors
    /// `Config` naming the setting.
    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.store {
            StoreUrl::parse(url).map_err(|e| Error::config(format!("store: {e}")))?;
        }
        self.scheduler.validate()?;
        let level = self.snapshots.compression_level;
        if !(1..=19).contains(&level) {
            return Err(Error::config(format!(
                "snapshots.compression_level = {level}: use 1 to 19 (3 is the default)"
            )));
        }
        // `sse = "aws:kms"` without a key id is allowed: S3 then uses the AWS-managed key.
        if self.s3.sse_kms_key_id.is_some() && self.s3.sse != Some(Sse::Kms) {
            return Err(Error::config(
                "s3.sse_kms_key_id is set but s3.sse is not \"aws:kms\"",
            ));
        }
        self.notify.validate()?;
        for t in &self.server.tokens {
            if t.value.is_some() == t.value_file.is_some() {
                return Err(Error::config(format!(
                    "server.tokens {:?}: set exactly one of `value` and `value_file`",
                    t.name
                )));
            }
        }
        if let Some(d) = &self.discovery {
            d.validate()?;
        }
        for (env_ref, env) in self.envs() {
            if let Some(cron) = &env.schedule {
                check_cron(cron).map_err(|e| {
                    Error::config(format!(
                        "apps.{}.envs.{}.schedule: {e}",
                        env_ref.app, env_ref.env
                    ))
                })?;
            }
            if let Some(filter) = &env.filter {
                filter.check(&format!("apps.{}.envs.{}.filter", env_ref.app, env_ref.env))?;
            }
            if let Some(live) = &env.live {
                let at = format!("apps.{}.envs.{}.live", env_ref.app, env_ref.env);
                match super::parts_of(live) {
                    Some(parts) => {
                        for (name, part) in parts {
                            check_http(&super::part_key(&env_ref, name), &part.live)?;
                        }
                    }
                    None => check_http(&at, live)?,
                }
            }
        }
        crate::crypt::Encryption::from_config(self)?;
        self.validate_parts()?;
        Ok(())
    }
}

/// An HTTP live target's URLs, token sources, sign-in and secret headers (`at` is its
/// table's key); other kinds pass.
fn check_http(at: &str, live: &LiveConfig) -> Result<()> {
    let LiveConfig::Http {
        url,
        write_url,
        headers,
        bearer_token_env,
        bearer_token_file,
        secret_headers,
        oauth,
        create,
        ..
    } = live
    else {
        return Ok(());
    };
    for u in std::iter::once(url).chain(write_url) {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Error::config(format!(
                "{at}: {:?} is not an http:// or https:// URL",
                u
            )));
        }
    }
    if bearer_token_env.is_some() && bearer_token_file.is_some() {
        return Err(Error::config(format!(
            "{at}: set at most one of bearer_token_env and bearer_token_file"
        )));
    }
    let bearer = bearer_token_env.is_some() || bearer_token_file.is_some();
    if let Some(o) = oauth {
        if bearer {
            return Err(Error::config(format!(
                "{at}: set at most one of a bearer token (bearer_token_env, \
                 bearer_token_file) and oauth"
            )));
        }
        o.validate(&format!("{at}.oauth"))?;
    }
    check_secret_headers(at, headers, secret_headers, bearer || oauth.is_some())?;
    if let Some(c) = create {
        c.validate(&format!("{at}.create"), write_url.is_some())?;
    }
    Ok(())
}

/// Secret headers: valid names, each from exactly one of a variable and a file, none
/// also a plain header, no `Authorization` beside a bearer token or a sign-in.
fn check_secret_headers(
    at: &str,
    headers: &BTreeMap<String, String>,
    secret_headers: &BTreeMap<String, SecretSource>,
    signs_in: bool,
) -> Result<()> {
    for (name, source) in secret_headers {
        let Ok(n) = reqwest::header::HeaderName::from_bytes(name.as_bytes()) else {
            return Err(Error::config(format!(
                "{at}.secret_headers: invalid header name {name:?}"
            )));
        };
        if source.env.is_some() == source.file.is_some() {
            return Err(Error::config(format!(
                "{at}.secret_headers.{name}: set exactly one of `env` and `file`, e.g. \
                 {{ env = \"API_KEY\" }}"
            )));
        }
        if headers.keys().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(Error::config(format!(
                "{at}: header {name} is in both headers and secret_headers; keep it in \
                 secret_headers"
            )));
        }
        if signs_in && n == reqwest::header::AUTHORIZATION {
            return Err(Error::config(format!(
                "{at}.secret_headers: Authorization is set by the bearer token or the \
                 sign-in (oauth); set only one of them"
            )));
        }
    }
    Ok(())
}

/// Checks a cron expression the way the scheduler will read it.
///
/// # Errors
/// `Config` with the parser's reason.
pub fn check_cron(expr: &str) -> Result<()> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(Error::config(format!(
            "cron expression {expr:?} has {fields} fields; use 6 (sec min hour day month \
             weekday), e.g. \"0 */15 * * * *\" for every 15 minutes"
        )));
    }
    parse_cron(expr)
        .map(drop)
        .map_err(|e| Error::config(format!("invalid cron expression {expr:?}: {e}")))
}

/// Parses a schedule as the scheduler runs it: croner, seconds required, day-of-month
/// and day-of-week both applied.
///
/// # Errors
/// croner's, for an invalid expression.
pub fn parse_cron(expr: &str) -> std::result::Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
}

/// When a schedule next fires after `after` (UTC, as the scheduler runs it); `None` for
/// an invalid expression or one that never fires again.
#[must_use]
pub fn next_run(
    expr: &str,
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    parse_cron(expr)
        .ok()?
        .find_next_occurrence(&after, false)
        .ok()
}
