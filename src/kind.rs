//! The interface every stage kind implements, and the registry of kinds.
//!
//! A kind turns the YAML parameters of one stage into a [`Task`]: resolved parameters
//! (defaults filled in; they enter the stage key), the inputs it reads, and the work
//! itself. The engine owns everything else: keys, the cache, scheduling, progress.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::config::diagnostic::Diagnostics;
use crate::config::node::{KeyPath, Mark, Node};

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

    /// Check one stage's parameters (defaults already merged in), recording every
    /// problem; `None` when there was one.
    fn check(&self, params: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Box<dyn Task>>;
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

pub trait Task: Send + Sync + fmt::Debug {
    /// Resolved parameters with every default filled in: what goes into the key.
    fn params(&self) -> serde_json::Value;

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

/// Why a stage failed, with the last lines of what it printed.
#[derive(Debug, Clone)]
pub struct StageFailure {
    pub message: String,
    pub tail: Vec<String>,
}

impl StageFailure {
    pub fn new(message: impl Into<String>) -> StageFailure {
        StageFailure { message: message.into(), tail: Vec::new() }
    }
}

impl fmt::Display for StageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every stage kind this build knows.
pub fn registry() -> &'static [&'static dyn Kind] {
    use crate::kinds::*;
    &[
        &cmd::Cmd,
        &dataset::DatasetKind,
        &split::SplitKind,
        &train::TrainKind,
        &train::TransferKind,
        &evaluate::EvaluateKind,
        &report::ReportKind,
    ]
}

pub fn find(name: &str) -> Option<&'static dyn Kind> {
    registry().iter().copied().find(|k| k.name() == name)
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect()
}
