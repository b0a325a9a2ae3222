//! `pipe run`: plan, take every fresh stage from the cache, and hand the rest to an
//! executor as their inputs become ready, within a core budget.
//!
//! The scheduler owns all bookkeeping (keys, the stat cache, records); executors only
//! compute. A stage's key needs its inputs' output digests, so the key of a stage that
//! waited is computed when its inputs are done, never ahead. That is also what gives
//! early cutoff: a stage that reran and produced the same bytes leaves its dependents'
//! keys unchanged, and they are taken from the cache.
//!
//! Every stage becomes ready once (when its last input is done) and is settled once,
//! so a run costs O(stages + edges) besides the work itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::engine::cancel::cancelled;
use crate::engine::executor::{Executed, Executor, Finished, Job, Place};
use crate::engine::local::Local;
use crate::engine::plan::{Books, Planned, Produced, Selection, StageState, UnknownStage, plan, stage_key};
use crate::engine::progress::Progress;
use crate::key::StageKey;
use crate::kind::{FailureClass, StageFailure};
use crate::remote::{Moved, Remote, Transfer};
use crate::store::{Lookup, Manifest, Memo, Record, Records, Store, StoreError, UseKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ran,
    Cached,
    /// Found on the remote cache: its bytes stay there until a stage here reads them.
    Remote,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    pub name: String,
    pub outcome: Outcome,
    pub seconds: f64,
    /// What failed, and then what caused it, outermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureClass>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// The stage's cache key, when it was computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The cluster job that computed it (or failed), when it ran as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Place>,
}

impl StageResult {
    /// A stage's result with nothing measured yet.
    fn new(name: &str, outcome: Outcome) -> StageResult {
        StageResult {
            name: name.to_string(),
            outcome,
            seconds: 0.0,
            error: None,
            causes: Vec::new(),
            failure: None,
            tail: Vec::new(),
            key: None,
            job: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub pipeline: String,
    pub stages: Vec<StageResult>,
    pub interrupted: bool,
    pub seconds: f64,
    /// What came from and went to the remote cache, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteTraffic>,
}

/// A run's traffic with the remote cache.
#[derive(Debug, Default, Serialize)]
pub struct RemoteTraffic {
    pub url: String,
    pub manifests_fetched: u64,
    pub objects_fetched: u64,
    pub bytes_fetched: u64,
    /// What `--push` sent as stages finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<crate::remote::Moved>,
    /// Pushes that failed (the entries are in the local cache all the same).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push_errors: Vec<String>,
}

impl RunSummary {
    pub fn count(&self, o: Outcome) -> usize {
        self.stages.iter().filter(|s| s.outcome == o).count()
    }

    pub fn line(&self) -> String {
        format!(
            "{} stages: {} ran, {} cached,{} {} failed{}",
            self.stages.len(),
            self.count(Outcome::Ran),
            self.count(Outcome::Cached),
            match self.count(Outcome::Remote) {
                0 => String::new(),
                n => format!(" {n} on the remote,"),
            },
            self.count(Outcome::Failed),
            match self.count(Outcome::Skipped) {
                0 => String::new(),
                n => format!(", {n} skipped"),
            }
        )
    }
}

#[derive(Default)]
pub struct RunOptions {
    pub targets: Vec<String>,
    /// The core budget: the threads of all running stages add up to at most this.
    pub jobs: usize,
    /// Stage or group names to recompute even when cached.
    pub force: Vec<String>,
    pub json: bool,
    /// A remote cache to look in before computing a stage.
    pub remote: Option<Arc<Remote>>,
    /// Push each stage's entry to the remote as soon as it is computed.
    pub push: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] UnknownStage),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The executor cannot run this pipeline's stages (nothing was started).
    #[error(transparent)]
    Executor(#[from] crate::engine::executor::ExecError),
    #[error(transparent)]
    Plan(#[from] crate::engine::plan::PlanError),
}

/// How often a stage whose output failed verification is computed again in one run
/// before its readers give up (a disk that keeps damaging what is written to it).
const REPAIRS: u32 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for this many inputs.
    Blocked(usize),
    Queued,
    Running,
    Done,
    Failed,
}

/// Run the pipeline on this machine's cores.
pub fn run(p: &Pipeline, store: &Store, opts: &RunOptions, books: Books) -> Result<RunSummary, RunError> {
    std::thread::scope(|scope| {
        let mut local = Local::new(scope, p, store, opts.jobs);
        run_with(p, store, opts, books, &mut local)
    })
}

/// Run the pipeline with stages computed by `executor`.
pub fn run_with(
    p: &Pipeline,
    store: &Store,
    opts: &RunOptions,
    books: Books,
    executor: &mut dyn Executor,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let sel = Selection::new(p, &opts.targets, &opts.force)?;
    let mut books = books;
    let planned = plan(p, store, &sel, &mut books, None)?;
    let will_run: Vec<usize> =
        planned.selected().filter(|(_, s)| !matches!(s.state, StageState::Fresh { .. })).map(|(i, _)| i).collect();
    executor.prepare(&will_run)?;
    if !will_run.is_empty() {
        // While this run lives, `gc` keeps what it planned, whatever its rules say.
        let _ = store.hold(planned.selected().filter_map(|(_, s)| s.digest()));
    }
    // The remote's manifests of the stages that are not here, fetched a wave at a time
    // in parallel, rather than one by one as the scheduler reaches each stage.
    let prefetched = match &opts.remote {
        Some(r) if !will_run.is_empty() => prefetch(p, store, r, &sel, &mut books),
        _ => HashMap::new(),
    };
    let total = sel.selected.iter().filter(|s| **s).count();
    let mut s = Scheduler::new(p, store, &sel, planned, Progress::new(total, opts.json), &mut books);
    s.remote = opts.remote.clone();
    s.prefetched = prefetched;
    let pusher = opts.remote.as_ref().filter(|_| opts.push).map(|r| Pusher::start(r.clone(), store.clone()));
    s.push = pusher.as_ref().map(|p| p.tx.clone());
    s.settle_ready()?;
    let mut running = 0usize;
    let mut cancelled_all = false;
    loop {
        while !cancelled() {
            let Some(&(_, i)) = s.queued.first() else { break };
            let Some(threads) = executor.admit(i, s.queued.len()) else { break };
            let job = s.job(i, threads);
            let _ = store.hold_key(&job.key.digest());
            running += 1;
            executor.start(job);
        }
        if cancelled() && !cancelled_all {
            executor.cancel_all();
            cancelled_all = true;
        }
        if running == 0 {
            break;
        }
        let finished = executor.wait();
        running -= 1;
        s.finished(finished)?;
        s.settle_ready()?;
    }
    s.progress.done();
    let results = std::mem::take(&mut s.results);
    drop(s);
    // The run's roots for `gc`: every entry it reached, here or on the remote.
    let reached =
        results.iter().flatten().filter(|r| matches!(r.outcome, Outcome::Ran | Outcome::Cached | Outcome::Remote));
    let _ = store.record_use(&p.file, UseKind::Run, reached.filter_map(|r| r.key.as_deref()));
    let remote = opts.remote.as_ref().map(|r| traffic(r, store, pusher));
    let _ = books.stat.save();
    let _ = books.records.save(&p.file);
    let _ = books.memo.save();
    let stages = results
        .into_iter()
        .enumerate()
        .filter(|(i, _)| sel.selected[*i])
        .map(|(i, r)| r.unwrap_or_else(|| StageResult::new(&p.stages[i].name, Outcome::Skipped)))
        .collect();
    Ok(RunSummary {
        pipeline: p.file.display().to_string(),
        stages,
        interrupted: cancelled(),
        seconds: started.elapsed().as_secs_f64(),
        remote,
    })
}

/// What moved between the caches in the run. With `--push`, once the pusher is done,
/// the cache's use records go too (the remote's gc roots).
fn traffic(r: &Remote, store: &Store, pusher: Option<Pusher>) -> RemoteTraffic {
    let (pushed, push_errors) = match pusher {
        Some(p) => {
            let (moved, mut errors) = p.finish();
            if let Err(e) = r.push_uses(store) {
                errors.push(format!("the record of this run: {}", crate::causes::chain_text(&e)));
            }
            (Some(moved), errors)
        }
        None => (None, Vec::new()),
    };
    RemoteTraffic {
        url: r.url.clone(),
        manifests_fetched: r.counters.manifests_fetched.load(Ordering::Relaxed),
        objects_fetched: r.counters.objects_fetched.load(Ordering::Relaxed),
        bytes_fetched: r.counters.bytes_fetched.load(Ordering::Relaxed),
        pushed,
        push_errors,
    }
}

/// The remote manifests of the selected stages that are not in the local cache, from
/// a plan that looks in the remote too. A remote that fails here is only a lost
/// shortcut: the scheduler asks again per stage.
/// It reads the run's own books: the stat cache and the memo of entries already read
/// serve both plans.
fn prefetch(
    p: &Pipeline,
    store: &Store,
    remote: &Remote,
    sel: &Selection,
    books: &mut Books,
) -> HashMap<String, Manifest> {
    match plan(p, store, sel, books, Some(remote)) {
        Ok(planned) => planned
            .stages
            .into_iter()
            .flatten()
            .filter_map(|s| match s.state {
                StageState::Remote { manifest } => Some((manifest.key.clone(), *manifest)),
                _ => None,
            })
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// Pushes each computed stage's entry to the remote on its own thread, so training
/// goes on while the bytes travel; a failed push is reported at the end and loses
/// nothing (the entry is in the local cache).
struct Pusher {
    tx: std::sync::mpsc::Sender<Manifest>,
    thread: std::thread::JoinHandle<(Moved, Vec<String>)>,
}

impl Pusher {
    fn start(remote: Arc<Remote>, store: Store) -> Pusher {
        let (tx, rx) = std::sync::mpsc::channel::<Manifest>();
        let thread = std::thread::spawn(move || {
            let (mut moved, mut errors) = (Moved::default(), Vec::new());
            for m in rx {
                match remote.push(&store, std::slice::from_ref(&m), &Transfer::quiet()) {
                    Ok(done) => moved.add(&done),
                    Err(e) => errors.push(format!("stage {}: {}", m.stage, crate::causes::chain_text(&e))),
                }
            }
            (moved, errors)
        });
        Pusher { tx, thread }
    }

    fn finish(self) -> (Moved, Vec<String>) {
        drop(self.tx);
        self.thread.join().unwrap_or_else(|_| (Moved::default(), vec!["the push thread panicked".into()]))
    }
}

struct Scheduler<'a> {
    p: &'a Pipeline,
    store: &'a Store,
    /// Each stage's key, once known (from the plan, or when its inputs are done).
    keys: Vec<Option<StageKey>>,
    /// The plan's manifest of each fresh stage, until it is settled.
    fresh: Vec<Option<Box<Manifest>>>,
    /// Whether the workspace was found to hold each fresh stage's workspace outputs
    /// already (checked for all of them at once, in parallel).
    in_place: Vec<bool>,
    forced: Vec<bool>,
    state: Vec<State>,
    /// The outputs of each finished stage: what its dependents' keys are made of.
    outputs: Vec<Option<Produced>>,
    /// Computed in this run (so its dependents' planned keys may be out of date).
    reran: Vec<bool>,
    /// Done at least once in this run: its dependents were told.
    settled: Vec<bool>,
    results: Vec<Option<StageResult>>,
    /// Stages waiting for cores, by topological position.
    queued: BTreeSet<(usize, usize)>,
    order_pos: Vec<usize>,
    /// How often each stage was computed again because a reader found its output
    /// damaged.
    repairs: Vec<u32>,
    /// Stages waiting for a stage that is being computed again (its output was
    /// damaged): they are ready again when it is done.
    rewait: BTreeMap<usize, Vec<usize>>,
    /// Stages whose inputs are all done, to settle.
    ready: Vec<usize>,
    /// The cluster job each stage ran as, if it did.
    place: Vec<Option<Place>>,
    progress: Progress,
    stat: &'a mut StatCache,
    records: &'a mut Records,
    memo: &'a mut Memo,
    /// The remote cache, looked in before a stage is computed.
    remote: Option<Arc<Remote>>,
    /// Where computed entries go to be pushed.
    push: Option<std::sync::mpsc::Sender<Manifest>>,
    /// Manifests the remote has, by key, fetched before the run.
    prefetched: HashMap<String, Manifest>,
}

impl<'a> Scheduler<'a> {
    /// Every selected stage blocked on its inputs, the plan's keys and fresh manifests
    /// at hand.
    fn new(
        p: &'a Pipeline,
        store: &'a Store,
        sel: &Selection,
        planned: crate::engine::plan::Plan,
        progress: Progress,
        books: &'a mut Books,
    ) -> Scheduler<'a> {
        let n = p.stages.len();
        let (mut keys, mut fresh) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for planned in planned.stages {
            let (key, manifest) = match planned {
                Some(Planned { state: StageState::Fresh { manifest }, key, .. }) => (key, Some(manifest)),
                Some(Planned { key, .. }) => (key, None),
                None => (None, None),
            };
            keys.push(key);
            fresh.push(manifest);
        }
        let in_place = {
            use rayon::prelude::*;
            let stat = &books.stat;
            fresh
                .par_iter()
                .map(|m| {
                    m.as_ref().is_some_and(|m| {
                        let mut outs = m.outputs.iter().filter(|(_, o)| o.workspace);
                        outs.all(|(path, o)| stat.holds_known(&p.workspace.join(path), &o.content))
                    })
                })
                .collect()
        };
        let mut s = Scheduler {
            p,
            store,
            keys,
            fresh,
            in_place,
            forced: sel.forced.clone(),
            state: vec![State::Done; n],
            outputs: vec![None; n],
            reran: vec![false; n],
            settled: vec![false; n],
            results: vec![None; n],
            queued: BTreeSet::new(),
            order_pos: vec![0; n],
            repairs: vec![0; n],
            rewait: BTreeMap::new(),
            ready: Vec::new(),
            place: vec![None; n],
            progress,
            stat: &mut books.stat,
            records: &mut books.records,
            memo: &mut books.memo,
            remote: None,
            push: None,
            prefetched: HashMap::new(),
        };
        for (pos, &i) in p.dag.order.iter().enumerate() {
            s.order_pos[i] = pos;
            if sel.selected[i] {
                s.state[i] = State::Blocked(p.dag.upstream[i].len());
            }
        }
        // Topological order, reversed on the stack so the first stage is taken first.
        s.ready = p.dag.order.iter().rev().copied().filter(|i| s.state[*i] == State::Blocked(0)).collect();
        s
    }

    /// Queued stage `i` as a job on `threads` cores.
    fn job(&mut self, i: usize, threads: usize) -> Job {
        self.queued.remove(&(self.order_pos[i], i));
        self.state[i] = State::Running;
        self.progress.started(i, &self.p.stages[i].name, threads);
        let key = self.keys[i].clone().expect("a queued stage has its key");
        let upstream: BTreeMap<usize, Produced> =
            self.p.dag.upstream[i].iter().filter_map(|u| self.outputs[*u].clone().map(|o| (*u, o))).collect();
        let progress = self.progress.reporter(i);
        let announce = self.progress.announcer();
        let remote = self.remote.clone();
        let force = self.forced[i];
        Job { stage: i, key, threads, force, upstream, progress, announce, log: None, remote, cluster: None }
    }

    /// Settle every ready stage: from the cache when its entry is there, otherwise
    /// queue it for an executor. Settling may make more stages ready.
    fn settle_ready(&mut self) -> Result<(), RunError> {
        while let Some(i) = self.ready.pop() {
            if self.state[i] != State::Blocked(0) {
                continue;
            }
            // The plan's verdict holds while the stage's inputs are the ones it planned
            // with: no input was computed in this run.
            let ups_reran = self.p.dag.upstream[i].iter().any(|u| self.reran[*u]);
            let planned = self.fresh[i].take().filter(|_| !ups_reran && !self.forced[i]);
            // Fresh as planned, and its workspace outputs are in place: nothing to do.
            let planned = match planned {
                Some(m) if self.in_place[i] => {
                    self.push_entry(&m);
                    self.done(i, *m, Outcome::Cached, 0.0);
                    continue;
                }
                other => other,
            };
            let hit = match planned {
                Some(m) => Some(*m),
                None => {
                    // The planned key stands for the same inputs; else compute it now.
                    let known = self.keys[i].take().filter(|_| !ups_reran);
                    let key = match known.map_or_else(|| stage_key(self.p, i, &self.outputs, self.stat), Ok) {
                        Ok(k) => k,
                        Err(e) => {
                            self.fail(i, StageFailure::from(e), 0.0, None);
                            continue;
                        }
                    };
                    let (lookup, key) = if self.forced[i] {
                        (Lookup::Miss, Some(key))
                    } else {
                        let digest = key.digest();
                        self.memo.lookup(self.store, &self.p.stages[i].name, key, &digest)?
                    };
                    self.keys[i] = key;
                    match lookup {
                        Lookup::Hit(m) => {
                            // Not planned: held from now on, as a computed stage is.
                            let _ = self.store.hold_key(&m.key);
                            Some(*m)
                        }
                        Lookup::Miss | Lookup::Damaged { .. } if !self.forced[i] => {
                            if self.take_from_remote(i) {
                                continue;
                            }
                            None
                        }
                        Lookup::Miss | Lookup::Damaged { .. } => None,
                    }
                }
            };
            match hit {
                Some(m) => match restore_workspace(self.store, self.p, &m, self.stat) {
                    Ok(()) => {
                        self.push_entry(&m);
                        self.done(i, m, Outcome::Cached, 0.0);
                    }
                    // A workspace output whose stored bytes are damaged: compute it.
                    Err(e) if e.is_damage() => {
                        self.keys[i] = Some(m.key_struct);
                        self.queue(i, true);
                    }
                    Err(e) => return Err(e.into()),
                },
                None => self.queue(i, self.forced[i]),
            }
        }
        Ok(())
    }

    /// Stage `i` is not in the local cache: take it from the remote if it is there
    /// (its workspace outputs fetched and put in place; other bytes stay remote until
    /// a stage here reads them). False when it must be computed. A remote that fails
    /// now is reported and the stage computed here.
    fn take_from_remote(&mut self, i: usize) -> bool {
        let (Some(remote), Some(key)) = (self.remote.clone(), self.keys[i].as_ref()) else { return false };
        let digest = key.digest();
        let known = self.prefetched.remove(&digest).map(|m| Ok(Some(m)));
        let fetched = known.unwrap_or_else(|| remote.manifest(&digest)).and_then(|m| match m {
            Some(m) => {
                let files: Vec<_> = m.outputs.values().filter(|o| o.workspace).flat_map(|o| &o.content.files).collect();
                remote.fetch(self.store, &files, &Transfer::quiet()).map(|_| Some(m))
            }
            None => Ok(None),
        });
        match fetched {
            Ok(Some(m)) => match restore_workspace(self.store, self.p, &m, self.stat) {
                Ok(()) => {
                    self.done(i, m, Outcome::Remote, 0.0);
                    true
                }
                Err(e) => {
                    self.progress.line(&format!("warning: {}: {e}; computing it here", self.p.stages[i].name));
                    false
                }
            },
            Ok(None) => false,
            Err(e) => {
                let why = crate::causes::chain_text(&e);
                self.progress.line(&format!("warning: {}: {why}; computing it here", self.p.stages[i].name));
                false
            }
        }
    }

    /// Hand a local entry to the pusher (with `--push`); it sends what the remote lacks.
    fn push_entry(&self, m: &Manifest) {
        if let Some(tx) = &self.push {
            let _ = tx.send(m.clone());
        }
    }

    fn queue(&mut self, i: usize, force: bool) {
        self.forced[i] = force;
        self.state[i] = State::Queued;
        self.queued.insert((self.order_pos[i], i));
    }

    /// Stage `i` is done with manifest `m`: record it, and tell the stages that read it.
    fn done(&mut self, i: usize, m: Manifest, outcome: Outcome, seconds: f64) {
        let name = &self.p.stages[i].name;
        if !self.memo.had_key(name, &m.key) {
            self.records.set(name, Record { key: m.key.clone(), key_struct: m.key_struct.clone() });
        }
        let key = Some(m.key);
        self.outputs[i] = Some(m.outputs);
        self.state[i] = State::Done;
        let verb = match outcome {
            Outcome::Ran => "ran",
            Outcome::Remote => "remote",
            _ => "cached",
        };
        let place = self.place[i].clone();
        let at = place.as_ref().map(Place::to_string);
        self.progress.finished(i, name, verb, (outcome == Outcome::Ran).then_some(seconds), at.as_deref());
        self.results[i] = Some(StageResult { seconds, key, job: place, ..StageResult::new(name, outcome) });
        if std::mem::replace(&mut self.settled[i], true) {
            // Computed again after a reader found its output damaged: only those
            // readers wait for it.
            for d in self.rewait.remove(&i).unwrap_or_default() {
                self.state[d] = State::Blocked(0);
                self.ready.push(d);
            }
            return;
        }
        for &d in self.p.dag.downstream[i].iter().rev() {
            if let State::Blocked(k) = self.state[d] {
                self.state[d] = State::Blocked(k - 1);
                if k == 1 {
                    self.ready.push(d);
                }
            }
        }
    }

    fn finished(&mut self, f: Finished) -> Result<(), RunError> {
        let i = f.stage;
        self.place[i] = f.place;
        match f.result {
            Ok(Executed::Ran(m)) => {
                for out in m.outputs.iter().filter(|(_, o)| o.workspace) {
                    let abs = self.p.workspace.join(out.0);
                    if let Ok(meta) = std::fs::metadata(&abs)
                        && !out.1.content.dir
                    {
                        self.stat.remember(&abs, &meta, &out.1.content.digest);
                    }
                }
                self.reran[i] = true;
                self.memo.forget(&self.p.stages[i].name);
                self.push_entry(&m);
                self.done(i, m, Outcome::Ran, f.seconds);
            }
            Ok(Executed::Cached(m)) => match restore_workspace(self.store, self.p, &m, self.stat) {
                Ok(()) if self.push.is_some() => {
                    self.push_entry(&m);
                    self.done(i, m, Outcome::Cached, f.seconds);
                }
                Ok(()) => self.done(i, m, Outcome::Cached, f.seconds),
                Err(e) if e.is_damage() => self.queue(i, true),
                Err(e) => return Err(e.into()),
            },
            Err(failure) => match failure.class {
                FailureClass::DamagedInput { stage: u } => self.repair(i, u, failure, f.seconds, f.key.digest()),
                _ => self.fail(i, failure, f.seconds, Some(f.key.digest())),
            },
        }
        Ok(())
    }

    /// Stage `i` found the output of stage `u` damaged: compute `u` again (once or
    /// twice per run), and run `i` when it is done.
    fn repair(&mut self, i: usize, u: usize, failure: StageFailure, seconds: f64, key: String) {
        let state = self.state[u];
        let again = match state {
            State::Queued | State::Running => true,
            State::Done if self.repairs[u] < REPAIRS && self.has_key(u) => {
                self.repairs[u] += 1;
                self.progress.line(&format!(
                    "damaged {} (computing it again): {}",
                    self.p.stages[u].name,
                    failure.message()
                ));
                self.queue(u, true);
                true
            }
            _ => false,
        };
        if again {
            self.state[i] = State::Blocked(1);
            self.rewait.entry(u).or_default().push(i);
            self.progress.finished(i, &self.p.stages[i].name, "waiting", None, None);
        } else {
            self.fail(i, failure, seconds, Some(key));
        }
    }

    /// Whether stage `u`, done, has its key at hand to be computed again: a hit from
    /// the memo gave its key to its manifest, so it is computed anew from its inputs.
    fn has_key(&mut self, u: usize) -> bool {
        if self.keys[u].is_none() {
            self.keys[u] = stage_key(self.p, u, &self.outputs, self.stat).ok();
        }
        self.keys[u].is_some()
    }

    /// Stage `i` failed: so, without running, does everything that needs it.
    fn fail(&mut self, i: usize, failure: StageFailure, seconds: f64, key: Option<String>) {
        let name = self.p.stages[i].name.clone();
        self.state[i] = State::Failed;
        let place = self.place[i].clone();
        let at = place.as_ref().map(Place::to_string);
        self.progress.finished(i, &name, "failed", Some(seconds), at.as_deref());
        let mut chain = failure.chain().into_iter();
        self.results[i] = Some(StageResult {
            seconds,
            error: chain.next(),
            causes: chain.collect(),
            failure: Some(failure.class),
            tail: failure.tail,
            key,
            job: place,
            ..StageResult::new(&name, Outcome::Failed)
        });
        let mut stack: Vec<usize> = self.p.dag.downstream[i].clone();
        stack.extend(self.rewait.remove(&i).unwrap_or_default());
        while let Some(d) = stack.pop() {
            if !matches!(self.state[d], State::Blocked(_) | State::Queued) {
                continue;
            }
            self.queued.remove(&(self.order_pos[d], d));
            self.state[d] = State::Failed;
            self.progress.finished(d, &self.p.stages[d].name, "skipped", None, None);
            self.results[d] = Some(StageResult::new(&self.p.stages[d].name, Outcome::Skipped));
            stack.extend(self.p.dag.downstream[d].iter().copied());
            stack.extend(self.rewait.remove(&d).unwrap_or_default());
        }
    }
}

/// Put a cached stage's workspace outputs back where they belong, unless the workspace
/// already holds exactly that content.
fn restore_workspace(store: &Store, p: &Pipeline, m: &Manifest, stat: &mut StatCache) -> Result<(), StoreError> {
    for (path, out) in m.outputs.iter().filter(|(_, o)| o.workspace) {
        let abs = p.workspace.join(path);
        if !stat.holds(&abs, &out.content) {
            store.restore(&out.content, &abs)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{Input, RunContext, Task};

    /// A task with a bug: it panics, on its own thread or inside its thread pool.
    #[derive(Debug)]
    struct Buggy {
        in_pool: bool,
    }

    impl Task for Buggy {
        fn params(&self) -> crate::key::Params {
            serde_json::json!({"buggy": self.in_pool}).into()
        }

        fn inputs(&self) -> Vec<Input> {
            Vec::new()
        }

        fn max_threads(&self) -> usize {
            2
        }

        fn run(&self, _: &RunContext<'_>) -> Result<(), StageFailure> {
            if self.in_pool {
                let pool = crate::kinds::pool(2)?;
                let v: Vec<usize> = Vec::new();
                pool.install(|| rayon::join(|| v[3], || 0));
            }
            let big: Option<u32> = std::hint::black_box(None);
            big.expect("the value was checked at load time");
            Ok(())
        }
    }

    fn pipeline(dir: &std::path::Path) -> Pipeline {
        let text = "stages:\n  a:\n    cmd: {run: 'echo a > a.txt', outs: [a.txt]}\n  \
                    b:\n    cmd: {run: 'cat a.txt > b.txt', deps: [a.txt], outs: [b.txt]}\n  \
                    c:\n    cmd: {run: 'echo c > c.txt', outs: [c.txt]}\n";
        crate::config::parse(&dir.join("p.yaml"), text.as_bytes(), &[], crate::kinds::registry()).unwrap()
    }

    #[test]
    fn a_panicking_stage_fails_alone_with_where_it_panicked() {
        for in_pool in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut p = pipeline(dir.path());
            p.stages[0].task = Box::new(Buggy { in_pool });
            let store = Store::open(&dir.path().join("cache")).unwrap();
            let opts = RunOptions { jobs: 2, json: true, ..RunOptions::default() };
            let books = Books::load(&store, &p.file);
            let summary = run(&p, &store, &opts, books).unwrap();
            let outcome = |n: &str| summary.stages.iter().find(|s| s.name == n).unwrap().clone();
            let a = outcome("a");
            assert_eq!(a.outcome, Outcome::Failed);
            assert_eq!(a.failure, Some(FailureClass::Panic));
            let why = a.error.as_deref().unwrap();
            if in_pool {
                assert!(why.contains("index out of bounds") && why.contains("src/engine/run.rs:"), "{why}");
            } else {
                assert!(
                    why.contains("the value was checked at load time") && why.contains("src/engine/run.rs:"),
                    "{why}"
                );
            }
            assert_eq!(outcome("b").outcome, Outcome::Skipped);
            assert_eq!(outcome("c").outcome, Outcome::Ran, "the other branch goes on");
            assert!(!dir.path().join("b.txt").exists());
            // The cache holds nothing of the failed stage, and no scratch is left.
            let entries = crate::digest::walk(&store.sub("entries")).unwrap();
            assert_eq!(entries.len(), 1, "{entries:?}");
        }
    }
}
