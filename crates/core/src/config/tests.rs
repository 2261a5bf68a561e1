//! Tests of loading and checking the configuration.

use super::*;

#[test]
fn parses_a_full_config() {
    let c = Config::parse(
        r#"
store = "s3://bucket/prefix"
[s3]
endpoint = "http://127.0.0.1:4566"
force_path_style = true
sse = "aws:kms"
sse_kms_key_id = "k"
[snapshots]
compression_level = 5
max_size = "8MiB"
[server]
listen = "0.0.0.0:9000"
pointer_ttl = "2s"
[[server.tokens]]
name = "ci"
role = "operate"
value = "s3cret"
[apps.crm.envs.production]
schedule = "0 */15 * * * *"
live = { kind = "http", url = "https://x/export", bearer_token_env = "TOK", timeout = "10s" }
retention = { keep_last = 10, keep_daily = 7, keep_within = "2days" }
[apps.crm.envs.staging.live]
kind = "file"
path = "/tmp/staging.json"
"#,
    )
    .unwrap();
    assert_eq!(c.snapshots.max_size, ByteSize(8 * 1024 * 1024));
    assert_eq!(c.server.pointer_ttl, Duration::from_secs(2));
    assert_eq!(c.envs().count(), 2);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret"), "secrets must be redacted: {dbg}");
}

#[test]
fn unknown_keys_are_named() {
    for (text, key) in [
        ("stor = \"x\"", "stor"),
        ("[server]\nlisten_addr = \"x\"", "listen_addr"),
        (
            "[apps.crm.envs.p.live]\nkind = \"file\"\npath = \"/x\"\nmode = 1",
            "mode",
        ),
        ("[apps.crm.envs.p]\nretention = { keep = 1 }", "keep"),
    ] {
        let e = Config::parse(text).unwrap_err();
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
}

#[test]
fn bad_values_are_refused() {
    for text in [
        "[apps.\"Bad App\".envs.p]",
        "[snapshots]\ncompression_level = 30",
        "[apps.crm.envs.p]\nschedule = \"every day\"",
        "[apps.crm.envs.p]\nschedule = \"0 0 99 * * *\"",
        "store = \"ftp://x\"",
        "[[server.tokens]]\nname = \"a\"\nrole = \"read\"",
        "[[server.tokens]]\nname = \"a\"\nrole = \"admin\"\nvalue = \"x\"",
    ] {
        assert!(Config::parse(text).is_err(), "{text}");
    }
}

#[test]
fn relative_paths_follow_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[apps.crm.envs.p.live]\nkind = \"file\"\npath = \"live/p.json\"\n\
         [apps.crm.envs.q.live]\nkind = \"file\"\npath = \"/abs/q.json\"\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let paths: Vec<_> = c
        .envs()
        .map(|(_, e)| match &e.live {
            Some(LiveConfig::File { path }) => path.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        paths,
        vec![dir.path().join("live/p.json"), PathBuf::from("/abs/q.json")]
    );
    let e = Config::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn byte_sizes() {
    assert_eq!("64MiB".parse::<ByteSize>().unwrap(), ByteSize(64 << 20));
    assert_eq!("10 KB".parse::<ByteSize>().unwrap(), ByteSize(10_000));
    assert_eq!("5".parse::<ByteSize>().unwrap(), ByteSize(5));
    assert!("5XB".parse::<ByteSize>().is_err());
    assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
}

fn layered(text: &str, vars: &[(&str, &str)], flags: serde_json::Value) -> Result<Config> {
    let vars = vars
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()));
    let mut layers = layers::Layers::new().toml(None, text.to_string())?;
    layers = layers
        .env(layers::EnvVars::from(vars))
        .overrides("command line", &flags);
    let config = layers.config()?;
    config.validate()?;
    Ok(config)
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let file = "store = \"s3://from-file\"\n[server]\nlisten = \"127.0.0.1:1\"\n[s3]\nregion = \"eu-west-1\"";
    let c = layered(file, &[], serde_json::json!({})).unwrap();
    assert_eq!(c.store.as_deref(), Some("s3://from-file"));
    let env = [
        ("JETVAULT_STORE", "s3://from-env"),
        ("JETVAULT_SERVER__LISTEN", "127.0.0.1:2"),
        ("JETVAULT_S3__FORCE_PATH_STYLE", "true"),
        ("JETVAULT_SNAPSHOTS__MAX_SIZE", "8MiB"),
        ("JETVAULT_CONFIG", "/not/a/setting.toml"),
        ("JETVAULT_TEST_LOCALSTACK", "http://127.0.0.1:4566"),
    ];
    let c = layered(file, &env, serde_json::json!({})).unwrap();
    assert_eq!(c.store.as_deref(), Some("s3://from-env"));
    assert_eq!(c.server.listen, "127.0.0.1:2");
    assert!(c.s3.force_path_style);
    assert_eq!(
        c.s3.region.as_deref(),
        Some("eu-west-1"),
        "merged, not replaced"
    );
    assert_eq!(c.snapshots.max_size, ByteSize(8 << 20));
    let flags = serde_json::json!({"store": "s3://from-flag", "server": {"listen": "127.0.0.1:3"}});
    let c = layered(file, &env, flags).unwrap();
    assert_eq!(c.store.as_deref(), Some("s3://from-flag"));
    assert_eq!(c.server.listen, "127.0.0.1:3");
}

#[test]
fn older_variable_names_still_work() {
    let env = [
        ("JETVAULT_S3_ENDPOINT", "http://127.0.0.1:4566"),
        ("JETVAULT_S3_PATH_STYLE", "true"),
        ("JETVAULT_LISTEN", "127.0.0.1:0"),
    ];
    let c = layered("", &env, serde_json::json!({})).unwrap();
    assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    assert!(c.s3.force_path_style);
    assert_eq!(c.server.listen, "127.0.0.1:0");
}

#[test]
fn errors_name_the_key_and_the_layer_but_not_the_value() {
    let e = layered(
        "",
        &[("JETVAULT_SERVER__LISTN", "x")],
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("environment variable JETVAULT_SERVER__LISTN"),
        "{e}"
    );
    assert!(e.to_string().contains("unknown key `server.listn`"), "{e}");
    let e = layered(
        "[server]\nlisten = \"x\"\npointer_tll = \"2s\"",
        &[],
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config, line 3: unknown key `server.pointer_tll`"),
        "{e}"
    );
    let e = layered(
        "[[server.tokens]]\nname = \"a\"\nrole = \"read\"\nvalue = [\"s3cret\"]",
        &[],
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    let e = Config::parse("[[server.tokens]]\nname = \"a\"\nvalue = \"s3cret").unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[test]
fn secret_files_are_trimmed_at_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "\n\n  TOK \r\n").unwrap();
    assert_eq!(read_secret_file(&path).unwrap().expose(), "TOK");
    std::fs::write(&path, " \n\t\n").unwrap();
    let e = read_secret_file(&path).unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");
}

#[test]
fn readable_secret_files_get_a_warning_without_their_content() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("server-token");
    let live = dir.path().join("live-token");
    std::fs::write(&server, "SERVER-S3CRET\n").unwrap();
    std::fs::write(&live, "LIVE-S3CRET\n").unwrap();
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(&server, 0o600).unwrap();
    mode(&live, 0o644).unwrap();
    let mut c = Config::parse(&format!(
        "[[server.tokens]]\nname = \"ci\"\nrole = \"operate\"\nvalue_file = {:?}\n\
         [apps.crm.envs.p.live]\nkind = \"http\"\nurl = \"http://x/\"\nbearer_token_file = {:?}\n\
         [apps.crm.envs.q.live]\nkind = \"http\"\nurl = \"http://y/\"\nbearer_token_file = {:?}\n",
        server, live, live
    ))
    .unwrap();
    assert_eq!(c.secret_files().len(), 2, "each file once");
    let w = c.secret_file_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(&live.display().to_string()), "{w:?}");
    assert!(w[0].contains("anyone"), "{w:?}");
    assert!(w[0].contains("chmod 600"), "{w:?}");
    assert!(!w[0].contains("S3CRET"), "{w:?}");
    // Created by this process, the file's group is this process's: the service's own.
    mode(&live, 0o640).unwrap();
    mode(&server, 0o604).unwrap();
    let w = c.secret_file_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(&server.display().to_string()), "{w:?}");
    mode(&live, 0o400).unwrap();
    mode(&server, 0o600).unwrap();
    assert!(c.secret_file_warnings().is_empty());
    c.server.tokens.clear();
    assert_eq!(c.secret_files(), vec![live.as_path()]);
}

fn near(
    valid: &'static str,
    any: &'static str,
) -> impl proptest::strategy::Strategy<Value = String> {
    prop_oneof![4 => valid, 1 => any]
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

use proptest::prop_oneof;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any text is a config or a `Config` error, never a panic.
    #[test]
    fn any_text_is_a_config_or_an_error(text in "(?s).{0,300}|([a-z_.\\[\\]\" =0-9\n]{0,200})") {
        let _ = Config::parse(&text);
    }

    /// Configs built from valid keys, each value usually valid and sometimes arbitrary:
    /// checked, never a panic.
    #[test]
    fn any_values_are_checked_without_panic(
        store in near("(s3://[a-z]{3,8}(/[a-z]{0,5})?|file:///[a-z/]{1,10})", "(?s).{0,20}|(s3|file|ftp)://[a-z/]{0,10}"),
        level in prop_oneof![4 => 1i64..=19, 1 => proptest::num::i64::ANY],
        max_size in near("[1-9][0-9]{0,3} ?(KiB|MiB|KB|B)", "(?s).{0,12}|[0-9]{1,22} ?[KMG]i?B"),
        ttl in near("[1-9][0-9]{0,3}(s|ms|h)", "(?s).{0,12}|[0-9]{1,22} ?(s|ms|days|h)"),
        app in near("[a-z0-9][a-z0-9_-]{0,8}", "(?s).{0,12}|[a-z0-9][a-z0-9._-]{0,8}"),
        env in near("[a-z0-9][a-z0-9_-]{0,8}", "(?s).{0,12}|[a-z0-9][a-z0-9._-]{0,8}"),
        schedule in near("0 \\*/[1-5][0-9]? \\* \\* \\* \\*", "(?s).{0,20}|([0-9*/,-]{1,6} ){5,7}"),
        keep in prop_oneof![4 => 0i64..100, 1 => proptest::num::i64::ANY],
        url in near("https://[a-z]{1,8}\\.example/[a-z]{0,8}", "(?s).{0,20}|https?://[a-z./:0-9]{0,20}"),
        role in near("read|operate", "(?s).{0,8}"),
    ) {
        let text = format!(
            "store = {}\n[snapshots]\ncompression_level = {level}\nmax_size = {}\n\
             [server]\npointer_ttl = {}\n[[server.tokens]]\nname = \"t\"\nrole = {}\nvalue = \"v\"\n\
             [apps.{}.envs.{}]\nschedule = {}\nretention = {{ keep_last = {keep} }}\n\
             live = {{ kind = \"http\", url = {} }}\n",
            toml_str(&store), toml_str(&max_size), toml_str(&ttl), toml_str(&role),
            toml_str(&app), toml_str(&env), toml_str(&schedule), toml_str(&url),
        );
        if let Ok(c) = Config::parse(&text) {
            proptest::prop_assert!((1..=19).contains(&c.snapshots.compression_level));
            proptest::prop_assert!(check_cron(&schedule).is_ok());
            proptest::prop_assert_eq!(c.envs().count(), 1);
        }
    }

    #[test]
    fn any_cron_text_is_checked_without_panic(expr in "(?s).{0,40}|([0-9*/,?LW#A-Za-z-]{1,8} ){5,7}") {
        let _ = check_cron(&expr);
    }
}

/// An app with one environment keeps a B-tree leaf of eleven slots: with the
/// environment boxed that is a few hundred bytes; with an `EnvConfig` inline it was
/// about 5 KB per app (50 MB of a 10,000-environment config).
#[test]
fn an_environment_keeps_a_small_slot_in_its_app() {
    fn slot<V>(_: &BTreeMap<crate::id::EnvId, V>) -> usize {
        std::mem::size_of::<(crate::id::EnvId, V)>()
    }
    let app = AppConfig::default();
    assert!(
        11 * slot(&app.envs) <= 512,
        "a B-tree leaf of environments is {} bytes",
        11 * slot(&app.envs)
    );
}

/// The file's apps are read outside figment; errors in them still name the key, the
/// file's line and the layer, and a variable that sets an app's key still merges with
/// the file's.
#[test]
fn apps_read_apart_keep_their_errors_and_merge_with_variables() {
    let e = Config::parse("store = \"s3://b\"\n[apps.crm.envs.p]\nretention = { keep = 1 }")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config, line 3: unknown key `apps.crm.envs.p.retention.keep`"),
        "{e}"
    );
    let e = Config::parse("[apps.crm.envs.p]\nschedule = 5")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("apps.crm.envs.p.schedule: found an integer, expected"),
        "{e}"
    );
    assert!(Config::parse("apps = 5").is_err());
    let file = "[apps.crm.envs.p]\nlive = { kind = \"file\", path = \"/x\" }\n\
                [apps.shop.envs.q]\nschedule = \"0 0 * * * *\"";
    let c = layered(
        file,
        &[("JETVAULT_APPS__CRM__ENVS__P__SCHEDULE", "0 */5 * * * *")],
        serde_json::json!({}),
    )
    .unwrap();
    let p = c.env(&EnvRef::parse("crm", "p").unwrap()).unwrap();
    assert_eq!(p.schedule.as_deref(), Some("0 */5 * * * *"));
    assert!(p.live.is_some(), "the file's keys of the app stay");
    let q = c.env(&EnvRef::parse("shop", "q").unwrap()).unwrap();
    assert_eq!(q.schedule.as_deref(), Some("0 0 * * * *"));
    let plain = layered(file, &[], serde_json::json!({})).unwrap();
    assert_eq!(plain.envs().count(), 2);
}
