//! Run a pipeline from code: load and validate the file, open the cache, read what it
//! remembers of the file (its books), run what is stale, and read the outcome of every
//! stage.
//!
//! ```sh
//! cargo run --release --example run_pipeline -- pipelines/quick.yaml
//! ```

use std::path::PathBuf;

use pipe::config::load;
use pipe::engine::plan::Books;
use pipe::engine::run::{Outcome, RunOptions, run};
use pipe::store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "pipelines/quick.yaml".into()));
    // `--set`-style overrides, applied before validation.
    let pipeline = load(&file, &["training.epochs=1".to_string()], pipe::kinds::registry())?;
    let store = Store::open(&PathBuf::from("cache"))?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let books = Books::load(&store, &pipeline.file);
    let summary = run(&pipeline, &store, &RunOptions { jobs, json: true, ..RunOptions::default() }, books)?;
    for stage in &summary.stages {
        let key = stage.key.as_deref().map_or("-", |k| &k[..12]);
        println!("{:<8} {key}  {}", format!("{:?}", stage.outcome).to_lowercase(), stage.name);
    }
    println!("{}", summary.line());
    if summary.stages.iter().any(|s| s.outcome == Outcome::Failed) {
        std::process::exit(1);
    }
    Ok(())
}
