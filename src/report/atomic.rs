//! Report files are published whole (see [`crate::durable`]): a report that a crash
//! cut short would otherwise look like a finished one.

use std::path::Path;

use super::error::ReportError;

/// Runs `write` on a temporary path beside `path`, then publishes it under `path`.
///
/// The temporary name ends in `extension` (`.figure.png.123-0.png`): the bitmap encoder
/// picks the image format from it, whatever the final name is.
pub(crate) fn write_with(
    path: &Path,
    extension: &str,
    write: impl FnOnce(&Path) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    crate::durable::replace_with(path, extension, true, write, |_, source| ReportError::Io {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_with(path, "tmp", |tmp| {
        std::fs::write(tmp, bytes).map_err(|source| ReportError::Io { path: path.to_owned(), source })
    })
}
