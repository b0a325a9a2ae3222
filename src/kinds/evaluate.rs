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

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::params::{Located, Params};
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

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        Some(Box::new(EvaluateTask { params: p.read()? }))
    }
}

/// An `evaluate` stage. Its key holds which part of the half is evaluated, all an
/// evaluation depends on besides its inputs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EvalParams {
    /// The stage that trained the network.
    #[serde(skip_serializing)]
    network: Located<String>,
    /// The half whose images it is evaluated on.
    #[serde(skip_serializing)]
    data: Located<String>,
    #[serde(default)]
    part: Part,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Part {
    #[default]
    Test,
    Train,
}

#[derive(Debug)]
struct EvaluateTask {
    params: EvalParams,
}

impl Task for EvaluateTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::stage("network", &self.params.network, "network"), Input::stage("data", &self.params.data, "data")]
    }

    fn outputs(&self) -> Vec<String> {
        vec!["metrics.json".into()]
    }

    fn max_threads(&self) -> usize {
        64
    }

    fn short(&self) -> bool {
        true
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
