//! Snapshot tests (insta) of what people read: the CLI's output and its error texts.
//! Times, hosts and temporary paths are replaced by placeholders before comparing.

use crate::harness::cli::Jv;
use crate::harness::{NODERED, corpus};

macro_rules! snap {
    ($jv:expr, $name:expr, $text:expr) => {{
        let tmp = regex_escape(&$jv.dir.path().display().to_string());
        insta::with_settings!({
            filters => vec![
                (tmp.as_str(), "[TMP]"),
                (r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "[TIME]"),
            ],
        }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn backup_list_show_diff() {
    let jv = Jv::new();
    let a = jv.file("a.json", &corpus(NODERED));
    let mut edited: serde_json::Value = serde_json::from_slice(&corpus(NODERED)).unwrap();
    edited[0]["label"] = "Renamed flow".into();
    edited
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "new-node", "type": "debug"}));
    let b = jv.file(
        "b.json",
        serde_json::to_string_pretty(&edited).unwrap().as_bytes(),
    );
    snap!(
        jv,
        "backup_first",
        jv.text(&["backup", "crm", "production", "--from", &a, "-m", "first"])
    );
    snap!(
        jv,
        "backup_unchanged",
        jv.text(&["backup", "crm", "production", "--from", &a])
    );
    snap!(
        jv,
        "backup_second",
        jv.text(&[
            "backup",
            "crm",
            "production",
            "--from",
            &b,
            "-m",
            "renamed ✓"
        ])
    );
    snap!(jv, "list", jv.text(&["list", "crm", "production"]));
    snap!(jv, "show", jv.text(&["show", "crm", "production", "1"]));
    snap!(
        jv,
        "diff",
        jv.text(&["diff", "crm", "production", "1", "2", "--width", "60"])
    );
}

#[test]
fn error_texts() {
    let jv = Jv::new();
    let a = jv.file("a.json", &corpus(NODERED));
    let bad = jv.file("bad.json", b"{\"pages\": [1, 2,\n");
    jv.run(&["backup", "crm", "production", "--from", &a]);
    snap!(
        jv,
        "err_invalid_app",
        jv.text(&["backup", "../x", "production", "--from", &a])
    );
    snap!(
        jv,
        "err_not_json",
        jv.text(&["backup", "crm", "production", "--from", &bad])
    );
    snap!(
        jv,
        "err_missing_version",
        jv.text(&["cat", "crm", "production", "7"])
    );
    snap!(
        jv,
        "err_no_snapshots",
        jv.text(&["show", "crm", "staging", "latest"])
    );
    snap!(
        jv,
        "err_no_release",
        jv.text(&["cat", "crm", "production", "release"])
    );
    snap!(
        jv,
        "err_bad_selector",
        jv.text(&["show", "crm", "production", "newest"])
    );
    let cfg = jv.file(
        "c.toml",
        b"[server]\nlisten = \"127.0.0.1:1\"\npointer_tll = \"2s\"\n",
    );
    snap!(
        jv,
        "err_unknown_config_key",
        jv.text(&["config", "check", &cfg])
    );
    snap!(
        jv,
        "err_no_live_target",
        jv.text(&["backup", "crm", "production"])
    );
}
