//! What training, evaluation, the frozen-feature cache and the resume state share: the
//! training settings, a line of the training log, the evaluation batch and the top-1
//! rule. Kept apart so that those modules depend on this one, not on each other.

use serde::{Deserialize, Serialize};

use super::data::Augment;
use super::device::Backend;
use super::schedule::Schedule;

/// Images per forward pass when evaluating; fixed, so results do not depend on the
/// caller.
pub(crate) const EVAL_BATCH: usize = 256;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub momentum: f64,
    /// L2 penalty added to the gradient of every trainable parameter (biases included,
    /// as PyTorch's SGD does by default).
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub augment: Augment,
    pub seed: u64,
    /// Layers 1..=frozen get no update, no weight decay and no momentum state; their
    /// tensors come back untouched.
    pub frozen: usize,
    /// Where the run computes; parameters come back on the CPU either way.
    #[serde(default, skip_serializing_if = "Backend::is_cpu")]
    pub device: Backend,
}

/// One line of the training log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch's batches (with dropout active).
    pub loss: f64,
    /// Training top-1 over the epoch, measured on the augmented, dropped-out batches.
    pub train_acc: f64,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    pub lr: f64,
    /// Wall time of the whole epoch, validation included.
    pub seconds: f64,
    /// Training images per second of the training phase alone.
    pub images_per_sec: f64,
}

/// The predicted class of a row of logits: the first maximum wins ties,
/// deterministically.
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
