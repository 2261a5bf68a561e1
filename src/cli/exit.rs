//! Exit codes: one mapping from error kind to code, documented in the README.

use jetvault_core::ErrorKind;
use jetvault_core::error::{Hint, Step};

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
/// The live target refused the configuration (or the request): a 4xx other than 401,
/// 403, 404, 409, 410, 412 and 413; the message quotes its answer.
pub const LIVE_REFUSED: u8 = 11;
/// The live object does not exist (404 or 410, no live file or object); not a missing
/// snapshot (3).
pub const LIVE_MISSING: u8 = 12;

/// The exit code for a library error kind.
pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Config | ErrorKind::TooLarge => INVALID,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::PreconditionFailed | ErrorKind::LiveConflict => {
            CONFLICT
        }
        ErrorKind::LiveRefused => LIVE_REFUSED,
        ErrorKind::LiveMissing => LIVE_MISSING,
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
            if let Some(hint) = je.hint() {
                text = format!("{text}; {}", render_hint(hint));
            }
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

/// A library hint in the CLI's terms: "advice (flag, command)".
pub fn render_hint(hint: &Hint) -> String {
    hint.render(render_step)
}

fn render_step(step: &Step) -> String {
    match step {
        Step::Confirm => "--yes".into(),
        Step::OverrideUnreadableLive => "--overwrite-unreadable-live".into(),
        Step::SkipSchemaCheck => "--skip-schema-check".into(),
        Step::IfMatch(etag) => format!("--if-match {etag}"),
        Step::NoIfMatch => "omit --if-match".into(),
        Step::Label => "--label".into(),
        Step::RetentionRule => {
            "--keep-last/--keep-daily/--keep-weekly/--keep-monthly/--keep-within".into()
        }
        Step::S3Endpoint => "s3.endpoint, --s3-endpoint or AWS_ENDPOINT_URL".into(),
        Step::ConfigFile => "--config".into(),
        Step::FromFile => "--from FILE".into(),
        Step::LaterTime => "a later --at".into(),
        Step::SaveLiveTo => "--save-live-to FILE".into(),
        Step::CreateMissing => "--yes".into(),
        other => match command(other) {
            Some(cmd) => format!("`{cmd}`"),
            None => format!("{other:?}"),
        },
    }
}

/// The command line a step stands for, when it is a whole command (an undo, a next
/// command to run), without quotes.
pub fn command(step: &Step) -> Option<String> {
    Some(match step {
        Step::ListSnapshots(e) => format!("jetvault list {} {}", e.app, e.env),
        Step::ListReleases(e) => format!("jetvault releases {} {}", e.app, e.env),
        Step::Restore(e, v) => format!("jetvault restore {} {} {v} --yes", e.app, e.env),
        Step::Backup(e) => format!("jetvault backup {} {}", e.app, e.env),
        Step::Release(e, Some(v)) => format!("jetvault release {} {} {v}", e.app, e.env),
        Step::Release(e, None) => format!("jetvault release {} {} <version>", e.app, e.env),
        Step::Rollback(e) => format!("jetvault rollback {} {}", e.app, e.env),
        Step::Pin(e, v) => format!("jetvault pin {} {} {v}", e.app, e.env),
        Step::Verify => "jetvault verify".into(),
        Step::Doctor => "jetvault doctor".into(),
        _ => return None,
    })
}
