//! The store: objects by content, manifests by key, per-key locks.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::manifest::{MANIFEST_FORMAT, Manifest};
use crate::digest::{Content, FileEntry, walk};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
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
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sub(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(&key[..2]).join(format!("{key}.json"))
    }

    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.root.join("objects").join(&digest[..2]).join(&digest[2..])
    }

    /// The entry for `key`, if it is complete: its manifest exists and so does every
    /// object it names. Anything less is a miss.
    pub fn entry(&self, key: &str) -> Result<Option<Manifest>, StoreError> {
        let path = self.entry_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else { return Ok(None) };
        if m.format != MANIFEST_FORMAT || m.key != key {
            return Ok(None);
        }
        let complete = m.outputs.values().flat_map(|o| &o.content.files).all(|f| self.object_path(&f.digest).exists());
        Ok(complete.then_some(m))
    }

    /// Make `m` the entry for its key: written whole and synced, or not at all.
    pub fn publish(&self, m: &Manifest) -> Result<(), StoreError> {
        let path = self.entry_path(&m.key);
        let bytes = serde_json::to_vec_pretty(m).expect("a manifest is plain data");
        write_atomic(&path, &bytes, true).map_err(io_at(&path))
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
        let tmp_dir = self.root.join("tmp");
        let mut input = File::open(src).map_err(io_at(src))?;
        let executable = input.metadata().map_err(io_at(src))?.permissions().mode() & 0o111 != 0;
        let mut tmp = tempfile::Builder::new().prefix("obj-").tempfile_in(&tmp_dir).map_err(io_at(&tmp_dir))?;
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
        let dest = self.object_path(&digest);
        if !dest.exists() {
            tmp.as_file().sync_all().map_err(io_at(tmp.path()))?;
            let parent = dest.parent().expect("objects have a folder");
            fs::create_dir_all(parent).map_err(io_at(parent))?;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444)).map_err(io_at(tmp.path()))?;
            tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest.clone(), source: e.error })?;
        }
        Ok(FileEntry { path: rel, digest, size, executable })
    }

    /// Put stored content at `dest` in the workspace, replacing what is there. Each
    /// file appears whole (written beside, then renamed).
    pub fn restore(&self, content: &Content, dest: &Path) -> Result<(), StoreError> {
        crate::kinds::cmd::remove_path(dest).map_err(io_at(dest))?;
        for f in &content.files {
            let target = if content.dir { dest.join(&f.path) } else { dest.to_path_buf() };
            let parent = target.parent().expect("workspace paths have a folder");
            fs::create_dir_all(parent).map_err(io_at(parent))?;
            let src = self.object_path(&f.digest);
            let mut input = File::open(&src).map_err(io_at(&src))?;
            let mut tmp = tempfile::Builder::new().prefix(".pipe-").tempfile_in(parent).map_err(io_at(parent))?;
            io::copy(&mut input, &mut tmp).map_err(io_at(&target))?;
            let mode = if f.executable { 0o755 } else { 0o644 };
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io_at(&target))?;
            tmp.persist(&target).map_err(|e| StoreError::Io { path: target.clone(), source: e.error })?;
        }
        if content.dir && content.files.is_empty() {
            fs::create_dir_all(dest).map_err(io_at(dest))?;
        }
        Ok(())
    }

    /// Make stored content readable at `dest` without copying: each file is a hard
    /// link to its object (read-only, so a task cannot damage the cache), or a copy
    /// where links are not possible.
    pub fn link(&self, content: &Content, dest: &Path) -> Result<(), StoreError> {
        for f in &content.files {
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

    /// Block until this process is the only one computing `key`. The lock goes with
    /// the returned file, and with the process if it dies.
    pub fn lock(&self, key: &str) -> Result<File, StoreError> {
        let path = self.root.join("locks").join(format!("{key}.lock"));
        let f = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_at(&path))?;
        f.lock().map_err(io_at(&path))?;
        Ok(f)
    }

    /// The folder where a stage keeps state to resume from after a killed run.
    pub fn resume_dir(&self, key: &str) -> PathBuf {
        self.root.join("resume").join(key)
    }

    /// A fresh folder for a task's outputs, removed when dropped.
    pub fn scratch(&self) -> Result<tempfile::TempDir, StoreError> {
        let tmp = self.root.join("tmp");
        tempfile::Builder::new().prefix("stage-").tempdir_in(&tmp).map_err(io_at(&tmp))
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

    /// Re-hash every object that an entry names and check every manifest.
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
                        Err(e) => report.problems.push(format!("{} ({name} of stage {}): {e}", obj.display(), m.stage)),
                    }
                }
            }
        }
        Ok(report)
    }
}
