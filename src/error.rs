//! The errors a command can end with, the exit code of each, and the one place they
//! are rendered.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | a stage failed (or `cache verify` found damage) |
//! | 2 | bad command-line usage |
//! | 3 | the pipeline file is invalid, or its executor cannot run it (nothing ran) |
//! | 4 | the cache, a remote cache or a file could not be read or written (a stage's too) |
//! | 130 | interrupted by Ctrl-C (a rerun picks up where it stopped) |

use crate::causes::chain;
use crate::config::ConfigError;
use crate::engine::plan::UnknownStage;
use crate::engine::run::RunError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Target(#[from] UnknownStage),
    #[error(transparent)]
    Usage(#[from] Usage),
    /// A stage a cluster job computed failed; its report says how.
    #[error("a stage of this job failed (see its report)")]
    JobFailed,
    #[error("cannot write the report into {}", dir.display())]
    Report {
        dir: std::path::PathBuf,
        #[source]
        source: crate::report::ReportError,
    },
    #[error("interrupted")]
    Interrupted,
    /// A remote cache could not be reached or read, or sent damaged bytes.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// The executor cannot run the pipeline's stages (no `sbatch`, a partition the
    /// cluster refuses), or a cluster job could not do its part.
    #[error(transparent)]
    Executor(#[from] crate::engine::executor::ExecError),
    /// A run could not go on: its targets, the cache, the plan or the executor.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The results in the cache could not be read for a page or `show`.
    #[error(transparent)]
    Results(#[from] crate::engine::results::ResultsError),
    /// A plan could not be made: the local cache or the remote failed.
    #[error(transparent)]
    Plan(#[from] crate::engine::plan::PlanError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// `cache verify` found damage (each problem listed before it).
    #[error("the cache has {0} damaged entries or objects")]
    Damaged(usize),
    /// gc of a remote cannot know the keys of some stages of a named file.
    #[error(
        "remote {url}: nothing was removed: the keys of {count} stage(s) of {} (`{first}` first) cannot be known, \
         because what they read is in neither cache; run or pull the pipeline first",
        file.display()
    )]
    UnknownKeys { url: String, count: usize, file: std::path::PathBuf, first: String },
    /// `show STAGE` of a stage the cache does not hold with its current inputs.
    #[error("stage `{stage}` is not in the cache with its current inputs ({reasons}); run `pipe run {} \"{stage}\"`", file.display())]
    NotCached { stage: String, reasons: String, file: std::path::PathBuf },
    /// Stages of a run failed: each with its causes and the last lines of its output.
    #[error("{} stage(s) failed", stages.len())]
    StagesFailed { stages: Vec<FailedStage>, skipped: usize },
}

/// A command line that asks for something the command does not do (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error(
        "`gc --only` would remove {others} entries that recorded runs used (listed above); nothing was removed. \
         Without a terminal to ask on, pass --yes to remove them"
    )]
    GcNeedsYes { others: usize },
    #[error("nothing was removed")]
    GcDeclined,
    #[error("`--html` writes the page of the whole pipeline; name no stage")]
    PageOfOneStage,
    #[error("`{group}` is a group of stages; name one of them, e.g. `{example}`")]
    Group { group: String, example: String },
}

/// One failed stage, as the run reported it.
#[derive(Debug)]
pub struct FailedStage {
    pub name: String,
    pub error: String,
    pub causes: Vec<String>,
    pub tail: Vec<String>,
    /// It failed on a file or the cache (a full disk, a read-only filesystem).
    pub io: bool,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::JobFailed => 1,
            Error::Damaged(_) | Error::UnknownKeys { .. } | Error::NotCached { .. } => 1,
            // Only a file's or the cache's fault everywhere: 4, as for any such error.
            Error::StagesFailed { stages, .. } if stages.iter().all(|f| f.io) => 4,
            Error::StagesFailed { .. } => 1,
            Error::Usage(_) | Error::Target(_) | Error::Run(RunError::Target(_)) => 2,
            Error::Config(_) | Error::Executor(_) | Error::Run(RunError::Executor(_)) => 3,
            Error::Store(_) | Error::Io { .. } | Error::Report { .. } | Error::Remote(_) => 4,
            Error::Run(RunError::Store(_) | RunError::Plan(_)) | Error::Plan(_) => 4,
            Error::Results(crate::engine::results::ResultsError::Record { .. }) => 1,
            Error::Results(_) => 4,
            Error::Interrupted => 130,
        }
    }

    /// The text printed on stderr: `error: ...` and a `caused by:` line per cause.
    pub fn render(&self) -> String {
        match self {
            Error::StagesFailed { stages, skipped } => render_failed(stages, *skipped),
            Error::Config(_) => self.to_string(),
            Error::Interrupted => "interrupted: run the same command again to continue".to_string(),
            other => {
                let mut lines = chain(other).into_iter();
                let mut out = format!("error: {}", lines.next().unwrap_or_default());
                for cause in lines {
                    out.push_str(&format!("\n  caused by: {cause}"));
                }
                out
            }
        }
    }
}

/// Every failed stage: `error: stage ... failed`, its causes, its output's last lines;
/// then how many stages were not run because of them.
fn render_failed(stages: &[FailedStage], skipped: usize) -> String {
    use std::fmt::Write as _;
    let mut msg = String::new();
    for f in stages {
        let _ = writeln!(msg, "error: stage `{}` failed: {}", f.name, f.error);
        for cause in &f.causes {
            let _ = writeln!(msg, "  caused by: {cause}");
        }
        if !f.tail.is_empty() {
            let _ = writeln!(msg, "  last lines of its output:");
            for line in &f.tail {
                let _ = writeln!(msg, "  | {line}");
            }
        }
    }
    if skipped > 0 {
        let _ = writeln!(msg, "{skipped} stage(s) that depend on it were not run");
    }
    msg.trim_end().to_string()
}

/// Print to stdout; a closed pipe (`pipe status x | head`) is not an error.
pub fn emit(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Io { context: "cannot write to stdout".into(), source }),
    }
}
