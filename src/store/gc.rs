//! Garbage collection: remove what no named pipeline reaches, and what killed
//! processes left behind, never what a live process holds.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::cache::{Lookup, Store, StoreError, io_at, lock_of};
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

impl Store {
    /// Remove every entry not in `keep`, every object no kept entry names, resume
    /// folders of finished or unreached stages, downloads no pipeline names, and the
    /// scratch of processes that died. With `dry_run`, count only.
    pub fn gc(&self, keep: &Keep, dry_run: bool) -> Result<GcReport, StoreError> {
        let mut sweep = Sweep { dry_run, report: GcReport { kept: keep.entries.len(), ..GcReport::default() } };
        self.sweep_entries_and_objects(keep, &mut sweep)?;
        self.sweep_resume_and_quarantine(keep, &mut sweep)?;
        self.sweep_scratch(&mut sweep)?;
        self.sweep_jobs(&mut sweep)?;
        self.sweep_downloads(keep, &mut sweep)?;
        Ok(sweep.report)
    }

    fn sweep_entries_and_objects(&self, keep: &Keep, sweep: &mut Sweep) -> Result<(), StoreError> {
        let mut keep_objects = HashSet::new();
        for (path, m) in self.manifests()? {
            match m {
                Some(m) if keep.entries.contains(&m.key) => {
                    keep_objects.extend(m.files().map(|f| f.digest.clone()));
                }
                _ => {
                    sweep.report.entries += 1;
                    sweep.remove(&path)?;
                }
            }
        }
        let objects = self.sub("objects");
        for rel in walk(&objects).map_err(io_at(&objects))? {
            if !keep_objects.contains(&rel.replace('/', "")) {
                sweep.report.objects += 1;
                sweep.remove(&objects.join(&rel))?;
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

    /// Downloads still named stay (a changed dataset stage would otherwise fetch them
    /// again); others go, as do unfinished `.part-*` folders nobody is filling.
    fn sweep_downloads(&self, keep: &Keep, sweep: &mut Sweep) -> Result<(), StoreError> {
        for d in children(&self.sub("downloads")) {
            let name = name_of(&d);
            if name.ends_with(".lock") || keep.downloads.contains(&name) {
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
