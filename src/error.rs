//! The errors a command can end with, and the exit code of each.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | a stage failed (or `cache verify` found damage) |
//! | 2 | bad command-line usage |
//! | 3 | the pipeline file is invalid (nothing ran) |
//! | 4 | the cache or a file could not be read or written |
//! | 130 | interrupted by Ctrl-C (a rerun picks up where it stopped) |

use crate::config::ConfigError;
use crate::engine::run::RunError;
use crate::engine::status::StatusError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    /// Stages failed; what failed was already printed.
    #[error("{0}")]
    Failed(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        match e {
            RunError::Target(m) => Error::Usage(m),
            RunError::Store(s) => Error::Store(s),
        }
    }
}

impl From<StatusError> for Error {
    fn from(e: StatusError) -> Error {
        match e {
            StatusError::Target(m) => Error::Usage(m),
            StatusError::Store(s) => Error::Store(s),
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) => 2,
            Error::Config(_) => 3,
            Error::Store(_) | Error::Io { .. } => 4,
            Error::Interrupted => 130,
        }
    }
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
