//! Benchmark: browsing a long history. Seeds an environment with 10,000 versions, one with
//! a single version (both as `backup` writes them: snapshot and listing index entry) and
//! one with 100 snapshots and no index entries, then measures how many store requests
//! `latest` costs in each (it must not grow with the history) and how long the first
//! page of 50 takes.
//!
//! `cargo bench --bench history` runs it on a local directory store; set
//! `JETVAULT_BENCH_STORE=s3://bucket` (with `AWS_ENDPOINT_URL`, path style via
//! `JETVAULT_BENCH_PATH_STYLE=1`) to run it against S3 / LocalStack. Prints a Markdown
//! report. `bench/run-history.sh` runs it against a LocalStack it starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use futures::StreamExt;
use jetvault_core::config::S3Options;
use jetvault_core::store::{self, CountingStore, OpenOptions, PutMode, Store};
use jetvault_core::{EnvRef, Vault, VaultOptions, index, layout, testutil};

const VERSIONS: u64 = 10_000;
/// Snapshots written without index entries (as by an older layout): enough for a page.
const OLD_LAYOUT_VERSIONS: u64 = 100;
const RUNS: usize = 21;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn seed(store: &dyn Store, env: &EnvRef, versions: u64, with_index: bool) {
    let base: serde_json::Value =
        serde_json::from_slice(&testutil::corpus("nodered-http-endpoint-example.json")).unwrap();
    let started = Instant::now();
    futures::stream::iter(1..=versions)
        .map(|v| {
            let mut doc = base.clone();
            doc.as_array_mut()
                .unwrap()
                .push(serde_json::json!({"benchVersion": v}));
            async move {
                let raw = serde_json::to_vec(&doc).unwrap();
                let meta =
                    testutil::put_snapshot(store, env, v, &raw, Utc::now().trunc_subsecs(3)).await;
                // What `backup` writes beside each snapshot (see src/index.rs).
                if with_index {
                    let payload = index::encode(&meta).unwrap();
                    let key = layout::index_key(env, v, &payload).unwrap();
                    store
                        .put(&key, Bytes::new(), &Default::default(), PutMode::Create)
                        .await
                        .unwrap();
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "seeded {versions} versions of {env} in {:.1?}",
        started.elapsed()
    );
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let url = std::env::var("JETVAULT_BENCH_STORE")
        .unwrap_or_else(|_| format!("file://{}", tmp.path().display()));
    let options = OpenOptions {
        s3: S3Options {
            force_path_style: std::env::var("JETVAULT_BENCH_PATH_STYLE").is_ok(),
            ..S3Options::default()
        },
    };
    let inner = store::open(&url, &options).await.unwrap();
    let counting = CountingStore::new(inner);
    let vault = Vault::new(Arc::new(counting.clone()), VaultOptions::default());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let long = EnvRef::parse(&format!("bench{}", &run[..8]), "long").unwrap();
    let short = EnvRef::parse(&format!("bench{}", &run[..8]), "short").unwrap();
    let old = EnvRef::parse(&format!("bench{}", &run[..8]), "no-index").unwrap();
    seed(&counting, &long, VERSIONS, true).await;
    seed(&counting, &short, 1, true).await;
    seed(&counting, &old, OLD_LAYOUT_VERSIONS, false).await;

    let mut rows = Vec::new();
    for (env, n, what) in [
        (&short, 1u64, "with the listing index"),
        (&long, VERSIONS, "with the listing index"),
        (
            &old,
            OLD_LAYOUT_VERSIONS,
            "without it (a HEAD per snapshot)",
        ),
    ] {
        let before = counting.counts().total();
        let latest = vault.latest(env).await.unwrap().unwrap();
        let requests = counting.counts().total() - before;
        assert_eq!(latest.version, n);
        let mut latest_t = Vec::new();
        let mut page_t = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            vault.latest(env).await.unwrap();
            latest_t.push(t.elapsed());
            let t = Instant::now();
            let page = vault.list(env, None, 50).await.unwrap();
            page_t.push(t.elapsed());
            assert_eq!(page.len() as u64, n.min(50));
            assert_eq!(page[0].version, n);
        }
        let before = counting.counts().total();
        vault.list(env, None, 50).await.unwrap();
        let page_requests = counting.counts().total() - before;
        rows.push((
            n,
            what,
            requests,
            median(latest_t),
            median(page_t),
            page_requests,
        ));
    }
    println!("store: {}", counting.describe());
    println!();
    println!(
        "| versions in env | listing index | requests for latest | latest (median of {RUNS}) | \
         first page of 50 (median of {RUNS}) | requests for the page |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for (n, what, req, lt, pt, preq) in rows {
        println!(
            "| {n} | {what} | {req} | {:.1} ms | {:.1} ms | {preq} |",
            lt.as_secs_f64() * 1e3,
            pt.as_secs_f64() * 1e3
        );
    }
}
