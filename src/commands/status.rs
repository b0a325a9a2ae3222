//! `pipe status FILE`.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::StatusArgs;
use crate::commands::load_pipeline;
use crate::config::Pipeline;
use crate::engine::plan::{Plan, Selection, plan_pipeline};
use crate::error::{Error, emit};
use crate::store::Store;

pub fn status(cache: &Path, a: &StatusArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    let plan = plan_pipeline(&p, &store, &Selection::new(&p, &a.stages, &[])?)?;
    if a.json {
        let v = serde_json::json!({"pipeline": p.file.display().to_string(), "stages": plan.statuses(&p)});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    emit(&render(&p, &plan))
}

/// The human view: one line per stage, its reasons indented below it.
pub fn render(p: &Pipeline, plan: &Plan) -> String {
    let mut out = String::new();
    for s in plan.statuses(p) {
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
    let damaged = match plan.count("damaged") {
        0 => String::new(),
        n => format!(", {n} damaged"),
    };
    let _ = writeln!(
        out,
        "{} stages: {} fresh, {} stale{damaged}, {} waiting",
        plan.selected().count(),
        plan.count("fresh"),
        plan.count("stale"),
        plan.count("waiting")
    );
    out
}
