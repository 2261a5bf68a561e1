//! Byte counts in the configuration, parsed by the `bytesize` crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// A byte count that reads `1048576`, `"64MiB"`, `"512 KB"` and so on (`KB` and `K`
/// are 1000 bytes, `KiB` 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Self(b.as_u64()))
            .map_err(|e| {
                Error::invalid(format!(
                    "invalid size {s:?}: {e}; use e.g. 64MiB (B, KB, KiB, MB, MiB, GB, GiB)"
                ))
            })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
            write!(f, "{}MiB", n / (1024 * 1024))
        } else if n >= 1024 && n.is_multiple_of(1024) {
            write!(f, "{}KiB", n / 1024)
        } else {
            write!(f, "{n}B")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_todays_spellings() {
        for (text, n) in [
            ("64MiB", 64 << 20),
            ("8MiB", 8 << 20),
            ("64 MiB", 64 << 20),
            ("10 KB", 10_000),
            ("10kb", 10_000),
            ("512 KiB", 512 << 10),
            ("2GiB", 2 << 30),
            ("1 GB", 1_000_000_000),
            ("5", 5),
            ("5B", 5),
            (" 7 ", 7),
        ] {
            assert_eq!(text.parse::<ByteSize>().unwrap(), ByteSize(n), "{text}");
        }
        for bad in ["5XB", "", "MiB", "-1"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(3 << 10).to_string(), "3KiB");
        assert_eq!(ByteSize(5).to_string(), "5B");
    }

    #[test]
    fn deserializes_numbers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            a: ByteSize,
            b: ByteSize,
        }
        let t: T = toml::from_str("a = 1048576\nb = \"64 MiB\"").unwrap();
        assert_eq!((t.a, t.b), (ByteSize(1 << 20), ByteSize(64 << 20)));
    }

    proptest::proptest! {
        #[test]
        fn sizes_round_trip_and_any_text_parses_or_fails(
            n in proptest::num::u64::ANY, k in 0u64..(1 << 20),
            s in "(?s).{0,30}|[ 0-9.]{0,25}[ ]?([KMGTPE]i?B?|[kmgtpe]i?b?|B)?",
        ) {
            for b in [ByteSize(n), ByteSize(k << 10), ByteSize(k << 20)] {
                proptest::prop_assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
            }
            let _ = s.parse::<ByteSize>();
        }
    }
}
