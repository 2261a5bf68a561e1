//! Creating an HTTP live target's object anew when the platform has deleted it (its
//! write answered 404 or 410), as `[...live.create]` says: the create request, the new
//! identity taken from the platform's answer by a jq path, and the target at the new
//! identity's URL, with the config change that points the environment there.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Serialize;

use super::{HttpTarget, answer, method_of};
use crate::config::{CreateConfig, ID_PLACEHOLDER, LiveConfig};
use crate::error::{Error, Result};
use crate::filter::{Program, value};
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::store::redact_url;

/// What an identity keeps as it is in a URL (RFC 3986's unreserved characters); the
/// rest is percent-encoded.
const ID_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest identity accepted from an answer.
const MAX_ID_LEN: usize = 256;

/// The largest create answer read.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// A live target's compiled `create` table.
#[derive(Debug)]
pub(super) struct Creator {
    at: String,
    url: reqwest::Url,
    method: Method,
    write: Option<Arc<Program>>,
    id: Program,
    config: CreateConfig,
}

impl Creator {
    /// Compiles the create table of `env`'s live target.
    ///
    /// # Errors
    /// `Config` naming the key of a bad URL or a jq program that does not compile.
    pub(super) fn new(env: &EnvRef, config: &CreateConfig) -> Result<Self> {
        let at = format!("apps.{}.envs.{}.live.create", env.app, env.env);
        let url = reqwest::Url::parse(&config.url).map_err(|e| {
            Error::config(format!(
                "{at}.url: invalid URL {:?}: {e}",
                redact_url(&config.url)
            ))
        })?;
        Ok(Self {
            url,
            method: method_of(config.method()),
            write: config.write_program(&at)?.map(Arc::new),
            id: config.id_program(&at)?,
            config: config.clone(),
            at,
        })
    }

    /// The create request, for messages: `POST https://...` (redacted).
    pub(super) fn describe(&self) -> String {
        format!("{} {}", self.method, redact_url(self.url.as_str()))
    }

    pub(super) fn url(&self) -> &reqwest::Url {
        &self.url
    }
}

/// The environment and the config a target was built from, to build it again at a new
/// object's URL. Its debug output names the environment only: the config may hold
/// secrets written inline.
pub(super) struct Origin {
    pub(super) env: EnvRef,
    pub(super) config: LiveConfig,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

/// What creating a live object gave: its new identity, the target that reads and
/// writes it, and the config change that points the environment at it.
#[derive(Debug, Clone)]
pub struct Created {
    /// The identity the platform gave the new object.
    pub id: String,
    /// The live target at the new object (through the environment's filters).
    pub target: Arc<dyn LiveTarget>,
    /// The config change that points the environment at the new object.
    pub change: ConfigChange,
}

/// Keys of one config table to set to new values (jetvault never rewrites the config
/// file: a front end shows this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConfigChange {
    /// The table, e.g. `apps.n8n.envs.production.live`.
    pub table: String,
    /// Each key and its new value (`url`, and `write_url` when the target has one).
    pub set: BTreeMap<String, String>,
    /// Whether a value's credentials or query string were left out of `set` (copy
    /// them from the current value).
    pub redacted: bool,
}

impl ConfigChange {
    /// The change as TOML lines: the table's header, then `key = "value"` lines.
    #[must_use]
    pub fn toml(&self) -> String {
        let mut out = format!("[{}]\n", self.table);
        for (key, value) in &self.set {
            out.push_str(&format!("{key} = {}\n", toml::Value::from(value.as_str())));
        }
        if self.redacted {
            out.push_str(
                "# credentials and query strings left out: keep those of the current values\n",
            );
        }
        out
    }
}

/// The identity `program` finds in `answer`: a non-empty string or an integer.
///
/// # Errors
/// `InvalidInput` if the answer is not JSON; `Config` naming the program if it fails or
/// finds no string or integer, or one that can't be an identity.
pub(super) fn extract_id(program: &Program, answer: &[u8]) -> Result<String> {
    let found = program.run(value::parse(answer, "the answer")?, Vec::new())?;
    let found = value::to_json(&found)?;
    let id = match &found {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(Error::config(format!(
                "the jq path {} (`{}`) gives {}, not a string or an integer",
                program.origin(),
                program.code(),
                truncate(&other.to_string(), 60)
            )));
        }
    };
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(Error::config(format!(
            "the jq path {} (`{}`) gives {}, which can't be an identity (empty, control \
             characters, or longer than {MAX_ID_LEN} bytes)",
            program.origin(),
            program.code(),
            truncate(&found.to_string(), 60)
        )));
    }
    Ok(id)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// `template` with `{id}` replaced by `id`, percent-encoded.
fn fill(template: &str, id: &str) -> String {
    template.replace(
        ID_PLACEHOLDER,
        &utf8_percent_encode(id, ID_KEEP).to_string(),
    )
}

impl HttpTarget {
    /// Sends the create request with `body` (or, with the table's own `write` program,
    /// `doc` through it), takes the new identity from the answer and builds the target
    /// at the new object's URL (without the environment's filters).
    pub(super) async fn create_object(&self, doc: Bytes, body: Bytes) -> Result<Created> {
        let Some(c) = &self.creator else {
            return Err(Error::internal(format!(
                "{} has no create table",
                self.describe()
            )));
        };
        let body = match &c.write {
            None => body,
            Some(p) => {
                let p = Arc::clone(p);
                tokio::task::spawn_blocking(move || {
                    let out = p.run(
                        value::parse(&doc, "the configuration to create")?,
                        Vec::new(),
                    )?;
                    value::to_bytes(&out).map(Bytes::from)
                })
                .await
                .map_err(|e| Error::internal(format!("filter task failed: {e}")))?
                .map_err(|e| e.context("preparing the create request (nothing was created)"))?
            }
        };
        let resp = self.send(&c.method, &c.url, Some(&body)).await?;
        let answer = self
            .body(resp, MAX_ANSWER, &c.url, "reading the answer of")
            .await
            .map_err(|e| {
                e.context(format!(
                    "{} created the object, but its answer can't be read: the new identity is \
                     unknown; find the object on the platform and point the live target's url \
                     at it",
                    c.describe()
                ))
            })?;
        let id = extract_id(&c.id, &answer).map_err(|e| {
            let quoted = answer::snippet(&answer, &|t| self.scrub(t));
            Error::config(format!(
                "{} created the object, but its identity can't be taken from the answer: {}; \
                 the answer: {quoted}; the object exists on the platform: find it there and \
                 point the live target's url at it, and fix {}.id",
                c.describe(),
                e.message(),
                c.at
            ))
        })?;
        self.relocated(c, id)
    }

    /// The target at the new object `id`, and the config change that names it.
    fn relocated(&self, c: &Creator, id: String) -> Result<Created> {
        let env = &self.origin.env;
        let mut config = self.origin.config.clone();
        let LiveConfig::Http { url, write_url, .. } = &mut config else {
            return Err(Error::internal("an http live target with another config"));
        };
        let mut set = BTreeMap::new();
        *url = fill(&c.config.read_url_template(), &id);
        set.insert("url".to_string(), url.clone());
        if let Some(t) = &c.config.write_url {
            let new = fill(t, &id);
            set.insert("write_url".to_string(), new.clone());
            *write_url = Some(new);
        }
        let redacted = set.values().any(|v| redact_url(v) != *v);
        for v in set.values_mut() {
            *v = redact_url(v);
        }
        let target = HttpTarget::from_config(env, &config)
            .map_err(|e| e.context(format!("the new object {id:?}: its URL")))?;
        Ok(Created {
            id,
            target: Arc::new(target),
            change: ConfigChange {
                table: format!("apps.{}.envs.{}.live", env.app, env.env),
                set,
                redacted,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn id(path: &str, answer: &str) -> Result<String> {
        let p = Program::compile("apps.n8n.envs.p.live.create.id", path, &[]).unwrap();
        extract_id(&p, answer.as_bytes())
    }

    #[test]
    fn the_id_is_a_string_or_an_integer_at_the_path() {
        assert_eq!(id(".id", r#"{"id":"Xk3a9","name":"w"}"#).unwrap(), "Xk3a9");
        assert_eq!(
            id(".data.uid", r#"{"data":{"uid":" u-1 "}}"#).unwrap(),
            "u-1"
        );
        assert_eq!(id(".id", r#"{"id":4711}"#).unwrap(), "4711");
        for (path, answer, says) in [
            (".id", r#"{"name":"w"}"#, "gives null"),
            (".id", r#"{"id":1.5}"#, "gives 1.5"),
            (".id", r#"{"id":{"a":1}}"#, "not a string or an integer"),
            (".id", r#"{"id":""}"#, "can't be an identity"),
            (".id", r#"{"id":"a\nb"}"#, "can't be an identity"),
            (".[]", r#"{"a":"1","b":"2"}"#, "more than one value"),
        ] {
            let e = id(path, answer).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{answer}: {e}");
            assert!(e.message().contains(says), "{answer}: {e}");
            assert!(e.message().contains("live.create.id"), "{answer}: {e}");
        }
        assert_eq!(
            id(".id", "not json").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn the_new_url_has_the_id_encoded_and_the_change_is_toml() {
        assert_eq!(
            fill("http://h/api/v1/workflows/{id}", "a b/c"),
            "http://h/api/v1/workflows/a%20b%2Fc"
        );
        let change = ConfigChange {
            table: "apps.n8n.envs.production.live".into(),
            set: BTreeMap::from([
                ("url".into(), "http://h/w/X1".into()),
                ("write_url".into(), "http://h/in/\"X1\"".into()),
            ]),
            redacted: false,
        };
        let text = change.toml();
        assert_eq!(
            text,
            "[apps.n8n.envs.production.live]\nurl = \"http://h/w/X1\"\n\
             write_url = 'http://h/in/\"X1\"'\n"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["apps"]["n8n"]["envs"]["production"]["live"]["write_url"].as_str(),
            Some("http://h/in/\"X1\"")
        );
    }
}
