//! The raw-PUT reference client of `bench/backup-all.sh`: N plain `PutObject` requests
//! of zstd-compressed configurations, at a given concurrency, with the same SDK jetvault
//! uses. No listing, no metadata, no conditional write: the floor a backup of N
//! environments is compared with.
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
//!   cargo bench --bench raw_put -- BUCKET N CONCURRENCY FILE...
//! ```
//!
//! Object `i` holds file `i % FILES`, compressed once up front (zstd -3, as jetvault
//! does); the bodies are not timed. Prints one JSON line: `{"objects", "seconds",
//! "per_second", "bytes"}`.

use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; every flag is ignored.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [bucket, n, concurrency, files @ ..] = args.as_slice() else {
        eprintln!("usage: raw_put BUCKET N CONCURRENCY FILE... (AWS_ENDPOINT_URL set)");
        std::process::exit(2);
    };
    assert!(!files.is_empty(), "give at least one FILE");
    let n: usize = n.parse().expect("N is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let bodies: Vec<bytes::Bytes> = files
        .iter()
        .map(|f| {
            let raw = std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {f}: {e}"));
            bytes::Bytes::from(zstd::encode_all(raw.as_slice(), 3).expect("zstd"))
        })
        .collect();

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let started = Instant::now();
    let bytes: usize = futures::stream::iter(0..n)
        .map(|i| {
            let body = bodies[i % bodies.len()].clone();
            let client = &client;
            async move {
                let len = body.len();
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("raw/{i:06}.json.zst"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("PUT raw/{i:06}: {e:?}"));
                len
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |sum, len| async move { sum + len })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "objects": n,
            "seconds": seconds,
            "per_second": n as f64 / seconds,
            "bytes": bytes,
        })
    );
}
