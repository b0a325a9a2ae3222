//! Content digests of workspace files and folders, with a stat cache so a no-op run does
//! not read every file again.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One file of an output or input, relative to the output's root ("" for a lone file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// The digest of a file, or of a folder as the list of its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub digest: String,
    pub size: u64,
    /// A lone file has one entry with an empty path; a folder one per file, sorted.
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

impl Content {
    pub fn from_files(dir: bool, mut files: Vec<FileEntry>) -> Content {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let size = files.iter().map(|f| f.size).sum();
        let digest = if dir {
            let mut h = blake3::Hasher::new();
            for f in &files {
                h.update(f.path.as_bytes());
                h.update(b"\0");
                h.update(f.digest.as_bytes());
                h.update(if f.executable { b"x\n" } else { b"-\n" });
            }
            h.finalize().to_hex().to_string()
        } else {
            files[0].digest.clone()
        };
        Content { digest, size, files, dir }
    }
}

pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut h = blake3::Hasher::new();
    let f = fs::File::open(path)?;
    let size = h.update_reader(f)?.count();
    Ok((h.finalize().to_hex().to_string(), size))
}

/// Every file below `dir`, as sorted relative paths.
pub fn walk(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = stack.pop() {
        for entry in fs::read_dir(&abs)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if fs::metadata(entry.path())?.is_dir() {
                stack.push((entry.path(), child_rel));
            } else {
                out.push(child_rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            ino: m.ino(),
        }
    }
}

/// Remembers file digests by (size, mtime, ctime, inode): a file whose stamp is
/// unchanged is not read again. Stored in the cache, one file per workspace.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: HashMap<String, (Stamp, String)>,
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct StatFile {
    entries: Vec<(String, Stamp, String)>,
}

impl StatCache {
    pub fn load(file: PathBuf) -> StatCache {
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<StatFile>(&b).ok())
            .map(|s| s.entries.into_iter().map(|(p, st, d)| (p, (st, d))).collect())
            .unwrap_or_default();
        StatCache { file: Some(file), entries, dirty: false }
    }

    /// Digest of a workspace file or folder (`abs` absolute).
    pub fn content(&mut self, abs: &Path) -> io::Result<Content> {
        let meta = fs::metadata(abs)?;
        if meta.is_dir() {
            let mut files = Vec::new();
            for rel in walk(abs)? {
                let p = abs.join(&rel);
                let m = fs::metadata(&p)?;
                let (digest, size) = self.file_digest(&p, &m)?;
                files.push(FileEntry { path: rel, digest, size, executable: m.mode() & 0o111 != 0 });
            }
            Ok(Content::from_files(true, files))
        } else {
            let (digest, size) = self.file_digest(abs, &meta)?;
            let executable = meta.mode() & 0o111 != 0;
            Ok(Content::from_files(false, vec![FileEntry { path: String::new(), digest, size, executable }]))
        }
    }

    /// Whether the workspace path `abs` holds exactly `content` now. A lone file
    /// whose stamp is remembered costs one `stat` and no allocation.
    pub fn holds(&mut self, abs: &Path, content: &Content) -> bool {
        self.holds_known(abs, content) || self.content(abs).is_ok_and(|c| c.digest == content.digest)
    }

    /// Whether the lone file `abs` is known to hold `content` now: its stamp is the
    /// remembered one. `false` means "not known", never "differs". Reads only, so many
    /// threads can ask at once.
    pub fn holds_known(&self, abs: &Path, content: &Content) -> bool {
        !content.dir
            && fs::metadata(abs).is_ok_and(|meta| {
                meta.is_file()
                    && self
                        .entries
                        .get(&*abs.to_string_lossy())
                        .is_some_and(|(s, d)| *s == Stamp::of(&meta) && *d == content.digest)
            })
    }

    fn file_digest(&mut self, abs: &Path, meta: &fs::Metadata) -> io::Result<(String, u64)> {
        let stamp = Stamp::of(meta);
        if let Some((s, d)) = self.entries.get(&*abs.to_string_lossy())
            && *s == stamp
        {
            return Ok((d.clone(), stamp.size));
        }
        let (digest, size) = hash_file(abs)?;
        self.remember(abs, meta, &digest);
        Ok((digest, size))
    }

    /// Record a digest computed elsewhere (a file just restored from the cache).
    pub fn remember(&mut self, abs: &Path, meta: &fs::Metadata, digest: &str) {
        self.entries.insert(abs.to_string_lossy().into_owned(), (Stamp::of(meta), digest.to_string()));
        self.dirty = true;
    }

    pub fn save(&mut self) -> io::Result<()> {
        let (Some(file), true) = (&self.file, self.dirty) else { return Ok(()) };
        let mut entries: Vec<(String, Stamp, String)> =
            self.entries.iter().map(|(p, (s, d))| (p.clone(), *s, d.clone())).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let bytes = serde_json::to_vec(&StatFile { entries }).map_err(io::Error::other)?;
        crate::durable::write_bytes(file, &bytes, false)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_digest_depends_on_names_and_content() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("d/sub")).unwrap();
        fs::write(t.path().join("d/a"), "1").unwrap();
        fs::write(t.path().join("d/sub/b"), "2").unwrap();
        let mut sc = StatCache::default();
        let c1 = sc.content(&t.path().join("d")).unwrap();
        assert_eq!(c1.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["a", "sub/b"]);
        fs::rename(t.path().join("d/a"), t.path().join("d/c")).unwrap();
        let c2 = sc.content(&t.path().join("d")).unwrap();
        assert_ne!(c1.digest, c2.digest);
        fs::write(t.path().join("f"), "hello").unwrap();
        let f = sc.content(&t.path().join("f")).unwrap();
        assert_eq!(f.digest, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(f.size, 5);
    }
}
