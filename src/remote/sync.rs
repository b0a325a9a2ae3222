//! Moving entries between the local cache and a remote: push, fetch (objects only),
//! pull (objects, then the manifest) and gc. Each runs its transfers on a bounded pool
//! of workers and shows one progress bar in bytes on a terminal.

use std::collections::{BTreeSet, HashSet};
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::{CONNECTIONS, Remote, RemoteError};
use crate::digest::FileEntry;
use crate::store::{EntryFacts, Facts, GcPreview, Manifest, Policy, Removed, Store, UseLine, decide, parse_log};

/// What moved (or, for gc, was removed).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Moved {
    /// Manifests written (push, pull) or removed (gc).
    pub entries: usize,
    /// Objects sent, fetched or removed.
    pub objects: usize,
    pub bytes: u64,
    /// Entries that were there already.
    pub entries_present: usize,
    /// Objects that were there already.
    pub objects_present: usize,
}

impl Moved {
    pub fn add(&mut self, o: &Moved) {
        self.entries += o.entries;
        self.objects += o.objects;
        self.bytes += o.bytes;
        self.entries_present += o.entries_present;
        self.objects_present += o.objects_present;
    }
}

/// A transfer's progress in bytes: a bar on a terminal, nothing otherwise.
pub struct Transfer {
    bar: Option<ProgressBar>,
}

impl Transfer {
    pub fn new(verb: &str, quiet: bool) -> Transfer {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} {bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("a valid template"),
            );
            bar.set_message(verb.to_string());
            bar
        });
        Transfer { bar }
    }

    pub fn quiet() -> Transfer {
        Transfer { bar: None }
    }

    fn total(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc_length(bytes);
        }
    }

    fn done(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Workers for `CONNECTIONS` transfers at once, started on first use and shared by
/// every transfer of the process.
pub(super) fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(CONNECTIONS)
            .thread_name(|i| format!("pipe-remote-{i}"))
            .build()
            .expect("threads for transfers")
    })
}

/// The distinct objects of `manifests`, by digest.
fn distinct<'a>(manifests: impl Iterator<Item = &'a Manifest>) -> Vec<&'a FileEntry> {
    let mut seen = HashSet::new();
    manifests.flat_map(Manifest::files).filter(|f| seen.insert(f.digest.as_str())).collect()
}

/// Run `f` on every item on the transfer pool; the first error wins.
fn all<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R, RemoteError> + Sync) -> Result<Vec<R>, RemoteError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    pool().install(|| items.par_iter().map(&f).collect())
}

/// Above this many names, one listing (a request per 1,000 names on the remote) is
/// cheaper than a request per name.
const LIST_ABOVE: usize = 16;

impl Remote {
    /// Which of `names` (under `dir/`) the remote has: a request per name for a few,
    /// one listing for many.
    fn present(&self, dir: &str, names: &[String]) -> Result<HashSet<String>, RemoteError> {
        if names.len() > LIST_ABOVE {
            let listed: HashSet<String> = self.backend.list(dir)?.into_iter().map(|(n, _, _)| n).collect();
            return Ok(names.iter().filter(|n| listed.contains(*n)).cloned().collect());
        }
        let found = all(names, |n| Ok(self.backend.exists(n)?.then(|| n.clone())))?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Upload the entries of `manifests` the remote lacks: first every object they
    /// name that is not there (each read back and verified), then their manifests.
    /// The manifests of `keys`, asked in parallel; `None` where the remote has none.
    pub fn manifests(&self, keys: &[String]) -> Result<Vec<Option<Manifest>>, RemoteError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        pool().install(|| keys.par_iter().map(|k| self.manifest(k)).collect())
    }

    pub fn push(&self, local: &Store, manifests: &[Manifest], t: &Transfer) -> Result<Moved, RemoteError> {
        let names: Vec<String> = manifests.iter().map(|m| Remote::entry_name(&m.key)).collect();
        let there = self.present("entries", &names)?;
        let todo: Vec<&Manifest> = manifests.iter().filter(|m| !there.contains(&Remote::entry_name(&m.key))).collect();
        let mut moved = Moved { entries_present: manifests.len() - todo.len(), ..Moved::default() };
        let files = distinct(todo.iter().copied());
        let object_names: Vec<String> = files.iter().map(|f| Remote::object_name(&f.digest)).collect();
        let have = self.present("objects", &object_names)?;
        let send: Vec<&FileEntry> =
            files.into_iter().filter(|f| !have.contains(&Remote::object_name(&f.digest))).collect();
        moved.objects_present = object_names.len() - send.len();
        t.total(send.iter().map(|f| f.size).sum());
        all(&send, |f| {
            let bytes = local.object_bytes(f)?;
            self.backend.put(&Remote::object_name(&f.digest), bytes)?;
            t.done(f.size);
            Ok(())
        })?;
        moved.objects = send.len();
        moved.bytes = send.iter().map(|f| f.size).sum();
        // Manifests last: a remote entry never names an object that is not there.
        all(&todo, |m| {
            let bytes = serde_json::to_vec_pretty(m).expect("a manifest is plain data");
            self.backend.put(&Remote::entry_name(&m.key), bytes)
        })?;
        moved.entries = todo.len();
        Ok(moved)
    }

    /// Bring the objects of `files` the local cache lacks, each verified against its
    /// digest before it enters the cache.
    pub fn fetch(&self, local: &Store, files: &[&FileEntry], t: &Transfer) -> Result<Moved, RemoteError> {
        let mut seen = HashSet::new();
        let need: Vec<&FileEntry> =
            files.iter().copied().filter(|f| seen.insert(f.digest.clone()) && !local.has_object(&f.digest)).collect();
        t.total(need.iter().map(|f| f.size).sum());
        all(&need, |f| {
            self.fetch_one(local, f)?;
            t.done(f.size);
            Ok(())
        })?;
        Ok(Moved {
            objects: need.len(),
            bytes: need.iter().map(|f| f.size).sum(),
            objects_present: seen.len() - need.len(),
            ..Moved::default()
        })
    }

    fn fetch_one(&self, local: &Store, f: &FileEntry) -> Result<(), RemoteError> {
        let name = Remote::object_name(&f.digest);
        let incoming = local.incoming()?;
        let got = self.backend.get_to_file(&name, incoming.path())?;
        match got {
            Some((digest, size)) if digest == f.digest && size == f.size => {
                local.adopt(incoming, &f.digest)?;
                self.count_fetched(size);
                Ok(())
            }
            Some((digest, _)) => {
                Err(RemoteError::Corrupt { url: self.url.clone(), digest: f.digest.clone(), got: digest })
            }
            None => Err(RemoteError::MissingObject { url: self.url.clone(), digest: f.digest.clone() }),
        }
    }

    /// Make each entry of `manifests` complete in the local cache: its objects (all of
    /// them, verified), then its manifest. An interrupted pull leaves verified objects
    /// and no manifest whose objects are not all there.
    pub fn pull(&self, local: &Store, manifests: &[Manifest], t: &Transfer) -> Result<Moved, RemoteError> {
        let files = distinct(manifests.iter());
        // Objects first, manifests last, with local gc kept waiting in between.
        let _storing = local.gc_lock(false)?;
        let mut moved = self.fetch(local, &files, t)?;
        for m in manifests {
            local.publish(m)?;
        }
        moved.entries = manifests.len();
        Ok(moved)
    }

    /// What gc of the remote would remove under `policy`, from the entries there and the
    /// use logs pushed there (read-only).
    pub fn gc_preview(&self, policy: Policy) -> Result<GcPreview, RemoteError> {
        let (facts, _) = self.gc_facts(policy.now)?;
        let decision = decide(&facts, &policy, &|_| true, &|_| true);
        Ok(GcPreview { decision, policy })
    }

    /// Every entry on the remote (an entry counts as created when it was pushed, if
    /// later), and the use lines pushed there with the key lists they name; also the
    /// names of the entries listed.
    fn gc_facts(&self, now: u64) -> Result<(Facts, Vec<String>), RemoteError> {
        let listed: Vec<(String, u64, Option<std::time::Duration>)> =
            self.backend.list("entries")?.into_iter().filter(|(n, _, _)| key_of(n).is_some()).collect();
        let manifests = all(&listed, |(n, _, age)| {
            let key = key_of(n).expect("filtered above");
            // One this build cannot read is no entry of its own: it goes, as before. A
            // remote that fails to answer stops gc: nothing is removed on a guess.
            let m = match self.manifest(&key) {
                Ok(m) => m,
                Err(RemoteError::BadManifest { .. }) => None,
                Err(e) => return Err(e),
            };
            Ok(m.map(|m| (m, age.map(|a| now.saturating_sub(a.as_secs())))))
        })?;
        let mut facts = Facts::default();
        for (m, pushed) in manifests.into_iter().flatten() {
            facts.entries.push(EntryFacts {
                stage: m.stage.clone(),
                kind: m.key_struct.kind.clone(),
                created: m.created_unix.max(pushed.unwrap_or(0)),
                files: m.files().map(|f| (f.digest.clone(), f.size)).collect(),
                key: m.key,
            });
        }
        let logs: Vec<String> =
            self.backend.list("uses")?.into_iter().map(|(n, _, _)| n).filter(|n| n.ends_with(".log")).collect();
        let texts = all(&logs, |n| Ok((n.clone(), self.backend.get(n)?)))?;
        for (name, text) in texts {
            let lines = parse_log(&String::from_utf8_lossy(&text.unwrap_or_default()));
            facts.logs.insert(name, lines);
        }
        let sets: Vec<String> =
            facts.logs.values().flatten().map(|l| l.set.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let got = all(&sets, |d| Ok((d.clone(), self.backend.get(&format!("uses/sets/{d}.keys"))?)))?;
        for (d, bytes) in got {
            let text = String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
            facts.sets.insert(d, text.lines().map(str::to_string).collect());
        }
        Ok((facts, listed.into_iter().map(|(n, _, _)| n).collect()))
    }

    /// Remove the entries `preview` showed that the same rules still remove now, then
    /// every object no entry there names. Objects written in the last hour stay:
    /// another machine may be pushing the entry that names them. A push that relies on
    /// an older object while gc runs can still lose it (the push saw it, then gc
    /// removed it): run `gc --remote` when nobody pushes, as with `dvc gc -c`.
    pub fn gc(&self, preview: &GcPreview, dry_run: bool) -> Result<RemoteGc, RemoteError> {
        let (facts, listed) = self.gc_facts(preview.policy.now)?;
        let shown: HashSet<&str> = preview.decision.removed.iter().map(|r| r.key.as_str()).collect();
        let mut now = decide(&facts, &preview.policy, &|_| true, &|_| true);
        now.removed.retain(|r| shown.contains(r.key.as_str()));
        let gone: HashSet<&str> = now.removed.iter().map(|r| r.key.as_str()).collect();
        // Names this pipe cannot read go too, as they always did.
        let readable: HashSet<&str> = facts.entries.iter().map(|e| e.key.as_str()).collect();
        let doomed: Vec<String> = listed
            .iter()
            .filter(|n| key_of(n).is_some_and(|k| gone.contains(k.as_str()) || !readable.contains(k.as_str())))
            .cloned()
            .collect();
        let names: HashSet<String> = facts
            .entries
            .iter()
            .filter(|e| !gone.contains(e.key.as_str()))
            .flat_map(|e| e.files.iter().map(|(d, _)| Remote::object_name(d)))
            .collect();
        let objects = self.backend.list("objects")?;
        let unreached: Vec<(String, u64)> = objects
            .into_iter()
            .filter(|(n, _, age)| !names.contains(n) && age.is_some_and(|a| a.as_secs() > 3600))
            .map(|(n, size, _)| (n, size))
            .collect();
        let mut removed = Moved {
            entries: doomed.len(),
            objects: unreached.len(),
            bytes: unreached.iter().map(|(_, s)| s).sum(),
            entries_present: listed.len() - doomed.len(),
            ..Moved::default()
        };
        if !dry_run {
            // Entries first: an object goes only once nothing names it.
            all(&doomed, |n| self.backend.delete(n))?;
            // An entry pushed meanwhile (by another machine) may name objects that were
            // there before it: keep whatever any entry there now names.
            let before: HashSet<&String> = listed.iter().collect();
            let new_keys: Vec<String> = self
                .backend
                .list("entries")?
                .into_iter()
                .filter(|(n, _, _)| !before.contains(n))
                .filter_map(|(n, _, _)| key_of(&n))
                .collect();
            let newer = all(&new_keys, |k| self.manifest(k))?;
            let named: HashSet<String> =
                newer.iter().flatten().flat_map(Manifest::files).map(|f| Remote::object_name(&f.digest)).collect();
            let unreached: Vec<(String, u64)> = unreached.into_iter().filter(|(n, _)| !named.contains(n)).collect();
            removed.objects = unreached.len();
            removed.bytes = unreached.iter().map(|(_, s)| s).sum();
            all(&unreached, |(n, _)| self.backend.delete(n))?;
        }
        Ok(RemoteGc { moved: removed, removed: now.removed })
    }

    /// Send the cache's use logs (merged with the remote's copy of each, line by line)
    /// and the key lists they name that the remote lacks: the roots gc of the remote
    /// keeps, from every machine that pushes.
    pub fn push_uses(&self, local: &Store) -> Result<(), RemoteError> {
        let logs: Vec<(String, Vec<UseLine>)> = local.use_logs()?.into_iter().collect();
        let sets: Vec<String> =
            logs.iter().flat_map(|(_, l)| l).map(|l| l.set.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let names: Vec<String> = sets.iter().map(|d| format!("uses/sets/{d}.keys")).collect();
        let there = self.present("uses/sets", &names)?;
        let send: Vec<(&String, &String)> = sets.iter().zip(&names).filter(|(_, n)| !there.contains(*n)).collect();
        all(&send, |(d, n)| {
            let keys = local.read_set(d);
            let mut text = keys.join("\n");
            text.push('\n');
            self.backend.put(n, text.into_bytes())
        })?;
        all(&logs, |(name, lines)| {
            let remote_name = format!("uses/{name}");
            let theirs = self.backend.get(&remote_name)?.map(|b| String::from_utf8_lossy(&b).into_owned());
            let mut merged: Vec<String> = theirs.iter().flat_map(|t| t.lines().map(str::to_string)).collect();
            let known: HashSet<String> = merged.iter().cloned().collect();
            let ours = lines.iter().map(|l| serde_json::to_string(l).expect("plain data"));
            let new: Vec<String> = ours.filter(|l| !known.contains(l)).collect();
            if new.is_empty() {
                return Ok(());
            }
            merged.extend(new);
            let mut text = merged.join("\n");
            text.push('\n');
            self.backend.put(&remote_name, text.into_bytes())
        })?;
        Ok(())
    }
}

/// What gc of a remote removed (or would).
pub struct RemoteGc {
    pub moved: Moved,
    pub removed: Vec<Removed>,
}

/// The key of an entry's object name: only names this pipe writes (64 hex digits).
fn key_of(name: &str) -> Option<String> {
    let key = name.rsplit('/').next()?.strip_suffix(".json")?;
    (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_string())
}
