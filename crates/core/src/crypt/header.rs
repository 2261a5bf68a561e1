//! What can be checked of an age object without an identity: the header parses (the
//! version line, the recipient stanzas, the MAC line) and the payload has a size an age
//! payload can have (a 16-byte nonce, then chunks of up to 64 KiB, each with a 16-byte
//! tag). The age crate parses the header only while decrypting, so this reads the
//! documented text header itself (<https://age-encryption.org/v1>).

use crate::error::{Error, Result};

const VERSION_LINE: &str = "age-encryption.org/v1";
/// The longest header read: a few hundred bytes a recipient.
const MAX_HEADER: usize = 64 * 1024;
const NONCE: usize = 16;
const TAG: usize = 16;
const CHUNK: usize = 64 * 1024;

/// The structure of an age object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// The type of each recipient stanza (`X25519` for age's own keys).
    pub stanzas: Vec<String>,
    /// The header's length in bytes.
    pub header_len: usize,
    /// The encrypted payload's length (nonce included).
    pub payload_len: usize,
}

/// Parses the header of an age object and checks the payload's length.
///
/// # Errors
/// `Corrupt` naming `what` and what is wrong.
pub fn inspect(data: &[u8], what: &str) -> Result<Structure> {
    let bad = |why: &str| Error::corrupt(format!("{what} is not a valid age object: {why}"));
    let head = &data[..data.len().min(MAX_HEADER)];
    let mut pos = 0;
    let mut next_line = || -> Option<&[u8]> {
        let rest = head.get(pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        pos += end + 1;
        Some(&rest[..end])
    };
    if next_line() != Some(VERSION_LINE.as_bytes()) {
        return Err(bad("it does not start with the age v1 header line"));
    }
    let mut stanzas = Vec::new();
    loop {
        let line = next_line().ok_or_else(|| bad("the header has no end (--- line)"))?;
        let text = std::str::from_utf8(line).map_err(|_| bad("the header is not text"))?;
        if let Some(mac) = text.strip_prefix("--- ") {
            if mac.len() != 43 {
                return Err(bad("the header's MAC has the wrong length"));
            }
            break;
        }
        if let Some(args) = text.strip_prefix("-> ") {
            let kind = args
                .split(' ')
                .next()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| bad("a recipient stanza has no type"))?;
            stanzas.push(kind.to_string());
        } else if stanzas.is_empty() {
            return Err(bad("the header has text before its first recipient stanza"));
        } else if text.len() > 64 {
            return Err(bad("a stanza body line is longer than 64 characters"));
        }
    }
    if stanzas.is_empty() {
        return Err(bad("the header names no recipient"));
    }
    let payload_len = data.len() - pos;
    let body = payload_len.saturating_sub(NONCE);
    let last = body % (CHUNK + TAG);
    if payload_len < NONCE + TAG || (last != 0 && last < TAG) {
        return Err(bad(&format!(
            "its payload of {payload_len} bytes is not a whole number of age chunks \
             (truncated?)"
        )));
    }
    Ok(Structure {
        stanzas,
        header_len: pos,
        payload_len,
    })
}
