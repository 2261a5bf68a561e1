//! What plain ignore paths cost a backup of the 1.32 MB export, beside what every backup
//! computes: the JSON check, the sha256, zstd at level 3, and the sha256 of the document
//! without four ignore paths (`EnvFilters::ignoring_sha256`: one parse, then the walk).
//!
//! `cargo bench -p jetvault-core --bench ignore [-- ROUNDS [NAME]]` (default 101 rounds;
//! NAME keeps the measures whose names contain it);
//! medians, each measure in turn within a round.

use std::hint::black_box;

use jetvault_core::codec;
use jetvault_core::config::FilterConfig;
use jetvault_core::filter::EnvFilters;
use rounds::Measure;

mod rounds;

fn main() {
    let (rounds, only) = rounds::args(101);
    let raw = rounds::export();
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
    rounds::run(
        &format!("{} bytes", raw.len()),
        rounds,
        only.as_deref(),
        measures,
    );
}
