//! `pipe status FILE`.

use std::fmt::Write as _;
use std::path::Path;

use clap::Args;

use crate::commands::{PipelineArgs, load_with_books};
use crate::engine::plan::{Selection, StageStatus, plan_with};
use crate::error::{Error, emit};
use crate::remote::Remote;
use crate::store::UseKind;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Only these stages and what they need.
    pub stages: Vec<String>,
    #[arg(long)]
    pub json: bool,
    /// Also look in this remote cache: a stage it has is `remote`.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
}

pub fn status(cache: &Path, a: &StatusArgs) -> Result<(), Error> {
    let (p, store, books) = load_with_books(&a.pipeline, cache)?;
    let sel = Selection::new(&p, &a.stages, &[])?;
    let remote = a.remote.as_deref().map(|url| Remote::open(url, false)).transpose()?;
    let plan = plan_with(&p, &store, &sel, books, remote.as_ref())?;
    // What status found counts as used (for `gc --older-than` and `--max-size`).
    let _ = store.record_use(&p.file, UseKind::Status, plan.fresh_keys());
    let mut statuses = plan.statuses(&p);
    if let Some(url) = &a.remote {
        for s in statuses.iter_mut().filter(|s| s.state == "remote") {
            s.reasons = vec![format!("on {url}")];
        }
    }
    if a.json {
        let v = serde_json::json!({"pipeline": p.file.display().to_string(), "stages": statuses});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    emit(&render(&statuses))
}

/// The human view: one line per stage, its reasons indented below it.
pub fn render(statuses: &[StageStatus]) -> String {
    let mut out = String::new();
    for s in statuses {
        let _ = writeln!(out, "{:<8} {}", s.state, s.name);
        if s.state == "waiting" {
            let shown = s.reasons.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
            let more = match s.reasons.len() {
                0..=3 => String::new(),
                n => format!(" and {} more", n - 3),
            };
            let _ = writeln!(out, "           {shown}{more}");
        } else {
            for r in &s.reasons {
                let _ = writeln!(out, "           {r}");
            }
        }
    }
    let count = |word: &str| statuses.iter().filter(|s| s.state == word).count();
    let extra = |word: &str, what: &str| match count(word) {
        0 => String::new(),
        n => format!(", {n} {what}"),
    };
    let _ = writeln!(
        out,
        "{} stages: {} fresh{}, {} stale{}, {} waiting",
        statuses.len(),
        count("fresh"),
        extra("remote", "on the remote"),
        count("stale"),
        extra("damaged", "damaged"),
        count("waiting")
    );
    out
}
