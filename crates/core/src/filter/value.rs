//! Between JSON text, `serde_json` values and jaq's values: parsed with serde_json (the
//! same parser as the rest of jetvault), written with serde_json in the values' own key
//! order, so the same input always gives the same bytes.

use jaq_json::{Num, Val};
use serde::de::Deserialize;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::{Error, Result};

/// Parses one JSON document; `what` names it in the error.
///
/// # Errors
/// `InvalidInput` if the bytes are not one JSON document.
pub fn parse(bytes: &[u8], what: &str) -> Result<Val> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Val::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::invalid(format!("{what} is not JSON: {e}")))
}

/// A `serde_json` value as a jaq value.
#[must_use]
pub fn from_json(value: &serde_json::Value) -> Val {
    // A serde_json value always deserializes: every JSON value is a jaq value.
    Val::deserialize(value).unwrap_or_default()
}

/// Compact JSON text of a jaq value.
///
/// # Errors
/// `InvalidInput` for a value JSON can't hold (a non-string object key).
pub fn to_bytes(value: &Val) -> Result<Vec<u8>> {
    serde_json::to_vec(&Json(value)).map_err(|e| Error::invalid(format!("{e}")))
}

/// A jaq value as a `serde_json` value.
///
/// # Errors
/// As [`to_bytes`].
pub fn to_json(value: &Val) -> Result<serde_json::Value> {
    serde_json::to_value(Json(value)).map_err(|e| Error::invalid(format!("{e}")))
}

/// Serializes a jaq value as JSON, keeping its object keys in order.
struct Json<'a>(&'a Val);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Val::Null => s.serialize_unit(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::Num(n) => serialize_num(n, s),
            Val::TStr(b) | Val::BStr(b) => s.serialize_str(&String::from_utf8_lossy(b)),
            Val::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Val::Obj(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (k, v) in map.iter() {
                    match k {
                        Val::TStr(b) | Val::BStr(b) => {
                            out.serialize_entry(&*String::from_utf8_lossy(b), &Json(v))?;
                        }
                        other => {
                            return Err(serde::ser::Error::custom(format!(
                                "an object key must be a string, not {other}"
                            )));
                        }
                    }
                }
                out.end()
            }
        }
    }
}

fn serialize_num<S: Serializer>(n: &Num, s: S) -> std::result::Result<S::Ok, S::Error> {
    match n {
        Num::Int(i) => s.serialize_i64(*i as i64),
        Num::Float(f) => s.serialize_f64(*f),
        Num::BigInt(b) => match i128::try_from(&**b) {
            Ok(i) => s.serialize_i128(i),
            Err(_) => match u128::try_from(&**b) {
                Ok(u) => s.serialize_u128(u),
                Err(_) => s.serialize_f64(b.to_string().parse().unwrap_or(f64::NAN)),
            },
        },
        Num::Dec(d) => s.serialize_f64(d.parse().unwrap_or(f64::NAN)),
    }
}

/// Feeds `value` to `hasher` in a form where object key order does not matter (members
/// sorted by key) and every value is delimited, so that two values hash alike exactly
/// when they are equal as documents (numbers compared as the JSON text they are written
/// as).
///
/// # Errors
/// As [`to_bytes`].
pub fn digest(value: &Val, hasher: &mut sha2::Sha256) -> Result<()> {
    use sha2::Digest as _;
    let len = |h: &mut sha2::Sha256, n: usize| h.update((n as u64).to_le_bytes());
    match value {
        Val::Null => hasher.update(b"n"),
        Val::Bool(b) => hasher.update(if *b { b"t" } else { b"f" }),
        Val::Num(n) => {
            let text = serialize_num(n, serde_json::value::Serializer)
                .map_err(|e| Error::invalid(format!("{e}")))?;
            hasher.update(b"#");
            hasher.update(text.to_string().as_bytes());
            hasher.update(b";");
        }
        Val::TStr(b) | Val::BStr(b) => {
            hasher.update(b"s");
            len(hasher, b.len());
            hasher.update(&b[..]);
        }
        Val::Arr(items) => {
            hasher.update(b"[");
            len(hasher, items.len());
            for item in items.iter() {
                digest(item, hasher)?;
            }
        }
        Val::Obj(map) => {
            let mut members = Vec::with_capacity(map.len());
            for (k, v) in map.iter() {
                match k {
                    Val::TStr(b) | Val::BStr(b) => members.push((&b[..], v)),
                    other => {
                        return Err(Error::invalid(format!(
                            "an object key must be a string, not {other}"
                        )));
                    }
                }
            }
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            len(hasher, members.len());
            for (k, v) in members {
                len(hasher, k.len());
                hasher.update(k);
                digest(v, hasher)?;
            }
        }
    }
    Ok(())
}
