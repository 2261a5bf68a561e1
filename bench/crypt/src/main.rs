//! What age encryption adds to backup's computation, in one process, side by side.
//!
//! `plain` is what `Vault::backup` computes before it writes a plain snapshot:
//! `check_json` (the core's own file, compiled in here), sha256 and zstd level 3 with
//! checksum and content size. `encrypted` is the same plus what `crypt::encrypt` does:
//! the zstd frame through `age::Encryptor` to two X25519 recipients (an everyday key and
//! an offline one). `decrypt` is what reading an encrypted snapshot adds (age decrypt of
//! the frame). Medians over the rounds; each round runs the cases in a rotating order.
//!
//!   cargo run --release --manifest-path bench/crypt/Cargo.toml -- [ROUNDS] [FILE]

use std::hint::black_box;
use std::io::{Read, Write};
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
        pub fn message(&self) -> &str {
            &self.0
        }
    }
}

#[allow(dead_code, clippy::all)]
#[path = "../../../crates/core/src/codec/json.rs"]
mod json;

fn plain(raw: &[u8]) -> Vec<u8> {
    json::check_json(raw, "bench").unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw));
    black_box(sha);
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.include_checksum(true).unwrap();
    c.include_contentsize(true).unwrap();
    c.compress(raw).unwrap()
}

fn encrypt(frame: &[u8], to: &[age::x25519::Recipient]) -> Vec<u8> {
    let e = age::Encryptor::with_recipients(to.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::with_capacity(frame.len() + 400);
    let mut w = e.wrap_output(&mut out).unwrap();
    w.write_all(frame).unwrap();
    w.finish().unwrap();
    out
}

fn decrypt(sealed: &[u8], id: &age::x25519::Identity) -> Vec<u8> {
    let d = age::Decryptor::new_buffered(sealed).unwrap();
    let mut r = d
        .decrypt(std::iter::once(id as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(101, |r| r.parse().unwrap());
    let file = args
        .next()
        .unwrap_or_else(|| "tests/data/appsmith-ce-automation-test.json".into());
    let raw = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (k1, k2) = (
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
    );
    let to = [k1.to_public(), k2.to_public()];
    let frame = plain(&raw);
    let sealed = encrypt(&frame, &to);
    assert_eq!(decrypt(&sealed, &k1), frame);
    let (mut p, mut e, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 3 {
        let mut cases: [&mut dyn FnMut(); 3] = [
            &mut || p.push(time(|| plain(&raw))),
            &mut || e.push(time(|| encrypt(&plain(&raw), &to))),
            &mut || d.push(time(|| decrypt(&sealed, &k2))),
        ];
        cases.rotate_left(round % 3);
        for c in &mut cases {
            c();
        }
    }
    // The first rounds warm caches up.
    for v in [&mut p, &mut e, &mut d] {
        v.drain(..3);
    }
    let (p, e, d) = (median(p), median(e), median(d));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} ({} bytes, zstd frame {} bytes, age object {} bytes), {rounds} rounds:",
        file,
        raw.len(),
        frame.len(),
        sealed.len()
    );
    println!("| case | median |");
    println!("|---|---:|");
    println!("| plain: check_json + sha256 + zstd -3 | {:.2} ms |", ms(p));
    println!(
        "| encrypted: the same + age to 2 recipients | {:.2} ms |",
        ms(e)
    );
    println!(
        "| age's part (encrypted - plain) | {:.2} ms |",
        ms(e) - ms(p)
    );
    println!("| reading: age decrypt of the frame | {:.2} ms |", ms(d));
}
