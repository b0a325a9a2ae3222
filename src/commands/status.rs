//! `pipe status FILE`.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::StatusArgs;
use crate::commands::load_pipeline;
use crate::engine::status::{StageStatus, State, status as compute};
use crate::error::{Error, emit};
use crate::store::Store;

pub fn status(cache: &Path, a: &StatusArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    let st = compute(&p, &store, &a.stages)?;
    if a.json {
        let v = serde_json::json!({"pipeline": p.file.display().to_string(), "stages": st});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    emit(&render(&st))
}

/// The human view: one line per stage, its reasons indented below it.
pub fn render(st: &[StageStatus]) -> String {
    let mut out = String::new();
    for s in st {
        let word = match s.state {
            State::Fresh => "fresh",
            State::Stale => "stale",
            State::Waiting => "waiting",
        };
        let _ = writeln!(out, "{word:<8} {}", s.name);
        if s.state == State::Stale {
            for r in &s.reasons {
                let _ = writeln!(out, "           {r}");
            }
        } else if s.state == State::Waiting {
            let shown = s.reasons.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
            let more = match s.reasons.len() {
                0..=3 => String::new(),
                n => format!(" and {} more", n - 3),
            };
            let _ = writeln!(out, "           {shown}{more}");
        }
    }
    let count = |x: State| st.iter().filter(|s| s.state == x).count();
    let _ = writeln!(
        out,
        "{} stages: {} fresh, {} stale, {} waiting",
        st.len(),
        count(State::Fresh),
        count(State::Stale),
        count(State::Waiting)
    );
    out
}
