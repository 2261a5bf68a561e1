//! What a JSON Schema costs a backup of the 1.32 MB export, beside what every backup
//! computes: the first compile in a process (what one `jetvault backup` pays), then per
//! round the JSON check, the strict borrowed parse (repeated keys refused), the parse that
//! keeps repeated keys, and the check of the parsed document (`EnvSchema::check_parsed`,
//! `bench/schema/walk.json`, which type-checks every value).
//!
//! `cargo bench -p jetvault-core --bench schema [-- ROUNDS [NAME]]` (default 101 rounds;
//! NAME keeps the measures whose names contain it, for `perf`);
//! medians, each measure in turn within a round.

use std::hint::black_box;
use std::time::Instant;

use jetvault_core::codec;
use jetvault_core::config::Config;
use jetvault_core::id::EnvRef;
use jetvault_core::schema::{Doc, Schemas};
use rounds::Measure;

mod rounds;

fn main() {
    let (rounds, only) = rounds::args(101);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let raw = rounds::export();
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
    rounds::run(
        &format!("{} bytes", raw.len()),
        rounds,
        only.as_deref(),
        measures,
    );
}
