//! What a JSON Schema check adds to backup's computation, in one process.
//!
//! `backup` is what `Vault::backup` computes before it writes: `check_json` (the core's
//! own file, compiled in here), sha256 and zstd level 3. `schema` is what
//! `EnvSchema::check` does: parse into a `serde_json::Value`, `Validator::is_valid`.
//! jetvault runs the two on two blocking threads side by side (`tokio::join!` of two
//! `spawn_blocking`), so `parallel` is the wall time of both that way. Medians over the
//! rounds; each round runs the cases in a rotating order.
//!
//! Without `--features schema` only `backup` is measured (serde_json without
//! `float_roundtrip`, as before jsonschema was linked).

use std::hint::black_box;
use std::time::{Duration, Instant};

#[allow(dead_code, clippy::all)]
mod error {
    pub type Result<T> = std::result::Result<T, Error>;
    #[derive(Debug)]
    pub struct Error(String);
    impl Error {
        pub fn invalid(m: impl Into<String>) -> Self {
            Self(m.into())
        }
        pub fn config(m: impl Into<String>) -> Self {
            Self(m.into())
        }
        pub fn message(&self) -> &str {
            &self.0
        }
    }
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
}

#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/codec/json.rs"]
mod json;

#[allow(dead_code, clippy::all)]
mod codec {
    pub use super::json::MAX_JSON_DEPTH;
}

/// The schema check's borrowed document (`schema/doc.rs`).
#[cfg(feature = "schema")]
#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/schema/doc.rs"]
mod doc;

#[cfg(feature = "filters")]
#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/filter/fast.rs"]
mod filter_fast;
#[cfg(feature = "filters")]
#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/filter/program.rs"]
mod filter_program;
#[cfg(feature = "filters")]
#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/filter/value.rs"]
mod filter_value;
#[cfg(feature = "filters")]
mod filter {
    pub(crate) use super::filter_fast as fast;
    pub(crate) use super::filter_program as program;
    pub(crate) use super::filter_value as value;
}

fn backup(raw: &[u8]) -> usize {
    json::check_json(raw, "bench").unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw));
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.include_checksum(true).unwrap();
    c.include_contentsize(true).unwrap();
    c.compress(raw).unwrap().len() + sha.len()
}

#[cfg(feature = "schema")]
fn schema(v: &jsonschema::Validator, raw: &[u8]) -> bool {
    let doc: serde_json::Value = serde_json::from_slice(raw).unwrap();
    v.is_valid(&doc)
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(101);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let file = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("{dir}/tests/data/appsmith-ce-automation-test.json"));
    let raw = std::fs::read(&file).unwrap();
    println!("{file}: {} bytes, {rounds} rounds", raw.len());

    #[cfg(not(feature = "schema"))]
    {
        let times: Vec<Duration> = (0..rounds).map(|_| time(|| backup(&raw))).collect();
        println!(
            "backup (check_json + sha256 + zstd-3)  {:.3} ms",
            median(times)
        );
    }

    #[cfg(feature = "schema")]
    {
        let schema_file = args
            .get(2)
            .cloned()
            .unwrap_or_else(|| format!("{dir}/bench/schema/walk.json"));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&schema_file).unwrap()).unwrap();
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&s)
            .unwrap();
        assert!(schema(&v, &raw), "{file} fails {schema_file}");
        let (mut b, mut sc, mut seq, mut par, mut parse) = (vec![], vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            for case in 0..5 {
                match (case + round) % 5 {
                    0 => b.push(time(|| backup(&raw))),
                    4 => parse.push(time(|| {
                        serde_json::from_slice::<serde_json::Value>(&raw).unwrap()
                    })),
                    1 => sc.push(time(|| schema(&v, &raw))),
                    2 => seq.push(time(|| (backup(&raw), schema(&v, &raw)))),
                    _ => par.push(time(|| {
                        std::thread::scope(|t| {
                            let h = t.spawn(|| schema(&v, &raw));
                            let n = backup(&raw);
                            (n, h.join().unwrap())
                        })
                    })),
                }
            }
        }
        // The schema check as backup now makes it: the borrowed document, then (for a
        // document that fails, not here) the Value as before.
        let vb = jsonschema::options_for::<doc::Borrowed>()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&s)
            .unwrap();
        let borrowed = |raw: &[u8]| vb.is_valid(doc::Doc::parse(raw).unwrap().root());
        assert!(borrowed(&raw));
        let (mut bb, mut bparse) = (vec![], vec![]);
        for round in 0..rounds {
            if round % 2 == 0 {
                bb.push(time(|| borrowed(&raw)));
                bparse.push(time(|| doc::Doc::parse(&raw).is_some()));
            } else {
                bparse.push(time(|| doc::Doc::parse(&raw).is_some()));
                bb.push(time(|| borrowed(&raw)));
            }
        }
        println!("schema, borrowed document (parse + is_valid)  {:.3} ms", median(bb));
        println!("  of which parsing the borrowed document      {:.3} ms", median(bparse));
        #[cfg(feature = "filters")]
        {
            let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            let envelope = serde_json::to_vec_pretty(&serde_json::json!(
                {"responseMeta": {"status": 200, "success": true}, "data": doc, "errorDisplay": ""}
            ))
            .unwrap();
            let program = filter::program::Program::compile("read", ".data", &[]).unwrap();
            let jaq = |raw: &[u8]| {
                let v = filter::value::parse(raw, "x").unwrap();
                filter::value::to_bytes(&program.run(v, Vec::new()).unwrap()).unwrap()
            };
            let path = filter::fast::path_of(".data").unwrap();
            let fast = |raw: &[u8]| filter::fast::select(raw, &path).unwrap();
            assert!(jaq(&envelope) == fast(&envelope));
            let (mut j, mut f) = (vec![], vec![]);
            for round in 0..rounds {
                if round % 2 == 0 {
                    j.push(time(|| jaq(&envelope)));
                    f.push(time(|| fast(&envelope)));
                } else {
                    f.push(time(|| fast(&envelope)));
                    j.push(time(|| jaq(&envelope)));
                }
            }
            println!("read filter .data on the {}-byte envelope:", envelope.len());
            println!("  jaq's values (parse, run, write)            {:.3} ms", median(j));
            println!("  fast path (cut out while parsing)           {:.3} ms", median(f));
        }
        let (b, sc, seq, par, parse) = (
            median(b),
            median(sc),
            median(seq),
            median(par),
            median(parse),
        );
        println!("backup (check_json + sha256 + zstd-3)  {b:.3} ms");
        println!(
            "schema (parse Value + is_valid)        {sc:.3} ms  ({:.2}x backup's CPU)",
            sc / b
        );
        println!("  of which parsing the Value           {parse:.3} ms");
        println!(
            "backup then schema, one thread         {seq:.3} ms  ({:.2}x)",
            seq / b
        );
        println!(
            "backup beside schema, two threads      {par:.3} ms  ({:.2}x)",
            par / b
        );
    }
}
