//! The harness of the benches that time several computations in one process: each
//! measure runs in turn within a round (so drift in the machine's speed falls on all),
//! after five rounds of warm-up; the table shows the medians.

use std::time::{Duration, Instant};

/// The 1.32 MB export the benches time (tests/data).
pub fn export() -> Vec<u8> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/appsmith-ce-automation-test.json"
    );
    std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// One computation to time, with its name in the table.
pub type Measure<'a> = (&'a str, Box<dyn Fn() + 'a>);

/// The bench's arguments: the number of rounds (`default` without one) and, second, a
/// text that keeps only the measures whose names contain it (for `perf`).
pub fn args(default: usize) -> (usize, Option<String>) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(default);
    (rounds, args.get(1).cloned())
}

/// Runs `measures` (those whose names contain `only`) for `rounds` rounds and prints a
/// table of their medians under `title`.
pub fn run(title: &str, rounds: usize, only: Option<&str>, measures: Vec<Measure<'_>>) {
    let measures: Vec<Measure<'_>> = measures
        .into_iter()
        .filter(|(name, _)| only.is_none_or(|o| name.contains(o)))
        .collect();
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
    println!("{title}, {rounds} rounds, medians");
    println!("| computation | median |\n|---|---:|");
    for ((name, _), mut t) in measures.iter().zip(times) {
        t.sort_unstable();
        println!("| {name} | {:.3} ms |", t[t.len() / 2].as_secs_f64() * 1e3);
    }
}
