//! Garbage collection: remove the entries the rules of `retain.rs` let go, the objects
//! no kept entry names, and what killed processes left behind; never what a live
//! process holds.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cache::{Lookup, Store, StoreError, io_at, lock_of};
use super::retain::{Decision, EntryFacts, Facts, Policy, RecordRoot, Removed, compact, decide};
use super::uses::{UseLine, Who, live_holds, user_name};
use crate::digest::walk;
use crate::durable;

/// What the named pipelines reach, as computed by the plan.
#[derive(Debug, Default)]
pub struct Keep {
    /// Keys of entries to keep (the fresh stages').
    pub entries: BTreeSet<String>,
    /// Keys of stages that must still run: their resume state is kept.
    pub resume: BTreeSet<String>,
    /// Folder names under `downloads/` still named by a dataset stage.
    pub downloads: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub entries: usize,
    pub objects: usize,
    pub downloads: usize,
    /// Scratch folders of killed processes, resume states and quarantined objects.
    pub leftovers: usize,
    pub bytes: u64,
    pub kept: usize,
    /// The entries removed (or that would be), least recently used first.
    pub removed: Vec<Removed>,
    /// Use logs and records dropped: their pipeline file is gone and their window passed.
    pub records: usize,
}

/// Items under `tmp/` that are not a process's locked folder (written by an older
/// version, or a file) go once they are this old.
const STRAY_AGE: Duration = Duration::from_secs(3600);

/// Removes (or, dry, only counts) what gc found.
struct Sweep {
    dry_run: bool,
    report: GcReport,
}

impl Sweep {
    fn remove(&mut self, path: &Path) -> Result<(), StoreError> {
        self.report.bytes += tree_bytes(path);
        if !self.dry_run {
            durable::remove_path(path).map_err(io_at(path))?;
        }
        Ok(())
    }
}

/// What a gc of this cache would remove, as asked to confirm before anything goes.
pub struct GcPreview {
    pub decision: Decision,
    pub policy: Policy,
}

impl Store {
    /// What `policy` would remove now (read-only).
    pub fn gc_preview(&self, keep: &Keep, policy: Policy) -> Result<GcPreview, StoreError> {
        let policy = Policy { named: keep.entries.clone(), ..policy };
        let (facts, _) = self.gc_facts()?;
        let decision = self.decide(&facts, &policy);
        Ok(GcPreview { decision, policy })
    }

    /// Remove the entries `preview` showed that its rules still remove now (never one
    /// it did not show: what was confirmed is an upper bound), every object no kept
    /// entry names, resume folders of finished or unreached stages, downloads no
    /// pipeline names, and the scratch of processes that died. With `dry_run`, count
    /// only. Entries and objects are decided and removed under the exclusive gc lock,
    /// so no process publishes meanwhile.
    pub fn gc(&self, keep: &Keep, preview: &GcPreview, dry_run: bool) -> Result<GcReport, StoreError> {
        let mut sweep = Sweep { dry_run, report: GcReport::default() };
        {
            let _exclusive = self.gc_lock(true)?;
            let (facts, unreadable) = self.gc_facts()?;
            let shown: HashSet<&str> = preview.decision.removed.iter().map(|r| r.key.as_str()).collect();
            let mut now = self.decide(&facts, &preview.policy);
            now.removed.retain(|r| shown.contains(r.key.as_str()));
            let gone: HashSet<&str> = now.removed.iter().map(|r| r.key.as_str()).collect();
            sweep.report.kept = facts.entries.len() - gone.len();
            let keep_objects: HashSet<&str> = facts
                .entries
                .iter()
                .filter(|e| !gone.contains(e.key.as_str()))
                .flat_map(|e| e.files.iter().map(|(d, _)| d.as_str()))
                .collect();
            for r in &now.removed {
                sweep.report.entries += 1;
                sweep.remove(&self.entry_path(&r.key))?;
            }
            for path in &unreadable {
                sweep.report.entries += 1;
                sweep.remove(path)?;
            }
            let objects = self.sub("objects");
            for rel in walk(&objects).map_err(io_at(&objects))? {
                if !keep_objects.contains(rel.replace('/', "").as_str()) {
                    sweep.report.objects += 1;
                    sweep.remove(&objects.join(&rel))?;
                }
            }
            let kept_keys: HashSet<&str> =
                facts.entries.iter().map(|e| e.key.as_str()).filter(|k| !gone.contains(k)).collect();
            self.compact_uses(&facts, &kept_keys, &preview.policy, &mut sweep)?;
            sweep.report.removed = now.removed;
        }
        self.sweep_resume_and_quarantine(keep, &mut sweep)?;
        self.sweep_scratch(&mut sweep)?;
        self.sweep_jobs(&mut sweep)?;
        self.sweep_downloads(keep, &preview.policy, &mut sweep)?;
        Ok(sweep.report)
    }

    fn decide(&self, facts: &Facts, policy: &Policy) -> Decision {
        let me = Who::me();
        let exists = |l: &UseLine| l.host != me.host || Path::new(&l.pipeline).exists();
        decide(facts, policy, &exists, &|p| Path::new(p).exists())
    }

    /// Every entry with its objects, every use line with the key lists it names, every
    /// pipeline's record, and what live processes hold; plus the manifests that cannot
    /// be read.
    pub fn gc_facts(&self) -> Result<(Facts, Vec<std::path::PathBuf>), StoreError> {
        let mut facts = Facts::default();
        let mut unreadable = Vec::new();
        for (path, m) in self.manifests()? {
            let named_as_key = |m: &crate::store::Manifest| path.file_stem().is_some_and(|s| *s == *m.key);
            match m {
                Some(m) if named_as_key(&m) => facts.entries.push(EntryFacts {
                    stage: m.stage.clone(),
                    kind: m.key_struct.kind.clone(),
                    created: m.created_unix,
                    files: m.files().map(|f| (f.digest.clone(), f.size)).collect(),
                    key: m.key,
                }),
                _ => unreadable.push(path),
            }
        }
        facts.logs = self.use_logs()?;
        for set in facts.logs.values().flatten().map(|l| l.set.clone()).collect::<BTreeSet<_>>() {
            let keys = self.read_set(&set);
            facts.sets.insert(set, keys);
        }
        facts.records = self.record_roots();
        facts.live = live_holds(self);
        Ok((facts, unreadable))
    }

    /// The records of each pipeline file's last keys, as roots.
    fn record_roots(&self) -> Vec<RecordRoot> {
        #[derive(serde::Deserialize)]
        struct Light {
            pipeline: String,
            stages: BTreeMap<String, LightRecord>,
        }
        #[derive(serde::Deserialize)]
        struct LightRecord {
            key: String,
        }
        let mut out = Vec::new();
        for path in children(&self.sub("records")) {
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Some(r) = fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Light>(&b).ok()) else {
                continue;
            };
            let Ok(meta) = fs::metadata(&path) else { continue };
            let memo = fs::metadata(path.with_extension("memo")).ok();
            let t = [Some(&meta), memo.as_ref()].into_iter().flatten().filter_map(|m| m.modified().ok()).max();
            let t = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            out.push(RecordRoot {
                pipeline: r.pipeline,
                user: user_name(meta.uid()),
                t,
                keys: r.stages.into_values().map(|r| r.key).collect(),
            });
        }
        out
    }

    /// Use logs reduced to what gc still needs; logs and records of pipeline files that
    /// are gone, once their window has passed, dropped; key lists no line or live
    /// process names removed.
    fn compact_uses(
        &self,
        facts: &Facts,
        kept: &HashSet<&str>,
        policy: &Policy,
        sweep: &mut Sweep,
    ) -> Result<(), StoreError> {
        let me = Who::me();
        let alive = |set: &str| facts.sets.get(set).is_some_and(|keys| keys.iter().any(|k| kept.contains(k.as_str())));
        let mut named_sets: HashSet<String> = HashSet::new();
        for (name, lines) in &facts.logs {
            let exists = lines.first().is_none_or(|l| l.host != me.host || Path::new(&l.pipeline).exists());
            let compacted = compact(lines, &alive, policy, exists);
            named_sets.extend(compacted.iter().map(|l| l.set.clone()));
            if compacted.is_empty() && !exists {
                sweep.report.records += 1;
            }
            if !sweep.dry_run && compacted.len() != lines.len() {
                self.rewrite_log(name, &compacted)?;
            }
        }
        for r in &facts.records {
            if policy.now.saturating_sub(r.t) > policy.retention && !Path::new(&r.pipeline).exists() {
                sweep.report.records += 1;
                if !sweep.dry_run {
                    let id = super::records::pipeline_id(&r.pipeline);
                    for ext in ["json", "memo"] {
                        let _ = fs::remove_file(self.sub("records").join(format!("{id}.{ext}")));
                    }
                }
            }
        }
        // Lists a live process named meanwhile, or stored just before it appends its
        // line, are young: they stay.
        for set in self.set_digests() {
            let path = self.uses_dir().join("sets").join(format!("{set}.keys"));
            if !named_sets.contains(&set) && older_than(&path, STRAY_AGE) && !sweep.dry_run {
                self.remove_set(&set)?;
            }
        }
        Ok(())
    }

    /// A resume folder is kept while its stage still has to run; one whose entry was
    /// published since, or that no pipeline reaches, goes unless a process computing
    /// that key holds its lock right now. Quarantined objects go too: a stage that
    /// needed them has been, or will be, computed again.
    fn sweep_resume_and_quarantine(&self, keep: &Keep, sweep: &mut Sweep) -> Result<(), StoreError> {
        for d in children(&self.sub("resume")) {
            let key = name_of(&d);
            let finished = matches!(self.lookup(&key)?, Lookup::Hit(_));
            if keep.resume.contains(&key) && !finished {
                continue;
            }
            if let Some(_held) = self.try_lock(&key)? {
                sweep.report.leftovers += 1;
                sweep.remove(&d)?;
            }
        }
        for d in children(&self.sub("quarantine")) {
            sweep.report.leftovers += 1;
            sweep.remove(&d)?;
        }
        Ok(())
    }

    /// Each process works in `tmp/NAME/` while it holds `tmp/NAME.lock`; a folder whose
    /// lock nobody holds belongs to a process that died.
    fn sweep_scratch(&self, sweep: &mut Sweep) -> Result<(), StoreError> {
        for d in children(&self.sub("tmp")) {
            if name_of(&d).ends_with(".lock") {
                if !d.with_extension("").exists() && old(&d) && !sweep.dry_run {
                    let _ = fs::remove_file(&d);
                }
                continue;
            }
            let lock = lock_of(&d);
            if lock.exists() {
                // A lock we may not even open belongs to someone else: leave it be.
                if let Ok(Some(_held)) = durable::try_lock(&lock) {
                    sweep.report.leftovers += 1;
                    sweep.remove(&d)?;
                    if !sweep.dry_run {
                        let _ = fs::remove_file(&lock);
                    }
                }
            } else if old(&d) {
                sweep.report.leftovers += 1;
                sweep.remove(&d)?;
            }
        }
        Ok(())
    }

    /// A Slurm run's job files (`jobs/RUN/`: scripts, job output, reports; those of
    /// failed jobs stay after the run) go once nothing was written there for a week,
    /// longer than clusters let a job run.
    fn sweep_jobs(&self, sweep: &mut Sweep) -> Result<(), StoreError> {
        for d in children(&self.sub("jobs")) {
            if older_than(&d, JOBS_AGE) {
                sweep.report.leftovers += 1;
                sweep.remove(&d)?;
            }
        }
        Ok(())
    }

    /// Downloads the named files use stay (a changed dataset stage would otherwise fetch
    /// them again). Others stay too unless only the named files count (a recorded
    /// pipeline may use them, and which it uses is known only to its file) or they are
    /// older than `--older-than`. Unfinished `.part-*` folders nobody is filling go.
    fn sweep_downloads(&self, keep: &Keep, policy: &Policy, sweep: &mut Sweep) -> Result<(), StoreError> {
        for d in children(&self.sub("downloads")) {
            let name = name_of(&d);
            if name.ends_with(".lock") || keep.downloads.contains(&name) {
                continue;
            }
            let part = name.starts_with(".part-");
            let expired = policy.older_than.is_some_and(|age| older_than(&d, Duration::from_secs(age)));
            if !part && !policy.only && !expired {
                continue;
            }
            if let Some(id) = name.strip_prefix(".part-").and_then(|rest| rest.split('-').next()) {
                let lock = self.sub("downloads").join(format!(".{id}.lock"));
                if durable::try_lock(&lock).map_err(io_at(&lock))?.is_none() {
                    continue;
                }
            }
            sweep.report.downloads += 1;
            sweep.remove(&d)?;
        }
        Ok(())
    }
}

fn children(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir).map(|it| it.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn old(p: &Path) -> bool {
    older_than(p, STRAY_AGE)
}

/// How long a Slurm run's job files are kept.
const JOBS_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether `p` and everything in it were last modified more than `age` ago.
fn older_than(p: &Path, age: Duration) -> bool {
    let young = |q: &Path| {
        fs::symlink_metadata(q)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_none_or(|a| a <= age)
    };
    !young(p) && !fs::read_dir(p).into_iter().flatten().flatten().any(|e| young(&e.path()))
}

/// Bytes of the files under `path` (a file's own size; 0 when it does not exist).
pub fn tree_bytes(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => walk(path)
            .unwrap_or_default()
            .iter()
            .filter_map(|rel| fs::metadata(path.join(rel)).ok())
            .map(|m| m.len())
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
