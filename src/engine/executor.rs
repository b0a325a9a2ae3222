//! The seam between the scheduler, which decides what runs when, and the place a stage
//! runs: worker threads here (`engine::local`) or a Slurm cluster's jobs
//! (`engine::slurm`), which implement [`Executor`] and depend on this module, never the
//! other way. The scheduler asks an executor for room, hands it jobs and sees
//! [`Finished`] events; it never knows where a stage ran.

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
    /// Prints a line about the job (`submitted ... as slurm job 42`).
    pub announce: Box<dyn Fn(String) + Send + Sync>,
    /// Where the stage's own output goes; a scratch file when `None`.
    pub log: Option<std::path::PathBuf>,
    /// Where inputs that are not in the local cache are fetched from.
    pub remote: Option<std::sync::Arc<crate::remote::Remote>>,
    /// Set when this process is a cluster job: its manifest records where it ran, what
    /// it asked for and what it used.
    pub cluster: Option<ClusterJob>,
}

/// This process as a cluster job computing one stage.
pub struct ClusterJob {
    pub asked: crate::store::Asked,
    /// When the stage started in the job's process.
    pub started: std::time::Instant,
    /// The CPU seconds the job's process had used by then (a job that runs several
    /// packed stages measures each from its own start).
    pub cpu_before: f64,
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
    /// Where it ran, when not in this process.
    pub place: Option<Place>,
}

/// The cluster job a stage ran as: `{"executor": "slurm", "job": "42", "task": null,
/// "node": "n2"}` in `--json`, `slurm job 42 on n2` in progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub executor: &'static str,
    pub job: String,
    /// The task of a job array.
    pub task: Option<u32>,
    /// Where it ran, when known.
    pub node: Option<String>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} job {}", self.executor, self.job)?;
        if let Some(t) = self.task {
            write!(f, "_{t}")?;
        }
        if let Some(n) = &self.node {
            write!(f, " on {n}")?;
        }
        Ok(())
    }
}

pub trait Executor {
    /// Before anything runs: `will_run` are the stages the plan did not find cached.
    /// An executor checks here what would make every job fail (no `sbatch`, a
    /// partition that does not exist), and says it in one message.
    fn prepare(&mut self, will_run: &[usize]) -> Result<(), ExecError> {
        let _ = will_run;
        Ok(())
    }

    /// The threads stage `stage` gets if it starts now, or `None` when there is no room
    /// for it (cores, job slots) until a running job finishes. `waiting` stages are
    /// queued, this one included; a budget of cores is shared among them.
    fn admit(&mut self, stage: usize, waiting: usize) -> Option<usize>;

    /// Start `job`; it reports back through [`Executor::wait`] exactly once, whatever
    /// happens to it (a panic included).
    fn start(&mut self, job: Job);

    /// The next job to finish; only called while some job is running.
    fn wait(&mut self) -> Finished;

    /// Ask every running job to stop soon (Ctrl-C); each still reports back.
    fn cancel_all(&mut self);
}

/// Why an executor cannot run a pipeline's stages (nothing was started), or why a
/// cluster job could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot find the pipe binary for the jobs to run")]
    NoBinary(#[source] std::io::Error),
    #[error(
        "the slurm executor needs Slurm's `sbatch` on PATH; run pipe where jobs are submitted (a login node), \
         or use --executor local"
    )]
    NoSbatch(#[source] std::io::Error),
    #[error("sbatch refuses the jobs of stage `{stage}` ({args})")]
    Refused {
        stage: String,
        args: String,
        #[source]
        source: crate::engine::slurm_call::CallError,
    },
    #[error("cannot read the job file {}", path.display())]
    ReadJob {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the job file {} is not one this pipe writes", path.display())]
    BadJob {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the job report {}", path.display())]
    WriteReport {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
