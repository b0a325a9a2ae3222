//! The one place that writes files so that a crash cannot leave them half written,
//! sets their permissions, takes file locks and removes trees.
//!
//! Every file a reader may see while it is being produced (manifests, records,
//! checkpoints, report files, stored objects) is written to a temporary name in the
//! same folder and renamed over its final name, so a reader sees the old file or the
//! whole new one. Permissions follow the process umask, as `open(2)` would give them:
//! a cache folder shared by a group (setgid, umask 002) stays usable by every member,
//! where `tempfile`'s private 0600 files would lock the others out.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The process umask, read once from `/proc/self/status` (setting it to read it, as
/// umask(2) does, would race with threads creating files or starting commands).
/// Where that file does not say, 022.
pub fn umask() -> u32 {
    static MASK: OnceLock<u32> = OnceLock::new();
    *MASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"));
        line.and_then(|v| u32::from_str_radix(v.trim(), 8).ok()).unwrap_or(0o022)
    })
}

/// `mode` as the umask lets it through (0o666 -> 0o664 under umask 002).
pub fn masked(mode: u32) -> u32 {
    mode & !umask() & 0o7777
}

/// Give `path` the permissions `mode` minus the umask.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(masked(mode)))
}

/// A name beside `path` that no other writer in this or another process uses.
fn temporary_beside(path: &Path, extension: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.{extension}", std::process::id()))
}

/// Run `write` on a temporary path beside `path`, then publish the result under
/// `path`. With `durable`, the data and the rename reach the disk before this returns.
/// The temporary name ends in `.extension`: some writers (image encoders) choose their
/// format by it. On any failure the temporary file is removed and `path` is untouched.
pub fn replace_with<E>(
    path: &Path,
    extension: &str,
    durable: bool,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_error: impl Fn(&Path, io::Error) -> E,
) -> Result<(), E> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let tmp = temporary_beside(path, extension);
    let result = write(&tmp).and_then(|()| {
        if durable {
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io_error(&tmp, e))?;
        }
        // Files created by `write` got 0o666 minus the umask already; make sure of it
        // for writers that create theirs privately.
        set_mode(&tmp, 0o666).map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_error(path, e))
    });
    match &result {
        Err(_) => {
            let _ = fs::remove_file(&tmp);
        }
        Ok(()) if durable => {
            // Make the rename itself durable; a failure here loses nothing visible.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(()) => {}
    }
    result
}

/// Write `bytes` to `path` whole or not at all (see [`replace_with`]).
pub fn write_bytes(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    replace_with(path, "tmp", durable, |tmp| fs::write(tmp, bytes), |_, e| e)
}

/// Remove a file or a folder with everything in it; a missing path is not an error.
pub fn remove_path(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => match fs::remove_dir_all(p) {
            // A read-only folder inside (an unpacked archive's, say): open it up, retry.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                make_writable(p);
                fs::remove_dir_all(p)
            }
            other => other,
        },
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Folders below `p` made writable by their owner, so their entries can be removed.
fn make_writable(p: &Path) {
    let Ok(entries) = fs::read_dir(p) else { return };
    if let Ok(m) = fs::symlink_metadata(p)
        && m.permissions().mode() & 0o200 == 0
    {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(m.permissions().mode() | 0o700));
    }
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&e.path());
        }
    }
}

/// Open (creating it, group-writable under a group umask) and lock `path`, blocking
/// until no other process holds it. The lock lasts as long as the returned file, and
/// no longer than the process.
pub fn lock(path: &Path) -> io::Result<File> {
    let f = open_lock_file(path)?;
    f.lock()?;
    Ok(f)
}

/// Like [`lock`], but `None` at once when another process holds the lock.
pub fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let f = open_lock_file(path)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    File::options().create(true).truncate(false).write(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_files_follow_the_umask_and_leave_no_temporary() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/a.json");
        write_bytes(&p, b"one", true).unwrap();
        write_bytes(&p, b"two", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, masked(0o666));
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        let failed: Result<(), io::Error> =
            replace_with(&p, "tmp", false, |tmp| fs::write(tmp, b"x").and(Err(io::Error::other("no"))), |_, e| e);
        assert!(failed.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_held_lock_is_not_taken_twice() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("k.lock");
        let held = lock(&p).unwrap();
        assert!(try_lock(&p).unwrap().is_none());
        drop(held);
        assert!(try_lock(&p).unwrap().is_some());
    }

    #[test]
    fn read_only_trees_are_removed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d/e");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), b"1").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o500)).unwrap();
        remove_path(&t.path().join("d")).unwrap();
        assert!(!t.path().join("d").exists());
        remove_path(&t.path().join("d")).unwrap();
    }
}
