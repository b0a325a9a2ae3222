//! `pipe show FILE [STAGE]`: results from the cache, without running anything. Every
//! byte shown is verified against its digest first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::commands::shown;
use crate::commands::{PipelineArgs, load_pipeline};
use crate::config::Pipeline;
use crate::engine::plan::{Selection, StageState, plan_pipeline};
use crate::engine::results::{Networks, networks, timeline};
use crate::error::{Error, Usage, emit};
use crate::kinds::report::page_title;
use crate::kinds::report::{summary, write_all};
use crate::report::{Computed, PageContext, build};
use crate::store::{Manifest, Store, UseKind};

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// A stage whose outputs to locate (its checkpoint, config, log, metrics).
    pub stage: Option<String>,
    /// Copy the stage's outputs (or the report's files) into this folder.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Write the report page (figure, findings, learning curves, stage times) of every
    /// network in the cache to this file.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Bring the named stage's entry from this remote cache first, if it is there and
    /// not here (without a STAGE there is nothing to bring).
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn show(cache: &Path, a: &ShowArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    match &a.stage {
        Some(_) if a.html.is_some() => Err(Usage::PageOfOneStage.into()),
        Some(stage) => {
            let pulled = match &a.remote {
                Some(url) => crate::commands::remote::pull_stages(&p, &store, url, std::slice::from_ref(stage))?,
                None => Vec::new(),
            };
            locate(&p, &store, stage, a, &pulled)
        }
        None => results(&p, &store, a),
    }
}

/// The table and findings from every network of the pipeline that is in the cache.
fn results(p: &Pipeline, store: &Store, a: &ShowArgs) -> Result<(), Error> {
    let sel = Selection::new(p, &[], &[])?;
    let plan = plan_pipeline(p, store, &sel, None)?;
    let _ = store.record_use(&p.file, UseKind::Show, plan.fresh_keys());
    let fresh = |i: usize| match plan.stages[i].as_ref().map(|s| &s.state) {
        Some(StageState::Fresh { manifest }) => Some(&**manifest),
        _ => None,
    };
    let Networks { records, places, missing, damaged } = networks(p, store, 0..p.stages.len(), fresh)?;
    let report = build(&records);
    if let Some(path) = &a.html {
        let timeline = timeline(p, &sel.selected, |i| fresh(i).map(|m| (m, Computed::Cached)));
        let ctx = PageContext { pipeline: Some(shown(&p.file)), networks: places, timeline };
        report
            .write_html(path, &page_title(&p.name), &ctx)
            .map_err(|source| Error::Report { dir: path.clone(), source })?;
    }
    if let Some(dir) = &a.export {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { context: format!("cannot create {}", dir.display()), source })?;
        write_all(&report, dir).map_err(|source| Error::Report { dir: dir.clone(), source })?;
    }
    if a.json {
        let v = serde_json::json!({"pipeline": p.file.display().to_string(), "report": report, "missing": missing,
            "damaged": damaged});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let mut out = String::new();
    if records.is_empty() {
        let _ = writeln!(out, "no trained networks of {} are in the cache yet", p.file.display());
    } else {
        out.push_str(&summary(&report));
    }
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\n{} of {} networks are not in the cache yet (`pipe run {}` computes them): {}",
            missing.len(),
            missing.len() + records.len(),
            p.file.display(),
            missing.join(", ")
        );
    }
    if !damaged.is_empty() {
        let _ = writeln!(
            out,
            "\n{} networks are left out: their results in the cache failed verification and were \
             quarantined (`pipe run {}` computes them again): {}",
            damaged.len(),
            p.file.display(),
            damaged.join(", ")
        );
    }
    if let Some(dir) = &a.export {
        let _ = writeln!(out, "report files written to {}", dir.display());
    }
    if let Some(path) = &a.html {
        let _ = writeln!(out, "report page written to {}", path.display());
    }
    emit(&out)
}

/// Where one stage's outputs are: a path per file, inside the cache. `pulled`: entries
/// just brought from a remote (or found here through it), by stage index.
fn locate(p: &Pipeline, store: &Store, stage: &str, a: &ShowArgs, pulled: &[(usize, Manifest)]) -> Result<(), Error> {
    let plan = plan_pipeline(p, store, &Selection::new(p, std::slice::from_ref(&stage.to_string()), &[])?, None)?;
    // The selection knows the name (spaces aside): one stage, or a matrix group.
    let named = Selection::named(p, std::slice::from_ref(&stage.to_string()))?;
    let &[i] = named.as_slice() else {
        let example = plan.selected().last().map(|(i, _)| p.stages[i].name.as_str()).unwrap_or(stage);
        return Err(Usage::Group { group: stage.to_string(), example: example.to_string() }.into());
    };
    let planned = plan.stages[i].as_ref().expect("a named stage is selected");
    let m: &Manifest = match (&planned.state, pulled.iter().find(|(j, _)| *j == i)) {
        (StageState::Fresh { manifest }, _) => manifest,
        (_, Some((_, m))) => m,
        _ => {
            let status = plan.statuses(p).into_iter().find(|s| s.name == stage).expect("a selected stage");
            return Err(Error::NotCached {
                stage: stage.to_string(),
                reasons: status.reasons.join("; "),
                file: p.file.clone(),
            });
        }
    };
    let _ = store.record_use(&p.file, UseKind::Show, std::iter::once(m.key.as_str()));
    if let Some(dir) = &a.export {
        for (name, o) in &m.outputs {
            store.restore(&o.content, &dir.join(name))?;
        }
    }
    if a.json {
        let files: Vec<_> = files(store, m)
            .into_iter()
            .map(|(name, path, size)| serde_json::json!({"name": name, "path": path, "bytes": size}))
            .collect();
        let v = serde_json::json!({"stage": stage, "key": m.key, "seconds": m.seconds, "files": files});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let mut out = format!("{stage} (key {}, computed in {:.1}s)\n", &m.key[..16], m.seconds);
    for (name, path, size) in files(store, m) {
        let _ = writeln!(out, "  {name:<28} {size:>10} B  {path}");
    }
    if let Some(dir) = &a.export {
        let _ = writeln!(out, "copied to {}", dir.display());
    }
    emit(&out)
}

/// (name inside the stage's outputs, object path, size) for every file, log included.
fn files(store: &Store, m: &Manifest) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    let mut push = |name: String, digest: &str, size: u64| {
        out.push((name, store.object_path(digest).display().to_string(), size));
    };
    for (name, o) in &m.outputs {
        for f in &o.content.files {
            let shown = if f.path.is_empty() { name.clone() } else { format!("{name}/{}", f.path) };
            push(shown, &f.digest, f.size);
        }
    }
    if let Some(log) = &m.log {
        push("(stage log)".into(), &log.files[0].digest, log.files[0].size);
    }
    out
}
