//! The seam between the scheduler, which decides what runs when, and the place a stage
//! runs: worker threads here ([`super::local::Local`]); a cluster's jobs next. The
//! scheduler only sees [`Finished`] events; it never knows where a stage ran.

use std::collections::BTreeMap;

use crate::engine::plan::Produced;
use crate::key::StageKey;
use crate::kind::StageFailure;
use crate::store::Manifest;

/// One stage to compute.
pub struct Job {
    pub stage: usize,
    pub key: StageKey,
    /// Cores it may use.
    pub threads: usize,
    /// Compute even if another process published the key meanwhile.
    pub force: bool,
    /// The outputs of every stage it reads, by stage index.
    pub upstream: BTreeMap<usize, Produced>,
    /// Shows a running stage's own progress line (an epoch, a loss).
    pub progress: Box<dyn Fn(String) + Send + Sync>,
}

/// How a job ended.
pub enum Executed {
    /// Computed here.
    Ran(Manifest),
    /// Another process computed it while this one waited for the key's lock.
    Cached(Manifest),
}

pub struct Finished {
    pub stage: usize,
    pub threads: usize,
    pub key: StageKey,
    pub seconds: f64,
    pub result: Result<Executed, StageFailure>,
}

pub trait Executor {
    /// Start `job`; it reports back through [`Executor::wait`] exactly once, whatever
    /// happens to it (a panic included).
    fn start(&mut self, job: Job);

    /// The next job to finish; only called while some job is running.
    fn wait(&mut self) -> Finished;

    /// Ask every running job to stop soon (Ctrl-C); each still reports back.
    fn cancel_all(&mut self);
}
