//! `pipe run FILE [STAGE...]`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::commands::PipelineArgs;
use crate::commands::shown;
use crate::commands::{load_pipeline, load_with_books};
use crate::config::Pipeline;
use crate::config::resources::ExecutorName;
use crate::engine::cancel::install_handler;
use crate::engine::plan::{Books, Selection, StageState, plan_pipeline};
use crate::engine::results::{networks, timeline};
use crate::engine::run::{Outcome, RunOptions, RunSummary, StageResult, run as run_pipeline};
use crate::engine::slurm::SlurmSettings;
use crate::error::{Error, FailedStage, emit};
use crate::kind::FailureClass;
use crate::kinds::report::{page_path, page_title};
use crate::remote::{Remote, Transfer};
use crate::report::{Computed, PageContext, build};
use crate::store::{Manifest, Store};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Run only these stages (names or matrix groups) and what they need.
    pub stages: Vec<String>,
    /// Core budget: the threads of all running stages add up to at most this
    /// [default: the number of cores]. With `--executor slurm`: how many jobs may be
    /// queued or running at once [default: 100].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Where stages run: `local` (this machine's cores) or `slurm` (one cluster job
    /// per stage; see the README) [default: the file's `executor`, else local].
    #[arg(long, env = "PIPE_EXECUTOR", value_name = "NAME", value_parser = ["local", "slurm"])]
    pub executor: Option<String>,
    /// With `--executor slurm`: submit a job that ended NODE_FAIL, PREEMPTED or
    /// BOOT_FAIL again, up to this many times.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Show what would run, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Recompute this stage (or matrix group) even if cached; repeatable.
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Print one JSON object with every stage's outcome.
    #[arg(long)]
    pub json: bool,
    /// A remote cache (`s3://bucket/prefix`, `file:///path` or a folder): a stage it
    /// has is not computed, and its bytes are fetched only when a stage here reads them.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
    /// Push each stage's entry to the remote as soon as it is computed.
    #[arg(long, requires = "remote")]
    pub push: bool,
}

pub fn run(cache: &Path, a: &RunArgs) -> Result<(), Error> {
    if a.dry_run {
        let p = load_pipeline(&a.pipeline)?;
        return dry_run(&p, &Store::open(cache)?, a);
    }
    let (p, store, books) = load_with_books(&a.pipeline, cache)?;
    let remote = match &a.remote {
        Some(url) => Some(std::sync::Arc::new(Remote::open(url, a.push)?)),
        None => None,
    };
    install_handler();
    let summary = run_on_executor(&p, &store, books, a, remote.clone())?;
    let from_remote = remote_afterwards(&p, &store, remote.as_deref(), &summary, a.json)?;
    let pages = write_pages(&p, &store, &summary, &from_remote)?;
    print_outcome(&p, &store, &summary, &pages, a)?;
    if summary.interrupted {
        return Err(Error::Interrupted);
    }
    let result = failures(&summary);
    // The process ends here: freeing a large pipeline and its results piece by piece
    // would only delay the exit (a tenth of a second at 100,000 stages).
    std::mem::forget(summary);
    std::mem::forget(p);
    result
}

/// The run itself, on the executor the command line, the file or the default names.
fn run_on_executor(
    p: &Pipeline,
    store: &Store,
    books: Books,
    a: &RunArgs,
    remote: Option<std::sync::Arc<Remote>>,
) -> Result<RunSummary, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let executor = a.executor.as_deref().and_then(ExecutorName::parse).or(p.executor).unwrap_or(ExecutorName::Local);
    let opts = RunOptions {
        targets: a.stages.clone(),
        jobs: cores,
        force: a.force.clone(),
        json: a.json,
        remote,
        push: a.push,
    };
    Ok(match executor {
        ExecutorName::Local => run_pipeline(p, store, &RunOptions { jobs: a.jobs.unwrap_or(cores), ..opts }, books)?,
        ExecutorName::Slurm => {
            let settings = SlurmSettings {
                max_jobs: a.jobs.unwrap_or(100),
                local_cores: cores,
                retries: a.retries,
                poll: slurm_poll(),
                sets: a.pipeline.sets.clone(),
                busy_for: slurm_busy_for(),
            };
            crate::engine::slurm::run(p, store, &opts, books, settings)?
        }
    })
}

/// After a run with a remote: the report brought from there (a convenience: a remote
/// that fails now is a warning, never a reason to hide how the run went) and what the
/// pushes did. Returns the networks the report read from the remote, by key.
fn remote_afterwards(
    p: &Pipeline,
    store: &Store,
    remote: Option<&Remote>,
    summary: &RunSummary,
    json: bool,
) -> Result<HashMap<String, Manifest>, Error> {
    let from_remote = match remote {
        Some(r) if !summary.interrupted => pull_reports(p, store, r, summary).unwrap_or_else(|e| {
            eprintln!("warning: the report was not brought from the remote: {}", e.render().trim_end());
            HashMap::new()
        }),
        _ => HashMap::new(),
    };
    if let Some(traffic) = &summary.remote {
        for e in &traffic.push_errors {
            eprintln!("warning: not pushed (it is in the local cache; `pipe push` sends it later): {e}");
        }
        if let Some(m) = traffic.pushed.as_ref().filter(|_| !json) {
            emit(&format!(
                "pushed {} entries, {} objects ({}) to {}\n",
                m.entries,
                m.objects,
                crate::commands::cache::human(m.bytes),
                traffic.url
            ))?;
        }
    }
    Ok(from_remote)
}

/// The summary as JSON (with the pages written) or as text (with the reports' tables),
/// then the requests far above what their jobs used: the cluster's time wasted.
fn print_outcome(
    p: &Pipeline,
    store: &Store,
    summary: &RunSummary,
    pages: &[Page<'_>],
    a: &RunArgs,
) -> Result<(), Error> {
    if a.json {
        let mut v = serde_json::to_value(summary).expect("a summary is plain data");
        let mut written = Vec::new();
        for (_, page) in pages {
            match page {
                Ok(path) => written.push(path.display().to_string()),
                Err(e) => eprintln!("warning: the report page was not written: {}", e.render().trim_end()),
            }
        }
        if !written.is_empty() {
            v["report_pages"] = serde_json::json!(written);
        }
        let text = serde_json::to_string_pretty(&v).expect("a summary is plain data");
        emit(&format!("{text}\n"))?;
    } else {
        print_reports(&a.pipeline.file, store, pages)?;
        emit(&format!("{} ({:.2}s)\n", summary.line(), summary.seconds))?;
    }
    for line in oversized(p, store, summary) {
        if a.json {
            eprintln!("{line}");
        } else {
            emit(&format!("{line}\n"))?;
        }
    }
    Ok(())
}

/// A report stage found on the remote is brought here whole (a few small files), so
/// its table and findings can be printed; for its page, the networks it reads that are
/// on the remote are fetched as the report reads them (never their checkpoints).
/// Returns those networks' manifests by key.
fn pull_reports(
    p: &Pipeline,
    store: &Store,
    remote: &Remote,
    summary: &RunSummary,
) -> Result<HashMap<String, Manifest>, Error> {
    let index: HashMap<&str, usize> = p.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let results: HashMap<usize, &StageResult> =
        summary.stages.iter().filter_map(|r| index.get(r.name.as_str()).map(|i| (*i, r))).collect();
    let mut read = HashMap::new();
    for (&i, r) in &results {
        let stage = &p.stages[i];
        if !stage.kind.makes_report() || !matches!(r.outcome, Outcome::Ran | Outcome::Cached | Outcome::Remote) {
            continue;
        }
        if r.outcome == Outcome::Remote
            && let Some(key) = &r.key
            && let Some(m) = remote.manifest(key)?
        {
            remote.pull(store, &[m], &Transfer::quiet())?;
        }
        let reads = stage.task.reads().unwrap_or_default();
        for u in &p.dag.upstream[i] {
            let Some(ur) = results.get(u).filter(|ur| ur.outcome == Outcome::Remote) else { continue };
            let Some(key) = &ur.key else { continue };
            if read.contains_key(key) {
                continue;
            }
            let Some(m) = remote.manifest(key)? else { continue };
            let files: Vec<_> = m
                .outputs
                .iter()
                .filter(|(n, _)| reads.contains(&n.as_str()))
                .flat_map(|(_, o)| &o.content.files)
                .collect();
            remote.fetch(store, &files, &Transfer::quiet())?;
            read.insert(key.clone(), m);
        }
    }
    Ok(read)
}

/// How often Slurm is asked for job states: `PIPE_SLURM_POLL` seconds, default 5.
fn slurm_poll() -> std::time::Duration {
    let secs = std::env::var("PIPE_SLURM_POLL").ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| *s > 0.0);
    std::time::Duration::from_secs_f64(secs.unwrap_or(5.0))
}

/// One line per stage group and request of this run's cluster jobs that used far less
/// than they asked for (see [`crate::engine::usage::oversized`]).
fn oversized(p: &Pipeline, store: &Store, summary: &RunSummary) -> Vec<String> {
    let index: HashMap<&str, usize> = p.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let ran: Vec<(&str, Manifest)> = summary
        .stages
        .iter()
        .filter(|r| r.outcome == Outcome::Ran && r.job.is_some())
        .filter_map(|r| {
            let m = store.entry(r.key.as_deref()?).ok()??;
            Some((p.stages[*index.get(r.name.as_str())?].group.as_str(), m))
        })
        .collect();
    // Slurm's accounting, where the cluster keeps any, beside what the jobs measured.
    let ids: Vec<String> = ran.iter().filter_map(|(_, m)| m.job.as_ref()?.id.clone()).collect();
    let acct = crate::engine::slurm::accounting(&ids);
    crate::engine::usage::oversized(ran.iter().map(|(g, m)| (*g, m)), &acct)
}

/// How long a busy Slurm is retried: `PIPE_SLURM_BUSY` seconds, default 300.
fn slurm_busy_for() -> std::time::Duration {
    let secs = std::env::var("PIPE_SLURM_BUSY").ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| *s >= 0.0);
    secs.map_or(crate::engine::slurm_call::DEFAULT_BUSY_FOR, std::time::Duration::from_secs_f64)
}

/// Every failed stage with its causes and last output lines (rendered, with the exit
/// code, by `Error`).
fn failures(summary: &RunSummary) -> Result<(), Error> {
    let stages: Vec<FailedStage> = summary
        .stages
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .map(|f| FailedStage {
            name: f.name.clone(),
            error: f.error.clone().unwrap_or_else(|| "unknown error".into()),
            causes: f.causes.clone(),
            tail: f.tail.clone(),
            io: f.failure == Some(FailureClass::Io),
        })
        .collect();
    if stages.is_empty() {
        return Ok(());
    }
    Err(Error::StagesFailed { stages, skipped: summary.count(Outcome::Skipped) })
}

fn dry_run(p: &Pipeline, store: &Store, a: &RunArgs) -> Result<(), Error> {
    let remote = a.remote.as_deref().map(|url| Remote::open(url, false)).transpose()?;
    let plan = plan_pipeline(p, store, &Selection::new(p, &a.stages, &a.force)?, remote.as_ref())?;
    let mut out = String::new();
    for (i, s) in plan.selected() {
        let verb = match &s.state {
            StageState::Fresh { .. } => "cached",
            StageState::Remote { .. } => "would fetch from the remote",
            StageState::Stale { .. } => "would run",
            StageState::Damaged { .. } => "would run (damaged)",
            StageState::Waiting { .. } => "would run if its inputs change",
        };
        let _ = writeln!(out, "{verb:<30} {}", p.stages[i].name);
    }
    emit(&out)
}

/// A report stage's result and where its page went (or why it could not be written).
type Page<'s> = (&'s StageResult, Result<PathBuf, Error>);

/// The page of every report stage that is done after this run, beside the pipeline file:
/// the stage's result and where its page went (or why it could not be written; the
/// results are in the cache whatever happens to a page).
fn write_pages<'s>(
    p: &Pipeline,
    store: &Store,
    summary: &'s RunSummary,
    from_remote: &HashMap<String, Manifest>,
) -> Result<Vec<Page<'s>>, Error> {
    let reports: std::collections::HashSet<&str> =
        p.stages.iter().filter(|s| s.kind.makes_report()).map(|s| s.name.as_str()).collect();
    let done: Vec<&StageResult> = summary
        .stages
        .iter()
        .filter(|r| {
            reports.contains(r.name.as_str())
                && r.key.is_some()
                && matches!(r.outcome, Outcome::Ran | Outcome::Cached | Outcome::Remote)
        })
        .collect();
    if done.is_empty() {
        return Ok(Vec::new());
    }
    // Every stage's entry, read once for all the pages: their times and networks.
    let index: std::collections::HashMap<&str, usize> =
        p.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut entries: Vec<Option<(Manifest, Computed)>> = (0..p.stages.len()).map(|_| None).collect();
    let mut selected = vec![false; p.stages.len()];
    for r in &summary.stages {
        let Some(&i) = index.get(r.name.as_str()) else { continue };
        selected[i] = true;
        let how = match r.outcome {
            Outcome::Ran => Computed::Now,
            Outcome::Cached | Outcome::Remote => Computed::Cached,
            Outcome::Failed | Outcome::Skipped => continue,
        };
        let Some(key) = &r.key else { continue };
        if let Some(m) = store.entry(key)?.or_else(|| from_remote.get(key).cloned()) {
            entries[i] = Some((m, how));
        }
    }
    let timeline = timeline(p, &selected, |i| entries[i].as_ref().map(|(m, how)| (m, *how)));
    let page = |stage: usize| -> Result<PathBuf, Error> {
        // The networks this report stage reads, as its own page has them.
        let of = p.dag.upstream[stage].iter().copied();
        let nets = networks(p, store, of, |i| entries[i].as_ref().map(|(m, _)| m))?;
        let ctx = PageContext { pipeline: Some(shown(&p.file)), networks: nets.places, timeline: timeline.clone() };
        let path = page_path(&p.file, &p.workspace, &p.stages[stage].name);
        build(&nets.records)
            .write_html(&path, &page_title(&p.name), &ctx)
            .map_err(|source| Error::Report { dir: path.clone(), source })?;
        Ok(path)
    };
    Ok(done.into_iter().map(|r| (r, page(index[r.name.as_str()]))).collect())
}

/// After a run, the table and findings of every report stage that is now in the cache,
/// where its page is, and where its files are.
fn print_reports(file: &Path, store: &Store, pages: &[(&StageResult, Result<PathBuf, Error>)]) -> Result<(), Error> {
    for (r, page) in pages {
        let Some(m) = store.entry(r.key.as_deref().expect("a done report has its key"))? else { continue };
        let Some(o) = m.outputs.get(crate::kinds::report::SUMMARY) else { continue };
        let text = String::from_utf8_lossy(&store.read(&o.content)?).into_owned();
        emit(&format!("\n{}\n", text.trim_end()))?;
        emit(&match page {
            Ok(path) => format!("report page: {}\n", shown(path)),
            Err(e) => format!("warning: the report page was not written: {}\n", e.render().trim_end()),
        })?;
        emit(&format!("(figure, CSV and parquet table: `pipe show {} {} --export DIR`)\n\n", file.display(), r.name))?;
    }
    Ok(())
}
