//! The stage kinds this build knows; each implements [`crate::kind::Kind`]. Also the
//! small pieces of IO they share.

pub mod cmd;
pub mod dataset;
pub mod evaluate;
pub mod network;
pub mod report;
pub mod split;
pub mod train;

use std::path::{Path, PathBuf};

use crate::kind::{RunContext, StageFailure};

/// A rayon pool of the stage's thread count: candle's convolutions and matrix products
/// run on the pool they are called from, so a stage uses the cores it was given.
pub(crate) fn pool(threads: usize) -> Result<rayon::ThreadPool, StageFailure> {
    // Named after the stage's thread, so a panic in the pool is known as the stage's.
    let parent = std::thread::current().name().unwrap_or("pipe").to_string();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |j| format!("{parent}-pool-{j}"))
        .build()
        .map_err(|e| StageFailure::caused(format!("cannot start {threads} threads"), e))
}

/// The folder of input `role`; when it holds a folder `sub` (a whole stage given where
/// one of its outputs was meant), that folder.
pub(crate) fn input_dir(ctx: &RunContext<'_>, role: &str, sub: &str) -> Result<PathBuf, StageFailure> {
    let dir = ctx.inputs.get(role).ok_or_else(|| StageFailure::new(format!("input `{role}` is missing")))?;
    let inner = dir.join(sub);
    Ok(if !sub.is_empty() && inner.is_dir() { inner } else { dir.clone() })
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, StageFailure> {
    let bytes = std::fs::read(path).map_err(|e| StageFailure::caused(format!("cannot read {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| StageFailure::caused(format!("{} is not valid JSON", path.display()), e))
}

/// Pretty JSON with a final newline; the same value gives the same bytes.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), StageFailure> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| StageFailure::caused(format!("cannot write {}", path.display()), e))
}
