//! How an HTTP live target signs in: secret header values and OAuth2 token endpoints.
//! The config names where each secret is (a file or an environment variable), never the
//! secret itself; it is read when a request or a token needs it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::secret::{Secret, read_secret_file};
use super::{Config, LiveConfig};
use crate::error::{Error, Result};
use crate::id::EnvRef;

/// Where a secret is: exactly one of an environment variable and a file, e.g.
/// `{ env = "N8N_API_KEY" }` or `{ file = "/run/secrets/n8n" }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable holding the secret.
    pub env: Option<String>,
    /// A file holding the secret (whitespace around it is ignored).
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// A source from an optional variable and an optional file (`None` if neither).
    #[must_use]
    pub fn from_pair(env: Option<&String>, file: Option<&PathBuf>) -> Option<Self> {
        (env.is_some() || file.is_some()).then(|| Self {
            env: env.cloned(),
            file: file.cloned(),
        })
    }

    /// Reads the secret now, trimmed at both ends; `what` names it in errors ("the
    /// secret header X-Api-Key of crm/production").
    ///
    /// # Errors
    /// `Config` naming the variable or the file (never a value) if it is not set,
    /// can't be read or is empty, or if the source names neither or both.
    pub fn read(&self, what: &str) -> Result<Secret> {
        match (&self.env, &self.file) {
            (Some(var), None) => {
                let value = std::env::var(var).map_err(|_| {
                    Error::config(format!(
                        "{what} is read from the environment variable ${var}, which is not \
                         set; export it (or read the secret from a file)"
                    ))
                })?;
                let value = value.trim();
                if value.is_empty() {
                    return Err(Error::config(format!(
                        "{what} is read from the environment variable ${var}, which is empty"
                    )));
                }
                Ok(Secret::new(value))
            }
            (None, Some(path)) => read_secret_file(path).map_err(|e| e.context(what)),
            _ => Err(Error::config(format!(
                "{what}: set exactly one of `env` and `file`"
            ))),
        }
    }

    /// Checks the source without keeping the secret: `Some` naming what is missing.
    #[must_use]
    pub fn problem(&self, what: &str) -> Option<String> {
        self.read(what).err().map(|e| e.report())
    }

    /// The file, if the secret is in one (for the permission warnings).
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// The OAuth2 grant an HTTP live target signs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OAuthGrant {
    /// The resource owner password grant (`username` and a password): Node-RED's
    /// `adminAuth`.
    Password,
    /// The client credentials grant (`client_id` and a client secret).
    ClientCredentials,
}

/// How the client id and secret are sent to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// As form fields `client_id` and `client_secret` (the default; what Node-RED takes).
    #[default]
    Body,
    /// As HTTP basic authentication (RFC 6749 section 2.3.1).
    Basic,
}

/// Sign-in at an OAuth2 token endpoint (RFC 6749): the token is cached in memory for
/// the process, renewed before it expires and once after a 401.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// `password` or `client_credentials`.
    pub grant: OAuthGrant,
    /// The token endpoint, e.g. Node-RED's `http://127.0.0.1:1880/auth/token`.
    pub token_url: String,
    /// The client id (Node-RED: `node-red-admin`).
    pub client_id: String,
    /// An environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// A file holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// How the client id and secret are sent: `body` (default) or `basic`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The user name (password grant).
    pub username: Option<String>,
    /// An environment variable holding the password (password grant).
    pub password_env: Option<String>,
    /// A file holding the password (password grant).
    pub password_file: Option<PathBuf>,
    /// The scope asked for (Node-RED: `*`).
    pub scope: Option<String>,
}

impl OAuthConfig {
    /// Where the client secret is, if there is one.
    #[must_use]
    pub fn client_secret(&self) -> Option<SecretSource> {
        SecretSource::from_pair(
            self.client_secret_env.as_ref(),
            self.client_secret_file.as_ref(),
        )
    }

    /// Where the password is, if there is one.
    #[must_use]
    pub fn password(&self) -> Option<SecretSource> {
        SecretSource::from_pair(self.password_env.as_ref(), self.password_file.as_ref())
    }

    /// Checks what serde can't: the URL, the pairs, what the grant needs. `at` is the
    /// table's path (`apps.crm.envs.production.live.oauth`).
    ///
    /// # Errors
    /// `Config` naming the key.
    pub fn validate(&self, at: &str) -> Result<()> {
        let url = &self.token_url;
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || reqwest::Url::parse(url).is_err()
        {
            return Err(Error::config(format!(
                "{at}.token_url: {:?} is not an http:// or https:// URL",
                crate::store::redact_url(url)
            )));
        }
        if self.client_id.trim().is_empty() {
            return Err(Error::config(format!("{at}.client_id is empty")));
        }
        for (a, b, set) in [
            (
                "client_secret_env",
                "client_secret_file",
                [
                    self.client_secret_env.is_some(),
                    self.client_secret_file.is_some(),
                ],
            ),
            (
                "password_env",
                "password_file",
                [self.password_env.is_some(), self.password_file.is_some()],
            ),
        ] {
            if set == [true, true] {
                return Err(Error::config(format!(
                    "{at}: set at most one of {a} and {b}"
                )));
            }
        }
        match self.grant {
            OAuthGrant::Password => {
                if self.username.as_deref().is_none_or(|u| u.is_empty())
                    || self.password().is_none()
                {
                    return Err(Error::config(format!(
                        "{at}: grant = \"password\" needs `username` and one of password_env \
                         and password_file"
                    )));
                }
            }
            OAuthGrant::ClientCredentials => {
                if self.client_secret().is_none() {
                    return Err(Error::config(format!(
                        "{at}: grant = \"client_credentials\" needs one of client_secret_env \
                         and client_secret_file"
                    )));
                }
                if self.username.is_some() || self.password().is_some() {
                    return Err(Error::config(format!(
                        "{at}: grant = \"client_credentials\" takes no username or password \
                         (that is grant = \"password\")"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Every secret an HTTP live target reads, each with the words that name it in
/// messages: its bearer token, its secret headers, its OAuth client secret and password.
/// Those of every part of a `parts` target; empty for other targets.
#[must_use]
pub fn live_secrets(env: &EnvRef, live: &LiveConfig) -> Vec<(String, SecretSource)> {
    if let Some(parts) = super::parts_of(live) {
        return parts
            .values()
            .flat_map(|p| live_secrets(env, &p.live))
            .collect();
    }
    let LiveConfig::Http {
        bearer_token_env,
        bearer_token_file,
        secret_headers,
        oauth,
        ..
    } = live
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(s) = SecretSource::from_pair(bearer_token_env.as_ref(), bearer_token_file.as_ref())
    {
        out.push((format!("the bearer token of the live target of {env}"), s));
    }
    for (name, s) in secret_headers {
        out.push((
            format!("the secret header {name} of the live target of {env}"),
            s.clone(),
        ));
    }
    if let Some(o) = oauth {
        if let Some(s) = o.client_secret() {
            out.push((
                format!("the OAuth client secret of the live target of {env}"),
                s,
            ));
        }
        if let Some(s) = o.password() {
            out.push((format!("the OAuth password of the live target of {env}"), s));
        }
    }
    out
}

impl Config {
    /// Each live target secret that can't be read now (a variable not set, a file
    /// missing, unreadable or empty), named with its variable or file, never a value.
    /// For `config check` and `serve`'s start: the secrets are read again at each use.
    #[must_use]
    pub fn secret_problems(&self) -> Vec<String> {
        self.envs()
            .flat_map(|(env, e)| {
                e.live
                    .as_ref()
                    .map(|l| live_secrets(&env, l))
                    .unwrap_or_default()
            })
            .filter_map(|(what, s)| s.problem(&what))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(extra: &str) -> String {
        format!(
            "[apps.crm.envs.production.live]\nkind = \"http\"\nurl = \"http://h/api\"\n{extra}\n"
        )
    }

    fn oauth(extra: &str) -> String {
        http(&format!(
            "[apps.crm.envs.production.live.oauth]\ntoken_url = \"http://h/auth/token\"\n\
             client_id = \"node-red-admin\"\n{extra}"
        ))
    }

    #[test]
    fn secret_headers_and_oauth_parse() {
        let c = Config::parse(&oauth(
            "grant = \"password\"\nusername = \"admin\"\npassword_file = \"/run/pw\"\n\
             scope = \"*\"",
        ))
        .unwrap();
        let env = EnvRef::parse("crm", "production").unwrap();
        let Some(LiveConfig::Http { oauth: Some(o), .. }) = &c.env(&env).unwrap().live else {
            panic!("no oauth");
        };
        assert_eq!(o.grant, OAuthGrant::Password);
        assert_eq!(o.client_auth, ClientAuth::Body);
        assert_eq!(o.password().unwrap().file.unwrap(), Path::new("/run/pw"));
        let c = Config::parse(&http(
            "secret_headers = { \"X-N8N-API-KEY\" = { env = \"N8N_KEY\" }, \"X-B\" = { file = \
             \"/run/b\" } }",
        ))
        .unwrap();
        let Some(LiveConfig::Http { secret_headers, .. }) = &c.env(&env).unwrap().live else {
            panic!("no live");
        };
        assert_eq!(
            secret_headers["X-N8N-API-KEY"].env.as_deref(),
            Some("N8N_KEY")
        );
        assert_eq!(c.secret_files(), vec![Path::new("/run/b")]);
    }

    #[test]
    fn bad_sign_in_configs_name_the_key() {
        for (text, says) in [
            (
                oauth("grant = \"password\"\nusername = \"a\""),
                "password_env",
            ),
            (oauth("grant = \"client_credentials\""), "client_secret_env"),
            (
                oauth(
                    "grant = \"password\"\nusername = \"a\"\npassword_env = \"P\"\npassword_file = \"/p\"",
                ),
                "at most one of password_env and password_file",
            ),
            (
                oauth(
                    "grant = \"client_credentials\"\nclient_secret_env = \"S\"\nusername = \"a\"",
                ),
                "takes no username",
            ),
            (
                http(
                    "bearer_token_env = \"T\"\n[apps.crm.envs.production.live.oauth]\n\
                      grant = \"client_credentials\"\ntoken_url = \"http://h/t\"\nclient_id = \
                      \"c\"\nclient_secret_env = \"S\"",
                ),
                "at most one of a bearer token",
            ),
            (
                http(
                    "[apps.crm.envs.production.live.oauth]\ngrant = \"client_credentials\"\n\
                      token_url = \"ftp://h/t\"\nclient_id = \"c\"\nclient_secret_env = \"S\"",
                ),
                "oauth.token_url",
            ),
            (
                http("secret_headers = { \"X-K\" = {} }"),
                "exactly one of `env` and `file`",
            ),
            (
                http("secret_headers = { \"X-K\" = { env = \"A\", file = \"/b\" } }"),
                "exactly one of `env` and `file`",
            ),
            (
                http("secret_headers = { \"X K\" = { env = \"A\" } }"),
                "invalid header name",
            ),
            (
                http(
                    "headers = { \"x-k\" = \"1\" }\nsecret_headers = { \"X-K\" = { env = \"A\" } }",
                ),
                "both headers and secret_headers",
            ),
            (
                http(
                    "bearer_token_env = \"T\"\nsecret_headers = { Authorization = { env = \"A\" } }",
                ),
                "Authorization",
            ),
        ] {
            let e = Config::parse(&text).unwrap_err();
            assert!(e.to_string().contains(says), "{text}\n{e}");
        }
    }

    #[test]
    fn secret_problems_name_the_variable_or_file_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        std::fs::write(&present, "Value-planted-77\n").unwrap();
        let missing = dir.path().join("missing");
        let text = format!(
            "[apps.crm.envs.a.live]\nkind = \"http\"\nurl = \"http://h/a\"\n\
             secret_headers = {{ \"X-Ok\" = {{ file = {present:?} }}, \"X-Gone\" = {{ file = \
             {missing:?} }} }}\n\
             [apps.crm.envs.b.live]\nkind = \"http\"\nurl = \"http://h/b\"\n\
             [apps.crm.envs.b.live.oauth]\ngrant = \"password\"\ntoken_url = \"http://h/t\"\n\
             client_id = \"c\"\nusername = \"u\"\npassword_env = \"JETVAULT_TEST_UNSET_PW_4417\"\n"
        );
        let c = Config::parse(&text).unwrap();
        let problems = c.secret_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("X-Gone") && problems[0].contains("missing"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("OAuth password")
                && problems[1].contains("$JETVAULT_TEST_UNSET_PW_4417"),
            "{problems:?}"
        );
        assert!(!format!("{problems:?}").contains("Value-planted"));
    }

    #[test]
    fn relative_secret_files_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jetvault.toml");
        std::fs::write(
            &path,
            oauth(
                "grant = \"client_credentials\"\nclient_secret_file = \"secrets/client\"\n\
                 [apps.crm.envs.production.live.secret_headers]\n\"X-K\" = { file = \"k\" }",
            ),
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let files = c.secret_files();
        assert!(files.contains(&dir.path().join("k").as_path()), "{files:?}");
        assert!(
            files.contains(&dir.path().join("secrets/client").as_path()),
            "{files:?}"
        );
    }
}
