//! `pipe run`: walk the graph, take every stage whose key is in the cache, and compute
//! the rest on worker threads within a core budget.
//!
//! The main thread owns all bookkeeping (keys, the stat cache, records); workers only
//! execute. A stage's key needs its inputs' output digests, so keys are computed as
//! stages become ready, never ahead. That is also what gives early cutoff: a stage that
//! reran and produced the same bytes leaves its dependents' keys unchanged.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::engine::cancel::cancelled;
use crate::engine::execute::{Executed, Job, execute};
use crate::engine::plan::{Produced, select, stage_key};
use crate::engine::progress::Progress;
use crate::key::StageKey;
use crate::kind::StageFailure;
use crate::store::{Manifest, Record, Records, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ran,
    Cached,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    pub name: String,
    pub outcome: Outcome,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// The stage's cache key, when it was computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub pipeline: String,
    pub stages: Vec<StageResult>,
    pub interrupted: bool,
    pub seconds: f64,
}

impl RunSummary {
    pub fn count(&self, o: Outcome) -> usize {
        self.stages.iter().filter(|s| s.outcome == o).count()
    }

    pub fn line(&self) -> String {
        format!(
            "{} stages: {} ran, {} cached, {} failed{}",
            self.stages.len(),
            self.count(Outcome::Ran),
            self.count(Outcome::Cached),
            self.count(Outcome::Failed),
            match self.count(Outcome::Skipped) {
                0 => String::new(),
                n => format!(", {n} skipped"),
            }
        )
    }
}

pub struct RunOptions {
    pub targets: Vec<String>,
    /// The core budget: the threads of all running stages add up to at most this.
    pub jobs: usize,
    /// Stage or group names to recompute even when cached.
    pub force: Vec<String>,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done,
    Failed,
}

pub fn run(p: &Pipeline, store: &Store, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let selected = select(p, &opts.targets).map_err(RunError::Target)?;
    let forced = select_forced(p, &opts.force)?;
    let mut stat = StatCache::load(store.sub("stat").join(workspace_id(p)));
    let mut records = Records::load(&store.sub("records"), &p.file);
    let n = p.stages.len();
    let mut state = vec![State::Pending; n];
    // The outputs of each finished stage: what its dependents' keys are made of.
    let mut outputs: Vec<Option<Produced>> = vec![None; n];
    let mut results: Vec<Option<StageResult>> = vec![None; n];
    let total = selected.iter().filter(|s| **s).count();
    let mut progress = Progress::new(total, opts.json);
    let jobs = opts.jobs.max(1);
    let mut free = jobs;
    let (tx, rx) = mpsc::channel::<(usize, usize, StageKey, f64, Result<Executed, StageFailure>)>();
    let mut running = 0usize;

    std::thread::scope(|scope| -> Result<(), RunError> {
        loop {
            // Settle everything that needs no work: cache hits, and stages whose inputs
            // failed. Repeat until nothing changes; collect the misses.
            let mut misses: Vec<(usize, StageKey)> = Vec::new();
            let mut changed = true;
            while changed {
                changed = false;
                for &i in &p.dag.order {
                    if !selected[i] || state[i] != State::Pending || results[i].is_some() {
                        continue;
                    }
                    let ups = &p.dag.upstream[i];
                    if ups.iter().any(|u| state[*u] == State::Failed) {
                        state[i] = State::Failed;
                        results[i] = Some(skipped(&p.stages[i].name));
                        progress.finished(i, &p.stages[i].name, "skipped", None);
                        changed = true;
                        continue;
                    }
                    if !ups.iter().all(|u| state[*u] == State::Done) {
                        continue;
                    }
                    if misses.iter().any(|(m, _)| *m == i) {
                        continue;
                    }
                    let key = match stage_key(p, i, &outputs, &mut stat) {
                        Ok(k) => k,
                        Err(e) => {
                            state[i] = State::Failed;
                            results[i] = Some(failed(&p.stages[i].name, e.to_string(), Vec::new(), 0.0, None));
                            progress.finished(i, &p.stages[i].name, "failed", None);
                            changed = true;
                            continue;
                        }
                    };
                    let digest = key.digest();
                    let hit = if forced[i] { None } else { store.entry(&digest)? };
                    match hit {
                        Some(m) => {
                            restore_workspace(store, p, &m, &mut stat)?;
                            records.set(&p.stages[i].name, Record { key: digest.clone(), key_struct: key });
                            state[i] = State::Done;
                            outputs[i] = Some(produced_of(&m));
                            results[i] = Some(StageResult {
                                name: p.stages[i].name.clone(),
                                outcome: Outcome::Cached,
                                seconds: 0.0,
                                error: None,
                                tail: Vec::new(),
                                key: Some(digest),
                            });
                            progress.finished(i, &p.stages[i].name, "cached", None);
                            changed = true;
                        }
                        None => misses.push((i, key)),
                    }
                }
            }
            // Start misses while cores are free, dividing the free cores among them.
            let mut waiting = misses.len();
            for (i, key) in misses {
                if cancelled() || free == 0 {
                    break;
                }
                let want = p.stages[i].task.max_threads().max(1);
                let threads = want.min(free.div_ceil(waiting).max(1)).min(free);
                waiting -= 1;
                free -= threads;
                running += 1;
                state[i] = State::Running;
                progress.started(i, &p.stages[i].name, threads);
                let upstream: BTreeMap<usize, Produced> =
                    p.dag.upstream[i].iter().filter_map(|u| outputs[*u].clone().map(|o| (*u, o))).collect();
                let tx = tx.clone();
                let force = forced[i];
                let bar = progress.reporter(i);
                scope.spawn(move || {
                    let t0 = Instant::now();
                    let job = Job {
                        stage: i,
                        key: key.clone(),
                        threads,
                        force,
                        upstream: upstream.iter().map(|(k, v)| (*k, v)).collect(),
                    };
                    let report = move |msg: String| bar(msg);
                    let r = execute(store, p, &job, &report);
                    let _ = tx.send((i, threads, key, t0.elapsed().as_secs_f64(), r));
                });
            }
            if running == 0 {
                break;
            }
            let (i, threads, key, seconds, result) = rx.recv().expect("workers send before they end");
            running -= 1;
            free += threads;
            let name = &p.stages[i].name;
            match result {
                Ok(exec) => {
                    let (m, outcome, verb) = match exec {
                        Executed::Ran(m) => (m, Outcome::Ran, "ran"),
                        Executed::Cached(m) => (m, Outcome::Cached, "cached"),
                    };
                    records.set(name, Record { key: m.key.clone(), key_struct: key });
                    if outcome == Outcome::Ran {
                        for out in m.outputs.iter().filter(|(_, o)| o.workspace) {
                            let abs = p.workspace.join(out.0);
                            if let Ok(meta) = std::fs::metadata(&abs)
                                && !out.1.content.dir
                            {
                                stat.remember(&abs, &meta, &out.1.content.digest);
                            }
                        }
                    } else {
                        restore_workspace(store, p, &m, &mut stat)?;
                    }
                    results[i] = Some(StageResult {
                        name: name.clone(),
                        outcome,
                        seconds,
                        error: None,
                        tail: Vec::new(),
                        key: Some(m.key.clone()),
                    });
                    state[i] = State::Done;
                    outputs[i] = Some(produced_of(&m));
                    progress.finished(i, name, verb, Some(seconds));
                }
                Err(f) => {
                    state[i] = State::Failed;
                    let digest = key.digest();
                    progress.finished(i, name, "failed", Some(seconds));
                    results[i] = Some(failed(name, f.message, f.tail, seconds, Some(digest)));
                }
            }
        }
        Ok(())
    })?;
    progress.done();
    let _ = stat.save();
    let _ = records.save(&p.file);
    let interrupted = cancelled();
    let stages = (0..n)
        .filter(|i| selected[*i])
        .map(|i| results[i].clone().unwrap_or_else(|| skipped(&p.stages[i].name)))
        .collect();
    Ok(RunSummary {
        pipeline: p.file.display().to_string(),
        stages,
        interrupted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn select_forced(p: &Pipeline, names: &[String]) -> Result<Vec<bool>, RunError> {
    let mut forced = vec![false; p.stages.len()];
    for name in names {
        let found: Vec<usize> =
            p.stages.iter().enumerate().filter(|(_, s)| s.name == *name || s.group == *name).map(|(i, _)| i).collect();
        if found.is_empty() {
            // Reuse the message (with its suggestion) of target selection.
            select(p, std::slice::from_ref(name)).map_err(RunError::Target)?;
        }
        for i in found {
            forced[i] = true;
        }
    }
    Ok(forced)
}

/// The file in the cache's `stat/` that remembers this workspace's file digests.
pub fn workspace_id(p: &Pipeline) -> String {
    let id = blake3::hash(p.workspace.to_string_lossy().as_bytes()).to_hex();
    format!("{}.json", &id[..16])
}

pub fn produced_of(m: &Manifest) -> Produced {
    m.outputs.iter().map(|(k, o)| (k.clone(), o.content.clone())).collect()
}

/// Put a cached stage's workspace outputs back where they belong, unless the workspace
/// already holds exactly that content.
fn restore_workspace(store: &Store, p: &Pipeline, m: &Manifest, stat: &mut StatCache) -> Result<(), StoreError> {
    for (path, out) in m.outputs.iter().filter(|(_, o)| o.workspace) {
        let abs = p.workspace.join(path);
        let same = stat.content(&abs).map(|c| c.digest == out.content.digest).unwrap_or(false);
        if !same {
            store.restore(&out.content, &abs)?;
        }
    }
    Ok(())
}

fn skipped(name: &str) -> StageResult {
    StageResult {
        name: name.to_string(),
        outcome: Outcome::Skipped,
        seconds: 0.0,
        error: None,
        tail: Vec::new(),
        key: None,
    }
}

fn failed(name: &str, message: String, tail: Vec<String>, seconds: f64, key: Option<String>) -> StageResult {
    StageResult { name: name.to_string(), outcome: Outcome::Failed, seconds, error: Some(message), tail, key }
}
