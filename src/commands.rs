//! One module per subcommand: each loads what it needs, calls the library and prints.

pub mod cache;
pub mod dag;
pub mod exec_job;
pub mod remote;
pub mod run;
pub mod show;
pub mod status;

use std::path::PathBuf;

use clap::Args;

use crate::config::{Pipeline, load};
use crate::engine::plan::Books;
use crate::error::Error;
use crate::store::Store;

#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
    pub file: PathBuf,
    /// Override a value of the file, e.g. `--set training.epochs=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn load_pipeline(a: &PipelineArgs) -> Result<Pipeline, Error> {
    Ok(load(&a.file, &a.sets, crate::kinds::registry())?)
}

/// The pipeline, the cache at `cache` (created if need be, once the file is found
/// valid) and the pipeline's books in it; the file and the books are read side by side.
pub fn load_with_books(a: &PipelineArgs, cache: &std::path::Path) -> Result<(Pipeline, Store, Books), Error> {
    let abs = std::path::absolute(&a.file).unwrap_or_else(|_| a.file.clone());
    let (p, books) = rayon::join(
        || load(&a.file, &a.sets, crate::kinds::registry()),
        || Store::existing(cache).map(|store| Books::load(&store, &abs)),
    );
    let p = p?;
    debug_assert_eq!(p.file, abs, "the books are those of the file loaded");
    Ok((p, Store::open(cache)?, books?))
}

/// A path as the user named things: relative to the current folder when below it.
pub fn shown(path: &std::path::Path) -> String {
    let cwd = std::env::current_dir().ok();
    cwd.and_then(|c| path.strip_prefix(c).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}
