//! `evaluate`: a trained network's top-1, loss and per-class accuracy on a half's test
//! part (or its train part), as `metrics.json`.
//!
//! ```yaml
//! stages:
//!   eval_noisy:
//!     evaluate: {network: "transfer[from=A,n=3,ft=true]", data: noisy_split.B}
//! ```
//!
//! `train` and `transfer` already evaluate on their own target's test part; this kind
//! is for evaluating a network on other data with the same classes.

use serde_json::json;

use crate::config::diagnostic::Diagnostics;
use crate::config::node::{KeyPath, Mark, Node};
use crate::config::reader::MapReader;
use crate::data::Half;
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};
use crate::nn::{Images, evaluate, load_checkpoint};

pub struct EvaluateKind;

impl Kind for EvaluateKind {
    fn name(&self) -> &'static str {
        "evaluate"
    }

    fn version(&self) -> u32 {
        1
    }

    fn check(&self, params: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Box<dyn Task>> {
        let mut m = MapReader::new(params, path.clone(), diags)?;
        let network = m.required_string("network", diags);
        let nmark = m.get("network").map_or(params.mark, |n| n.mark);
        let data = m.required_string("data", diags);
        let dmark = m.get("data").map_or(params.mark, |n| n.mark);
        let part = match m.choice("part", &["test", "train"], "test", diags) {
            "train" => Part::Train,
            _ => Part::Test,
        };
        m.finish(diags);
        Some(Box::new(EvaluateTask { network: (network?, nmark), data: (data?, dmark), params: EvalParams { part } }))
    }
}

/// Which part of the half is evaluated: all an evaluation depends on besides its inputs.
#[derive(Debug, serde::Serialize)]
struct EvalParams {
    part: Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Part {
    Test,
    Train,
}

#[derive(Debug)]
struct EvaluateTask {
    network: (String, Mark),
    data: (String, Mark),
    params: EvalParams,
}

impl Task for EvaluateTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::Stage {
                role: "network".into(),
                reference: self.network.0.clone(),
                mark: self.network.1,
                field: "network",
            },
            Input::Stage { role: "data".into(), reference: self.data.0.clone(), mark: self.data.1, field: "data" },
        ]
    }

    fn outputs(&self) -> Vec<String> {
        vec!["metrics.json".into()]
    }

    fn max_threads(&self) -> usize {
        64
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        let net_dir = super::input_dir(ctx, "network", "network")?;
        let (cfg, params) = load_checkpoint(&net_dir)?;
        let half = Half::read(&super::input_dir(ctx, "data", "")?)?;
        if half.classes.len() != cfg.classes || half.shape != cfg.input {
            return Err(StageFailure::new(format!(
                "the network classifies {} classes of {:?} images; the data has {} classes of {:?}",
                cfg.classes,
                cfg.input,
                half.classes.len(),
                half.shape
            )));
        }
        let part = match self.params.part {
            Part::Test => &half.test,
            Part::Train => &half.train,
        };
        let images = Images { pixels: &part.pixels, labels: &part.labels, shape: half.shape };
        let pool = super::pool(ctx.threads)?;
        let metrics = pool.install(|| evaluate(&cfg, &params, &images))?;
        (ctx.progress)(format!("top-1 {:.1}%", metrics.top1 * 100.0));
        super::write_json(&ctx.out_dir.join("metrics.json"), &json!(metrics))
    }
}
