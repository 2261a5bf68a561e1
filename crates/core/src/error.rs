//! The library's error type: kinds a caller can act on, each message saying what failed
//! and what to do about it.

use std::fmt;

/// A boxed source error kept for `Error::source()` chains.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure happened, independent of its text.
///
/// Front ends map kinds to HTTP statuses and exit codes in one place each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input is wrong (an id, an argument, a document that is not JSON).
    InvalidInput,
    /// The configuration file is wrong (unknown key, bad value, missing file).
    Config,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already (a version, a label).
    AlreadyExists,
    /// A compare-and-swap lost: what was read has changed since.
    PreconditionFailed,
    /// Input larger than the configured limit.
    TooLarge,
    /// A store or live target could not be reached or answered with a server error;
    /// retrying later may help.
    Unavailable,
    /// Stored data failed a check (checksum, decompression, metadata).
    Corrupt,
    /// A live target refused the configuration or the request: it answered a 4xx other
    /// than 401, 403, 404, 409, 410, 412 and 413 (e.g. a 400 naming a field it does not
    /// take). The message quotes its answer.
    LiveRefused,
    /// The live object does not exist: the live target answered 404 or 410, the live
    /// file or object is missing. Not a missing snapshot ([`ErrorKind::NotFound`]).
    LiveMissing,
    /// A live target refused a write as conflicting with its own state (409 or 412).
    LiveConflict,
    /// The store does not honour conditional writes; writing would be unsafe.
    UnsafeStore,
    /// A bug or an unexpected state.
    Internal,
}

impl ErrorKind {
    /// A stable, machine-readable code (used in HTTP error bodies and `--json` output).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Config => "config",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PreconditionFailed => "precondition_failed",
            Self::TooLarge => "too_large",
            Self::Unavailable => "unavailable",
            Self::Corrupt => "corrupt",
            Self::LiveRefused => "live_refused",
            Self::LiveMissing => "live_missing",
            Self::LiveConflict => "live_conflict",
            Self::UnsafeStore => "unsafe_store",
            Self::Internal => "internal",
        }
    }

    /// Whether trying the same call again later may succeed.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::PreconditionFailed)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One thing a caller can do next, named without any front end's syntax: the CLI
/// renders it as a command or flags, HTTP as a field or header of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Confirm an action that needs an explicit yes (CLI `--yes`).
    Confirm,
    /// Restore over a live configuration that can't be read or snapshotted, unsaved
    /// (CLI `--overwrite-unreadable-live`, HTTP `allow_unreadable_live`).
    OverrideUnreadableLive,
    /// Go on although the configuration fails the environment's JSON Schema (recorded
    /// in the audit event).
    SkipSchemaCheck,
    /// Retry naming the release pointer's current ETag (CLI `--if-match`, HTTP `If-Match`).
    IfMatch(String),
    /// Retry without naming a release pointer ETag (there is no release yet).
    NoIfMatch,
    /// Give a release label.
    Label,
    /// Give at least one retention rule.
    RetentionRule,
    /// Set the S3 endpoint (config `s3.endpoint`, `AWS_ENDPOINT_URL`).
    S3Endpoint,
    /// Name the configuration file.
    ConfigFile,
    /// Give the configuration itself, as a file or a request body.
    FromFile,
    /// Pick a later point in time.
    LaterTime,
    /// Look at an environment's snapshots.
    ListSnapshots(EnvName),
    /// Look at an environment's releases.
    ListReleases(EnvName),
    /// Restore this version of the environment (e.g. the undo of a restore).
    Restore(EnvName, u64),
    /// Take a snapshot of the environment.
    Backup(EnvName),
    /// Publish a version of the environment as its release (`None`: a version to pick).
    Release(EnvName, Option<u64>),
    /// Roll the environment's release back to the one before.
    Rollback(EnvName),
    /// Check the store's snapshots.
    Verify,
    /// Check the store, the live targets and the setup end to end.
    Doctor,
    /// Pin this version of the environment.
    Pin(EnvName, u64),
    /// Save what is live somewhere other than the store before restoring (CLI
    /// `--save-live-to FILE`), for a store that can't be written.
    SaveLiveTo,
    /// Create the deleted live object anew when restoring (CLI `--yes`, HTTP
    /// `create_if_missing`).
    CreateMissing,
}

/// An environment a [`Step`] names: its app and env ids as text. (Errors sit below the
/// id types, which use them, so steps do not hold an [`EnvRef`](crate::id::EnvRef);
/// `EnvRef` converts into this.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvName {
    /// The app id.
    pub app: String,
    /// The env id.
    pub env: String,
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.env)
    }
}

/// What to do next: advice in words that name no front end's syntax, and the steps it
/// refers to, which each front end renders in its own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The advice, e.g. "confirm to restore anyway".
    pub text: String,
    /// The steps the advice refers to, in order.
    pub steps: Vec<Step>,
}

impl Hint {
    /// Advice with no step to render.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            steps: Vec::new(),
        }
    }

    /// The advice followed by its steps, each rendered by `step` in a front end's
    /// terms: "advice (step, step)".
    pub fn render(&self, step: impl Fn(&Step) -> String) -> String {
        if self.steps.is_empty() {
            return self.text.clone();
        }
        let steps: Vec<String> = self.steps.iter().map(step).collect();
        format!("{} ({})", self.text, steps.join(", "))
    }

    /// Advice that refers to `steps`.
    pub fn steps(text: impl Into<String>, steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            text: text.into(),
            steps: steps.into_iter().collect(),
        }
    }
}

/// A library error: a kind, a message that says what failed, what to do next as a
/// structured [`Hint`], and the underlying cause where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<Hint>,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// Builds an error of `kind` with a complete, user-facing message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Attaches what to do next; front ends render it (see [`Hint`]).
    #[must_use]
    pub fn with_next(mut self, hint: Hint) -> Self {
        self.hint = Some(hint);
        self
    }

    /// What to do next, if the error says.
    #[must_use]
    pub fn hint(&self) -> Option<&Hint> {
        self.hint.as_ref()
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Appends advice that names no front end's syntax to the message. Advice that
    /// refers to a flag, a field or a command is a [`Hint`] ([`Error::with_next`]).
    #[must_use]
    pub fn with_hint(mut self, hint: impl fmt::Display) -> Self {
        self.message = format!("{}; {hint}", self.message);
        self
    }

    /// Prefixes the message with what was being done when the error happened.
    #[must_use]
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The same error as another kind (e.g. a store's `NotFound` that, read from a live
    /// target, means `LiveMissing`).
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the source chain.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message followed by every cause in the source chain, for reports.
    #[must_use]
    pub fn report(&self) -> String {
        let mut out = self.message.clone();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cur = e.source();
        }
        out
    }

    /// Invalid caller input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A configuration problem.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Something that exists already.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    /// A lost compare-and-swap.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, message)
    }

    /// Input over a size limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }

    /// An unreachable or failing dependency.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Stored data that fails a check.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// A live target that refused the configuration or the request.
    pub fn live_refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LiveRefused, message)
    }

    /// A live object that does not exist.
    pub fn live_missing(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LiveMissing, message)
    }

    /// A live target's conflict with its own state (409, 412).
    pub fn live_conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LiveConflict, message)
    }

    /// An unexpected state.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Whether this says that a live configuration holds nothing: [`ErrorKind::LiveMissing`]
    /// (or `NotFound`, from a live target that says it so). Restore then has nothing
    /// to save first; every other read failure means "unreadable".
    #[must_use]
    pub fn is_live_missing(&self) -> bool {
        matches!(self.kind, ErrorKind::LiveMissing | ErrorKind::NotFound)
    }

    /// Whether this is a lost race on a conditional write (created by someone else, or
    /// changed since read): the caller should re-read and decide.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::AlreadyExists | ErrorKind::PreconditionFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_includes_sources_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::unavailable("cannot read /x").with_source(io);
        assert_eq!(e.report(), "cannot read /x: denied");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.kind().is_retryable());
    }

    #[test]
    fn conflict_kinds() {
        assert!(Error::already_exists("v1").is_conflict());
        assert!(Error::precondition("ptr").is_conflict());
        assert!(!Error::not_found("x").is_conflict());
    }
}
