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

use serde::Deserialize;
use serde_json::json;

use crate::config::params::{Located, Params};
use crate::data::{Dataset, SplitMethod, split};
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};

pub struct SplitKind;

/// A `split` stage as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitInput {
    /// The dataset stage.
    data: Located<String>,
    #[serde(default)]
    method: Method,
    /// Shuffles the classes (`random`) and picks the images kept (`per_class`).
    #[serde(default)]
    seed: u64,
    /// `by_group`: the groups of A; `classes`: the classes of A.
    #[serde(default)]
    a: Vec<String>,
    /// `classes`: the classes of B.
    #[serde(default)]
    b: Vec<String>,
    /// Training images kept per class; 0 keeps all.
    #[serde(default)]
    per_class: usize,
    /// The fraction of each class's images held out for testing when the dataset has
    /// no test part of its own.
    #[serde(default = "default_holdout", deserialize_with = "fraction")]
    holdout: f64,
}

fn default_holdout() -> f64 {
    0.2
}

fn fraction<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..1.0).contains(&v) {
        return Err(serde::de::Error::custom("holdout is a fraction in [0, 1)"));
    }
    Ok(v)
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    #[default]
    Random,
    ByGroup,
    Classes,
}

impl Kind for SplitKind {
    fn name(&self) -> &'static str {
        "split"
    }

    fn version(&self) -> u32 {
        1
    }

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let SplitInput { data, method, seed, a, b, per_class, holdout } = p.read()?;
        let method = match method {
            Method::Random => {
                if !a.is_empty() || !b.is_empty() {
                    let at = if a.is_empty() { "b" } else { "a" };
                    p.problem(at, "`a` and `b` are for `method: by_group` or `classes`");
                }
                SplitMethod::Random { seed }
            }
            Method::ByGroup => {
                if !b.is_empty() {
                    p.problem("b", "`b` is for `method: classes`; `by_group` puts every other class in B");
                }
                SplitMethod::ByGroup { a }
            }
            Method::Classes => {
                if a.is_empty() || b.is_empty() {
                    p.problem("", "`method: classes` needs both `a` and `b` class lists");
                }
                SplitMethod::Classes { a, b }
            }
        };
        let per_class = (per_class > 0).then_some(per_class);
        Some(Box::new(SplitTask { data, params: SplitParams { method, per_class, holdout, seed } }))
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
    data: Located<String>,
    params: SplitParams,
}

impl Task for SplitTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::stage("data", &self.data, "data")]
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
