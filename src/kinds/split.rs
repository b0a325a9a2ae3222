//! `split`: a dataset's classes divided into halves A and B, each with a train and a
//! test part, labels renumbered 0..k-1 within the half.
//!
//! ```yaml
//! stages:
//!   split:
//!     split: {data: data, method: random, seed: 0}        # similar halves
//!   split_by_group:
//!     split: {data: data, method: by_group}               # dissimilar halves
//! ```
//!
//! Outputs `A/` and `B/` (referenced as `split.A`, `split.B`); each holds the half and a
//! `split.json` saying how it was made, which the report uses to tell similar from
//! dissimilar runs.

use serde_json::json;

use crate::config::diagnostic::Diagnostics;
use crate::config::node::{KeyPath, Node};
use crate::config::reader::MapReader;
use crate::data::{Dataset, SplitMethod, split};
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};

pub struct SplitKind;

impl Kind for SplitKind {
    fn name(&self) -> &'static str {
        "split"
    }

    fn version(&self) -> u32 {
        1
    }

    fn check(&self, params: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Box<dyn Task>> {
        let mut m = MapReader::new(params, path.clone(), diags)?;
        let data = m.required_string("data", diags);
        let mark = m.get("data").map_or(params.mark, |n| n.mark);
        let method = m.choice("method", &["random", "by_group", "classes"], "random", diags);
        let seed = m.uint("seed", 0, diags);
        let a = m.string_list("a", diags);
        let b = m.string_list("b", diags);
        let per_class = match m.uint("per_class", 0, diags) {
            0 => None,
            n => Some(n as usize),
        };
        let holdout = m.float("holdout", 0.2, diags);
        if !(0.0..1.0).contains(&holdout) {
            diags.error(params.mark, &path.key("holdout"), "holdout is a fraction in [0, 1)");
        }
        let method = match method {
            "random" => {
                if !a.is_empty() || !b.is_empty() {
                    diags.error(params.mark, &path.key("a"), "`a` and `b` are for `method: by_group` or `classes`");
                }
                SplitMethod::Random { seed }
            }
            "by_group" => SplitMethod::ByGroup { a },
            _ => {
                if a.is_empty() || b.is_empty() {
                    diags.error(params.mark, path, "`method: classes` needs both `a` and `b` class lists");
                }
                SplitMethod::Classes { a, b }
            }
        };
        m.finish(diags);
        Some(Box::new(SplitTask { data: data?, mark, params: SplitParams { method, per_class, holdout, seed } }))
    }
}

/// Everything a split's halves depend on besides the dataset's content.
#[derive(Debug, serde::Serialize)]
struct SplitParams {
    method: SplitMethod,
    per_class: Option<usize>,
    holdout: f64,
    seed: u64,
}

#[derive(Debug)]
struct SplitTask {
    data: String,
    mark: crate::config::node::Mark,
    params: SplitParams,
}

impl Task for SplitTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::Stage { role: "data".into(), reference: self.data.clone(), mark: self.mark, field: "data" }]
    }

    fn outputs(&self) -> Vec<String> {
        vec!["A".into(), "B".into()]
    }

    fn light(&self) -> bool {
        true
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        let dir = super::input_dir(ctx, "data", "dataset")?;
        let ds = Dataset::read(&dir)?;
        let (a, b) = split(&ds, &self.params.method, self.params.per_class, self.params.holdout, self.params.seed)?;
        let kind = match self.params.method {
            SplitMethod::Random { .. } => "random",
            SplitMethod::ByGroup { .. } => "by_group",
            SplitMethod::Classes { .. } => "classes",
        };
        for half in [&a, &b] {
            let out = ctx.out_dir.join(&half.name);
            half.write(&out)?;
            let info = json!({"half": half.name, "split": kind, "method": self.params.method, "seed": self.params.seed,
                "classes": half.classes});
            super::write_json(&out.join("split.json"), &info)?;
        }
        Ok(())
    }
}
