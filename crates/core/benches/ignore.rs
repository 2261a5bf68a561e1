//! What plain ignore paths cost a backup of the 1.32 MB export, beside what every backup
//! computes: the JSON check, the sha256, zstd at level 3, and the sha256 of the document
//! without four ignore paths (`EnvFilters::ignoring_sha256`: one parse, then the walk).
//!
//! `cargo bench -p jetvault-core --bench ignore [-- ROUNDS]` (default 101 rounds);
//! medians, each measure in turn within a round.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jetvault_core::codec;
use jetvault_core::config::FilterConfig;
use jetvault_core::filter::EnvFilters;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(101);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/appsmith-ce-automation-test.json"
    );
    let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    // The paths of bench/filters.sh.
    let config = FilterConfig {
        ignore: [
            ".modifiedResources",
            ".exportedApplication.lastDeployedAt",
            ".actionList[].gitSyncId",
            ".pageList[].gitSyncId",
        ]
        .map(String::from)
        .to_vec(),
        ..FilterConfig::default()
    };
    let filters = EnvFilters::compile("bench", &config).expect("the paths compile");
    assert!(filters.digests_parsed(), "the paths are plain");
    type Measure<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let measures: Vec<Measure<'_>> = vec![
        (
            "JSON check",
            Box::new(|| codec::check_json(black_box(&raw), "bench").unwrap()),
        ),
        (
            "sha256",
            Box::new(|| {
                black_box(codec::sha256_hex(black_box(&raw)));
            }),
        ),
        (
            "zstd-3",
            Box::new(|| {
                black_box(codec::compress(black_box(&raw), 3).unwrap());
            }),
        ),
        (
            "hash without 4 ignore paths",
            Box::new(|| {
                black_box(filters.ignoring_sha256(black_box(&raw)).unwrap().unwrap());
            }),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); measures.len()];
    for round in 0..rounds + 5 {
        for (i, (_, f)) in measures.iter().enumerate() {
            let t = Instant::now();
            f();
            if round >= 5 {
                times[i].push(t.elapsed());
            }
        }
    }
    println!("{} bytes, {rounds} rounds, medians", raw.len());
    println!("| computation | median |\n|---|---:|");
    for ((name, _), mut t) in measures.iter().zip(times) {
        t.sort_unstable();
        println!("| {name} | {:.3} ms |", t[t.len() / 2].as_secs_f64() * 1e3);
    }
}
