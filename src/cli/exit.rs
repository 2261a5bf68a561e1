//! Exit codes: one mapping from error kind to code, documented in the README.

use jetvault_core::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// An unexpected failure.
pub const INTERNAL: u8 = 1;
/// Bad arguments, bad input or a bad config file (also clap's usage errors).
pub const INVALID: u8 = 2;
/// What was asked for does not exist.
pub const NOT_FOUND: u8 = 3;
/// A conflict: a label or version taken, or a compare-and-swap lost.
pub const CONFLICT: u8 = 4;
/// The store or a live target is unreachable; retrying later may help.
pub const UNAVAILABLE: u8 = 5;
/// Stored data failed a check.
pub const CORRUPT: u8 = 6;
/// The store ignores conditional writes.
pub const UNSAFE_STORE: u8 = 7;
/// Some items of a batch failed (backup-all, verify, prune).
pub const PARTIAL: u8 = 8;
/// The user declined a confirmation.
pub const ABORTED: u8 = 10;

/// The exit code for a library error kind.
pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Config | ErrorKind::TooLarge => INVALID,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::PreconditionFailed => CONFLICT,
        ErrorKind::Unavailable => UNAVAILABLE,
        ErrorKind::Corrupt => CORRUPT,
        ErrorKind::UnsafeStore => UNSAFE_STORE,
        _ => INTERNAL,
    }
}

/// The exit code and the one-line report of an error that reached the top.
pub fn report(e: &anyhow::Error) -> (u8, String) {
    match e.downcast_ref::<jetvault_core::Error>() {
        Some(je) => {
            let mut text = je.report();
            // Context added at the edge comes first.
            let outer = e.to_string();
            if outer != je.to_string() {
                text = format!("{outer}: {text}");
            }
            (code_for(je.kind()), text)
        }
        None => (INTERNAL, format!("{e:#}")),
    }
}
