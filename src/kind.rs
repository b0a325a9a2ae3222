//! The interface every stage kind implements, and the registry of kinds.
//!
//! A kind turns the YAML parameters of one stage into a [`Task`]: resolved parameters
//! (defaults filled in; they enter the stage key), the inputs it reads, and the work
//! itself. The engine owns everything else: keys, the cache, scheduling, progress.
//!
//! A kind declares its parameters once, as a `#[derive(Deserialize)]` struct with
//! `deny_unknown_fields`, defaults and enums for choices, and reads it in
//! [`Kind::check`] with [`Params::read`]: every problem comes back at its line and key
//! path. A range on one field is a `deserialize_with` function (reported with the
//! rest); what spans several fields is checked after reading and reported with
//! [`Params::problem`]. A stage reference is a [`Located`] string, so a reference to
//! nothing is shown where it is written. The task's `params()` serializes what the
//! output depends on: the struct itself where its shape is the key's (`evaluate`,
//! `cmd`), or the struct the kind builds from it.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::config::params::{Located, Mark, Params};

pub trait Kind: Sync {
    /// The key that selects this kind in a stage, e.g. `cmd`.
    fn name(&self) -> &'static str;

    /// Bump when the kind's output for the same parameters and inputs changes: it is
    /// part of every key, so old entries stop matching.
    fn version(&self) -> u32;

    /// Top-level sections of the pipeline file whose settings this kind inherits as
    /// defaults; a stage overrides them with a key of the same name.
    fn sections(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a stage of this kind trains a network (checkpoint, metrics, log): the
    /// report page and `show` read such stages.
    fn trains_network(&self) -> bool {
        false
    }

    /// Whether a stage of this kind makes the experiment's report, whose page `pipe
    /// run` writes beside the pipeline file.
    fn makes_report(&self) -> bool {
        false
    }

    /// Read one stage's parameters (defaults already merged in) into the kind's own
    /// struct and check what spans several of them, recording every problem; `None`
    /// when the parameters could not be read.
    fn check(&self, params: &mut Params<'_>) -> Option<Box<dyn Task>>;
}

/// Something a stage reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or folder of the workspace, relative to the pipeline file's folder. When
    /// another stage declares it as an output, that stage runs first.
    Path(String),
    /// Another stage's outputs, under a role name the task chooses (`data`, `base`).
    /// `reference` is `STAGE` (all its outputs), `STAGE.OUTPUT` (one of them), or a
    /// matrix group name (every instance, as roles `ROLE/INSTANCE`). `field` is the
    /// parameter it was written in, for error messages.
    Stage { role: String, reference: String, mark: Mark, field: &'static str },
}

impl Input {
    /// Another stage's outputs under `role`, as written in parameter `field`.
    pub fn stage(role: impl Into<String>, reference: &Located<String>, field: &'static str) -> Input {
        Input::Stage { role: role.into(), reference: reference.value.clone(), mark: reference.mark, field }
    }
}

pub trait Task: Send + Sync + fmt::Debug {
    /// Resolved parameters with every default filled in: what goes into the key.
    fn params(&self) -> crate::key::Params;

    fn inputs(&self) -> Vec<Input>;

    /// Outputs that live in the workspace (relative paths): the engine stores them in
    /// the cache after a run and puts them back in the workspace on a cache hit. Files
    /// the task writes into its output folder are outputs too, kept in the cache only.
    fn workspace_outputs(&self) -> Vec<String> {
        Vec::new()
    }

    /// Names of the files or folders the task writes into its output folder. Other
    /// stages refer to them as `STAGE.NAME`; the engine checks each exists after a run.
    fn outputs(&self) -> Vec<String> {
        Vec::new()
    }

    /// Folder names under the cache's `downloads/` that the task reads; `pipe cache gc`
    /// keeps these.
    fn downloads(&self) -> Vec<String> {
        Vec::new()
    }

    /// How many cores the task can use; the scheduler gives it at most this many.
    fn max_threads(&self) -> usize {
        1
    }

    /// Cheap enough to run in the process that submits cluster jobs (reading a dataset,
    /// splitting it, writing a report): a job for it would spend longer queued than
    /// working. A stage's `resources: {local: ...}` says otherwise.
    fn light(&self) -> bool {
        false
    }

    /// Expected to take well under a minute (an evaluation; a frozen transfer, which
    /// trains only what is above the cut, on features computed once): before any run
    /// has recorded how long the stage takes, a cluster packs such stages into shared
    /// jobs.
    fn short(&self) -> bool {
        false
    }

    /// The floating-point operations the task is expected to take, from the sizes of
    /// its inputs' files (`size(role, file)`: a file inside the input of that role, in
    /// bytes); `None`: unknown. Before any run has recorded how long a stage takes, a
    /// cluster packs the stages this says are short.
    fn expected_flops(&self, size: &dyn Fn(&str, &str) -> Option<u64>) -> Option<f64> {
        let _ = size;
        None
    }

    /// Of a whole stage given as an input, the outputs this task reads (the others are
    /// not given to it, nor fetched from a remote cache for it); `None`: all of them.
    fn reads(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// GPUs it needs (a cluster job asks for them).
    fn gpus(&self) -> u32 {
        0
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure>;
}

/// What a running task gets from the engine.
pub struct RunContext<'a> {
    pub stage: &'a str,
    /// The folder of the pipeline file; relative paths are resolved against it.
    pub workspace: &'a Path,
    /// An empty folder inside the cache; everything written here becomes an output.
    pub out_dir: &'a Path,
    /// Where the task's own log goes (command output, training lines).
    pub log_path: &'a Path,
    pub threads: usize,
    /// Each stage input by role: a file or folder holding that input's content.
    pub inputs: &'a BTreeMap<String, PathBuf>,
    /// A folder that survives a killed run of the same key (deleted once the stage's
    /// entry is published): where long tasks keep state to resume from.
    pub resume_dir: &'a Path,
    /// The cache's folder of downloaded files, shared by every stage (see
    /// [`crate::data::download`]).
    pub downloads: &'a Path,
    /// Shows a short line of progress (an epoch, a loss) beside the stage's name.
    pub progress: &'a (dyn Fn(String) + Sync),
    /// Set on Ctrl-C: stop soon, return an error, leave nothing half-done.
    pub cancel: &'a AtomicBool,
}

/// Why a stage failed: what it was doing, the typed error that stopped it (its source
/// chain intact, rendered by the CLI as `caused by:` lines), the last lines the stage
/// printed, and the class of failure, which picks the exit code.
#[derive(Debug)]
pub struct StageFailure {
    context: Option<String>,
    error: Option<Box<dyn Error + Send + Sync>>,
    pub tail: Vec<String>,
    pub class: FailureClass,
}

/// What kind of failure ended a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The task itself failed: a command's exit status, a network that does not fit
    /// its data, a bad file format (exit code 1).
    Task,
    /// A file or the cache could not be read or written: a full disk, a read-only
    /// filesystem, a missing folder (exit code 4).
    Io,
    /// The stage panicked: a bug, reported with where it happened (exit code 1).
    Panic,
    /// Ctrl-C (exit code 130).
    Interrupted,
    /// An input object failed verification against its digest and was quarantined;
    /// the stage that produced it (by index) must be computed again.
    DamagedInput { stage: usize },
}

impl StageFailure {
    /// A failure described by one sentence.
    pub fn new(message: impl Into<String>) -> StageFailure {
        StageFailure { context: Some(message.into()), error: None, tail: Vec::new(), class: FailureClass::Task }
    }

    /// A failure with the last lines of the stage's output.
    pub fn with_tail(message: impl Into<String>, tail: Vec<String>) -> StageFailure {
        StageFailure { tail, ..StageFailure::new(message) }
    }

    /// `context` (what was being done) caused by `error`.
    pub fn caused(context: impl Into<String>, error: impl Error + Send + Sync + 'static) -> StageFailure {
        StageFailure { context: Some(context.into()), ..StageFailure::from(error) }
    }

    pub fn interrupted() -> StageFailure {
        StageFailure { class: FailureClass::Interrupted, ..StageFailure::new("interrupted") }
    }

    pub fn panicked(message: &str, location: Option<&str>) -> StageFailure {
        let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
        StageFailure { class: FailureClass::Panic, ..StageFailure::new(format!("panicked{at}: {message}")) }
    }

    pub fn damaged_input(stage: usize, message: impl Into<String>) -> StageFailure {
        StageFailure { class: FailureClass::DamagedInput { stage }, ..StageFailure::new(message) }
    }

    /// A failure another process described (a cluster job): its lines, outermost
    /// first, its output's last lines and its class.
    pub fn relayed(mut chain: Vec<String>, tail: Vec<String>, class: FailureClass) -> StageFailure {
        let context = (!chain.is_empty()).then(|| chain.remove(0));
        let error = Relayed::from_lines(chain).map(|e| Box::new(e) as Box<dyn Error + Send + Sync>);
        StageFailure { context, error, tail, class }
    }

    /// The same failure, its first line prefixed by `what` (`slurm job 42 FAILED`).
    pub fn prefixed(self, what: &str) -> StageFailure {
        let mut chain = self.chain();
        match chain.first_mut() {
            Some(first) => *first = format!("{what}: {first}"),
            None => chain.push(what.to_string()),
        }
        StageFailure::relayed(chain, self.tail, self.class)
    }

    /// The same failure, of another class.
    pub fn with_class(self, class: FailureClass) -> StageFailure {
        StageFailure { class, ..self }
    }

    /// The first line: what failed.
    pub fn message(&self) -> String {
        self.chain().into_iter().next().unwrap_or_default()
    }

    /// The message and then each cause, outermost first. A cause whose text the line
    /// before already quotes is left out.
    pub fn chain(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.context.iter().cloned().collect();
        if let Some(e) = &self.error {
            crate::causes::extend(&mut lines, e.as_ref());
        }
        lines
    }
}

/// A cause told by another process, as text: one line and the causes under it.
#[derive(Debug)]
struct Relayed {
    line: String,
    next: Option<Box<Relayed>>,
}

impl Relayed {
    fn from_lines(lines: Vec<String>) -> Option<Relayed> {
        lines.into_iter().rev().fold(None, |next, line| Some(Relayed { line, next: next.map(Box::new) }))
    }
}

impl fmt::Display for Relayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl Error for Relayed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.next.as_deref().map(|n| n as &(dyn Error + 'static))
    }
}

/// Any typed error becomes a stage failure that keeps it, classed by what is in its
/// chain: an I/O error anywhere makes it a file failure.
impl<E: Error + Send + Sync + 'static> From<E> for StageFailure {
    fn from(error: E) -> StageFailure {
        let class = if chain_has_io(&error) { FailureClass::Io } else { FailureClass::Task };
        StageFailure { context: None, error: Some(Box::new(error)), tail: Vec::new(), class }
    }
}

fn chain_has_io(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<std::io::Error>() {
            return true;
        }
        // candle forwards an I/O error's text but hides the error from the chain.
        if let Some(candle_core::Error::Io(_)) = e.downcast_ref::<candle_core::Error>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl fmt::Display for StageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain().join(": "))
    }
}

/// A kind's parameter struct as the key's `params`: the struct is the single place a
/// parameter lives, so none can affect a stage's output and be missing from its key.
pub fn params_json<T: serde::Serialize>(params: &T) -> crate::key::Params {
    crate::key::Params::of(&serde_json::to_value(params).expect("parameters are plain data"))
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect()
}
