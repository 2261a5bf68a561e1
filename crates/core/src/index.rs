//! The listing index: for each snapshot, one empty, immutable object whose key carries the
//! snapshot's metadata, so that a page of history is one LIST instead of a HEAD per
//! snapshot (S3 lists keys, not metadata).
//!
//! The snapshot objects stay the truth: an index entry is written after its snapshot,
//! and a snapshot without one (written by an older jetvault, a crash in between, or
//! metadata too long for a key) is read with a HEAD instead. Entries whose snapshot is
//! gone are ignored.
//!
//! The payload is compact binary, base64url without padding: a format byte, the raw
//! sha256 (32 bytes), LEB128 varints for size, stored size and creation time (ms), a
//! trigger byte, then author, message and source as length-prefixed UTF-8 (length + 1;
//! 0 for none). Format 2, written only for a snapshot that has them, appends
//! `restored_from` and `schema_errors` as varints (n + 1; 0 for none) and the first
//! schema violation as text; format 3, written for a snapshot backed up with ignore
//! paths, appends to format 2 the raw sha256 of the content without them, which the
//! next backup compares with its own. An older build ignores entries of a newer format
//! and reads the snapshot with a HEAD.
//!
//! Encrypted snapshots have no entry (their recipients don't fit a key name, and
//! `rekey` changes them): listings read them with a HEAD.
//!
//! The varints stay hand-written (two short functions): no crate in the dependency tree
//! does unsigned LEB128 over a byte slice, and one more crate for twenty lines would
//! not pay for itself.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;

use crate::error::{Error, Result};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::{SnapshotMeta, Trigger};
use crate::vault::Vault;

const FORMAT: u8 = 1;
/// Format 1 plus `restored_from`, `schema_errors` and `schema_error`.
const FORMAT_2: u8 = 2;
/// Format 2 plus the raw sha256 without the ignore paths (`ignoring_sha256`).
const FORMAT_3: u8 = 3;
const TRIGGERS: [Trigger; 7] = [
    Trigger::Manual,
    Trigger::Schedule,
    Trigger::Api,
    Trigger::Upload,
    Trigger::PreRestore,
    Trigger::Promote,
    Trigger::Restore,
];

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(input: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn put_text(out: &mut Vec<u8>, text: Option<&String>) {
    match text {
        None => put_varint(out, 0),
        Some(t) => {
            put_varint(out, t.len() as u64 + 1);
            out.extend_from_slice(t.as_bytes());
        }
    }
}

fn get_text(input: &mut &[u8]) -> Option<Option<String>> {
    let len = get_varint(input)?;
    if len == 0 {
        return Some(None);
    }
    let len = usize::try_from(len - 1).ok()?;
    if input.len() < len {
        return None;
    }
    let (text, rest) = input.split_at(len);
    *input = rest;
    Some(Some(String::from_utf8(text.to_vec()).ok()?))
}

/// The payload of `meta`'s index entry.
#[must_use]
pub fn encode(meta: &SnapshotMeta) -> Option<String> {
    // An encrypted snapshot's recipients would not fit a key (and change on `rekey`):
    // listings read its metadata with a HEAD.
    if meta.recipients.is_some() {
        return None;
    }
    let sha = hex::decode(&meta.sha256).ok().filter(|s| s.len() == 32)?;
    let ignoring = match &meta.ignoring_sha256 {
        Some(hex) => Some(hex::decode(hex).ok().filter(|s| s.len() == 32)?),
        None => None,
    };
    let extended = ignoring.is_some()
        || meta.restored_from.is_some()
        || meta.schema_errors.is_some()
        || meta.schema_error.is_some();
    let mut out = Vec::with_capacity(96);
    out.push(match (&ignoring, extended) {
        (Some(_), _) => FORMAT_3,
        (None, true) => FORMAT_2,
        (None, false) => FORMAT,
    });
    out.extend_from_slice(&sha);
    put_varint(&mut out, meta.size);
    put_varint(&mut out, meta.stored_size);
    put_varint(
        &mut out,
        u64::try_from(meta.created_at.timestamp_millis()).ok()?,
    );
    out.push(u8::try_from(TRIGGERS.iter().position(|t| *t == meta.trigger)?).ok()?);
    put_text(&mut out, meta.author.as_ref());
    put_text(&mut out, meta.message.as_ref());
    put_text(&mut out, meta.source.as_ref());
    if extended {
        for n in [meta.restored_from, meta.schema_errors] {
            put_varint(&mut out, n.map_or(Some(0), |n| n.checked_add(1))?);
        }
        put_text(&mut out, meta.schema_error.as_ref());
    }
    if let Some(sha) = ignoring {
        out.extend_from_slice(&sha);
    }
    Some(base64url(&out))
}

/// The metadata of snapshot `version` of `env` from its index payload; `None` if the
/// payload is not one this build wrote.
#[must_use]
pub fn decode(env: &EnvRef, version: u64, payload: &str) -> Option<SnapshotMeta> {
    let bytes = unbase64url(payload)?;
    let mut input = bytes.as_slice();
    let (&format, rest) = input.split_first()?;
    if ![FORMAT, FORMAT_2, FORMAT_3].contains(&format) || rest.len() < 32 {
        return None;
    }
    let (sha, rest) = rest.split_at(32);
    input = rest;
    let size = get_varint(&mut input)?;
    let stored_size = get_varint(&mut input)?;
    let millis = i64::try_from(get_varint(&mut input)?).ok()?;
    let (&trigger, rest) = input.split_first()?;
    input = rest;
    let mut meta = SnapshotMeta {
        version,
        sha256: hex::encode(sha),
        size,
        stored_size,
        created_at: DateTime::from_timestamp_millis(millis)?,
        trigger: *TRIGGERS.get(usize::from(trigger))?,
        author: get_text(&mut input)?,
        message: get_text(&mut input)?,
        source: get_text(&mut input)?,
        key: layout::snapshot_key(env, version),
        restored_from: None,
        schema_errors: None,
        schema_error: None,
        recipients: None,
        ignoring_sha256: None,
    };
    if format != FORMAT {
        let optional = |n: u64| n.checked_sub(1);
        meta.restored_from = optional(get_varint(&mut input)?);
        meta.schema_errors = optional(get_varint(&mut input)?);
        meta.schema_error = get_text(&mut input)?;
    }
    if format == FORMAT_3 {
        if input.len() < 32 {
            return None;
        }
        let (sha, rest) = input.split_at(32);
        meta.ignoring_sha256 = Some(hex::encode(sha));
        input = rest;
    }
    input.is_empty().then_some(meta)
}

/// base64url without padding: key-safe (no `/`, no `+`, no `=`).
fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of a base64url payload; `None` for anything else (padding, other
/// characters, non-canonical trailing bits).
fn unbase64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// An index entry read from a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's own key (to delete it with its snapshot).
    pub key: String,
    /// The snapshot's metadata.
    pub meta: SnapshotMeta,
}

impl Vault {
    /// Writes the index entry of a snapshot just written; a failure only costs later
    /// listings a HEAD, so it is logged, not returned.
    pub(crate) async fn write_index_entry(&self, env: &EnvRef, meta: &SnapshotMeta) {
        let Some(key) = encode(meta).and_then(|p| layout::index_key(env, meta.version, &p)) else {
            return; // Too long for a key: listings read this snapshot with a HEAD.
        };
        let result = self
            .store()
            .put(
                &key,
                bytes::Bytes::new(),
                &Default::default(),
                crate::store::PutMode::Create,
            )
            .await;
        if let Err(e) = result
            && !e.is_conflict()
        {
            tracing::warn!(%env, version = meta.version, error = %e.report(),
                "could not write the listing index entry; listings will read this snapshot's metadata instead");
        }
    }

    /// Up to `limit` index entries of versions older than `before`, by version. An
    /// unreadable index is logged and treated as empty: listings then HEAD each snapshot.
    pub(crate) async fn index_entries(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> BTreeMap<u64, Entry> {
        let result: Result<Vec<String>> = self
            .list_parsed_keys(
                &layout::index_prefix(env),
                before.map(|b| layout::index_start_after(env, b)),
                limit,
                |k| layout::parse_index_key(k).map(|(v, _)| v),
            )
            .await;
        match result {
            Ok(keys) => keys
                .into_iter()
                .filter_map(|key| {
                    let (version, payload) = layout::parse_index_key(&key)?;
                    let meta = decode(env, version, payload)?;
                    Some((version, Entry { key, meta }))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(%env, error = %e.report(), "cannot list the listing index");
                BTreeMap::new()
            }
        }
    }
}

/// Whether an index entry's metadata agrees with its snapshot's own: equal, but for the
/// hash without the ignore paths, which entries written before format 3 leave out.
#[must_use]
pub fn agrees(entry: &SnapshotMeta, snapshot: &SnapshotMeta) -> bool {
    match (&entry.ignoring_sha256, &snapshot.ignoring_sha256) {
        (None, Some(_)) => {
            let mut older = snapshot.clone();
            older.ignoring_sha256 = None;
            *entry == older
        }
        _ => entry == snapshot,
    }
}

/// An error for an index entry that disagrees with its snapshot's metadata.
#[must_use]
pub fn mismatch(env: &EnvRef, version: u64) -> Error {
    Error::corrupt(format!(
        "the listing index entry of snapshot v{version} of {env} disagrees with the \
         snapshot's own metadata"
    ))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use proptest::prelude::*;

    use super::*;

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    fn meta(author: Option<&str>, message: Option<&str>, source: Option<&str>) -> SnapshotMeta {
        SnapshotMeta {
            version: 41,
            sha256: crate::codec::sha256_hex(b"x"),
            size: 1_321_757,
            stored_size: 53_035,
            created_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
            trigger: Trigger::Schedule,
            author: author.map(str::to_string),
            message: message.map(str::to_string),
            source: source.map(str::to_string),
            key: layout::snapshot_key(&env(), 41),
            restored_from: None,
            schema_errors: None,
            schema_error: None,
            recipients: None,
            ignoring_sha256: None,
        }
    }

    #[test]
    fn a_typical_scheduled_snapshot_fits_in_a_key() {
        let m = meta(
            Some("scheduler"),
            None,
            Some("https://platform.example.com/api/apps/crm/envs/production/config"),
        );
        let payload = encode(&m).unwrap();
        let key = layout::index_key(&env(), 41, &payload).unwrap();
        let (v, p) = layout::parse_index_key(&key).unwrap();
        assert_eq!(decode(&env(), v, p).unwrap(), m);
    }

    /// A snapshot backed up with ignore paths carries their hash in its entry, so that
    /// the next backup finds it in the LIST it makes anyway.
    #[test]
    fn the_hash_without_the_ignore_paths_fits_in_a_key_too() {
        let m = SnapshotMeta {
            ignoring_sha256: Some(crate::codec::sha256_hex(b"y")),
            ..meta(
                Some("scheduler"),
                None,
                Some("https://platform.example.com/api/apps/crm/envs/production/config"),
            )
        };
        let payload = encode(&m).unwrap();
        assert_eq!(unbase64url(&payload).unwrap()[0], FORMAT_3);
        let key = layout::index_key(&env(), 41, &payload).unwrap();
        let (v, p) = layout::parse_index_key(&key).unwrap();
        assert_eq!(decode(&env(), v, p).unwrap(), m);
        // Not a sha256: no entry (listings read the snapshot's metadata instead).
        let bad = SnapshotMeta {
            ignoring_sha256: Some("abc".into()),
            ..m
        };
        assert!(encode(&bad).is_none());
    }

    #[test]
    fn long_messages_do_not_fit_and_garbage_does_not_decode() {
        let m = meta(Some("a"), Some(&"long message ".repeat(30)), None);
        assert!(layout::index_key(&env(), 41, &encode(&m).unwrap()).is_none());
        for bad in ["", "AA", "!!!", "AQ", &"A".repeat(60)] {
            assert!(decode(&env(), 1, bad).is_none(), "{bad}");
        }
        let mut good = encode(&meta(None, None, None)).unwrap();
        good.push('A');
        assert!(
            decode(&env(), 41, &good).is_none(),
            "trailing bytes are refused"
        );
    }

    /// An index key exactly as the first format wrote it (before the base64 crate):
    /// the stored format must not change.
    #[test]
    fn parses_an_index_key_written_by_the_first_format() {
        let key = "apps/crm/envs/production/index/9999999958-v41.AS1xFkK3JrBEAWJ8qfusMvXIUw-x\
                   kDzE2wIlhxeSGkiBndZQq54DgLyaoPMxAQpzY2hlZHVsZXIAH2h0dHBzOi8vcGxhdGZvcm0uZXhhb\
                   XBsZS5jb20veA";
        let (version, payload) = layout::parse_index_key(key).unwrap();
        let meta = decode(&env(), version, payload).unwrap();
        assert_eq!(meta.version, 41);
        assert_eq!(meta.sha256, crate::codec::sha256_hex(b"x"));
        assert_eq!((meta.size, meta.stored_size), (1_321_757, 53_035));
        assert_eq!(meta.created_at.to_rfc3339(), "2024-05-01T12:00:00+00:00");
        assert_eq!(meta.trigger, Trigger::Schedule);
        assert_eq!(meta.author.as_deref(), Some("scheduler"));
        assert_eq!(meta.message, None);
        assert_eq!(
            meta.source.as_deref(),
            Some("https://platform.example.com/x")
        );
        assert_eq!(meta.key, layout::snapshot_key(&env(), 41));
        // And writing it again gives the same key, byte for byte.
        assert_eq!(
            layout::index_key(&env(), 41, &encode(&meta).unwrap()).unwrap(),
            key
        );
    }

    proptest! {
        #[test]
        fn round_trips(size in any::<u64>(), stored in any::<u64>(), ms in 0i64..4_000_000_000_000,
                       t in 0usize..TRIGGERS.len(), author in proptest::option::of(".{0,20}"),
                       message in proptest::option::of(".{0,40}"), source in proptest::option::of(".{0,40}"),
                       restored_from in proptest::option::of(0u64..u64::MAX),
                       schema_errors in proptest::option::of(0u64..u64::MAX),
                       schema_error in proptest::option::of(".{0,40}"),
                       ignoring in proptest::option::of(any::<[u8; 32]>())) {
            let m = SnapshotMeta {
                size, stored_size: stored,
                created_at: DateTime::from_timestamp_millis(ms).unwrap(),
                trigger: TRIGGERS[t], author, message, source,
                restored_from, schema_errors, schema_error,
                ignoring_sha256: ignoring.map(hex::encode),
                ..meta(None, None, None)
            };
            let payload = encode(&m).unwrap();
            prop_assert!(payload.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(decode(&env(), 41, &payload).unwrap(), m);
        }

        #[test]
        fn varints_round_trip_and_any_bytes_read_safely(n in any::<u64>(), junk in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut input = out.as_slice();
            prop_assert_eq!(get_varint(&mut input), Some(n));
            prop_assert!(input.is_empty());
            let mut input = junk.as_slice();
            let _ = get_varint(&mut input);
            let mut input = junk.as_slice();
            let _ = get_text(&mut input);
        }

        /// Any payload (text, base64url of any bytes, or a valid payload cut or with one
        /// byte changed) decodes to metadata or to `None`, never a panic; and what
        /// decodes is written again as a payload that decodes to the same metadata.
        #[test]
        fn any_payload_decodes_or_is_refused(
            text in "(?s).{0,200}",
            raw in proptest::collection::vec(any::<u8>(), 0..200),
            at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(),
            message in proptest::option::of(".{0,30}"),
        ) {
            let mut valid = unbase64url(&encode(&meta(Some("a"), message.as_deref(), None)).unwrap()).unwrap();
            let i = at.index(valid.len());
            valid[i] = byte;
            valid.truncate(cut.index(valid.len() + 1));
            let mut framed = vec![FORMAT];
            framed.extend_from_slice(&raw);
            for payload in [text, base64url(&raw), base64url(&valid), base64url(&framed)] {
                if let Some(m) = decode(&env(), 7, &payload) {
                    prop_assert_eq!(m.version, 7);
                    let again = encode(&m).unwrap();
                    prop_assert_eq!(decode(&env(), 7, &again).unwrap(), m);
                }
            }
        }
    }
}
