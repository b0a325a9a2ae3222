//! The errors of the neural-network module. Variants carry data, not preformatted
//! sentences; the binary renders them (and their sources) in one place.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A tensor operation failed inside candle (shape bug, allocation, safetensors parse).
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
    /// A safetensors file that cannot be read (damaged header, truncated data).
    #[error("cannot read tensors from {path}")]
    ReadTensors {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    /// A safetensors file that cannot be written (full disk, read-only filesystem).
    #[error("cannot write tensors to {path}")]
    WriteTensors {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid json in {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The network configuration does not describe a network whose shapes work out.
    #[error("invalid network config: {0}")]
    Config(String),
    /// A parameter set does not fit the network (missing name, wrong shape or dtype).
    #[error("parameter {name}: {problem}")]
    Params { name: String, problem: String },
    /// The images or labels handed in do not fit the network or each other.
    #[error("invalid data: {0}")]
    Data(String),
    /// The training configuration cannot be run (zero batch size, bad learning rate...).
    #[error("invalid training config: {0}")]
    Train(String),
    /// A resume state exists but cannot be used (corrupt, or written by another version).
    #[error("unusable training state in {path}: {problem}")]
    State { path: PathBuf, problem: String },
    /// The device asked for is not available in this build or on this machine.
    #[error("{0}")]
    Device(String),
    /// The cancel flag was raised; the last finished epoch is saved in the state folder.
    #[error("training cancelled")]
    Cancelled,
}

impl NnError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> NnError {
        NnError::Io { path: path.into(), source }
    }

    pub(crate) fn params(name: impl Into<String>, problem: impl Into<String>) -> NnError {
        NnError::Params { name: name.into(), problem: problem.into() }
    }
}
