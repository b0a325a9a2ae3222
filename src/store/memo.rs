//! What the last run of a pipeline file found in the cache, so that a rerun reads one
//! file instead of one manifest (and a `stat` per object) per stage.
//!
//! It never decides a hit on its own authority. Each remembered entry is trusted only
//! while the cache folders it lies in are unchanged: publishing or replacing a
//! manifest, and adding, removing or quarantining an object, all create, rename or
//! remove a name in `entries/ab/` or `objects/cd/`, which changes that folder's
//! modification time. So the memo keeps, per folder, the time it had when the entries
//! were read, and an entry whose manifest folder or any of whose object folders has
//! changed since is looked up on disk again.
//!
//! A folder modified less than `SETTLED` before it was looked at is not trusted at all:
//! a second change within the same clock tick would leave the time as it was. Bytes are
//! still hashed when they are read, as for any entry; the memo only saves the lookups.
//! Where folder times cannot be relied on (a network filesystem whose clients cache
//! them, a FUSE filesystem that does not keep them), `PIPE_MEMO=off` turns it off.
//!
//! On disk, `records/<file>.memo`: a header line with the folder times, then one line
//! per stage: its key, its name (a JSON string) and its manifest without the key
//! structure (which the planner has computed anyway) as packed JSON arrays (see
//! `PackedEntry`), separated by tabs. Lines are parsed in parallel when the memo is
//! read, and written back as they were.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cache::{Lookup, Store, StoreError};
use super::manifest::{MANIFEST_FORMAT, Manifest, Output, Verified};
use crate::digest::{Content, FileEntry};
use crate::key::StageKey;
use crate::name_map::NameMap;

/// How long a folder must have been left alone before its time is trusted: far more
/// than any filesystem's timestamp granularity (2 s on FAT, a clock tick elsewhere).
const SETTLED: Duration = Duration::from_secs(2);

/// Bump when the line format changes: an unknown format is ignored, never misread.
const MEMO_FORMAT: u32 = 2;

/// `entries/00`..`entries/ff`, then `objects/00`..`objects/ff`.
const SHARDS: usize = 512;

/// Modification times (ns since the epoch) of the shard folders; `None` where a folder
/// is missing or too recently changed to be trusted.
type Stamps = Vec<Option<i64>>;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    /// The manifest format of the remembered entries: another one is not this build's.
    manifest: u32,
    stamps: Stamps,
}

/// A manifest less its format and key structure.
#[derive(Debug, Clone)]
struct Entry {
    stage: String,
    outputs: NameMap<Output>,
    log: Option<Content>,
    seconds: f64,
    created_unix: u64,
    inputs_verified: Option<Verified>,
}

/// A content as a memo line holds it: digest, size, flags (1: executable, 2: a folder,
/// 4: files listed), and the files unless it is one file named by its own digest,
/// which most are. Arrays rather than objects, and each digest once: the memo of a
/// large pipeline is read whole on every run, and this is a third of a manifest's
/// JSON, parsed in a third of the time.
type PackedContent = (String, u64, u8, Vec<(String, String, u64, bool)>);

/// An entry as a memo line holds it: stage, outputs (name, in the workspace, content),
/// log, seconds, creation time, and the bytes and seconds of its inputs' verification.
type PackedEntry = (String, Vec<(String, bool, PackedContent)>, Option<PackedContent>, f64, u64, Option<(u64, f64)>);

fn pack(c: &Content) -> PackedContent {
    let lone =
        !c.dir && matches!(c.files.as_slice(), [f] if f.path.is_empty() && f.digest == c.digest && f.size == c.size);
    if lone {
        (c.digest.clone(), c.size, u8::from(c.files[0].executable), Vec::new())
    } else {
        let files = c.files.iter().map(|f| (f.path.clone(), f.digest.clone(), f.size, f.executable)).collect();
        (c.digest.clone(), c.size, if c.dir { 2 | 4 } else { 4 }, files)
    }
}

fn unpack((digest, size, flags, files): PackedContent) -> Content {
    let files = if flags & 4 == 0 {
        vec![FileEntry { path: String::new(), digest: digest.clone(), size, executable: flags & 1 != 0 }]
    } else {
        files.into_iter().map(|(path, digest, size, executable)| FileEntry { path, digest, size, executable }).collect()
    };
    Content { digest, size, files, dir: flags & 2 != 0 }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let outputs: Vec<(String, bool, PackedContent)> =
            self.outputs.iter().map(|(n, o)| (n.clone(), o.workspace, pack(&o.content))).collect();
        let packed: PackedEntry = (
            self.stage.clone(),
            outputs,
            self.log.as_ref().map(pack),
            self.seconds,
            self.created_unix,
            self.inputs_verified.map(|v| (v.bytes, v.seconds)),
        );
        packed.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        let (stage, outputs, log, seconds, created_unix, verified) = PackedEntry::deserialize(d)?;
        let outputs =
            outputs.into_iter().map(|(n, workspace, c)| (n, Output { content: unpack(c), workspace })).collect();
        Ok(Entry {
            stage,
            outputs,
            log: log.map(unpack),
            seconds,
            created_unix,
            inputs_verified: verified.map(|(bytes, seconds)| Verified { bytes, seconds }),
        })
    }
}

impl Entry {
    fn of(m: &Manifest) -> Entry {
        Entry {
            stage: m.stage.clone(),
            outputs: m.outputs.clone(),
            log: m.log.clone(),
            seconds: m.seconds,
            created_unix: m.created_unix,
            inputs_verified: m.inputs_verified,
        }
    }

    fn manifest(self, key: &str, key_struct: StageKey) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            key: key.to_string(),
            key_struct,
            stage: self.stage,
            outputs: self.outputs,
            log: self.log,
            seconds: self.seconds,
            created_unix: self.created_unix,
            inputs_verified: self.inputs_verified,
            // Run information the memo leaves out: the manifest file has it.
            job: None,
        }
    }
}

/// The shards an entry's trust rests on: its manifest's folder and the folders of the
/// objects its outputs name (the objects a lookup checks).
fn shards(key: &str, outputs: &NameMap<Output>) -> impl Iterator<Item = usize> {
    let objects = outputs.values().flat_map(|o| o.content.files.iter()).map(|f| 256 + shard(&f.digest));
    std::iter::once(shard(key)).chain(objects)
}

fn shard(hex: &str) -> usize {
    usize::from_str_radix(hex.get(..2).unwrap_or("zz"), 16).unwrap_or(usize::MAX)
}

/// Whether an entry's folders are unchanged between `stamps` and `now`.
fn trusted(now: &Stamps, stamps: &Stamps, key: &str, outputs: &NameMap<Output>) -> bool {
    shards(key, outputs).all(|s| {
        let now = now.get(s).copied().flatten();
        now.is_some() && now == stamps.get(s).copied().flatten()
    })
}

/// One stage's line: where its key and manifest lie in the memo's text, and the
/// manifest read from it (until a lookup takes it).
#[derive(Debug)]
struct Line {
    key: std::ops::Range<usize>,
    entry: std::ops::Range<usize>,
    parsed: Option<Entry>,
    /// A lookup found it still true in this run: written back as it was.
    confirmed: bool,
}

/// The memo file's bytes: on a local disk, mapped from the page cache rather than
/// copied into fresh memory (at 100,000 stages the file is tens of MB, and zeroing and
/// filling that much new memory was a tenth of a no-op run). The file is only ever
/// replaced whole (a new file renamed over it), so a mapping keeps seeing the bytes it
/// was made of. On a network filesystem a file renamed over by another machine can
/// vanish from under a mapping, so there it is read.
enum Text {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
    Empty,
}

impl Text {
    fn open(file: &Path) -> Text {
        let Ok(f) = fs::File::open(file) else { return Text::Empty };
        if !on_local_disk(&f) {
            return fs::read(file).map_or(Text::Empty, Text::Read);
        }
        // SAFETY: the memo is written to a new file renamed over the old one, never
        // changed in place, and on a local filesystem the old file lives on while
        // mapped, so the mapped bytes do not change under us (only another program
        // truncating it by hand could, as with any mapped file).
        match unsafe { memmap2::Mmap::map(&f) } {
            Ok(m) => Text::Mapped(m),
            Err(_) => Text::Empty,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Text::Mapped(m) => m,
            Text::Read(b) => b,
            Text::Empty => &[],
        }
    }

    fn str(&self, range: std::ops::Range<usize>) -> &str {
        std::str::from_utf8(&self.bytes()[range]).unwrap_or_default()
    }
}

/// Whether `f` is on a filesystem of this machine (not NFS, SMB/CIFS, FUSE, Lustre,
/// GPFS, Ceph, 9p, AFS).
fn on_local_disk(f: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const REMOTE: [i64; 10] = [
        0x6969,     // NFS
        0x517B,     // SMB
        0xFE534D42, // SMB2
        0xFF534D42, // CIFS
        0x65735546, // FUSE
        0x0BD00BD0, // Lustre
        0x47504653, // GPFS
        0x00C36400, // Ceph
        0x01021997, // 9p
        0x5346414F, // AFS
    ];
    // SAFETY: `statfs` is plain integers, for which all zeroes is a valid value; and
    // fstatfs only writes into the struct it is given, for a descriptor open here.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    !REMOTE.contains(&(st.f_type as i64))
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Text({} bytes)", self.bytes().len())
    }
}

#[derive(Debug)]
pub struct Memo {
    file: PathBuf,
    text: Text,
    /// The times the loaded lines were read under.
    then: Stamps,
    /// The times now, taken before anything in the cache is read.
    now: Stamps,
    /// The lines of `text`, in file order.
    lines: Vec<Line>,
    /// Stage name -> its line, for the lines that still stand.
    index: HashMap<String, usize>,
    /// Hits found on disk in this run, to write: stage name -> (key, manifest JSON).
    next: HashMap<String, (String, String)>,
    changed: bool,
}

impl Memo {
    /// The memo of pipeline file `pipeline` (absolute) in `store`; empty when there is
    /// none or it cannot be read.
    pub fn load(store: &Store, pipeline: &Path) -> Memo {
        let id = super::records::pipeline_id(&pipeline.to_string_lossy());
        let file = store.sub("records").join(format!("{id}.memo"));
        // Off: no folder is trusted and no file read, so every lookup goes to the store
        // and nothing is remembered.
        let off = std::env::var_os("PIPE_MEMO").is_some_and(|v| v == "off");
        let now = if off { vec![None; SHARDS] } else { stamps(store.root()) };
        let text = if off { Text::Empty } else { Text::open(&file) };
        let (then, names, lines) = parse(text.bytes()).unwrap_or_default();
        let mut index = HashMap::with_capacity(names.len());
        index.extend(names.into_iter().enumerate().map(|(k, name)| (name, k)));
        Memo { file, text, then, now, lines, index, next: HashMap::new(), changed: false }
    }

    /// Whether the memo has a line for stage `name`.
    pub fn remembers(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Whether `key` is the key stage `name` had when the memo was written.
    pub fn had_key(&self, name: &str, key: &str) -> bool {
        self.index.get(name).is_some_and(|&k| &self.text.bytes()[self.lines[k].key.clone()] == key.as_bytes())
    }

    /// What the cache holds for stage `name` under `key` (its digest `digest`): from
    /// the memo when the folders of its entry are unchanged, from the store otherwise.
    /// A hit from the memo takes `key` into its manifest; otherwise it is given back.
    pub fn lookup(
        &mut self,
        store: &Store,
        name: &str,
        key: StageKey,
        digest: &str,
    ) -> Result<(Lookup, Option<StageKey>), StoreError> {
        if let Some(&k) = self.index.get(name)
            && let line = &mut self.lines[k]
            && &self.text.bytes()[line.key.clone()] == digest.as_bytes()
            && let Some(entry) = line.parsed.take()
            && trusted(&self.now, &self.then, digest, &entry.outputs)
        {
            line.confirmed = true;
            return Ok((Lookup::Hit(Box::new(entry.manifest(digest, key))), None));
        }
        let found = store.lookup(digest)?;
        if self.index.remove(name).is_some() {
            self.changed = true;
        }
        if let Lookup::Hit(m) = &found
            && trusted(&self.now, &self.now, digest, &m.outputs)
        {
            let entry = serde_json::to_string(&Entry::of(m)).expect("a manifest is plain data");
            self.next.insert(name.to_string(), (digest.to_string(), entry));
            self.changed = true;
        }
        Ok((found, Some(key)))
    }

    /// Stage `name` was computed in this run: what the memo knew of it is out of date.
    pub fn forget(&mut self, name: &str) {
        if self.next.remove(name).is_some() | self.index.remove(name).is_some() {
            self.changed = true;
        }
    }

    /// Write the memo if this run learned anything. Lines of stages this run did not
    /// look at are kept while their folders are unchanged.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let header = Header { format: MEMO_FORMAT, manifest: MANIFEST_FORMAT, stamps: self.now.clone() };
        let mut out = serde_json::to_vec(&header)?;
        out.push(b'\n');
        // (name, key, manifest): lines this run found still true (their parsed form
        // went into the plan), lines it did not look at whose folders are unchanged,
        // and entries it found on disk.
        let mut kept: Vec<(&str, &str, &[u8])> = Vec::new();
        for (name, &k) in &self.index {
            let line = &self.lines[k];
            let key = self.text.str(line.key.clone());
            // (A line a lookup gave up on left the index; its stage's new entry, if
            // any, is in `next`.)
            let keep =
                line.confirmed || line.parsed.as_ref().is_some_and(|e| trusted(&self.now, &self.then, key, &e.outputs));
            if keep {
                kept.push((name, key, &self.text.bytes()[line.entry.clone()]));
            }
        }
        for (name, (key, entry)) in &self.next {
            kept.push((name, key, entry.as_bytes()));
        }
        kept.sort_unstable();
        for (name, key, entry) in kept {
            out.extend_from_slice(key.as_bytes());
            out.push(b'\t');
            out.extend_from_slice(serde_json::to_string(name)?.as_bytes());
            out.push(b'\t');
            out.extend_from_slice(entry);
            out.push(b'\n');
        }
        crate::durable::write_bytes(&self.file, &out, false)?;
        self.changed = false;
        Ok(())
    }
}

/// The header's times, and each line's stage name and place in `text`.
fn parse(text: &[u8]) -> Option<(Stamps, Vec<String>, Vec<Line>)> {
    let head_end = text.iter().position(|b| *b == b'\n')?;
    let header: Header = serde_json::from_slice(&text[..head_end]).ok()?;
    if header.format != MEMO_FORMAT || header.manifest != MANIFEST_FORMAT || header.stamps.len() != SHARDS {
        return None;
    }
    let body = &text[head_end + 1..];
    let mut names = Vec::with_capacity(line_count(body));
    let mut lines = Vec::with_capacity(names.capacity());
    let mut at = head_end + 1;
    for line in text[at..].split(|b| *b == b'\n') {
        if line.is_empty() {
            at += 1;
            continue;
        }
        let mut parts = line.splitn(3, |b| *b == b'\t');
        let (key, name, entry) = (parts.next()?, parts.next()?, parts.next()?);
        std::str::from_utf8(key).ok()?;
        let name: String = serde_json::from_slice(name).ok()?;
        let end = at + line.len();
        names.push(name);
        lines.push(Line { key: at..at + key.len(), entry: end - entry.len()..end, parsed: None, confirmed: false });
        at += line.len() + 1;
    }
    let read = |l: &mut Line| l.parsed = serde_json::from_slice(&text[l.entry.clone()]).ok();
    if lines.len() > 1000 {
        lines.par_iter_mut().for_each(read);
    } else {
        lines.iter_mut().for_each(read);
    }
    Some((header.stamps, names, lines))
}

/// The number of lines in `text`.
fn line_count(text: &[u8]) -> usize {
    text.iter().filter(|b| **b == b'\n').count()
}

/// The current times of the shard folders under `root`, `None` for those missing or
/// changed within `SETTLED`.
fn stamps(root: &Path) -> Stamps {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let limit = now.saturating_sub(SETTLED).as_nanos() as i64;
    let one = |dir: PathBuf| {
        let m = fs::metadata(dir).ok()?;
        let t = m.mtime().checked_mul(1_000_000_000)?.checked_add(m.mtime_nsec())?;
        (t < limit).then_some(t)
    };
    let names = ["entries", "objects"];
    names.iter().flat_map(|n| (0..256).map(move |s| root.join(n).join(format!("{s:02x}")))).map(one).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_name_the_manifest_folder_then_object_folders() {
        let key = format!("0a{}", "0".repeat(62));
        let file =
            FileEntry { path: String::new(), digest: format!("ff{}", "1".repeat(62)), size: 1, executable: false };
        let outputs = NameMap::from([(
            "o".to_string(),
            Output { content: Content::from_files(false, vec![file]), workspace: true },
        )]);
        assert_eq!(shards(&key, &outputs).collect::<Vec<_>>(), vec![10, 256 + 255]);
    }

    /// Set every shard folder's time `ago` in the past, as if nothing had touched the
    /// cache since.
    fn age(store: &Store, ago: Duration) {
        for sub in ["entries", "objects"] {
            for dir in fs::read_dir(store.sub(sub)).unwrap() {
                let f = fs::File::open(dir.unwrap().path()).unwrap();
                f.set_modified(SystemTime::now() - ago).unwrap();
            }
        }
    }

    /// One published entry whose output is a file with `text`; its key.
    fn entry(store: &Store, dir: &Path, text: &str) -> StageKey {
        let src = dir.join("out.txt");
        fs::write(&src, text).unwrap();
        let content = store.store(&src).unwrap();
        let key = StageKey::new("cmd", 1, serde_json::json!({"run": text}), NameMap::new());
        let m = Manifest {
            format: MANIFEST_FORMAT,
            key: key.digest(),
            key_struct: key.clone(),
            stage: "a".into(),
            outputs: NameMap::from([("out.txt".to_string(), Output { content, workspace: true })]),
            log: None,
            seconds: 1.0,
            created_unix: 0,
            inputs_verified: None,
            job: None,
        };
        store.publish(&m).unwrap();
        key
    }

    /// A published entry, its folders aged as if left alone, and looked up once so the
    /// memo of `pipeline` remembers it; its key.
    fn remembered(store: &Store, dir: &Path, pipeline: &Path, text: &str) -> StageKey {
        let key = entry(store, dir, text);
        age(store, Duration::from_secs(10));
        assert_eq!(from_memo(store, pipeline, &key), (false, "hit"), "read from the disk");
        key
    }

    /// Whether the memo of `pipeline` answers `key` for stage `a` without the store:
    /// a memo hit takes the key.
    fn from_memo(store: &Store, pipeline: &Path, key: &StageKey) -> (bool, &'static str) {
        let mut memo = Memo::load(store, pipeline);
        let (found, back) = memo.lookup(store, "a", key.clone(), &key.digest()).unwrap();
        memo.save().unwrap();
        let word = match found {
            Lookup::Hit(m) => {
                assert_eq!(m.key_struct, *key);
                "hit"
            }
            Lookup::Miss => "miss",
            Lookup::Damaged { .. } => "damaged",
        };
        (back.is_none(), word)
    }

    #[test]
    fn a_memo_is_trusted_only_while_its_folders_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let pipeline = dir.path().join("p.yaml");
        let key = entry(&store, dir.path(), "one");
        // Folders changed just now are not trusted: looked up on disk, not remembered.
        assert_eq!(from_memo(&store, &pipeline, &key), (false, "hit"));
        assert_eq!(from_memo(&store, &pipeline, &key), (false, "hit"));
        // Settled: the first lookup reads the disk and remembers, the next is the memo's.
        let key = remembered(&store, dir.path(), &pipeline, "one");
        assert_eq!(from_memo(&store, &pipeline, &key), (true, "hit"));
        assert_eq!(from_memo(&store, &pipeline, &key), (true, "hit"));
        // Another key for the stage: the store's answer.
        let other = StageKey::new("cmd", 1, serde_json::json!({"run": "other"}), NameMap::new());
        assert_eq!(from_memo(&store, &pipeline, &other), (false, "miss"));
        // An object removed behind the memo's back changes its folder: damaged, not hit.
        let key = remembered(&store, dir.path(), &pipeline, "two");
        assert_eq!(from_memo(&store, &pipeline, &key), (true, "hit"));
        let m = store.entry(&key.digest()).unwrap().unwrap();
        let object = store.object_path(&m.outputs["out.txt"].content.digest);
        fs::remove_file(&object).unwrap();
        assert_eq!(from_memo(&store, &pipeline, &key), (false, "damaged"));
        // The entry removed (as `gc` does): a miss.
        let key = remembered(&store, dir.path(), &pipeline, "three");
        assert_eq!(from_memo(&store, &pipeline, &key), (true, "hit"));
        let manifest = store.sub("entries").join(&key.digest()[..2]).join(format!("{}.json", key.digest()));
        fs::remove_file(manifest).unwrap();
        assert_eq!(from_memo(&store, &pipeline, &key), (false, "miss"));
    }

    #[test]
    fn packed_lines_give_back_the_entry_they_were_made_of() {
        let file = |path: &str, d: char, size, executable| FileEntry {
            path: path.into(),
            digest: d.to_string().repeat(64),
            size,
            executable,
        };
        let lone = Content::from_files(false, vec![file("", 'a', 3, true)]);
        let folder = Content::from_files(true, vec![file("x/y", 'b', 1, false), file("z", 'c', 2, true)]);
        // Not one file named by its own digest: kept as it is, not made regular.
        let odd = Content { digest: "d".repeat(64), size: 3, files: vec![file("", 'e', 3, false)], dir: false };
        let entry = Entry {
            stage: "s[i=1]".into(),
            outputs: NameMap::from([
                ("o.txt".to_string(), Output { content: lone.clone(), workspace: true }),
                ("dir".to_string(), Output { content: folder, workspace: false }),
                ("odd".to_string(), Output { content: odd, workspace: false }),
            ]),
            log: Some(lone),
            seconds: 1.5,
            created_unix: 7,
            inputs_verified: Some(Verified { bytes: 9, seconds: 0.25 }),
        };
        let text = serde_json::to_string(&entry).unwrap();
        assert!(text.starts_with(r#"["s[i=1]",[["dir",false,["#), "{text}");
        let back: Entry = serde_json::from_str(&text).unwrap();
        let manifest = |e: Entry| {
            let key = StageKey::new("cmd", 1, serde_json::json!({}), NameMap::new());
            serde_json::to_value(e.manifest(&key.digest(), key)).unwrap()
        };
        assert_eq!(manifest(back), manifest(entry.clone()));
        let none = Entry { log: None, inputs_verified: None, ..entry };
        let back: Entry = serde_json::from_str(&serde_json::to_string(&none).unwrap()).unwrap();
        assert_eq!(manifest(back), manifest(none));
    }

    #[test]
    fn a_damaged_memo_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let pipeline = dir.path().join("p.yaml");
        let key = remembered(&store, dir.path(), &pipeline, "one");
        let memo = fs::read_dir(store.sub("records")).unwrap().next().unwrap().unwrap().path();
        let text = fs::read_to_string(&memo).unwrap();
        for cut in [text.len() / 2, text.len() - 5, 10] {
            fs::write(&memo, &text[..cut]).unwrap();
            assert_eq!(from_memo(&store, &pipeline, &key).1, "hit");
        }
    }
}
