//! Atomic file replacement: a temporary file beside the target, fsync, rename.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Write `bytes` to `path` so that a reader sees the old file or the whole new one,
/// never a part. With `durable`, the data and the rename reach the disk before this
/// returns (a crash cannot leave an entry that looks complete but is not).
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("a path without a folder"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
