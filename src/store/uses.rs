//! Who used which entries, and when: the roots `gc` keeps and the last use it evicts by.
//!
//! ```text
//! cache/uses/<file>-<host>-<uid>.log   one JSON line per run, status or show of one
//!                                      pipeline file by one user on one machine
//! cache/uses/sets/<digest>.keys        the entry keys such a line names, one per line,
//!                                      stored once per distinct list
//! ```
//!
//! A run appends one line when it ends, naming every entry it reached; `status` and
//! `show` append one naming the entries they found. A no-op run of an unchanged
//! pipeline finds its key list already stored, so it costs one hash of the list and a
//! line of about 200 bytes, whatever the pipeline's size. Lines are appended with one
//! `write` under the shared side of the gc lock, which `gc` takes exclusively while it
//! rewrites a log; a log is per user, so another member of a group never needs to
//! write to it.
//!
//! While a run lives, it also lists what it holds (its planned keys, then each key it
//! computes) in its own scratch folder (`tmp/<proc>/holds`); `gc` never removes those,
//! whatever the rule, and tells a live process by the lock on that folder.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::cache::{Store, StoreError, io_at};
use crate::durable;

/// What made a use line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UseKind {
    /// A run: its entries are roots for the retention window.
    Run,
    /// `pipe status`: the entries it found fresh were used, not rooted.
    Status,
    /// `pipe show`: the entries it read were used, not rooted.
    Show,
}

/// One line of a use log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UseLine {
    /// Seconds since the epoch.
    pub t: u64,
    pub what: UseKind,
    pub user: String,
    pub uid: u32,
    pub host: String,
    /// The pipeline file, absolute, as the machine that ran it names it.
    pub pipeline: String,
    /// The digest of the key list (`sets/<digest>.keys`).
    pub set: String,
    /// How many keys the list holds.
    pub entries: usize,
}

/// Who this process runs as, and where.
#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub uid: u32,
    pub host: String,
}

impl Who {
    pub fn me() -> Who {
        // SAFETY: getuid cannot fail and touches no memory of ours.
        let uid = unsafe { libc::getuid() };
        Who { user: user_name(uid), uid, host: host_name() }
    }
}

/// The login name of `uid` from the password database; the number where it has none.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live value of the right type; `buf` outlives the
    // use of the strings getpwuid_r points into it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    uid.to_string()
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { "localhost".into() }
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The text of a key list and its digest.
fn key_list<'k>(keys: impl Iterator<Item = &'k str>) -> (Vec<u8>, usize, String) {
    let mut text = Vec::new();
    let mut n = 0;
    for k in keys {
        text.extend_from_slice(k.as_bytes());
        text.push(b'\n');
        n += 1;
    }
    let digest = blake3::hash(&text).to_hex().to_string();
    (text, n, digest)
}

/// The file name of the use log of `pipeline` by `who`.
pub fn log_name(pipeline: &str, who: &Who) -> String {
    let id = super::records::pipeline_id(pipeline);
    let host: String = who.host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    format!("{id}-{host}-{}.log", who.uid)
}

impl Store {
    pub(crate) fn uses_dir(&self) -> PathBuf {
        self.sub("uses")
    }

    fn set_path(&self, digest: &str) -> PathBuf {
        self.uses_dir().join("sets").join(format!("{digest}.keys"))
    }

    /// Store the key list `keys` once (an empty one is not stored); its digest and
    /// length.
    fn store_set<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Result<(String, usize), StoreError> {
        let (text, n, digest) = key_list(keys);
        let path = self.set_path(&digest);
        if n > 0 && !path.exists() {
            durable::write_bytes(&path, &text, false).map_err(io_at(&path))?;
        }
        Ok((digest, n))
    }

    /// Record that `what` of `pipeline` used the entries `keys` now. Nothing is written
    /// for an empty list.
    pub fn record_use<'k>(
        &self,
        pipeline: &Path,
        what: UseKind,
        keys: impl Iterator<Item = &'k str>,
    ) -> Result<(), StoreError> {
        let (set, entries) = self.store_set(keys)?;
        if entries == 0 {
            return Ok(());
        }
        let who = Who::me();
        let pipeline = pipeline.to_string_lossy().into_owned();
        let line = UseLine {
            t: now_unix(),
            what,
            user: who.user.clone(),
            uid: who.uid,
            host: who.host.clone(),
            pipeline: pipeline.clone(),
            set,
            entries,
        };
        let mut bytes = serde_json::to_vec(&line).expect("plain data");
        bytes.push(b'\n');
        let path = self.uses_dir().join(log_name(&pipeline, &who));
        let _shared = self.gc_lock(false)?;
        append(&path, &bytes).map_err(io_at(&path))
    }

    /// The gc lock: shared by a process appending a use line or storing and publishing
    /// an entry, exclusive for `gc` while it decides and removes.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<fs::File, StoreError> {
        let path = self.sub("locks").join("gc.lock");
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_at(&path))?;
        let taken = if exclusive { f.lock() } else { f.lock_shared() };
        taken.map_err(io_at(&path))?;
        Ok(f)
    }

    /// Say that this process holds the entries `keys` (planned or being computed):
    /// `gc` removes none of them while the process lives.
    pub fn hold<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Result<(), StoreError> {
        let mut keys = keys.peekable();
        if keys.peek().is_none() {
            return Ok(());
        }
        let (set, _) = self.store_set(keys)?;
        self.hold_line(&format!("set {set}\n"))
    }

    /// As [`Store::hold`], for one key.
    pub fn hold_key(&self, key: &str) -> Result<(), StoreError> {
        self.hold_line(&format!("key {key}\n"))
    }

    fn hold_line(&self, line: &str) -> Result<(), StoreError> {
        let path = self.process_scratch()?.join("holds");
        append(&path, line.as_bytes()).map_err(io_at(&path))
    }

    /// The keys of a stored key list (empty when it is gone).
    pub fn read_set(&self, digest: &str) -> Vec<String> {
        fs::read_to_string(self.set_path(digest)).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    /// Every use line in the cache, by log file name.
    pub fn use_logs(&self) -> Result<BTreeMap<String, Vec<UseLine>>, StoreError> {
        let dir = self.uses_dir();
        let mut out = BTreeMap::new();
        let listing = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::Io { path: dir, source: e }),
        };
        for e in listing.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".log") {
                continue;
            }
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            out.insert(name, parse_log(&text));
        }
        Ok(out)
    }

    /// Replace the log `name` with `lines` (none: remove it). Under the exclusive gc
    /// lock only.
    pub(crate) fn rewrite_log(&self, name: &str, lines: &[UseLine]) -> Result<(), StoreError> {
        let path = self.uses_dir().join(name);
        if lines.is_empty() {
            return durable::remove_path(&path).map_err(io_at(&path));
        }
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend(serde_json::to_vec(l).expect("plain data"));
            bytes.push(b'\n');
        }
        durable::write_bytes(&path, &bytes, false).map_err(io_at(&path))
    }

    /// The digests of the stored key lists.
    pub(crate) fn set_digests(&self) -> Vec<String> {
        let dir = self.uses_dir().join("sets");
        let names = fs::read_dir(dir).into_iter().flatten().flatten();
        names.filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".keys").map(str::to_string)).collect()
    }

    pub(crate) fn remove_set(&self, digest: &str) -> Result<(), StoreError> {
        let path = self.set_path(digest);
        durable::remove_path(&path).map_err(io_at(&path))
    }
}

/// The lines of a log that parse; a torn or foreign line is skipped.
pub fn parse_log(text: &str) -> Vec<UseLine> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Append `bytes` to `path` in one write (created under the umask if need be).
fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)?.write_all(bytes)
}

/// The keys held by the live processes whose scratch folders are under `tmp`: a folder
/// whose lock another process holds now.
pub(crate) fn live_holds(store: &Store) -> HashSet<String> {
    let mut keys = HashSet::new();
    let tmp = store.sub("tmp");
    for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let dir = e.path();
        let holds = dir.join("holds");
        let Ok(text) = fs::read_to_string(&holds) else { continue };
        let lock = super::cache::lock_of(&dir);
        // Ours, or another live process's: both count.
        let live = store.is_own_scratch(&dir) || (lock.exists() && matches!(durable::try_lock(&lock), Ok(None)));
        if !live {
            continue;
        }
        for line in text.lines() {
            if let Some(k) = line.strip_prefix("key ") {
                keys.insert(k.to_string());
            } else if let Some(set) = line.strip_prefix("set ") {
                keys.extend(store.read_set(set));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_one_line_and_its_list_is_stored_once() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let keys = ["a".repeat(64), "b".repeat(64)];
        let file = Path::new("/x/p.yaml");
        store.record_use(file, UseKind::Run, keys.iter().map(String::as_str)).unwrap();
        store.record_use(file, UseKind::Status, keys.iter().map(String::as_str)).unwrap();
        store.record_use(file, UseKind::Run, std::iter::empty()).unwrap();
        let logs = store.use_logs().unwrap();
        assert_eq!(logs.len(), 1);
        let lines = logs.values().next().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].what, lines[1].what), (UseKind::Run, UseKind::Status));
        assert_eq!(lines[0].set, lines[1].set);
        assert_eq!(lines[0].pipeline, "/x/p.yaml");
        assert_eq!(store.read_set(&lines[0].set), keys);
        assert_eq!(store.set_digests().len(), 1);
    }

    #[test]
    fn holds_count_while_their_process_lives() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        store.hold(["k1", "k2"].into_iter()).unwrap();
        store.hold_key("k3").unwrap();
        let held = live_holds(&store);
        assert!(["k1", "k2", "k3"].iter().all(|k| held.contains(*k)), "{held:?}");
        // Another process's folder whose lock nobody holds: a dead process.
        let dead = t.path().join("tmp/p1-dead");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join("holds"), "key k9\n").unwrap();
        fs::write(t.path().join("tmp/p1-dead.lock"), "").unwrap();
        assert!(!live_holds(&store).contains("k9"));
    }

    #[test]
    fn torn_lines_are_skipped() {
        let line = r#"{"t":5,"what":"run","user":"u","uid":1,"host":"h","pipeline":"/p","set":"s","entries":1}"#;
        let lines = parse_log(&format!("{line}\n{{\"t\":6,\"wh\n"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].t, 5);
    }
}
