//! Snapshot metadata: what is known about a snapshot without its content, and how it
//! is stored in the snapshot object's user metadata.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Hint, Result, Step};
use crate::layout;
use crate::store::{Metadata, ObjectInfo};

/// What made a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// A person, from the CLI.
    Manual,
    /// The scheduler.
    Schedule,
    /// A call to the HTTP API.
    Api,
    /// An uploaded file (CLI `--from` or the HTTP upload route).
    Upload,
    /// The live configuration saved just before a restore overwrote it.
    PreRestore,
    /// A copy from another environment.
    Promote,
    /// What a restore pushed and confirmed: the live configuration after the restore
    /// (its metadata names the version restored, `restored_from`).
    Restore,
}

impl Trigger {
    /// The name stored in metadata and shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Schedule => "schedule",
            Self::Api => "api",
            Self::Upload => "upload",
            Self::PreRestore => "pre-restore",
            Self::Promote => "promote",
            Self::Restore => "restore",
        }
    }
}

impl Trigger {
    /// Whether a backup with this trigger may be refused by the environment's schema
    /// (`on_backup = "refuse"`). The snapshots that restore and promote take for their
    /// own safety (`pre-restore`, `restore`, `promote`) are always stored, and flagged
    /// when they fail: those operations check the schema themselves.
    #[must_use]
    pub fn may_refuse_on_schema(self) -> bool {
        matches!(
            self,
            Self::Manual | Self::Schedule | Self::Api | Self::Upload
        )
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "manual" => Self::Manual,
            "schedule" => Self::Schedule,
            "api" => Self::Api,
            "upload" => Self::Upload,
            "pre-restore" => Self::PreRestore,
            "promote" => Self::Promote,
            "restore" => Self::Restore,
            other => return Err(Error::invalid(format!("unknown trigger {other:?}"))),
        })
    }
}

/// Everything known about one snapshot without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotMeta {
    /// The version number, 1, 2, 3 ... per environment.
    pub version: u64,
    /// sha256 of the raw configuration, lowercase hex.
    pub sha256: String,
    /// Raw size in bytes.
    pub size: u64,
    /// Compressed (stored) size in bytes.
    pub stored_size: u64,
    /// When it was taken (UTC).
    pub created_at: DateTime<Utc>,
    /// What made it.
    pub trigger: Trigger,
    /// Who made it.
    pub author: Option<String>,
    /// Why.
    pub message: Option<String>,
    /// Where the configuration came from (a live target, a file name, an upload).
    pub source: Option<String>,
    /// The object's key in the store.
    pub key: String,
    /// For a `restore` snapshot: the version that was restored. Absent otherwise (and
    /// in metadata written before restores were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// How many violations of the environment's JSON Schema the content had when it was
    /// stored (`on_backup = "flag"`, or saved by a restore or promote); absent when it
    /// passed or no schema was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_errors: Option<u64>,
    /// The first of those violations (`/json/pointer: message`), shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
    /// For an encrypted snapshot (`age(zstd(json))`): the age recipients (`age1...`)
    /// it is encrypted to. Absent for a plain zstd snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// The sha256 of the content without its environment's ignore paths (see
    /// [`crate::filter::EnvFilters::ignoring_sha256`]), for a snapshot backed up with
    /// ignore paths: the next backup compares it with its own instead of reading this
    /// snapshot back. Kept in the object's metadata and the listing index, not shown.
    #[serde(skip)]
    pub ignoring_sha256: Option<String>,
}

// User metadata keys (S3 stores them as `x-amz-meta-<key>`).
const M_VERSION: &str = "jetvault-version";
const M_SHA256: &str = "jetvault-sha256";
const M_SIZE: &str = "jetvault-size";
const M_CREATED: &str = "jetvault-created-at";
const M_TRIGGER: &str = "jetvault-trigger";
const M_AUTHOR: &str = "jetvault-author";
const M_MESSAGE: &str = "jetvault-message";
const M_SOURCE: &str = "jetvault-source";
const M_CODEC: &str = "jetvault-codec";
const M_RESTORED_FROM: &str = "jetvault-restored-from";
const M_SCHEMA_ERRORS: &str = "jetvault-schema-errors";
const M_SCHEMA_ERROR: &str = "jetvault-schema-error";
const M_RECIPIENTS: &str = "jetvault-recipients";
/// [`SnapshotMeta::ignoring_sha256`]; absent in older snapshots.
pub(crate) const M_IGNORING_SHA256: &str = "jetvault-sha256-ignoring";
/// `jetvault-codec` of a plain snapshot, and of an encrypted one.
const CODEC_ZSTD: &str = "zstd";
const CODEC_AGE_ZSTD: &str = "age+zstd";

/// The longest first schema violation kept in metadata, once encoded; with the fixed
/// fields and [`MAX_FREE_TEXT_METADATA`] it keeps all user metadata under S3's 2 KiB.
pub(crate) const MAX_SCHEMA_ERROR_METADATA: usize = 160;

/// S3 allows 2 KiB of user metadata in all; keep room for the fixed fields.
pub(crate) const MAX_FREE_TEXT_METADATA: usize = 1500;

/// Percent-encodes everything that is not a printable ASCII character (and `%`), so that
/// free text survives as an HTTP header value.
const HEADER_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

pub(crate) fn encode_text(s: &str) -> String {
    utf8_percent_encode(s, HEADER_UNSAFE).to_string()
}

fn decode_text(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Whether `s` is a sha256 in hex.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl SnapshotMeta {
    /// The user metadata stored with the snapshot object.
    #[must_use]
    pub fn to_metadata(&self) -> Metadata {
        let mut m = Metadata::new();
        m.insert(M_VERSION.into(), self.version.to_string());
        m.insert(M_SHA256.into(), self.sha256.clone());
        m.insert(M_SIZE.into(), self.size.to_string());
        m.insert(
            M_CREATED.into(),
            self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        m.insert(M_TRIGGER.into(), self.trigger.as_str().into());
        match &self.recipients {
            None => m.insert(M_CODEC.into(), CODEC_ZSTD.into()),
            Some(r) => {
                m.insert(M_RECIPIENTS.into(), r.join(","));
                m.insert(M_CODEC.into(), CODEC_AGE_ZSTD.into())
            }
        };
        for (k, v) in [
            (M_AUTHOR, &self.author),
            (M_MESSAGE, &self.message),
            (M_SOURCE, &self.source),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), encode_text(v));
            }
        }
        if let Some(v) = self.restored_from {
            m.insert(M_RESTORED_FROM.into(), v.to_string());
        }
        if let Some(n) = self.schema_errors {
            m.insert(M_SCHEMA_ERRORS.into(), n.to_string());
        }
        if let Some(text) = &self.schema_error {
            m.insert(M_SCHEMA_ERROR.into(), encode_text(text));
        }
        if let Some(sha) = &self.ignoring_sha256 {
            m.insert(M_IGNORING_SHA256.into(), sha.clone());
        }
        m
    }

    /// Reads the metadata of a snapshot object.
    ///
    /// # Errors
    /// `Corrupt` naming the key and the field that is missing or wrong.
    pub fn from_object(info: &ObjectInfo) -> Result<Self> {
        let m = &info.metadata;
        let field = |name: &str| {
            m.get(name).ok_or_else(|| {
                Error::corrupt(format!(
                    "snapshot object {} has no {name} metadata",
                    info.key
                ))
                .with_next(Hint::steps("check the store", [Step::Verify]))
            })
        };
        let bad = |name: &str, v: &str| {
            Error::corrupt(format!(
                "snapshot object {} has an invalid {name} metadata value {v:?}",
                info.key
            ))
        };
        let version: u64 = field(M_VERSION)?
            .parse()
            .map_err(|_| bad(M_VERSION, &m[M_VERSION]))?;
        if layout::parse_snapshot_key(&info.key) != Some(version) {
            return Err(Error::corrupt(format!(
                "snapshot object {} says it is version {version}, which its key contradicts",
                info.key
            )));
        }
        let sha256 = field(M_SHA256)?.clone();
        if !is_sha256_hex(&sha256) {
            return Err(bad(M_SHA256, &sha256));
        }
        let size = field(M_SIZE)?
            .parse()
            .map_err(|_| bad(M_SIZE, &m[M_SIZE]))?;
        let created_at = DateTime::parse_from_rfc3339(field(M_CREATED)?)
            .map_err(|_| bad(M_CREATED, &m[M_CREATED]))?
            .with_timezone(&Utc);
        let trigger = field(M_TRIGGER)?
            .parse()
            .map_err(|_| bad(M_TRIGGER, &m[M_TRIGGER]))?;
        let text = |k: &str| m.get(k).map(|v| decode_text(v));
        let recipients = match (m.get(M_CODEC).map(String::as_str), m.get(M_RECIPIENTS)) {
            (Some(CODEC_AGE_ZSTD), Some(r)) => {
                let list: Vec<String> = r.split(',').map(str::to_string).collect();
                if list.iter().any(|k| !k.starts_with("age1") || k.len() < 10) {
                    return Err(bad(M_RECIPIENTS, r));
                }
                Some(list)
            }
            (Some(CODEC_AGE_ZSTD), None) => {
                return Err(Error::corrupt(format!(
                    "snapshot object {} is encrypted ({M_CODEC} {CODEC_AGE_ZSTD}) but has no \
                     {M_RECIPIENTS} metadata",
                    info.key
                )));
            }
            (None | Some(CODEC_ZSTD), _) => None,
            (Some(other), _) => return Err(bad(M_CODEC, other)),
        };
        let number = |k: &str| {
            m.get(k)
                .map(|v| v.parse::<u64>().map_err(|_| bad(k, v)))
                .transpose()
        };
        Ok(Self {
            version,
            sha256,
            size,
            stored_size: info.size,
            created_at,
            trigger,
            author: text(M_AUTHOR),
            message: text(M_MESSAGE),
            source: text(M_SOURCE),
            key: info.key.clone(),
            restored_from: number(M_RESTORED_FROM)?,
            schema_errors: number(M_SCHEMA_ERRORS)?,
            schema_error: text(M_SCHEMA_ERROR),
            recipients,
            // Only compared with another backup's hash: one that is not a sha256 is
            // left out (the next backup then reads this snapshot back).
            ignoring_sha256: m
                .get(M_IGNORING_SHA256)
                .filter(|v| is_sha256_hex(v))
                .cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::error::ErrorKind;
    use crate::id::EnvRef;

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    #[test]
    fn metadata_round_trip() {
        let m = SnapshotMeta {
            version: 7,
            sha256: codec::sha256_hex(b"x"),
            size: 1,
            stored_size: 10,
            created_at: Utc::now(),
            trigger: Trigger::PreRestore,
            author: Some("Zoë <z@x>".into()),
            message: Some("line1\nline2 50%".into()),
            source: Some("https://x/export".into()),
            key: layout::snapshot_key(&env(), 7),
            restored_from: Some(4),
            schema_errors: Some(2),
            schema_error: Some("/0/id: 7 is not of type \"string\"".into()),
            recipients: None,
            ignoring_sha256: None,
        };
        let info = ObjectInfo {
            key: m.key.clone(),
            size: 10,
            etag: "\"e\"".into(),
            last_modified: None,
            metadata: m.to_metadata(),
        };
        assert!(
            info.metadata
                .values()
                .all(|v| v.is_ascii() && !v.contains('\n'))
        );
        let back = SnapshotMeta::from_object(&info).unwrap();
        assert_eq!(
            back.created_at.timestamp_millis(),
            m.created_at.timestamp_millis()
        );
        assert_eq!(back.message, m.message);
        assert_eq!(back.author, m.author);
        assert_eq!(back.restored_from, Some(4));
        assert_eq!(back.schema_errors, Some(2));
        assert_eq!(back.schema_error, m.schema_error);
        // Metadata written before these fields existed still reads, without them.
        let mut old = info.clone();
        for k in [M_RESTORED_FROM, M_SCHEMA_ERRORS, M_SCHEMA_ERROR] {
            old.metadata.remove(k);
        }
        let old = SnapshotMeta::from_object(&old).unwrap();
        assert_eq!(
            (old.restored_from, old.schema_errors, old.schema_error),
            (None, None, None)
        );
        let mut bad = info.clone();
        bad.metadata.insert(M_RESTORED_FROM.into(), "x".into());
        assert_eq!(
            SnapshotMeta::from_object(&bad).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        let mut wrong_key = info.clone();
        wrong_key.key = layout::snapshot_key(&env(), 8);
        assert_eq!(
            SnapshotMeta::from_object(&wrong_key).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    fn info(key: String, metadata: Metadata) -> ObjectInfo {
        ObjectInfo {
            key,
            size: 10,
            etag: "\"e\"".into(),
            last_modified: None,
            metadata,
        }
    }

    fn any_trigger() -> impl proptest::strategy::Strategy<Value = Trigger> {
        proptest::sample::select(vec![
            Trigger::Manual,
            Trigger::Schedule,
            Trigger::Api,
            Trigger::Upload,
            Trigger::PreRestore,
            Trigger::Promote,
            Trigger::Restore,
        ])
    }

    proptest::proptest! {
        #[test]
        fn metadata_round_trips(
            version in 0u64..=layout::MAX_ORDINAL, size in proptest::num::u64::ANY,
            ms in 0i64..253_402_300_799_999, trigger in any_trigger(),
            sha in "[0-9a-f]{64}",
            author in proptest::option::of("(?s).{0,30}"), message in proptest::option::of("(?s).{0,60}"),
            source in proptest::option::of("(?s).{0,30}"),
            restored_from in proptest::option::of(proptest::num::u64::ANY),
            schema_errors in proptest::option::of(proptest::num::u64::ANY),
            schema_error in proptest::option::of("(?s).{0,30}"),
            recipients in proptest::option::of(1usize..4),
        ) {
            let m = SnapshotMeta {
                version, sha256: sha, size, stored_size: 10,
                created_at: DateTime::from_timestamp_millis(ms).unwrap(),
                trigger, author, message, source,
                key: layout::snapshot_key(&env(), version),
                restored_from, schema_errors, schema_error,
                recipients: recipients.map(|n| (0..n).map(|i| format!("age1{i:0>58}")).collect()),
                ignoring_sha256: None,
            };
            let md = m.to_metadata();
            proptest::prop_assert!(md.values().all(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b))));
            proptest::prop_assert_eq!(SnapshotMeta::from_object(&info(m.key.clone(), md)).unwrap(), m);
            proptest::prop_assert_eq!(trigger.as_str().parse::<Trigger>().unwrap(), trigger);
        }

        /// Any user metadata (each field missing, arbitrary, or close to valid) reads as
        /// metadata or as a `Corrupt` error, never a panic.
        #[test]
        fn any_metadata_reads_or_is_refused(
            v in 0u64..1000, key in proptest::option::weighted(0.2, "(?s).{0,40}|x/[0-9]{10}-v[0-9]{1,3}\\.json\\.zst"),
            fields in proptest::collection::vec(proptest::option::weighted(0.15, proptest::option::of(
                "(?s).{0,40}|[0-9+-]{1,21}|[0-9a-fA-F]{63,65}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}(Z|[+-][0-9]{2}:[0-9]{2})|%[0-9A-Fa-f]{0,2}.{0,4}"
            )), 8),
            sha in "[0-9a-f]{64}", size in proptest::num::u64::ANY, ms in -1_000_000_000_000i64..253_402_300_799_999,
            trigger in any_trigger(), text in "(?s).{0,20}",
        ) {
            // Each field valid unless the generator gave a replacement (or removed it).
            let valid = [
                v.to_string(), sha, size.to_string(),
                DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true),
                trigger.as_str().to_string(), encode_text(&text), text.clone(), encode_text(&text),
            ];
            let names = [M_VERSION, M_SHA256, M_SIZE, M_CREATED, M_TRIGGER, M_AUTHOR, M_MESSAGE, M_SOURCE];
            let md: Metadata = names
                .iter()
                .zip(valid)
                .zip(fields)
                .filter_map(|((k, good), f)| Some(((*k).to_string(), f.unwrap_or(Some(good))?)))
                .collect();
            let key = key.unwrap_or_else(|| layout::snapshot_key(&env(), v));
            match SnapshotMeta::from_object(&info(key.clone(), md)) {
                Ok(m) => {
                    proptest::prop_assert_eq!(layout::parse_snapshot_key(&key), Some(m.version));
                    proptest::prop_assert_eq!(m.sha256.len(), 64);
                }
                Err(e) => proptest::prop_assert_eq!(e.kind(), ErrorKind::Corrupt),
            }
        }

        #[test]
        fn free_text_round_trips_and_any_text_decodes(s in "(?s).{0,80}") {
            proptest::prop_assert_eq!(decode_text(&encode_text(&s)), s.clone());
            let _ = decode_text(&s);
            let _ = s.parse::<Trigger>();
        }
    }
}
