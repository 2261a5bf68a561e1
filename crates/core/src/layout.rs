//! Where everything lives in a store. The one place that builds and parses keys.
//!
//! ```text
//! jetvault.json                                             store marker
//! apps/<app>/envs/<env>/snapshots/<ord(v)>-v<v>.json.zst    snapshot v, immutable
//! apps/<app>/envs/<env>/index/<ord(v)>-v<v>.<metadata>       listing index, immutable, empty
//! apps/<app>/envs/<env>/release.json                        release pointer (CAS)
//! apps/<app>/envs/<env>/releases/<ord(n)>-r<n>.json         release history, immutable
//! apps/<app>/envs/<env>/labels/<label>.json                 label index, immutable
//! apps/<app>/envs/<env>/pins/<ord(v)>-v<v>                  pinned versions
//! apps/<app>/envs/<env>/events/<ord(ms)>-<id>.json          audit events, immutable
//! apps/<app>/envs/<env>/verify.json                         last verify's summary (overwritten)
//! runs/restore-all/<run>.json                               restore-all run record (CAS)
//! claims/replicas/<replica>/<at ms>-<settled ms>             replica heartbeat (scheduler)
//! claims/ticks/<app>/<env>/<tick ms>                         tick claim, create-only
//! claims/ticks/<app>/<env>/<tick ms>.takeover                tick taken over, create-only
//! ```
//! `ord(n)` is `9999999999 - n` in ten digits, so that a listing in key order (the only
//! order S3 has) starts with the newest: the latest version is the first key of one LIST.

use chrono::{DateTime, Utc};

use crate::id::{EnvRef, Label};

/// The store marker's key.
pub const MARKER_KEY: &str = "jetvault.json";
/// The layout version written in the marker.
pub const FORMAT_VERSION: u32 = 1;
/// The largest version or sequence number a key can hold.
pub const MAX_ORDINAL: u64 = 9_999_999_999;
const MAX_MILLIS: i64 = 9_999_999_999_999;

/// `apps/`: the parent of every app.
pub const APPS_PREFIX: &str = "apps/";

/// `apps/<app>/envs/`.
#[must_use]
pub fn envs_prefix(app: &crate::id::AppId) -> String {
    format!("{APPS_PREFIX}{app}/envs/")
}

/// `apps/<app>/envs/<env>/`.
#[must_use]
pub fn env_prefix(env: &EnvRef) -> String {
    format!("{APPS_PREFIX}{}/envs/{}/", env.app, env.env)
}

fn ordinal(n: u64) -> String {
    format!("{:010}", MAX_ORDINAL - n.min(MAX_ORDINAL))
}

/// Parses `<ord(n)>-<tag><n>` (the key's file name without its extension).
fn parse_ordinal(name: &str, tag: char) -> Option<u64> {
    let (ord, rest) = name.split_once('-')?;
    let n: u64 = rest.strip_prefix(tag)?.parse().ok()?;
    (ord.len() == 10 && ord == ordinal(n) && n <= MAX_ORDINAL).then_some(n)
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The prefix under which an environment's snapshots are listed, newest first.
#[must_use]
pub fn snapshots_prefix(env: &EnvRef) -> String {
    format!("{}snapshots/", env_prefix(env))
}

/// The key of snapshot `version`.
#[must_use]
pub fn snapshot_key(env: &EnvRef, version: u64) -> String {
    format!(
        "{}{}-v{version}.json.zst",
        snapshots_prefix(env),
        ordinal(version)
    )
}

/// The version a snapshot key holds, if it is one.
#[must_use]
pub fn parse_snapshot_key(key: &str) -> Option<u64> {
    parse_ordinal(file_name(key).strip_suffix(".json.zst")?, 'v')
}

/// The prefix of the listing index, newest first.
#[must_use]
pub fn index_prefix(env: &EnvRef) -> String {
    format!("{}index/", env_prefix(env))
}

/// The longest name an index key's last segment may have: a file name on most file
/// systems, so that the directory store can hold it too.
pub const MAX_INDEX_NAME: usize = 255;

/// The key of the index entry of snapshot `version`, whose name carries `payload` (the
/// snapshot's metadata, base64url); `None` when the name would be longer than
/// [`MAX_INDEX_NAME`].
#[must_use]
pub fn index_key(env: &EnvRef, version: u64, payload: &str) -> Option<String> {
    let name = format!("{}-v{version}.{payload}", ordinal(version));
    (name.len() <= MAX_INDEX_NAME).then(|| format!("{}{name}", index_prefix(env)))
}

/// The `start_after` that lists index entries of versions older than `version` only.
#[must_use]
pub fn index_start_after(env: &EnvRef, version: u64) -> String {
    // `/` sorts right after `.`, so this follows every `<ord(v)>-v<v>.<payload>`.
    format!("{}{}-v{version}/", index_prefix(env), ordinal(version))
}

/// The version and payload an index key holds, if it is one.
#[must_use]
pub fn parse_index_key(key: &str) -> Option<(u64, &str)> {
    let (head, payload) = file_name(key).split_once('.')?;
    Some((parse_ordinal(head, 'v')?, payload))
}

/// The release pointer's key.
#[must_use]
pub fn release_pointer_key(env: &EnvRef) -> String {
    format!("{}release.json", env_prefix(env))
}

/// The key of the summary of the last verify, overwritten by each (see
/// [`crate::verify::LastVerify`]).
#[must_use]
pub fn last_verify_key(env: &EnvRef) -> String {
    format!("{}verify.json", env_prefix(env))
}

/// The prefix of the release history, newest first.
#[must_use]
pub fn releases_prefix(env: &EnvRef) -> String {
    format!("{}releases/", env_prefix(env))
}

/// The key of release number `seq` in the history.
#[must_use]
pub fn release_key(env: &EnvRef, seq: u64) -> String {
    format!("{}{}-r{seq}.json", releases_prefix(env), ordinal(seq))
}

/// The release number a history key holds, if it is one.
#[must_use]
pub fn parse_release_key(key: &str) -> Option<u64> {
    parse_ordinal(file_name(key).strip_suffix(".json")?, 'r')
}

/// The key that reserves a label.
#[must_use]
pub fn label_key(env: &EnvRef, label: &Label) -> String {
    format!("{}labels/{label}.json", env_prefix(env))
}

/// The prefix of pinned versions, newest first.
#[must_use]
pub fn pins_prefix(env: &EnvRef) -> String {
    format!("{}pins/", env_prefix(env))
}

/// The key that pins `version`.
#[must_use]
pub fn pin_key(env: &EnvRef, version: u64) -> String {
    format!("{}{}-v{version}", pins_prefix(env), ordinal(version))
}

/// The version a pin key holds.
#[must_use]
pub fn parse_pin_key(key: &str) -> Option<u64> {
    parse_ordinal(file_name(key), 'v')
}

/// The prefix of audit events, newest first.
#[must_use]
pub fn events_prefix(env: &EnvRef) -> String {
    format!("{}events/", env_prefix(env))
}

/// The key of an event that happened at `at`; `id` makes it unique.
#[must_use]
pub fn event_key(env: &EnvRef, at: DateTime<Utc>, id: &str) -> String {
    let ms = at.timestamp_millis().clamp(0, MAX_MILLIS);
    format!("{}{:013}-{id}.json", events_prefix(env), MAX_MILLIS - ms)
}

/// The prefix of restore-all run records.
pub const RESTORE_ALL_RUNS_PREFIX: &str = "runs/restore-all/";

/// The key of restore-all run `id`'s record.
#[must_use]
pub fn restore_all_run_key(id: &str) -> String {
    format!("{RESTORE_ALL_RUNS_PREFIX}{id}.json")
}

/// The prefix of the scheduler's claims (heartbeats and tick claims).
pub const CLAIMS_PREFIX: &str = "claims/";

/// The prefix of the replicas' heartbeats.
pub const REPLICAS_PREFIX: &str = "claims/replicas/";

/// The key of a heartbeat of `replica` written at `at_ms`, saying that every tick it
/// was due to run before `settled_ms` is done (milliseconds since the Unix epoch).
#[must_use]
pub fn heartbeat_key(replica: &str, at_ms: i64, settled_ms: i64) -> String {
    let c = |ms: i64| ms.clamp(0, MAX_MILLIS);
    format!(
        "{REPLICAS_PREFIX}{replica}/{:013}-{:013}",
        c(at_ms),
        c(settled_ms)
    )
}

/// The replica, time and settled time a heartbeat key holds.
#[must_use]
pub fn parse_heartbeat_key(key: &str) -> Option<(&str, i64, i64)> {
    let (replica, name) = key.strip_prefix(REPLICAS_PREFIX)?.rsplit_once('/')?;
    let (at, settled) = name.split_once('-')?;
    let ok = |s: &str| s.len() == 13 && s.bytes().all(|b| b.is_ascii_digit());
    if replica.is_empty() || replica.contains('/') || !ok(at) || !ok(settled) {
        return None;
    }
    Some((replica, at.parse().ok()?, settled.parse().ok()?))
}

/// The key that claims the tick of `env` scheduled at `tick_ms` (the cron time, before
/// any spread offset, so that every replica names the same tick).
#[must_use]
pub fn tick_claim_key(env: &EnvRef, tick_ms: i64) -> String {
    format!(
        "{CLAIMS_PREFIX}ticks/{}/{}/{:013}",
        env.app,
        env.env,
        tick_ms.clamp(0, MAX_MILLIS)
    )
}

/// The prefix of `env`'s tick claims (and takeovers).
#[must_use]
pub fn tick_claims_prefix(env: &EnvRef) -> String {
    format!("{CLAIMS_PREFIX}ticks/{}/{}/", env.app, env.env)
}

/// The tick time of a tick claim or takeover key under [`tick_claims_prefix`].
#[must_use]
pub fn parse_tick_claim_key(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    let ms = name.strip_suffix(".takeover").unwrap_or(name);
    if ms.len() != 13 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ms.parse().ok()
}

/// The key a replica creates to take over a tick whose claimant died.
#[must_use]
pub fn takeover_key(env: &EnvRef, tick_ms: i64) -> String {
    format!("{}.takeover", tick_claim_key(env, tick_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    #[test]
    fn keys_look_right() {
        assert_eq!(
            snapshot_key(&env(), 41),
            "apps/crm/envs/production/snapshots/9999999958-v41.json.zst"
        );
        assert_eq!(
            release_key(&env(), 3),
            "apps/crm/envs/production/releases/9999999996-r3.json"
        );
        assert_eq!(parse_snapshot_key("x/9999999958-v41.json.zst"), Some(41));
        assert_eq!(parse_snapshot_key("x/9999999958-v42.json.zst"), None);
        assert_eq!(parse_snapshot_key("x/9999999958-v41.json"), None);
        assert_eq!(parse_release_key(&release_key(&env(), 77)), Some(77));
        assert_eq!(parse_pin_key(&pin_key(&env(), 5)), Some(5));
    }

    #[test]
    fn index_keys() {
        let k = index_key(&env(), 41, "AbC-_9").unwrap();
        assert_eq!(k, "apps/crm/envs/production/index/9999999958-v41.AbC-_9");
        assert_eq!(parse_index_key(&k), Some((41, "AbC-_9")));
        assert!(index_key(&env(), 41, &"x".repeat(300)).is_none());
        let after = index_start_after(&env(), 41);
        assert!(after > k && after < index_key(&env(), 40, "A").unwrap());
        assert!(after < index_key(&env(), 4, "A").unwrap());
    }

    #[test]
    fn claim_keys() {
        assert_eq!(
            tick_claim_key(&env(), 1_700_000_000_000),
            "claims/ticks/crm/production/1700000000000"
        );
        assert_eq!(
            takeover_key(&env(), 5),
            "claims/ticks/crm/production/0000000000005.takeover"
        );
        assert!(tick_claim_key(&env(), 5).starts_with(&tick_claims_prefix(&env())));
        assert_eq!(
            parse_tick_claim_key(&tick_claim_key(&env(), 1_700_000_000_000)),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_tick_claim_key(&takeover_key(&env(), 5)), Some(5));
        assert_eq!(parse_tick_claim_key("claims/ticks/crm/production/x"), None);
        let k = heartbeat_key("host-1-ab", 1_700_000_000_123, 1_700_000_000_100);
        assert_eq!(
            parse_heartbeat_key(&k),
            Some(("host-1-ab", 1_700_000_000_123, 1_700_000_000_100))
        );
        assert_eq!(parse_heartbeat_key("claims/replicas/x/12-34"), None);
        assert_eq!(parse_heartbeat_key("claims/ticks/a/b/0000000000005"), None);
    }

    #[test]
    fn newer_events_sort_first() {
        let a = event_key(&env(), DateTime::from_timestamp_millis(1_000).unwrap(), "a");
        let b = event_key(&env(), DateTime::from_timestamp_millis(2_000).unwrap(), "a");
        assert!(b < a);
    }

    proptest::proptest! {
        #[test]
        fn snapshot_keys_round_trip_and_sort_newest_first(a in 0u64..=MAX_ORDINAL, b in 0u64..=MAX_ORDINAL) {
            let (ka, kb) = (snapshot_key(&env(), a), snapshot_key(&env(), b));
            proptest::prop_assert_eq!(parse_snapshot_key(&ka), Some(a));
            proptest::prop_assert_eq!(a > b, ka < kb);
            proptest::prop_assert_eq!(parse_release_key(&release_key(&env(), a)), Some(a));
        }

        #[test]
        fn any_key_parses_to_its_own_encoding_or_nothing(
            key in "(?s).{0,120}|([a-z/]{0,12})[0-9]{9,11}-[vr][0-9+-]{0,12}(\\.json(\\.zst)?|\\.[A-Za-z0-9_-]{0,20})?",
        ) {
            // No panic on any input; whatever parses is exactly what the encoder writes.
            let name = file_name(&key);
            if let Some(v) = parse_snapshot_key(&key) {
                proptest::prop_assert!(v <= MAX_ORDINAL);
                proptest::prop_assert_eq!(name, format!("{}-v{v}.json.zst", ordinal(v)));
            }
            if let Some(n) = parse_release_key(&key) {
                proptest::prop_assert!(n <= MAX_ORDINAL);
                proptest::prop_assert_eq!(name, format!("{}-r{n}.json", ordinal(n)));
            }
            if let Some(v) = parse_pin_key(&key) {
                proptest::prop_assert!(v <= MAX_ORDINAL);
                proptest::prop_assert_eq!(name, format!("{}-v{v}", ordinal(v)));
            }
            if let Some((v, payload)) = parse_index_key(&key) {
                proptest::prop_assert!(v <= MAX_ORDINAL);
                proptest::prop_assert_eq!(name, format!("{}-v{v}.{payload}", ordinal(v)));
            }
        }

        #[test]
        fn every_key_round_trips(
            app in "[a-z0-9][a-z0-9_-]{0,20}", e in "[a-z0-9][a-z0-9_-]{0,20}",
            n in 0u64..=MAX_ORDINAL, payload in "[A-Za-z0-9_-]{0,300}",
        ) {
            let env = EnvRef::parse(&app, &e).unwrap();
            proptest::prop_assert_eq!(parse_snapshot_key(&snapshot_key(&env, n)), Some(n));
            proptest::prop_assert_eq!(parse_release_key(&release_key(&env, n)), Some(n));
            proptest::prop_assert_eq!(parse_pin_key(&pin_key(&env, n)), Some(n));
            match index_key(&env, n, &payload) {
                Some(k) => {
                    proptest::prop_assert_eq!(parse_index_key(&k), Some((n, payload.as_str())));
                    proptest::prop_assert!(k < index_start_after(&env, n));
                }
                None => {
                    let name = format!("{}-v{n}.{payload}", ordinal(n));
                    proptest::prop_assert!(name.len() > MAX_INDEX_NAME);
                }
            }
            // Keys of one kind are never read as another.
            proptest::prop_assert_eq!(parse_release_key(&snapshot_key(&env, n)), None);
            proptest::prop_assert_eq!(parse_snapshot_key(&pin_key(&env, n)), None);
        }
    }
}
