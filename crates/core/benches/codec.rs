//! The cost of the JSON check on backup's path: the check before (serde's `IgnoredAny`,
//! which skipped strings undecoded and had no depth limit) and after (`check_json`), alone
//! and followed by what a backup does next (sha256, then zstd at level 3).
//!
//! `cargo bench -p jetvault-core --bench codec [-- ROUNDS [FILE...]]`
//! (default: 301 rounds of `tests/data/appsmith-ce-automation-test.json`).
//!
//! The old and the new run side by side in one process, alternating which goes first in
//! each round, so drift in this shared machine's speed falls on both; the figures are
//! medians over the rounds and the ratio of the medians.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jetvault_core::codec;

/// The check as it was up to this change.
fn old_check(raw: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_ok()
}

fn new_check(raw: &[u8]) -> bool {
    codec::check_json(raw, "bench").is_ok()
}

/// What `Vault::backup` computes before it writes: the check, the sha256, the zstd frame.
fn backup_with(check: fn(&[u8]) -> bool, raw: &[u8]) -> usize {
    assert!(check(raw));
    let sha = codec::sha256_hex(raw);
    codec::compress(raw, 3).unwrap().len() + sha.len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(301);
    let mut files: Vec<String> = args.iter().skip(1).cloned().collect();
    if files.is_empty() {
        files.push(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/data/appsmith-ce-automation-test.json"
            )
            .into(),
        );
    }
    println!("{rounds} rounds, old and new alternating; medians");
    println!(
        "| file | size | check before | check after | ratio | backup before (check+sha256+zstd-3) | backup after | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for file in &files {
        let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(old_check(&raw) && new_check(&raw), "{file} must pass both");
        let (mut co, mut cn, mut bo, mut bn) = (vec![], vec![], vec![], vec![]);
        for _ in 0..5 {
            black_box(backup_with(old_check, &raw));
            black_box(backup_with(new_check, &raw));
        }
        for round in 0..rounds {
            let old = || old_check(black_box(&raw));
            let new = || new_check(black_box(&raw));
            let bold = || backup_with(old_check, black_box(&raw));
            let bnew = || backup_with(new_check, black_box(&raw));
            if round % 2 == 0 {
                co.push(time(old));
                cn.push(time(new));
                bo.push(time(bold));
                bn.push(time(bnew));
            } else {
                bn.push(time(bnew));
                bo.push(time(bold));
                cn.push(time(new));
                co.push(time(old));
            }
        }
        let (co, cn, bo, bn) = (median(co), median(cn), median(bo), median(bn));
        let name = std::path::Path::new(file)
            .file_name()
            .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        println!(
            "| {name} | {:.2} MB | {} | {} | {:.2}x | {} | {} | {:.2}x |",
            raw.len() as f64 / 1e6,
            ms(co),
            ms(cn),
            cn.as_secs_f64() / co.as_secs_f64(),
            ms(bo),
            ms(bn),
            bn.as_secs_f64() / bo.as_secs_f64(),
        );
    }
}
