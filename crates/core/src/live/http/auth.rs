//! An HTTP live target's credentials: a bearer token, secret headers and an OAuth2
//! sign-in, each read when a request needs it (so a rotated secret is picked up without
//! a restart), sent as sensitive headers, and listed for scrubbing messages.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::oauth::OAuth;
use crate::config::{OAuthConfig, Secret, SecretSource};
use crate::error::{Error, Result};
use crate::id::EnvRef;

/// What a live target authenticates with.
#[derive(Debug)]
pub(super) struct Credentials {
    env: EnvRef,
    bearer: Option<SecretSource>,
    secret_headers: Vec<(HeaderName, SecretSource)>,
    oauth: Option<OAuth>,
}

/// The headers one request carries, and the OAuth token among them (to forget it if
/// the target answers 401).
pub(super) struct Signed {
    pub(super) headers: HeaderMap,
    pub(super) token: Option<Secret>,
}

impl Credentials {
    /// The credentials of `env`'s live target.
    ///
    /// # Errors
    /// `Config` for a bad header name, both or neither of a pair, or a bad token URL.
    pub(super) fn new(
        env: &EnvRef,
        bearer: Option<SecretSource>,
        secret_headers: &BTreeMap<String, SecretSource>,
        oauth: Option<&OAuthConfig>,
        timeout: Duration,
    ) -> Result<Self> {
        let at = format!("apps.{}.envs.{}.live", env.app, env.env);
        if bearer
            .as_ref()
            .is_some_and(|b| b.env.is_some() && b.file.is_some())
        {
            return Err(Error::config(format!(
                "{at}: set at most one of bearer_token_env and bearer_token_file"
            )));
        }
        if bearer.is_some() && oauth.is_some() {
            return Err(Error::config(format!(
                "{at}: set at most one of a bearer token and oauth"
            )));
        }
        let mut headers = Vec::new();
        for (name, source) in secret_headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::config(format!("{at}.secret_headers: invalid header name {name:?}"))
            })?;
            headers.push((n, source.clone()));
        }
        Ok(Self {
            env: env.clone(),
            bearer,
            secret_headers: headers,
            oauth: oauth.map(|o| OAuth::new(env, o, timeout)).transpose()?,
        })
    }

    /// Whether a 401 may be cured by signing in again.
    pub(super) fn oauth(&self) -> Option<&OAuth> {
        self.oauth.as_ref()
    }

    /// The headers for one request, secrets read now; signs in if the OAuth token is
    /// missing or due. `scrub` takes the target's secrets out of messages.
    ///
    /// # Errors
    /// `Config` naming a secret's variable or file that can't be read, or a value that
    /// can't be a header; the sign-in's errors.
    pub(super) async fn sign(
        &self,
        client: &reqwest::Client,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Signed> {
        let env = &self.env;
        let mut headers = HeaderMap::new();
        for (name, source) in &self.secret_headers {
            let what = format!("the secret header {name} of the live target of {env}");
            let value = source.read(&what)?;
            headers.insert(name.clone(), sensitive(value.expose(), &what)?);
        }
        let mut token = None;
        let bearer = if let Some(source) = &self.bearer {
            Some(source.read(&format!("the bearer token of the live target of {env}"))?)
        } else if let Some(oauth) = &self.oauth {
            let t = oauth.token(client, scrub).await?;
            token = Some(t.clone());
            Some(t)
        } else {
            None
        };
        if let Some(t) = bearer {
            let what = format!("the bearer token of the live target of {env}");
            headers.insert(
                AUTHORIZATION,
                sensitive(&format!("Bearer {}", t.expose()), &what)?,
            );
        }
        Ok(Signed { headers, token })
    }

    /// The secrets readable now, for scrubbing messages (values that can't be read are
    /// left out: they can't be in a message either).
    pub(super) fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .bearer
            .iter()
            .chain(self.secret_headers.iter().map(|(_, s)| s))
            .filter_map(|s| s.read("").ok())
            .map(|s| s.expose().to_string())
            .collect();
        if let Some(o) = &self.oauth {
            out.extend(o.secrets());
        }
        out
    }
}

/// A header value marked sensitive (left out of debug output and HTTP/2 compression).
fn sensitive(value: &str, what: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::config(format!(
            "{what} has characters not allowed in a header value"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}
