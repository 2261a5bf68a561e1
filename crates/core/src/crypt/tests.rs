use std::sync::Arc;

use super::*;
use crate::error::ErrorKind;
use crate::events::{Action, Actor};
use crate::layout;
use crate::snapshot::{BackupRequest, Trigger};
use crate::store::{LocalStore, Store};
use crate::testutil::corpus;
use crate::vault::{Vault, VaultOptions};
use crate::verify::VerifyOptions;

struct Key {
    secret: String,
    public: String,
}

fn key() -> Key {
    let (secret, public) = Identities::generate();
    Key { secret, public }
}

fn recipients(keys: &[&Key]) -> Recipients {
    let names: Vec<String> = keys.iter().map(|k| k.public.clone()).collect();
    Recipients::parse(&names, "test").unwrap()
}

fn identities(keys: &[&Key]) -> Identities {
    let text: Vec<&str> = keys.iter().map(|k| k.secret.as_str()).collect();
    Identities::parse(&text.join("\n"), "test identities").unwrap()
}

fn env() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

/// A vault over `store` encrypting to `to` (none: plain) and reading with `ids`.
fn vault(store: &Arc<dyn Store>, to: Option<Recipients>, ids: Identities) -> Vault {
    let encryption = to.map_or_else(Encryption::none, Encryption::store_wide);
    Vault::new(
        store.clone(),
        VaultOptions {
            encryption,
            identities: ids,
            ..VaultOptions::default()
        },
    )
}

fn local() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
    (dir, store)
}

async fn backup(vault: &Vault, raw: &[u8]) -> u64 {
    vault
        .backup(&env(), BackupRequest::new(raw.to_vec(), Trigger::Manual))
        .await
        .unwrap()
        .snapshot()
        .version
}

#[tokio::test]
async fn encrypted_snapshots_round_trip_and_are_age_of_zstd() {
    let (a, b) = (key(), key());
    let (_d, store) = local();
    let raw = corpus("appsmith-import-app-all-access.json");
    let writer = vault(&store, Some(recipients(&[&a, &b])), Identities::none());
    assert_eq!(backup(&writer, &raw).await, 1);

    let obj = store.get(&layout::snapshot_key(&env(), 1)).await.unwrap();
    assert!(obj.bytes.starts_with(b"age-encryption.org/v1\n"));
    let meta = crate::meta::SnapshotMeta::from_object(&obj.info).unwrap();
    assert_eq!(
        meta.recipients,
        Some(vec![a.public.clone(), b.public.clone()])
    );
    assert_eq!(meta.sha256, crate::codec::sha256_hex(&raw));
    assert_eq!(obj.info.metadata["jetvault-codec"], "age+zstd");
    // The stored object is age(zstd(json)): each recipient alone opens it, and the
    // frame inside decompresses to the configuration.
    for k in [&a, &b] {
        let frame = decrypt(&obj.bytes, &identities(&[k]), &[], "x").unwrap();
        assert_eq!(crate::codec::decompress(&frame, 1 << 30, "x").unwrap(), raw);
    }
    for k in [&a, &b] {
        let reader = vault(&store, None, identities(&[k]));
        let (m, got) = reader.get(&env(), 1).await.unwrap();
        assert_eq!(got.as_ref(), raw.as_slice());
        assert_eq!(m.version, 1);
        // get_stored hands out the zstd frame (what serve passes through), decrypted.
        let (_, frame) = reader.get_stored(&env(), 1).await.unwrap();
        assert_eq!(crate::codec::decompress(&frame, 1 << 30, "x").unwrap(), raw);
    }
    // The same content again is unchanged (compared by the plaintext's sha256).
    assert_eq!(backup(&writer, &raw).await, 1);
}

#[tokio::test]
async fn missing_or_wrong_identity_is_a_config_error_naming_the_recipients() {
    let (a, other) = (key(), key());
    let (_d, store) = local();
    let writer = vault(&store, Some(recipients(&[&a])), Identities::none());
    backup(&writer, br#"{"secret":"hunter2"}"#).await;

    let e = writer.get(&env(), 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let text = e.report();
    assert!(text.contains(&a.public), "{text}");
    assert!(text.contains("no identity was given"), "{text}");
    assert!(text.contains("JETVAULT_AGE_IDENTITY_FILE"), "{text}");

    let wrong = vault(&store, None, identities(&[&other]));
    let e = wrong.get(&env(), 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let text = e.report();
    assert!(text.contains(&a.public), "{text}");
    assert!(text.contains(&other.public), "{text}");
    assert!(text.contains("none of the identities"), "{text}");
}

#[tokio::test]
async fn plain_and_encrypted_snapshots_live_side_by_side() {
    let a = key();
    let (_d, store) = local();
    let plain = vault(&store, None, Identities::none());
    assert_eq!(backup(&plain, br#"{"v":1}"#).await, 1);
    let enc = vault(&store, Some(recipients(&[&a])), identities(&[&a]));
    assert_eq!(backup(&enc, br#"{"v":2}"#).await, 2);
    // Turning encryption on does not break reading the old one, with or without a key.
    assert_eq!(enc.get(&env(), 1).await.unwrap().1.as_ref(), br#"{"v":1}"#);
    assert_eq!(enc.get(&env(), 2).await.unwrap().1.as_ref(), br#"{"v":2}"#);
    assert_eq!(
        plain.get(&env(), 1).await.unwrap().1.as_ref(),
        br#"{"v":1}"#
    );
    assert_eq!(
        plain.get(&env(), 2).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    // Listings show both, the encrypted one with its recipients (read with a HEAD:
    // it has no index entry).
    let list = plain.list(&env(), None, 10).await.unwrap();
    let recipients: Vec<_> = list.iter().map(|m| m.recipients.clone()).collect();
    assert_eq!(recipients, vec![Some(vec![a.public.clone()]), None]);
    // An environment override turns encryption off there.
    let off = Vault::new(
        store.clone(),
        VaultOptions {
            encryption: Encryption::store_wide(recipients_of(&a)).with_env(env(), None),
            ..VaultOptions::default()
        },
    );
    assert_eq!(backup(&off, br#"{"v":3}"#).await, 3);
    assert_eq!(
        plain.get(&env(), 3).await.unwrap().1.as_ref(),
        br#"{"v":3}"#
    );
}

fn recipients_of(k: &Key) -> Recipients {
    recipients(&[k])
}

#[tokio::test]
async fn verify_checks_everything_with_an_identity_and_structure_without() {
    let a = key();
    let (dir, store) = local();
    let enc = vault(&store, Some(recipients(&[&a])), identities(&[&a]));
    for i in 0..3 {
        backup(&enc, format!("{{\"rev\":{i}}}").as_bytes()).await;
    }
    let full = enc
        .verify_env(&env(), &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!((full.ok, full.bad.len(), full.structure_only), (3, 0, 0));
    let blind = vault(&store, None, Identities::none());
    let r = blind
        .verify_env(&env(), &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!((r.ok, r.bad.len(), r.structure_only), (3, 0, 3));
    assert!(
        r.structure_only_reason
            .as_deref()
            .unwrap()
            .contains(&a.public),
        "{r:?}"
    );

    // v2's header damaged: caught without a key; v3's payload flipped: caught only
    // with one (age authenticates it), while its structure still looks right.
    let path = |v| dir.path().join(layout::snapshot_key(&env(), v));
    let mut bytes = std::fs::read(path(2)).unwrap();
    bytes[0] = b'x';
    std::fs::write(path(2), &bytes).unwrap();
    let mut bytes = std::fs::read(path(3)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path(3), &bytes).unwrap();
    let r = blind
        .verify_env(&env(), &VerifyOptions::default())
        .await
        .unwrap();
    let bad: Vec<_> = r.bad.iter().map(|b| b.version).collect();
    assert_eq!(bad, vec![Some(2)], "{:?}", r.bad);
    let r = enc
        .verify_env(&env(), &VerifyOptions::default())
        .await
        .unwrap();
    let mut bad: Vec<_> = r.bad.iter().map(|b| b.version).collect();
    bad.sort();
    assert_eq!(bad, vec![Some(2), Some(3)], "{:?}", r.bad);
}

#[tokio::test]
async fn rekey_moves_old_snapshots_to_the_current_recipients() {
    let (old, new) = (key(), key());
    let (_d, store) = local();
    let before = vault(&store, Some(recipients(&[&old])), identities(&[&old]));
    let plain = vault(&store, None, Identities::none());
    backup(&plain, br#"{"v":1}"#).await;
    backup(&before, br#"{"v":2}"#).await;
    backup(&before, br#"{"v":3}"#).await;
    let metas_before = plain.list(&env(), None, 10).await.unwrap();

    // The config now names the new key; the operator still holds the old one.
    let rotating = vault(&store, Some(recipients(&[&new])), identities(&[&old]));
    let actor = Actor::default();
    let report = rotating.rekey(&env(), &actor).await.unwrap();
    assert_eq!(report.rekeyed, vec![2, 3]);
    assert_eq!((report.current, report.plain), (0, 1));

    let after = vault(&store, None, identities(&[&new]));
    assert_eq!(
        after.get(&env(), 2).await.unwrap().1.as_ref(),
        br#"{"v":2}"#
    );
    assert_eq!(
        after.get(&env(), 3).await.unwrap().1.as_ref(),
        br#"{"v":3}"#
    );
    let e = before.get(&env(), 2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    // Version, sha256, size, time and history are unchanged; only the recipients.
    let metas_after = plain.list(&env(), None, 10).await.unwrap();
    for (b, a) in metas_before.iter().zip(&metas_after) {
        assert_eq!(
            (b.version, &b.sha256, b.size, b.created_at, &b.message),
            (a.version, &a.sha256, a.size, a.created_at, &a.message)
        );
    }
    assert_eq!(metas_after[0].recipients, Some(vec![new.public.clone()]));
    assert_eq!(metas_after[2].recipients, None);
    let events = plain.events(&env(), 20).await.unwrap();
    let rekeys: Vec<_> = events
        .iter()
        .filter(|e| e.action == Action::Rekey)
        .collect();
    assert_eq!(rekeys.len(), 1);
    assert_eq!(rekeys[0].details["versions"], serde_json::json!([2, 3]));
    // A second run has nothing to do and records nothing.
    let again = after_config(&store, &new)
        .rekey(&env(), &actor)
        .await
        .unwrap();
    assert_eq!((again.rekeyed.len(), again.current), (0, 2));
    // Verify with the new key checks the rewritten objects in full.
    let r = after
        .verify_env(&env(), &VerifyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (r.ok, r.bad.len(), r.structure_only),
        (3, 0, 0),
        "{:?}",
        r.bad
    );
}

fn after_config(store: &Arc<dyn Store>, k: &Key) -> Vault {
    vault(store, Some(recipients(&[k])), identities(&[k]))
}

#[tokio::test]
async fn rekey_without_the_old_identity_writes_nothing() {
    let (old, new) = (key(), key());
    let (dir, store) = local();
    let before = vault(&store, Some(recipients(&[&old])), Identities::none());
    backup(&before, br#"{"v":1}"#).await;
    let path = dir.path().join(layout::snapshot_key(&env(), 1));
    let bytes = std::fs::read(&path).unwrap();
    let rotating = vault(&store, Some(recipients(&[&new])), identities(&[&new]));
    let e = rotating.rekey(&env(), &Actor::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.report().contains(&old.public), "{}", e.report());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // And with no recipients configured there is nothing to rekey to.
    let none = vault(&store, None, identities(&[&old]));
    assert_eq!(
        none.rekey(&env(), &Actor::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn config_recipients_per_store_and_per_env() {
    let (a, b) = (key(), key());
    let text = format!(
        r#"
[encryption]
recipients = ["{a}", "{b}"]

[apps.crm.envs.production.encryption]
recipients = ["{b}"]

[apps.crm.envs.staging.encryption]
recipients = []

[apps.crm.envs.dev]
"#,
        a = a.public,
        b = b.public
    );
    let config = Config::parse(&text).unwrap();
    let enc = Encryption::from_config(&config).unwrap();
    let names = |env: &str| {
        enc.recipients(&EnvRef::parse("crm", env).unwrap())
            .map(|r| r.names().to_vec())
    };
    assert_eq!(names("production"), Some(vec![b.public.clone()]));
    assert_eq!(names("staging"), None);
    assert_eq!(names("dev"), Some(vec![a.public.clone(), b.public.clone()]));

    let bad = Config::parse("[encryption]\nrecipients = [\"age1nope\"]\n").unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config);
    assert!(bad.report().contains("age1nope"), "{}", bad.report());
    // A secret key where a public key belongs is refused too.
    let secret = format!("[encryption]\nrecipients = [\"{}\"]\n", a.secret);
    assert!(Config::parse(&secret).is_err());
    let empty = Config::parse("[encryption]\nrecipients = []\n").unwrap_err();
    assert!(empty.report().contains("empty"), "{}", empty.report());
}

#[test]
fn identity_files_take_comments_and_refuse_garbage() {
    let a = key();
    let file = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n\n",
        a.public, a.secret
    );
    let ids = Identities::parse(&file, "key.txt").unwrap();
    assert_eq!(ids.public_keys(), vec![a.public.clone()]);
    let e = Identities::parse("# only a comment\n", "key.txt").unwrap_err();
    assert!(e.report().contains("no age identity"), "{}", e.report());
    let e = Identities::parse(&a.public, "key.txt").unwrap_err();
    assert!(e.report().contains("line 1"), "{}", e.report());
    // The keys never show in debug output.
    assert!(!format!("{ids:?}").contains(&a.secret));
}

#[test]
fn structure_check_reads_the_header() {
    let (a, b) = (key(), key());
    let sealed = encrypt(b"frame bytes", &recipients(&[&a, &b])).unwrap();
    let s = header::inspect(&sealed, "x").unwrap();
    assert_eq!(s.stanzas.iter().filter(|t| *t == "X25519").count(), 2);
    assert_eq!(s.header_len + s.payload_len, sealed.len());
    assert!(header::inspect(&sealed[..s.header_len + 20], "x").is_err());
    assert!(header::inspect(b"not age at all", "x").is_err());
    assert!(header::inspect(&sealed[..s.header_len - 10], "x").is_err());
    // Larger than one 64 KiB chunk.
    let big = vec![7u8; 200_000];
    let sealed = encrypt(&big, &recipients(&[&a])).unwrap();
    let s = header::inspect(&sealed, "x").unwrap();
    assert_eq!(s.payload_len, 16 + 200_000 + 16 * 4);
    assert_eq!(decrypt(&sealed, &identities(&[&a]), &[], "x").unwrap(), big);
}
