//! What a JSON Schema costs a backup of the 1.32 MB export, beside what every backup
//! computes: the first compile in a process (what one `jetvault backup` pays), then per
//! round the JSON check, the strict borrowed parse (repeated keys refused), the parse that
//! keeps repeated keys, and the check of the parsed document (`EnvSchema::check_parsed`,
//! `bench/schema/walk.json`, which type-checks every value).
//!
//! `cargo bench -p jetvault-core --bench schema [-- ROUNDS]` (default 101 rounds);
//! medians, each measure in turn within a round.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jetvault_core::codec;
use jetvault_core::config::Config;
use jetvault_core::id::EnvRef;
use jetvault_core::schema::{Doc, Schemas};

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(101);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let file = format!("{root}/tests/data/appsmith-ce-automation-test.json");
    let raw = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let config = Config::parse(&format!(
        "[apps.bench.envs.production.schema]\nfile = \"{root}/bench/schema/walk.json\"\n"
    ))
    .expect("the config parses");
    let env = EnvRef::parse("bench", "production").expect("a valid name");
    let schemas = Schemas::from_config(&config);
    let schema = schemas.get(&env).expect("the schema is configured");
    let doc = Doc::parse(&raw).expect("the export parses");
    let t = Instant::now();
    let first = schema.check_parsed(&env, &raw, Some(&doc));
    let compile = t.elapsed();
    assert_eq!(
        first.expect("the schema compiles"),
        None,
        "walk.json passes"
    );
    let second = Config::parse(&format!(
        "[apps.bench.envs.production.schema]\nfile = \"{root}/schemas/node-red-flows.json\"\n"
    ))
    .expect("the config parses");
    let second = Schemas::from_config(&second);
    let t = Instant::now();
    let _ = second
        .get(&env)
        .unwrap()
        .check_parsed(&env, b"[]", Doc::parse(b"[]").as_ref());
    println!(
        "a second schema compiled: {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "first check in this process (compiles the schema): {:.3} ms",
        compile.as_secs_f64() * 1e3
    );
    type Measure<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let measures: Vec<Measure<'_>> = vec![
        (
            "JSON check",
            Box::new(|| codec::check_json(black_box(&raw), "bench").unwrap()),
        ),
        (
            "borrowed parse, repeated keys refused",
            Box::new(|| {
                black_box(Doc::parse(black_box(&raw)).unwrap());
            }),
        ),
        (
            "borrowed parse, repeated keys kept",
            Box::new(|| {
                black_box(Doc::parse_keeping_repeats(black_box(&raw)).unwrap());
            }),
        ),
        (
            "serde_json::Value parse",
            Box::new(|| {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(&raw)).unwrap());
            }),
        ),
        (
            "schema check of the parsed document",
            Box::new(|| {
                black_box(schema.check_parsed(&env, &raw, Some(&doc)).unwrap());
            }),
        ),
    ];
    // A second argument keeps only the measures whose names contain it (for `perf`).
    let only = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .nth(1);
    let measures: Vec<Measure<'_>> = measures
        .into_iter()
        .filter(|(name, _)| only.as_ref().is_none_or(|o| name.contains(o.as_str())))
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
    println!("{} bytes, {rounds} rounds, medians", raw.len());
    println!("| computation | median |\n|---|---:|");
    for ((name, _), mut t) in measures.iter().zip(times) {
        t.sort_unstable();
        println!("| {name} | {:.3} ms |", t[t.len() / 2].as_secs_f64() * 1e3);
    }
}
