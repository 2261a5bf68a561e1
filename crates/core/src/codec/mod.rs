//! Snapshot encoding: zstd frames (with content size and checksum, so `zstd -d` and
//! `zstd -t` work on a stored object), sha256 of the raw bytes, and the JSON check every
//! configuration passes before it is stored ([`check_json`], in `json.rs`).

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod json;

pub use json::{MAX_JSON_DEPTH, check_json, parse_json};

/// The sha256 of `bytes`, as lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compresses `raw` into one standalone zstd frame at `level`.
///
/// # Errors
/// `InvalidInput` for a level outside 1..=19; `Internal` if zstd fails.
pub fn compress(raw: &[u8], level: i32) -> Result<Vec<u8>> {
    if !(1..=19).contains(&level) {
        return Err(Error::invalid(format!(
            "zstd level {level} is outside 1..=19"
        )));
    }
    let mut c = zstd::bulk::Compressor::new(level)
        .map_err(|e| Error::internal(format!("zstd: cannot start a compressor: {e}")))?;
    c.include_checksum(true)
        .and_then(|()| c.include_contentsize(true))
        .map_err(|e| Error::internal(format!("zstd: cannot set frame flags: {e}")))?;
    c.compress(raw)
        .map_err(|e| Error::internal(format!("zstd: compression failed: {e}")))
}

/// Decompresses a zstd object, refusing output larger than `limit` bytes.
///
/// `what` names the object in errors (e.g. `snapshot crm/production v4`).
///
/// # Errors
/// `Corrupt` if the bytes are not a valid zstd stream (a bad checksum included) or
/// decompress to more than `limit`.
pub fn decompress(data: &[u8], limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(data)
        .map_err(|e| Error::corrupt(format!("{what} is not a zstd stream: {e}")))?;
    // The frame header usually states the content size: allocate once.
    let hint = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .unwrap_or(0)
        .min(limit);
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    let read = (&mut decoder)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(format!("{what} does not decompress: {e}")))?;
    if read as u64 > limit {
        return Err(Error::corrupt(format!(
            "{what} decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks() {
        let raw = br#"{"pages":[{"name":"Home"}]}"#.repeat(100);
        let z = compress(&raw, 3).unwrap();
        assert!(z.len() < raw.len());
        assert_eq!(decompress(&z, 1 << 20, "x").unwrap(), raw);
        let e = decompress(&z, 10, "snapshot x").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt);
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(
            decompress(&bad, 1 << 20, "x").is_err(),
            "a flipped byte must be caught"
        );
        assert!(compress(b"x", 0).is_err());
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            sha256_hex(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_round_trip(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..4096), level in 1i32..=19) {
            let z = compress(&raw, level).unwrap();
            proptest::prop_assert_eq!(decompress(&z, 4096, "x").unwrap(), raw);
        }
    }
}
