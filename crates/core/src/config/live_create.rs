//! `[apps.APP.envs.ENV.live.create]`: how an HTTP live target creates its object anew
//! when the platform has deleted it (a write answered 404 or 410). The platform gives
//! the new object a new identity, taken from its answer by a jq path; the environment
//! is then at another URL, formed from a template with `{id}`.

use serde::{Deserialize, Serialize};

use super::WriteMethod;
use crate::error::{Error, Result};
use crate::filter::Program;
use crate::store::redact_url;

/// The placeholder for the new identity in `read_url` and `write_url`.
pub const ID_PLACEHOLDER: &str = "{id}";

/// How to create the live object when it is gone, e.g. for n8n
/// `{ url = "http://127.0.0.1:5678/api/v1/workflows", id = ".id" }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateConfig {
    /// The endpoint that creates the object (n8n: `.../api/v1/workflows`).
    pub url: String,
    /// `POST` (the default), `PUT` or `PATCH`.
    pub method: Option<WriteMethod>,
    /// A jq program that shapes the create request's body from the stored document
    /// (default: the environment's write filter, with `$live` null).
    pub write: Option<String>,
    /// A jq path into the platform's answer giving the new object's identity (`.id`,
    /// `.data.uid`): a string or an integer.
    pub id: String,
    /// The new object's URL, which backup reads and restore reads back, with `{id}` for
    /// its identity (default: `url` followed by `/{id}`).
    pub read_url: Option<String>,
    /// The new object's import URL with `{id}`, for a live target that has a
    /// `write_url` (required then).
    pub write_url: Option<String>,
}

impl CreateConfig {
    /// The method of the create request.
    #[must_use]
    pub fn method(&self) -> WriteMethod {
        self.method.unwrap_or(WriteMethod::Post)
    }

    /// The read URL template: `read_url`, else `url` + `/{id}`.
    #[must_use]
    pub fn read_url_template(&self) -> String {
        self.read_url
            .clone()
            .unwrap_or_else(|| format!("{}/{ID_PLACEHOLDER}", self.url.trim_end_matches('/')))
    }

    /// Compiles the `id` path; `at` is the table's key (`apps.a.envs.e.live.create`).
    ///
    /// # Errors
    /// `Config` naming `at.id`, the line and column.
    pub fn id_program(&self, at: &str) -> Result<Program> {
        Program::compile(&format!("{at}.id"), &self.id, &[])
    }

    /// Compiles the `write` program, if any.
    ///
    /// # Errors
    /// `Config` naming `at.write`, the line and column.
    pub fn write_program(&self, at: &str) -> Result<Option<Program>> {
        self.write
            .as_deref()
            .map(|code| Program::compile(&format!("{at}.write"), code, &[]))
            .transpose()
    }

    /// Checks what serde can't: the URLs and templates, and that the jq programs
    /// compile. `at` is the table's key; `has_write_url`: the live target has its own
    /// `write_url`, which then needs a template too.
    ///
    /// # Errors
    /// `Config` naming the key.
    pub fn validate(&self, at: &str, has_write_url: bool) -> Result<()> {
        let http = |key: &str, u: &str| -> Result<()> {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && reqwest::Url::parse(u).is_ok();
            if ok {
                Ok(())
            } else {
                Err(Error::config(format!(
                    "{at}.{key}: {:?} is not an http:// or https:// URL",
                    redact_url(u)
                )))
            }
        };
        http("url", &self.url)?;
        if self.read_url.is_none() && (self.url.contains('?') || self.url.contains('#')) {
            return Err(Error::config(format!(
                "{at}: `url` has a query string, so the new object's URL can't be formed by \
                 adding /{{id}}; set read_url, e.g. read_url = \"https://host/items/{{id}}\""
            )));
        }
        for (key, template) in [
            ("read_url", self.read_url.as_deref()),
            ("write_url", self.write_url.as_deref()),
        ] {
            let Some(t) = template else { continue };
            if !t.contains(ID_PLACEHOLDER) {
                return Err(Error::config(format!(
                    "{at}.{key}: {:?} has no {ID_PLACEHOLDER}, the place of the new \
                     object's identity",
                    redact_url(t)
                )));
            }
            http(key, &t.replace(ID_PLACEHOLDER, "id"))?;
        }
        if has_write_url && self.write_url.is_none() {
            return Err(Error::config(format!(
                "{at}: the live target has a write_url, so the new object's needs a template \
                 too: set write_url with {ID_PLACEHOLDER}"
            )));
        }
        if self.id.trim().is_empty() {
            return Err(Error::config(format!(
                "{at}.id is empty: give the jq path to the new identity in the platform's \
                 answer, e.g. id = \".id\""
            )));
        }
        self.id_program(at)?;
        self.write_program(at)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, LiveConfig};
    use crate::error::ErrorKind;
    use crate::id::EnvRef;

    const LIVE: &str = "[apps.n8n.envs.prod.live]\nkind = \"http\"\n\
                        url = \"http://h:5678/api/v1/workflows/wf1\"\n";

    fn table(c: &Config) -> CreateConfig {
        let env = EnvRef::parse("n8n", "prod").unwrap();
        let Some(LiveConfig::Http {
            create: Some(create),
            ..
        }) = &c.env(&env).unwrap().live
        else {
            panic!("no create table");
        };
        (**create).clone()
    }

    #[test]
    fn parses_a_create_table_with_its_defaults() {
        let c = Config::parse(&format!(
            "{LIVE}[apps.n8n.envs.prod.live.create]\n\
             url = \"http://h:5678/api/v1/workflows\"\nid = \".id\"\n"
        ))
        .unwrap();
        let create = table(&c);
        assert_eq!(create.method(), WriteMethod::Post);
        assert_eq!(
            create.read_url_template(),
            "http://h:5678/api/v1/workflows/{id}"
        );
        assert_eq!(create.write, None);

        let c = Config::parse(&format!(
            "{LIVE}write_url = \"http://h/import/wf1\"\n\
             [apps.n8n.envs.prod.live.create]\nurl = \"http://h/new/\"\nmethod = \"PUT\"\n\
             id = \".data.uid\"\nwrite = \"{{name}}\"\n\
             read_url = \"http://h/export/{{id}}?full=1\"\nwrite_url = \"http://h/import/{{id}}\"\n"
        ))
        .unwrap();
        let create = table(&c);
        assert_eq!(create.method(), WriteMethod::Put);
        assert_eq!(create.read_url_template(), "http://h/export/{id}?full=1");
        assert_eq!(create.write.as_deref(), Some("{name}"));
    }

    #[test]
    fn config_errors_name_the_key() {
        for (table, says) in [
            (
                "url = \"ftp://h/x\"\nid = \".id\"",
                "live.create.url: \"ftp://h/x\"",
            ),
            (
                "url = \"http://h/x\"\nid = \".id\"\nread_url = \"http://h/x/1\"",
                "live.create.read_url: \"http://h/x/1\" has no {id}",
            ),
            ("url = \"http://h/x?a=1\"\nid = \".id\"", "set read_url"),
            (
                "url = \"http://h/x\"\nid = \" \"",
                "live.create.id is empty",
            ),
            (
                "url = \"http://h/x\"\nid = \".id |\"",
                "apps.n8n.envs.prod.live.create.id: jq error at line 1, column",
            ),
            (
                "url = \"http://h/x\"\nid = \".id\"\nwrite = \"{name,\\n nodes: .nodes |\\n}\"",
                "apps.n8n.envs.prod.live.create.write: jq error at line 3, column 1",
            ),
            ("url = \"http://h/x\"", "missing key `id`"),
            ("url = \"http://h/x\"\nid = \".id\"\nbody = 1", "body"),
        ] {
            let text = format!("{LIVE}[apps.n8n.envs.prod.live.create]\n{table}\n");
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{table}: {e}");
            assert!(e.report().contains(says), "{table}: {e}");
        }
        let e = Config::parse(&format!(
            "{LIVE}write_url = \"http://h/in/wf1\"\n\
             [apps.n8n.envs.prod.live.create]\nurl = \"http://h/x\"\nid = \".id\"\n"
        ))
        .unwrap_err();
        assert!(e.report().contains("set write_url with {id}"), "{e}");
    }
}
