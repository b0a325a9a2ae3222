//! `pipe run FILE [STAGE...]`.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::RunArgs;
use crate::commands::load_pipeline;
use crate::config::Pipeline;
use crate::engine::cancel::install_handler;
use crate::engine::plan::{Selection, StageState, plan_pipeline};
use crate::engine::run::{Outcome, RunOptions, RunSummary, run as run_pipeline};
use crate::error::{Error, emit};
use crate::kind::FailureClass;
use crate::store::Store;

pub fn run(cache: &Path, a: &RunArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    if a.dry_run {
        return dry_run(&p, &store, a);
    }
    install_handler();
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = RunOptions { targets: a.stages.clone(), jobs, force: a.force.clone(), json: a.json };
    let summary = run_pipeline(&p, &store, &opts)?;
    if a.json {
        let text = serde_json::to_string_pretty(&summary).expect("a summary is plain data");
        emit(&format!("{text}\n"))?;
    } else {
        print_reports(&p, &a.pipeline.file, &store, &summary)?;
        emit(&format!("{} ({:.2}s)\n", summary.line(), summary.seconds))?;
    }
    if summary.interrupted {
        return Err(Error::Interrupted);
    }
    failures(&summary)
}

/// Every failed stage with its causes and last output lines. The exit code is 4 when
/// every failure was a file's or the cache's (a full disk, a read-only filesystem),
/// else 1.
fn failures(summary: &RunSummary) -> Result<(), Error> {
    let failed: Vec<_> = summary.stages.iter().filter(|s| s.outcome == Outcome::Failed).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for f in &failed {
        let _ = writeln!(msg, "error: stage `{}` failed: {}", f.name, f.error.as_deref().unwrap_or("unknown error"));
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
    let skipped = summary.count(Outcome::Skipped);
    if skipped > 0 {
        let _ = writeln!(msg, "{skipped} stage(s) that depend on it were not run");
    }
    let code = if failed.iter().all(|f| f.failure == Some(FailureClass::Io)) { 4 } else { 1 };
    Err(Error::Failed { report: msg.trim_end().to_string(), code })
}

fn dry_run(p: &Pipeline, store: &Store, a: &RunArgs) -> Result<(), Error> {
    let plan = plan_pipeline(p, store, &Selection::new(p, &a.stages, &a.force)?)?;
    let mut out = String::new();
    for (i, s) in plan.selected() {
        let verb = match &s.state {
            StageState::Fresh { .. } => "cached",
            StageState::Stale { .. } => "would run",
            StageState::Damaged { .. } => "would run (damaged)",
            StageState::Waiting { .. } => "would run if its inputs change",
        };
        let _ = writeln!(out, "{verb:<30} {}", p.stages[i].name);
    }
    emit(&out)
}

/// After a run, the table and findings of every report stage that is now in the cache,
/// and where its files are.
fn print_reports(p: &Pipeline, file: &Path, store: &Store, summary: &RunSummary) -> Result<(), Error> {
    let reports: std::collections::HashSet<&str> =
        p.stages.iter().filter(|s| s.kind.name() == "report").map(|s| s.name.as_str()).collect();
    for r in &summary.stages {
        let is_report = reports.contains(r.name.as_str());
        let (true, Some(key), Outcome::Ran | Outcome::Cached) = (is_report, &r.key, r.outcome) else { continue };
        let Some(m) = store.entry(key)? else { continue };
        let Some(o) = m.outputs.get(crate::kinds::report::SUMMARY) else { continue };
        let text = String::from_utf8_lossy(&store.read(&o.content)?).into_owned();
        emit(&format!("\n{}\n", text.trim_end()))?;
        emit(&format!("(figure, CSV and parquet table: `pipe show {} {} --export DIR`)\n\n", file.display(), r.name))?;
    }
    Ok(())
}
