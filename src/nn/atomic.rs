//! Publishing a file atomically: write a temporary file beside it, fsync, rename. A
//! reader sees the old file or the new one, never a torn one.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::NnError;

/// Calls `write` with a temporary path in `path`'s folder, then moves the result to
/// `path`.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<(), NnError>) -> Result<(), NnError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| NnError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| NnError::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Ok(d) = File::open(dir) {
        // Make the rename itself durable; failure here loses nothing already visible.
        let _ = d.sync_all();
    }
    result
}

pub(crate) fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), NnError> {
    write_atomic(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| NnError::io(tmp, e)))
}
