//! Replacing a file atomically: a temporary file in the same directory (tempfile), its
//! content synced, renamed over the target, and the directory synced so that the rename
//! survives a crash.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically; the temporary file's name starts with `prefix`
/// (stores hide names starting with theirs). `prepare` runs on the temporary file before
/// it replaces `path` (e.g. to copy permissions).
///
/// # Errors
/// The I/O error; the temporary file is removed.
pub(crate) fn write_atomic(
    path: &Path,
    prefix: &str,
    bytes: &[u8],
    prepare: impl FnOnce(&std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    // As `File::create`: 0666 less the umask, not tempfile's private 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    prepare(tmp.as_file())?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
