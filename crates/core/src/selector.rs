//! Which snapshot a command or a request means: one [`Selector`], one parser for the
//! text forms (CLI arguments, query strings) and the JSON forms (request bodies), and
//! one resolver, [`Vault::resolve`], for the CLI, HTTP, promote and restore alike.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::id::{EnvRef, Label};
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::release::no_release;
use crate::snapshot::no_snapshots;
use crate::vault::Vault;

/// Which snapshot of an environment is meant.
///
/// Text forms ([`FromStr`]): `12` or `v12`, `latest`, `release` (or `current_release`).
/// JSON forms: those strings, a number, `{"version": 12}`, `{"release": "1.4.0"}` (a
/// release label) and `{"at": "2024-05-01T12:00:00Z"}`. It serialises in the tagged
/// forms (`{"version": 12}`, `"latest"`, `"current_release"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// A version number.
    Version(u64),
    /// The newest snapshot.
    Latest,
    /// The snapshot the environment's release pointer names.
    CurrentRelease,
    /// The snapshot a release label names (the current release or an earlier one).
    Release(Label),
    /// The newest snapshot taken at or before this time.
    At(DateTime<Utc>),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => write!(f, "v{v}"),
            Self::Latest => f.write_str("the latest snapshot"),
            Self::CurrentRelease => f.write_str("the current release"),
            Self::Release(l) => write!(f, "release {l}"),
            Self::At(t) => write!(f, "the snapshot as of {}", t.to_rfc3339()),
        }
    }
}

impl FromStr for Selector {
    type Err = Error;

    /// Parses a version as typed: `12`, `v12`, `latest` or `release` (also
    /// `current_release`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "latest" => return Ok(Self::Latest),
            "release" | "current_release" => return Ok(Self::CurrentRelease),
            _ => {}
        }
        let digits = s.strip_prefix('v').unwrap_or(s);
        // Digits only: u64's parser also takes "+1".
        Some(digits)
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|v| (1..=layout::MAX_ORDINAL).contains(v))
            .map(Self::Version)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{s:?} is not a version: use a number such as 12 (or v12), latest or release"
                ))
            })
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Every JSON form accepted: 12, "12", "v12", "latest", "release",
        // {"version": 12}, {"release": "1.4.0"}, {"at": "2024-05-01T12:00:00Z"}. Read
        // as a value first, so that a bad field is named (not "did not match").
        use serde::de::Error as _;
        use serde_json::Value;
        let bad = |e: Error| D::Error::custom(e.message());
        let number = |n: &serde_json::Number| -> std::result::Result<Self, D::Error> {
            // JSON has one number type: 12.0 is the integer 12 (as JSON Schema says).
            let integral = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && (1.0..=1e10).contains(f));
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            match integral {
                Some(f) => (f as u64).to_string().parse().map_err(bad),
                None => n.to_string().parse().map_err(bad),
            }
        };
        match Value::deserialize(d)? {
            Value::Number(n) => number(&n),
            Value::String(s) => s.parse().map_err(bad),
            Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
                Some((k, Value::Number(n))) if k == "version" => number(&n),
                Some((k, Value::String(l))) if k == "release" => {
                    Label::new(l).map(Self::Release).map_err(bad)
                }
                Some((k, Value::String(t))) if k == "at" => {
                    parse_time(&t).map(Self::At).map_err(bad)
                }
                Some((k, v)) => Err(D::Error::custom(format!(
                    "invalid source {{{k:?}: {v}}}: use {{\"version\": 12}}, \
                     {{\"release\": \"1.4.0\"}} or {{\"at\": \"2024-05-01T12:00:00Z\"}}"
                ))),
                None => Err(D::Error::custom("empty source")),
            },
            v => Err(D::Error::custom(format!(
                "invalid source {v}: use a version (12, \"latest\", \"release\"), \
                 {{\"version\": 12}}, {{\"release\": \"1.4.0\"}} or \
                 {{\"at\": \"2024-05-01T12:00:00Z\"}}"
            ))),
        }
    }
}

/// Parses a time: RFC 3339 (`2024-05-01T12:00:00Z`, offsets allowed), or a date and
/// time without an offset, taken as UTC.
///
/// # Errors
/// `InvalidInput` naming the value and the accepted forms.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    Err(Error::invalid(format!(
        "invalid time {s:?}: use RFC 3339, e.g. 2024-05-01T12:00:00Z or \
         2024-05-01T14:00:00+02:00"
    )))
}

impl Vault {
    /// Finds the snapshot a selector names.
    ///
    /// # Errors
    /// `NotFound` if the environment has no snapshot (for `latest`), no release, no
    /// such label, no snapshot that old, or the version does not exist (each naming
    /// the nearest that exist); store errors.
    pub async fn resolve(&self, env: &EnvRef, selector: &Selector) -> Result<SnapshotMeta> {
        match selector {
            Selector::Version(v) => self.snapshot_meta(env, *v).await,
            Selector::Latest => self.latest(env).await?.ok_or_else(|| no_snapshots(env)),
            Selector::CurrentRelease => {
                let pointer = self
                    .current_release(env)
                    .await?
                    .ok_or_else(|| no_release(env))?;
                let r = &pointer.release;
                self.snapshot_meta(env, r.version)
                    .await
                    .map_err(|e| e.context(format!("release {} of {env}", r.reference())))
            }
            Selector::Release(label) => {
                let r = self.find_label(env, label).await?;
                self.snapshot_meta(env, r.version)
                    .await
                    .map_err(|e| e.context(format!("release {} of {env}", r.reference())))
            }
            Selector::At(at) => self.snapshot_at(env, *at).await,
        }
    }

    /// The version a selector names: a version number as it is (unchecked, no
    /// request), anything else resolved.
    ///
    /// # Errors
    /// As [`Vault::resolve`].
    pub async fn resolve_version(&self, env: &EnvRef, selector: &Selector) -> Result<u64> {
        match selector {
            Selector::Version(v) => Ok(*v),
            other => Ok(self.resolve(env, other).await?.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!("latest".parse::<Selector>().unwrap(), Selector::Latest);
        assert_eq!("v12".parse::<Selector>().unwrap(), Selector::Version(12));
        assert_eq!("12".parse::<Selector>().unwrap(), Selector::Version(12));
        assert_eq!(
            "release".parse::<Selector>().unwrap(),
            Selector::CurrentRelease
        );
        for bad in ["0", "-1", "x", "", "v", "+1", "v+1", " 1"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_field_is_named() {
        let parse = |s: &str| serde_json::from_str::<Selector>(s);
        let e = parse(r#"{"at":"yesterday"}"#).unwrap_err();
        assert!(e.is_data(), "{e}");
        assert!(e.to_string().contains("invalid time \"yesterday\""), "{e}");
        let e = parse(r#"{"version":"+1"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid source"), "{e}");
        assert!(parse(r#""+1""#).is_err());
        assert!(parse("0").is_err());
    }

    #[test]
    fn json_forms() {
        let parse = |s: &str| serde_json::from_str::<Selector>(s);
        assert_eq!(parse(r#"{"version":12}"#).unwrap(), Selector::Version(12));
        assert_eq!(
            parse(r#"{"release":"1.4.0"}"#).unwrap(),
            Selector::Release(Label::new("1.4.0").unwrap())
        );
        assert!(matches!(
            parse(r#"{"at":"2024-01-01T00:00:00Z"}"#).unwrap(),
            Selector::At(_)
        ));
        assert_eq!(parse(r#""latest""#).unwrap(), Selector::Latest);
        assert_eq!(
            parse(r#""current_release""#).unwrap(),
            Selector::CurrentRelease
        );
        assert_eq!(parse("12").unwrap(), Selector::Version(12));
        assert_eq!(parse(r#""v12""#).unwrap(), Selector::Version(12));
        assert_eq!(parse(r#""release""#).unwrap(), Selector::CurrentRelease);
        assert_eq!(parse("12.0").unwrap(), Selector::Version(12));
        assert_eq!(parse(r#"{"version":3.0}"#).unwrap(), Selector::Version(3));
        for bad in [
            "0",
            "0.0",
            "1.5",
            "1e11",
            r#""x""#,
            r#"{"label":"a"}"#,
            "null",
            "-1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serialises_in_the_tagged_forms() {
        let json = |s: Selector| serde_json::to_value(s).unwrap();
        assert_eq!(
            json(Selector::Version(3)),
            serde_json::json!({"version": 3})
        );
        assert_eq!(json(Selector::Latest), serde_json::json!("latest"));
        assert_eq!(
            json(Selector::CurrentRelease),
            serde_json::json!("current_release")
        );
    }

    fn any_selector() -> impl proptest::strategy::Strategy<Value = Selector> {
        use proptest::prelude::*;
        prop_oneof![
            (1..=layout::MAX_ORDINAL).prop_map(Selector::Version),
            Just(Selector::Latest),
            Just(Selector::CurrentRelease),
            "[A-Za-z0-9][A-Za-z0-9_+-]{0,63}"
                .prop_map(|l| Selector::Release(Label::new(l).unwrap())),
            (0i64..253_402_300_799, 0u32..1_000_000_000)
                .prop_map(|(s, ns)| Selector::At(DateTime::from_timestamp(s, ns).unwrap())),
        ]
    }

    proptest::proptest! {
        /// Any text is a selector or an error; what parses as a version is a version
        /// number in range, written again the same way.
        #[test]
        fn any_text_is_a_selector_or_an_error(s in "(?s).{0,40}|v?[0-9+ -]{0,22}") {
            match s.parse::<Selector>() {
                Ok(Selector::Version(v)) => {
                    proptest::prop_assert!((1..=layout::MAX_ORDINAL).contains(&v));
                    proptest::prop_assert_eq!(format!("v{v}").parse::<Selector>().unwrap(), Selector::Version(v));
                    proptest::prop_assert_eq!(v.to_string().parse::<Selector>().unwrap(), Selector::Version(v));
                }
                Ok(other) => proptest::prop_assert!(matches!(other, Selector::Latest | Selector::CurrentRelease)),
                Err(e) => proptest::prop_assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput),
            }
            let _ = parse_time(&s);
            let _ = serde_json::from_str::<Selector>(&s);
        }

        #[test]
        fn any_json_is_a_selector_or_an_error(
            n in proptest::num::i64::ANY, f in proptest::num::f64::ANY,
            k in "version|release|at|[a-z]{0,8}", v in "(?s).{0,30}|v?[0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:]{5,8}Z?",
        ) {
            for json in [
                serde_json::json!(n), serde_json::json!(f), serde_json::json!(v),
                serde_json::json!({ k.as_str(): n }), serde_json::json!({ k.as_str(): v }),
                serde_json::json!({ k.as_str(): f }), serde_json::json!([v]),
                serde_json::json!({ "version": n, "release": v }),
            ] {
                let _ = serde_json::from_value::<Selector>(json);
            }
        }

        #[test]
        fn selectors_round_trip(s in any_selector()) {
            let json = serde_json::to_string(&s).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Selector>(&json).unwrap(), s.clone());
            match &s {
                Selector::Version(v) => proptest::prop_assert_eq!(format!("v{v}").parse::<Selector>().unwrap(), s.clone()),
                Selector::Latest => proptest::prop_assert_eq!("latest".parse::<Selector>().unwrap(), s.clone()),
                Selector::CurrentRelease => proptest::prop_assert_eq!("release".parse::<Selector>().unwrap(), s.clone()),
                Selector::At(t) => {
                    proptest::prop_assert_eq!(parse_time(&t.to_rfc3339()).unwrap(), *t);
                    let naive = t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
                    proptest::prop_assert_eq!(parse_time(&naive).unwrap().timestamp(), t.timestamp());
                }
                Selector::Release(_) => {}
            }
        }
    }
}
