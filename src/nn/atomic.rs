//! Checkpoints and resume states are published whole (see [`crate::durable`]).

use std::path::Path;

use super::error::NnError;

/// Calls `write` with a temporary path in `path`'s folder, then moves the result to
/// `path`, durably.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<(), NnError>) -> Result<(), NnError> {
    crate::durable::replace_with(path, "tmp", true, write, |p, e| NnError::io(p, e))
}

pub(crate) fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), NnError> {
    write_atomic(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| NnError::io(tmp, e)))
}
