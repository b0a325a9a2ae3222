//! The store: objects by content, manifests by key, per-key locks, and the check that
//! every byte read back is the byte that was stored.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::manifest::{MANIFEST_FORMAT, Manifest};
use crate::digest::{Content, FileEntry, walk};
use crate::durable;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// An object's bytes no longer hash to its name: it was moved to `quarantine/`, and
    /// every entry that names it counts as damaged until it is computed again.
    #[error("cache object {digest} is damaged: its content no longer matches its digest (moved to {})", quarantined.display())]
    Damaged { digest: String, quarantined: PathBuf },
    /// An object an entry names is not in the cache (removed by hand, or quarantined
    /// by another process).
    #[error("cache object {digest} is missing from {}", path.display())]
    Missing { digest: String, path: PathBuf },
}

impl StoreError {
    /// Whether the problem is with the stored bytes (recompute) rather than the disk.
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Damaged { .. } | StoreError::Missing { .. })
    }
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// What the cache holds for one key.
#[derive(Debug)]
pub enum Lookup {
    /// A complete entry: its manifest and every object it names.
    Hit(Box<Manifest>),
    /// Nothing was ever published under this key (or it was removed whole).
    Miss,
    /// A manifest exists but cannot be used: an object it names was quarantined or is
    /// gone, or the manifest itself is unreadable. Computing the stage again repairs it.
    Damaged { problems: Vec<Damage> },
}

/// Why an entry that exists cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The manifest does not parse: the parser's message.
    Unreadable(String),
    /// The manifest is another key's.
    OtherKey,
    /// The key structure no longer hashes to the key: edited by hand.
    KeyStructure,
    /// An object an output names is gone, or failed verification and was quarantined.
    Object { file: String, digest: String, quarantined: bool },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Unreadable(e) => write!(f, "its manifest is unreadable: {e}"),
            Damage::OtherKey => f.write_str("its manifest names another key"),
            Damage::KeyStructure => {
                f.write_str("its manifest's key structure does not hash to its key (edited by hand?)")
            }
            Damage::Object { file, digest, quarantined } => {
                let why = if *quarantined { "failed verification and was quarantined" } else { "is missing" };
                write!(f, "output {file} (object {}) {why}", &digest[..16.min(digest.len())])
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This process's folder under `tmp/`, made on first use and held under a lock, so
    /// `pipe cache gc` can tell the scratch of a live process from a killed one's.
    scratch_root: Arc<OnceLock<ProcessScratch>>,
}

#[derive(Debug)]
struct ProcessScratch {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Drop for ProcessScratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(lock_of(self.dir.path()));
    }
}

/// The lock file that says a `tmp/` folder belongs to a live process.
pub(crate) fn lock_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

/// What `pipe cache verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub entries: usize,
    pub objects: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for sub in ["objects", "entries", "locks", "records", "stat", "tmp", "resume"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_at(&p))?;
        }
        let root = std::path::absolute(root).map_err(io_at(root))?;
        Ok(Store { root, scratch_root: Arc::new(OnceLock::new()) })
    }

    /// The store at `root` as it stands, creating nothing: to read from while a
    /// pipeline file that may yet be refused is parsed.
    pub fn existing(root: &Path) -> Result<Store, StoreError> {
        let root = std::path::absolute(root).map_err(io_at(root))?;
        Ok(Store { root, scratch_root: Arc::new(OnceLock::new()) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sub(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn entry_path(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(&key[..2]).join(format!("{key}.json"))
    }

    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.root.join("objects").join(&digest[..2]).join(&digest[2..])
    }

    fn quarantine_path(&self, digest: &str) -> PathBuf {
        self.root.join("quarantine").join(digest)
    }

    /// The entry for `key` if it is complete: its manifest exists and so does every
    /// object it names. Anything less is `None`.
    pub fn entry(&self, key: &str) -> Result<Option<Manifest>, StoreError> {
        Ok(match self.lookup(key)? {
            Lookup::Hit(m) => Some(*m),
            Lookup::Miss | Lookup::Damaged { .. } => None,
        })
    }

    /// What the cache holds for `key`. Costs one read and one `stat` per object; no
    /// object is hashed here (that happens when its bytes are read).
    pub fn lookup(&self, key: &str) -> Result<Lookup, StoreError> {
        let path = self.entry_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let m = match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) => m,
            Err(e) => return Ok(Lookup::Damaged { problems: vec![Damage::Unreadable(e.to_string())] }),
        };
        if m.format != MANIFEST_FORMAT {
            // Written by another version of pipe: not an entry this build can use.
            return Ok(Lookup::Miss);
        }
        if m.key != key {
            return Ok(Lookup::Damaged { problems: vec![Damage::OtherKey] });
        }
        // A key structure edited by hand no longer says what the entry was computed from.
        if m.key_struct.digest() != key {
            return Ok(Lookup::Damaged { problems: vec![Damage::KeyStructure] });
        }
        let mut problems = Vec::new();
        for (name, o) in &m.outputs {
            for f in &o.content.files {
                if !self.object_path(&f.digest).exists() {
                    let quarantined = self.quarantine_path(&f.digest).exists();
                    let file = if f.path.is_empty() { name.clone() } else { format!("{name}/{}", f.path) };
                    problems.push(Damage::Object { file, digest: f.digest.clone(), quarantined });
                }
            }
        }
        Ok(if problems.is_empty() { Lookup::Hit(Box::new(m)) } else { Lookup::Damaged { problems } })
    }

    /// Make `m` the entry for its key: written whole and synced, or not at all.
    pub fn publish(&self, m: &Manifest) -> Result<(), StoreError> {
        let path = self.entry_path(&m.key);
        let bytes = serde_json::to_vec_pretty(m).expect("a manifest is plain data");
        durable::write_bytes(&path, &bytes, true).map_err(io_at(&path))
    }

    /// This process's own folder under `tmp/` (see `scratch_root`).
    fn process_tmp(&self) -> Result<&Path, StoreError> {
        if let Some(s) = self.scratch_root.get() {
            return Ok(s.dir.path());
        }
        let tmp = self.root.join("tmp");
        let make = || -> io::Result<ProcessScratch> {
            // The lock first (a new file with a random name), the folder second, named
            // after it: gc never sees the folder unlocked.
            let pid = std::process::id();
            let (_, lock_path) =
                tempfile::Builder::new().prefix(&format!("p{pid}-")).suffix(".lock").tempfile_in(&tmp)?.keep()?;
            // Others sharing the cache must be able to test it from `gc`.
            durable::set_mode(&lock_path, 0o666)?;
            let lock = durable::lock(&lock_path)?;
            let name = lock_path.file_stem().expect("a named lock file").to_os_string();
            let dir = tempfile::Builder::new().prefix(&name).rand_bytes(0).tempdir_in(&tmp)?;
            durable::set_mode(dir.path(), 0o777)?;
            Ok(ProcessScratch { dir, _lock: lock })
        };
        let made = make().map_err(io_at(&tmp))?;
        Ok(self.scratch_root.get_or_init(|| made).dir.path())
    }

    /// This process's scratch folder (made on first use), for files that say what it
    /// is doing while it lives.
    pub(crate) fn process_scratch(&self) -> Result<&Path, StoreError> {
        self.process_tmp()
    }

    /// Whether `dir` is this process's own scratch folder.
    pub(crate) fn is_own_scratch(&self, dir: &Path) -> bool {
        self.scratch_root.get().is_some_and(|s| s.dir.path() == dir)
    }

    /// Copy a workspace file or folder into the objects, returning its content.
    pub fn store(&self, src: &Path) -> Result<Content, StoreError> {
        let meta = fs::metadata(src).map_err(io_at(src))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            for rel in walk(src).map_err(io_at(src))? {
                files.push(self.store_file(&src.join(&rel), rel)?);
            }
            Ok(Content::from_files(true, files))
        } else {
            Ok(Content::from_files(false, vec![self.store_file(src, String::new())?]))
        }
    }

    /// Copy one file into the objects while hashing it; stored once per content.
    fn store_file(&self, src: &Path, rel: String) -> Result<FileEntry, StoreError> {
        let tmp_dir = self.process_tmp()?;
        let mut input = File::open(src).map_err(io_at(src))?;
        let executable = input.metadata().map_err(io_at(src))?.permissions().mode() & 0o111 != 0;
        let mut tmp = tempfile::Builder::new().prefix("obj-").tempfile_in(tmp_dir).map_err(io_at(tmp_dir))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf).map_err(io_at(src))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io_at(tmp.path()))?;
            size += n as u64;
        }
        let digest = hasher.finalize().to_hex().to_string();
        if !self.object_path(&digest).exists() {
            tmp.as_file().sync_all().map_err(io_at(tmp.path()))?;
            self.adopt(tmp, &digest)?;
        }
        Ok(FileEntry { path: rel, digest, size, executable })
    }

    /// Hash the object `f` names and compare. A mismatch moves it to `quarantine/`
    /// (where `pipe cache verify` and a person can still look at it) and is an error;
    /// the entries naming it then look up as damaged.
    pub fn verify_object(&self, f: &FileEntry) -> Result<(), StoreError> {
        let path = self.object_path(&f.digest);
        match crate::digest::hash_file(&path) {
            Ok((d, size)) if d == f.digest && size == f.size => Ok(()),
            Ok(_) => Err(self.quarantine(&f.digest)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing { digest: f.digest.clone(), path })
            }
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Move a damaged object out of `objects/`; the error to report for it.
    fn quarantine(&self, digest: &str) -> StoreError {
        let from = self.object_path(digest);
        let to = self.quarantine_path(digest);
        let moved = to.parent().map_or(Ok(()), fs::create_dir_all).and_then(|()| fs::rename(&from, &to));
        match moved {
            // Another reader may have moved it first: the object is out either way.
            Ok(()) => StoreError::Damaged { digest: digest.to_string(), quarantined: to },
            Err(_) if !from.exists() => StoreError::Damaged { digest: digest.to_string(), quarantined: to },
            Err(source) => StoreError::Io { path: from, source },
        }
    }

    /// The bytes of a stored single file, verified.
    pub fn read(&self, content: &Content) -> Result<Vec<u8>, StoreError> {
        let f = content.files.first().ok_or_else(|| StoreError::Missing {
            digest: content.digest.clone(),
            path: self.object_path(&content.digest),
        })?;
        self.object_bytes(f)
    }

    /// Whether the object `digest` is here (not whether its bytes are right).
    pub fn has_object(&self, digest: &str) -> bool {
        self.object_path(digest).exists()
    }

    /// A new file in this process's scratch for an object on its way in (from a
    /// remote); removed if it is dropped before [`Store::adopt`].
    pub fn incoming(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        let tmp = self.process_tmp()?;
        tempfile::Builder::new().prefix("in-").tempfile_in(tmp).map_err(io_at(tmp))
    }

    /// Make `file` (synced, its bytes checked by the caller to hash to `digest`) the
    /// object `digest`: read-only, moved into place whole.
    pub fn adopt(&self, file: tempfile::NamedTempFile, digest: &str) -> Result<(), StoreError> {
        let dest = self.object_path(digest);
        if dest.exists() {
            return Ok(());
        }
        let parent = dest.parent().expect("objects have a folder");
        fs::create_dir_all(parent).map_err(io_at(parent))?;
        // Read-only for everyone the umask lets read it: a task given a hard link to an
        // object cannot change the cache through it.
        durable::set_mode(file.path(), 0o444).map_err(io_at(file.path()))?;
        file.persist(&dest).map_err(|e| StoreError::Io { path: dest.clone(), source: e.error })?;
        Ok(())
    }

    /// The bytes of object `f`, verified (a mismatch quarantines it).
    pub fn object_bytes(&self, f: &FileEntry) -> Result<Vec<u8>, StoreError> {
        let path = self.object_path(&f.digest);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing { digest: f.digest.clone(), path: path.clone() },
            _ => StoreError::Io { path: path.clone(), source: e },
        })?;
        if blake3::hash(&bytes).to_hex().as_str() != f.digest {
            return Err(self.quarantine(&f.digest));
        }
        Ok(bytes)
    }

    /// Put stored content at `dest` in the workspace, replacing what is there. Each
    /// file appears whole (written beside, then renamed), and is verified on the way.
    pub fn restore(&self, content: &Content, dest: &Path) -> Result<(), StoreError> {
        for f in &content.files {
            self.verify_object(f)?;
        }
        durable::remove_path(dest).map_err(io_at(dest))?;
        for f in &content.files {
            let target = if content.dir { dest.join(&f.path) } else { dest.to_path_buf() };
            let parent = target.parent().expect("workspace paths have a folder");
            fs::create_dir_all(parent).map_err(io_at(parent))?;
            let src = self.object_path(&f.digest);
            let mut input = File::open(&src).map_err(io_at(&src))?;
            let mode = if f.executable { 0o777 } else { 0o666 };
            durable::replace_with(
                &target,
                "pipe",
                false,
                |tmp| File::create(tmp).and_then(|mut out| io::copy(&mut input, &mut out)).map(drop),
                |_, e| e,
            )
            .and_then(|()| durable::set_mode(&target, mode))
            .map_err(io_at(&target))?;
        }
        if content.dir && content.files.is_empty() {
            fs::create_dir_all(dest).map_err(io_at(dest))?;
        }
        Ok(())
    }

    /// Make stored content readable at `dest` without copying: each file is a hard
    /// link to its object (read-only, so a task cannot damage the cache), or a copy
    /// where links are not possible. Every object is verified first: a task never reads
    /// bytes that are not the ones its key was computed from.
    pub fn link(&self, content: &Content, dest: &Path) -> Result<(), StoreError> {
        for f in &content.files {
            self.verify_object(f)?;
            let target = if content.dir { dest.join(&f.path) } else { dest.to_path_buf() };
            let parent = target.parent().expect("link targets have a folder");
            fs::create_dir_all(parent).map_err(io_at(parent))?;
            let src = self.object_path(&f.digest);
            if fs::hard_link(&src, &target).is_err() {
                fs::copy(&src, &target).map_err(io_at(&target))?;
            }
        }
        if content.dir && content.files.is_empty() {
            fs::create_dir_all(dest).map_err(io_at(dest))?;
        }
        Ok(())
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }

    /// Block until this process is the only one computing `key`. The lock goes with
    /// the returned file, and with the process if it dies.
    pub fn lock(&self, key: &str) -> Result<File, StoreError> {
        let path = self.lock_path(key);
        durable::lock(&path).map_err(io_at(&path))
    }

    /// The lock of `key` if no other process holds it now.
    pub fn try_lock(&self, key: &str) -> Result<Option<File>, StoreError> {
        let path = self.lock_path(key);
        durable::try_lock(&path).map_err(io_at(&path))
    }

    /// The folder where a stage keeps state to resume from after a killed run.
    pub fn resume_dir(&self, key: &str) -> PathBuf {
        self.root.join("resume").join(key)
    }

    /// A fresh folder for a task's outputs, removed when dropped (and by `pipe cache
    /// gc` if the process is killed first).
    pub fn scratch(&self) -> Result<tempfile::TempDir, StoreError> {
        let tmp = self.process_tmp()?;
        tempfile::Builder::new().prefix("stage-").tempdir_in(tmp).map_err(io_at(tmp))
    }

    /// Every manifest in the cache (unreadable ones are reported by `verify`).
    pub fn manifests(&self) -> Result<Vec<(PathBuf, Option<Manifest>)>, StoreError> {
        let dir = self.root.join("entries");
        let mut out = Vec::new();
        for rel in walk(&dir).map_err(io_at(&dir))? {
            if !rel.ends_with(".json") {
                continue;
            }
            let path = dir.join(&rel);
            let m = fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
            out.push((path, m));
        }
        Ok(out)
    }

    /// Re-hash every object that an entry names and check every manifest. Read-only:
    /// nothing is quarantined here, so a person can look at what is damaged.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut checked = std::collections::HashSet::new();
        for (path, m) in self.manifests()? {
            report.entries += 1;
            let Some(m) = m else {
                report.problems.push(format!("{}: not a readable manifest", path.display()));
                continue;
            };
            if m.key_struct.digest() != m.key {
                report.problems.push(format!("{}: its key does not match its key structure", path.display()));
            }
            for (name, out) in &m.outputs {
                for f in out.content.files.iter().chain(m.log.iter().flat_map(|l| &l.files)) {
                    if !checked.insert(f.digest.clone()) {
                        continue;
                    }
                    let obj = self.object_path(&f.digest);
                    match crate::digest::hash_file(&obj) {
                        Ok((d, size)) if d == f.digest && size == f.size => {
                            report.objects += 1;
                            report.bytes += size;
                        }
                        Ok(_) => report.problems.push(format!(
                            "{} ({name} of stage {}): content does not match its digest",
                            obj.display(),
                            m.stage
                        )),
                        Err(e) if e.kind() == io::ErrorKind::NotFound && self.quarantine_path(&f.digest).exists() => {
                            report.problems.push(format!(
                                "{} ({name} of stage {}): failed verification when read and was quarantined; \
                                 `pipe run` computes it again",
                                obj.display(),
                                m.stage
                            ))
                        }
                        Err(e) => report.problems.push(format!("{} ({name} of stage {}): {e}", obj.display(), m.stage)),
                    }
                }
            }
        }
        Ok(report)
    }
}
