//! Validated identifiers: app and environment ids, release labels.
//!
//! Every id is checked before any I/O, so a bad id can never reach a store key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAX_ID_LEN: usize = 63;
const MAX_LABEL_LEN: usize = 64;

fn check_id(what: &str, s: &str) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::invalid(format!(
            "invalid {what} id {s:?}: {why}; ids are 1 to {MAX_ID_LEN} characters of \
             a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
        )))
    };
    if s.is_empty() {
        return fail("it is empty");
    }
    if s.len() > MAX_ID_LEN {
        return fail(&format!("it is {} characters long", s.len()));
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return fail("it must start with a lowercase letter or a digit");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return fail(&format!("character {c:?} is not allowed"));
    }
    if s.contains("..") {
        return fail("'..' is not allowed");
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s` as an id.
            ///
            /// # Errors
            /// `InvalidInput` naming the id and the rule it breaks.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check_id($what, &s)?;
                Ok(Self(s))
            }

            /// The id as a string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// An application id, such as `crm`.
    AppId,
    "app"
);
id_type!(
    /// An environment id, such as `production`.
    EnvId,
    "env"
);

/// One environment of one app: the unit that snapshots and releases belong to.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct EnvRef {
    /// The app.
    pub app: AppId,
    /// The environment.
    pub env: EnvId,
}

impl EnvRef {
    /// Validates both ids.
    ///
    /// # Errors
    /// `InvalidInput` if either id is invalid.
    pub fn parse(app: &str, env: &str) -> Result<Self> {
        Ok(Self {
            app: AppId::new(app)?,
            env: EnvId::new(env)?,
        })
    }
}

impl From<&EnvRef> for crate::error::EnvName {
    fn from(e: &EnvRef) -> Self {
        Self {
            app: e.app.to_string(),
            env: e.env.to_string(),
        }
    }
}

impl fmt::Display for EnvRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.env)
    }
}

/// A release label such as `1.4.0` or `12`: unique per environment.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

impl Label {
    /// Validates a label: 1 to 64 characters of `A-Z a-z 0-9 . _ + -`, starting with a
    /// letter or digit.
    ///
    /// # Errors
    /// `InvalidInput` naming the label and the rule it breaks.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= MAX_LABEL_LEN
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
            && !s.contains("..");
        if ok {
            Ok(Self(s))
        } else {
            Err(Error::invalid(format!(
                "invalid release label {s:?}: labels are 1 to {MAX_LABEL_LEN} characters of \
                 A-Z, a-z, 0-9, '.', '_', '+' or '-', starting with a letter or digit (e.g. 1.4.0)"
            )))
        }
    }

    /// The label as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Label {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for Label {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn accepts_valid_ids() {
        for s in [
            "crm",
            "production",
            "a",
            "0",
            "my-app_2.v1",
            &"a".repeat(63),
        ] {
            assert!(AppId::new(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_invalid_ids() {
        for s in [
            "",
            "../x",
            "A B",
            "Crm",
            "-x",
            ".x",
            "_x",
            "a/b",
            "a..b",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            let e = EnvId::new(s).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s}");
            assert!(e.to_string().contains("invalid env id"), "{e}");
        }
    }

    #[test]
    fn labels() {
        assert!(Label::new("1.4.0").is_ok());
        assert!(Label::new("v2+build.7").is_ok());
        assert!(Label::new("").is_err());
        assert!(Label::new("a/b").is_err());
        assert!(Label::new("..").is_err());
        assert!(Label::new("x".repeat(65)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn valid_ids_never_escape_a_key(s in "[a-z0-9][a-z0-9._-]{0,62}") {
            if let Ok(id) = AppId::new(&s) {
                proptest::prop_assert!(!id.as_str().contains('/'));
                proptest::prop_assert!(!id.as_str().contains(".."));
            } else {
                proptest::prop_assert!(s.contains(".."));
            }
        }

        #[test]
        fn any_text_is_an_id_or_an_error(s in "(?s).{0,80}|[a-z0-9._/A-Z-]{0,70}") {
            let app = AppId::new(s.as_str());
            let env = EnvId::new(s.as_str());
            proptest::prop_assert_eq!(app.is_ok(), env.is_ok());
            if let Ok(id) = app {
                proptest::prop_assert_eq!(id.as_str(), s.as_str());
                proptest::prop_assert!(!s.is_empty() && s.len() <= MAX_ID_LEN && !s.contains(".."));
                proptest::prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
            }
            let parsed = EnvRef::parse(&s, &s);
            proptest::prop_assert_eq!(parsed.is_ok(), env.is_ok());
        }

        #[test]
        fn ids_round_trip(app in "[a-z0-9][a-z0-9._-]{0,62}", env in "[a-z0-9][a-z0-9._-]{0,62}") {
            proptest::prop_assume!(!app.contains("..") && !env.contains(".."));
            let e = EnvRef::parse(&app, &env).unwrap();
            proptest::prop_assert_eq!(e.app.to_string().parse::<AppId>().unwrap(), e.app.clone());
            proptest::prop_assert_eq!(e.env.to_string().parse::<EnvId>().unwrap(), e.env.clone());
            let json = serde_json::to_string(&e).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<EnvRef>(&json).unwrap(), e.clone());
            proptest::prop_assert_eq!(e.to_string(), format!("{app}/{env}"));
        }

        #[test]
        fn any_text_is_a_label_or_an_error(s in "(?s).{0,80}|[A-Za-z0-9._+/-]{0,70}") {
            if let Ok(l) = Label::new(s.as_str()) {
                proptest::prop_assert_eq!(l.as_str(), s.as_str());
                proptest::prop_assert!(!s.is_empty() && s.len() <= MAX_LABEL_LEN && !s.contains(".."));
                proptest::prop_assert!(!s.contains('/'));
            }
            // serde goes through the same check.
            let json = serde_json::to_string(&s).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Label>(&json).is_ok(), Label::new(s.as_str()).is_ok());
        }

        #[test]
        fn labels_round_trip(s in "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}") {
            match Label::new(s.as_str()) {
                Ok(l) => {
                    proptest::prop_assert_eq!(l.to_string().parse::<Label>().unwrap(), l.clone());
                    let json = serde_json::to_string(&l).unwrap();
                    proptest::prop_assert_eq!(serde_json::from_str::<Label>(&json).unwrap(), l);
                }
                Err(_) => proptest::prop_assert!(s.contains("..")),
            }
        }
    }
}
