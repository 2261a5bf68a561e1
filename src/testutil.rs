//! Helpers shared by unit tests.

use std::path::PathBuf;

/// The shared corpus of real configuration files: `$JETVAULT_CORPUS`, else
/// `../shared/corpus` beside the repository (as CI lays it out), else
/// `/work/shared/corpus`.
pub fn corpus_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("JETVAULT_CORPUS") {
        return PathBuf::from(dir);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared/corpus")
}

/// The bytes of one corpus file.
pub fn corpus(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read corpus file {}: {e}", path.display()))
}
