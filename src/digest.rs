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
    #[serde(deserialize_with = "exact")]
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

/// A list read without spare room: JSON does not say how long a list is, so it grows by
/// doubling, and a plan of a large pipeline holds two of these per stage.
fn exact<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let mut v = Vec::<T>::deserialize(d)?;
    v.shrink_to_fit();
    Ok(v)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Absolute path -> its stamp and digest (as bytes: a workspace of 100,000 files
    /// is read on every run, and a hex string would be one more allocation each).
    entries: HashMap<String, (Stamp, blake3::Hash)>,
    dirty: bool,
}

/// The first line of a stat file; another one (an older pipe's) is ignored, which
/// only costs hashing the workspace's files once more.
const STAT_HEADER: &str = "pipe stat 2";

/// One line per file: digest, size, mtime and ctime (ns), inode, and the path as a
/// JSON string, separated by tabs.
fn stat_line(line: &str) -> Option<(String, (Stamp, blake3::Hash))> {
    let mut f = line.splitn(6, '\t');
    let digest = blake3::Hash::from_hex(f.next()?).ok()?;
    let size = f.next()?.parse().ok()?;
    let mtime_ns = f.next()?.parse().ok()?;
    let ctime_ns = f.next()?.parse().ok()?;
    let ino = f.next()?.parse().ok()?;
    let path: String = serde_json::from_str(f.next()?).ok()?;
    Some((path, (Stamp { size, mtime_ns, ctime_ns, ino }, digest)))
}

impl StatCache {
    pub fn load(file: PathBuf) -> StatCache {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let mut lines = text.lines();
        let entries = if lines.next() == Some(STAT_HEADER) {
            let mut entries = HashMap::with_capacity(text.bytes().filter(|b| *b == b'\n').count());
            // A damaged line ends what is believed: the files after it are hashed again.
            entries.extend(lines.map_while(stat_line));
            entries
        } else {
            HashMap::new()
        };
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
                        .is_some_and(|(s, d)| *s == Stamp::of(&meta) && d.to_hex().as_str() == content.digest)
            })
    }

    fn file_digest(&mut self, abs: &Path, meta: &fs::Metadata) -> io::Result<(String, u64)> {
        let stamp = Stamp::of(meta);
        if let Some((s, d)) = self.entries.get(&*abs.to_string_lossy())
            && *s == stamp
        {
            return Ok((d.to_hex().to_string(), stamp.size));
        }
        let (digest, size) = hash_file(abs)?;
        self.remember(abs, meta, &digest);
        Ok((digest, size))
    }

    /// Record a digest computed elsewhere (a file just restored from the cache).
    pub fn remember(&mut self, abs: &Path, meta: &fs::Metadata, digest: &str) {
        // Digests are made here, so always hex; one that is not is not remembered.
        if let Ok(d) = blake3::Hash::from_hex(digest) {
            self.entries.insert(abs.to_string_lossy().into_owned(), (Stamp::of(meta), d));
            self.dirty = true;
        }
    }

    pub fn save(&mut self) -> io::Result<()> {
        let (Some(file), true) = (&self.file, self.dirty) else { return Ok(()) };
        let mut entries: Vec<(&String, &(Stamp, blake3::Hash))> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut text = String::with_capacity(entries.len() * 160);
        text.push_str(STAT_HEADER);
        text.push('\n');
        for (path, (s, d)) in entries {
            use std::fmt::Write as _;
            let path = serde_json::to_string(path).map_err(io::Error::other)?;
            let _ = writeln!(text, "{}\t{}\t{}\t{}\t{}\t{path}", d.to_hex(), s.size, s.mtime_ns, s.ctime_ns, s.ino);
        }
        crate::durable::write_bytes(file, text.as_bytes(), false)?;
        // The JSON file of earlier versions, superseded by this one.
        let _ = fs::remove_file(file.with_extension("json"));
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_file_keeps_digests_across_loads_and_a_damaged_line_ends_it() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a b\t\"c"), t.path().join("b"));
        fs::write(&a, "one").unwrap();
        fs::write(&b, "two").unwrap();
        let file = t.path().join("w.stat");
        let mut sc = StatCache::load(file.clone());
        let (ca, cb) = (sc.content(&a).unwrap(), sc.content(&b).unwrap());
        sc.save().unwrap();
        let again = StatCache::load(file.clone());
        assert_eq!(again.entries.len(), 2);
        assert!(again.holds_known(&a, &ca) && again.holds_known(&b, &cb));
        assert!(!again.holds_known(&a, &cb), "another digest is not known");
        // A line cut short: what follows it is not believed, what precedes it is.
        let text = fs::read_to_string(&file).unwrap();
        let cut = text.rfind('\t').unwrap();
        fs::write(&file, &text[..cut]).unwrap();
        assert_eq!(StatCache::load(file.clone()).entries.len(), 1);
        // A file of another format (an earlier version's JSON) is ignored whole.
        fs::write(&file, r#"{"entries":[]}"#).unwrap();
        assert!(StatCache::load(file).entries.is_empty());
    }

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
