//! The real `jetvault` binary publishing, listing, rolling back and promoting releases
//! against a local directory store (`--store file:///...`); the race of ten `release`
//! processes also on LocalStack (the harness).

use std::process::{Command, Output};

use crate::harness::cli::Jv;
use crate::harness::{self, APPSMITH, GRAFANA, NODERED, corpus};
use crate::harness::{Backend, TestBucket};
use jetvault_core::store::Store as _;
use jetvault_core::{EnvRef, Label, layout};
use serde_json::Value;

/// A local directory store whose commands run as author `ada`.
fn world() -> Jv {
    let mut jv = Jv::new();
    jv.author = "ada".into();
    jv
}

fn backup(cli: &Jv, app: &str, env: &str, file: &str) {
    let path = harness::corpus_path(file);
    cli.ok(&["backup", app, env, "--from", path.to_str().unwrap()]);
}

/// Sequence numbers of the history entries on disk, newest first.
fn history(cli: &Jv, app: &str, env: &str) -> Vec<u64> {
    let dir = cli
        .store_dir()
        .join(format!("apps/{app}/envs/{env}/releases"));
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .iter()
        .map(|n| {
            let (_, r) = n.split_once("-r").unwrap();
            r.strip_suffix(".json").unwrap().parse().unwrap()
        })
        .collect()
}

/// crm/production with v1 (node-red), v2 (appsmith), v3 (grafana).
fn three_snapshots() -> Jv {
    let cli = world();
    for f in [NODERED, APPSMITH, GRAFANA] {
        backup(&cli, "crm", "production", f);
    }
    cli
}

const EXIT_NOT_FOUND: i32 = 3;
const EXIT_CONFLICT: i32 = 4;

#[test]
fn release_prints_label_version_seq_and_etag() {
    let cli = three_snapshots();
    let out = cli
        .ok(&["release", "crm", "production", "2", "--notes", "first"])
        .stdout;
    assert!(
        out.contains("released v2 as 1 (release r1, first release)"),
        "{out}"
    );
    assert!(out.contains("etag \""), "{out}");

    let p = cli.json(&["release", "crm", "production", "latest", "--label", "1.4.0"]);
    assert_eq!(p["release"]["label"], "1.4.0");
    assert_eq!(p["release"]["version"], 3);
    assert_eq!(p["release"]["seq"], 2);
    assert_eq!(p["release"]["kind"], "release");
    assert_eq!(p["release"]["released_by"], "ada");
    assert_eq!(p["release"]["previous"]["seq"], 1);
    assert!(p["etag"].as_str().unwrap().len() > 2);

    let list = cli.json(&["releases", "crm", "production"]);
    let seqs: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 1]);
    assert_eq!(list[1]["notes"], "first");

    let text = cli.ok(&["releases", "crm", "production"]).stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("SEQ") && lines[0].contains("LABEL"),
        "{text}"
    );
    assert!(
        lines[1].starts_with('*') && lines[1].contains("1.4.0"),
        "{text}"
    );
    assert!(
        lines[1].contains("v3") && lines[1].contains("ada"),
        "{text}"
    );
    assert!(lines[2].contains("first"), "{text}");
}

#[test]
fn reused_label_and_missing_version_fail_with_their_codes() {
    let cli = three_snapshots();
    cli.ok(&["release", "crm", "production", "1", "--label", "1.0.0"]);
    cli.ok(&["release", "crm", "production", "2", "--label", "1.1.0"]);
    for label in ["1.0.0", "1.1.0"] {
        let err = cli
            .fails(
                &["release", "crm", "production", "3", "--label", label],
                EXIT_CONFLICT,
            )
            .stderr;
        assert!(err.contains(&format!("label {label} is taken")), "{err}");
    }
    let err = cli
        .fails(&["release", "crm", "production", "7"], EXIT_NOT_FOUND)
        .stderr;
    assert!(err.contains("v7"), "{err}");
    cli.fails(&["release", "crm", "production", "1", "--label", "a/b"], 2);
    assert_eq!(history(&cli, "crm", "production"), vec![2, 1]);
}

#[test]
fn if_match_stale_or_without_a_release_is_a_conflict() {
    let cli = three_snapshots();
    let err = cli
        .fails(
            &["release", "crm", "production", "1", "--if-match", "\"abc\""],
            EXIT_CONFLICT,
        )
        .stderr;
    assert!(err.contains("has no release"), "{err}");

    let first = cli.json(&["release", "crm", "production", "1"]);
    let etag1 = first["etag"].as_str().unwrap().to_string();
    let second = cli.json(&["release", "crm", "production", "2", "--if-match", &etag1]);
    let etag2 = second["etag"].as_str().unwrap().to_string();
    let err = cli
        .fails(
            &["release", "crm", "production", "3", "--if-match", &etag1],
            EXIT_CONFLICT,
        )
        .stderr;
    assert!(err.contains(&etag2), "names the current etag: {err}");
    // Without the quotes, as a shell would pass it.
    cli.ok(&[
        "release",
        "crm",
        "production",
        "3",
        "--if-match",
        etag2.trim_matches('"'),
    ]);
    assert_eq!(history(&cli, "crm", "production"), vec![3, 2, 1]);
}

#[test]
fn rollback_twice_then_nothing_before() {
    let cli = three_snapshots();
    let err = cli
        .fails(&["rollback", "crm", "production"], EXIT_NOT_FOUND)
        .stderr;
    assert!(err.contains("has no release"), "{err}");
    for v in ["1", "2", "3"] {
        cli.ok(&["release", "crm", "production", v]);
    }
    let out = cli.ok(&["rollback", "crm", "production"]).stdout;
    assert!(out.contains("rolled back to v2 as 4 (release r4"), "{out}");
    let p = cli.json(&["rollback", "crm", "production", "--notes", "bad deploy"]);
    assert_eq!(p["release"]["version"], 1);
    assert_eq!(p["release"]["kind"], "rollback");
    assert_eq!(p["release"]["notes"], "bad deploy");
    let err = cli
        .fails(&["rollback", "crm", "production"], EXIT_NOT_FOUND)
        .stderr;
    assert!(err.contains("no release before"), "{err}");
    let raw = cli.ok(&["cat", "crm", "production", "release"]).stdout;
    assert_eq!(raw.as_bytes(), corpus(NODERED));
    assert_eq!(history(&cli, "crm", "production"), vec![5, 4, 3, 2, 1]);
}

#[test]
fn cat_show_and_diff_take_release() {
    let cli = three_snapshots();
    let err = cli
        .fails(&["cat", "crm", "production", "release"], EXIT_NOT_FOUND)
        .stderr;
    assert!(err.contains("crm/production has no release"), "{err}");
    cli.ok(&["release", "crm", "production", "2"]);
    let raw = cli.ok(&["cat", "crm", "production", "release"]).stdout;
    assert_eq!(raw.as_bytes(), corpus(APPSMITH));
    let meta = cli.json(&["show", "crm", "production", "release"]);
    assert_eq!(meta["version"], 2);
    let diff = cli
        .ok(&["diff", "crm", "production", "release", "latest"])
        .stdout;
    assert!(diff.contains("--- crm/production v2"), "{diff}");
}

#[test]
fn promote_without_and_with_release() {
    let cli = world();
    backup(&cli, "crm", "staging", NODERED);
    backup(&cli, "crm", "staging", GRAFANA);
    cli.ok(&["release", "crm", "staging", "1"]);

    // Default: the source's release (v1), not its latest.
    let out = cli.ok(&["promote", "crm", "staging", "production"]).stdout;
    assert!(
        out.contains("crm/production: snapshot v1 written, a copy of crm/staging v1"),
        "{out}"
    );
    let meta = cli.json(&["show", "crm", "production", "1"]);
    assert_eq!(meta["trigger"], "promote");
    assert_eq!(meta["source"], "promote:crm/staging@v1");
    cli.fails(&["cat", "crm", "production", "release"], EXIT_NOT_FOUND);

    let out = cli.json(&[
        "promote",
        "crm",
        "staging",
        "production",
        "--version",
        "latest",
        "--release",
        "--label",
        "2.0.0",
    ]);
    assert_eq!(out["source"]["version"], 2);
    assert_eq!(out["snapshot"]["outcome"], "created");
    assert_eq!(out["snapshot"]["version"], 2);
    assert_eq!(out["release"]["release"]["label"], "2.0.0");
    assert_eq!(out["release"]["release"]["kind"], "promote");
    let raw = cli.ok(&["cat", "crm", "production", "release"]).stdout;
    assert_eq!(raw.as_bytes(), corpus(GRAFANA));

    // The label is checked before the copy.
    cli.fails(
        &[
            "promote",
            "crm",
            "staging",
            "production",
            "--version",
            "1",
            "--release",
            "--label",
            "2.0.0",
        ],
        EXIT_CONFLICT,
    );
    let list = cli.json(&["list", "crm", "production"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn history_is_whole_after_a_crash_between_pointer_and_history() {
    let cli = three_snapshots();
    cli.ok(&["release", "crm", "production", "1"]);
    cli.ok(&["release", "crm", "production", "2", "--label", "2.0"]);
    // The crash: r2's history entry and label key never written.
    let env_dir = cli.store_dir().join("apps/crm/envs/production");
    std::fs::remove_file(env_dir.join("releases/9999999997-r2.json")).unwrap();
    std::fs::remove_file(env_dir.join("labels/2.0.json")).unwrap();
    let list = cli.json(&["releases", "crm", "production"]);
    assert_eq!(list[0]["seq"], 2);
    assert_eq!(list[0]["label"], "2.0");
    cli.fails(
        &["release", "crm", "production", "3", "--label", "2.0"],
        EXIT_CONFLICT,
    );
    cli.ok(&["release", "crm", "production", "3"]);
    assert_eq!(history(&cli, "crm", "production"), vec![3, 2, 1]);
    assert!(env_dir.join("labels/2.0.json").is_file());
}

/// Starts ten `jetvault --json release crm production 2 --label race-I --if-match ETAG`
/// processes at once (`command` builds one with its store set); checks that one exits 0
/// and nine exit with the conflict code; returns the winner's output.
fn ten_racers(command: &dyn Fn(&[&str]) -> Command, etag: &str) -> Value {
    let children: Vec<_> = (0..10)
        .map(|i| {
            let label = format!("race-{i}");
            command(&[
                "--json",
                "release",
                "crm",
                "production",
                "2",
                "--label",
                &label,
                "--if-match",
                etag,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: exit codes {codes:?}");
    for o in &outputs {
        if !o.status.success() {
            assert_eq!(
                o.status.code(),
                Some(EXIT_CONFLICT),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    serde_json::from_slice(&winners[0].stdout).unwrap()
}

/// Ten `jetvault release` processes with the same `--if-match`: one exits 0, nine exit
/// with the conflict code, and the history holds exactly the winner.
#[test]
fn ten_processes_with_the_same_if_match_have_one_winner() {
    let cli = three_snapshots();
    let first = cli.json(&["release", "crm", "production", "1"]);
    let etag = first["etag"].as_str().unwrap().to_string();
    let won = ten_racers(&|args| cli.command(args), &etag);
    let label = won["release"]["label"].as_str().unwrap().to_string();
    assert_eq!(history(&cli, "crm", "production"), vec![2, 1]);
    let list = cli.json(&["releases", "crm", "production"]);
    assert_eq!(list[0], won["release"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let labels: Vec<String> =
        std::fs::read_dir(cli.store_dir().join("apps/crm/envs/production/labels"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    let mut labels = labels;
    labels.sort();
    assert_eq!(labels, vec!["1.json".to_string(), format!("{label}.json")]);
}

/// The same race on LocalStack: ten processes, one bucket, one winner; `releases --json`,
/// the history objects and the label objects hold exactly the first release and it.
#[test]
fn ten_processes_with_the_same_if_match_have_one_winner_localstack() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(Backend::LocalStack, "cli-race")) else {
        return;
    };
    let jv = Jv::with_store(bucket.spec("jetvault"));
    for f in [NODERED, APPSMITH] {
        backup(&jv, "crm", "production", f);
    }
    let first = jv.json(&["release", "crm", "production", "1"]);
    let etag = first["etag"].as_str().unwrap().to_string();

    let won = ten_racers(&|args| jv.command(args), &etag);
    assert_eq!(won["release"]["seq"], 2);
    assert_eq!(won["release"]["version"], 2);
    assert_eq!(won["release"]["previous"]["seq"], 1);
    let label = won["release"]["label"].as_str().unwrap().to_string();

    let list = jv.json(&["releases", "crm", "production"]);
    assert_eq!(
        list,
        Value::Array(vec![won["release"].clone(), first["release"].clone()]),
        "the history holds exactly the first release and the winner"
    );
    let pointer = jv.json(&["show", "crm", "production", "release"]);
    assert_eq!(pointer["version"], 2);

    let store = rt.block_on(bucket.store("jetvault"));
    let keys = |prefix: &str| -> Vec<String> {
        let mut keys: Vec<String> = rt
            .block_on(store.list(prefix, None, 1000))
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    };
    let env = EnvRef::parse("crm", "production").unwrap();
    assert_eq!(
        keys(&layout::releases_prefix(&env)),
        [layout::release_key(&env, 2), layout::release_key(&env, 1)]
    );
    let label_key = |l: &str| layout::label_key(&env, &Label::new(l).unwrap());
    let mut labels = vec![label_key("1"), label_key(&label)];
    labels.sort();
    assert_eq!(
        keys(&format!("{}labels/", layout::env_prefix(&env))),
        labels
    );
}
