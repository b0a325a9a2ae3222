//! The report's input: one record per trained network, read by the engine from each
//! stage's `info.json` and `metrics.json`.

use serde::{Deserialize, Serialize};

use super::treatment::Treatment;

/// One trained network and its score on the target half's validation images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stage that trained it, e.g. `transfer[seed=0,from=A,n=3,ft=true]`.
    pub stage: String,
    /// What the network is (baseB, AnB+, random, ...); the table and findings use the
    /// treatments of the paper, the long table lists every one.
    pub treatment: Treatment,
    /// The cut; `None` for base networks.
    pub n: Option<usize>,
    /// `random` (similar halves), `by_group` (dissimilar halves) or `classes`.
    pub split: String,
    pub split_seed: u64,
    pub seed: u64,
    pub base_half: Option<String>,
    /// `A` or `B`.
    pub target_half: String,
    /// Top-1 accuracy as a fraction in 0..1.
    pub top1: f64,
    pub loss: f64,
    /// Classes of the target half (chance level is one in this many) and the images the
    /// accuracy was measured on; `None` where unknown, and then no chance check is made.
    #[serde(default)]
    pub classes: Option<usize>,
    #[serde(default)]
    pub test_images: Option<usize>,
    /// Held-out top-1 after each epoch (fractions), where the network's log has it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<f64>,
    /// Mean training loss of each epoch, where the network's log has it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<f64>,
}
