//! Writes output files whole or not at all: into a temporary sibling, fsync, rename.
//! A report that a crash cut short would otherwise look like a finished one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::ReportError;

/// Runs `write` on a temporary path beside `path`, then publishes it under `path`.
///
/// The temporary name ends in `extension` (`.figure.123.png`): the bitmap encoder
/// picks the image format from it, whatever the final name is.
pub(crate) fn write_with(
    path: &Path,
    extension: &str,
    write: impl FnOnce(&Path) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{extension}", std::process::id()));
    let io = |source| ReportError::Io { path: path.to_owned(), source };
    let result = write(&tmp)
        .and_then(|()| File::open(&tmp).and_then(|f| f.sync_all()).map_err(io))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_with(path, "tmp", |tmp| {
        File::create(tmp)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|source| ReportError::Io { path: PathBuf::from(path), source })
    })
}
