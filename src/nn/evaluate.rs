//! Evaluation: top-1, mean cross-entropy and per-class accuracy of a network on a set
//! of images, without dropout or augmentation.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::config::NetConfig;
use super::data::{Augment, Images};
use super::error::NnError;
use super::features::Features;
use super::forward::{Mode, above, forward};
use super::params::{Params, check_params};
use super::step::{EVAL_BATCH, argmax};
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of images whose highest logit is their label.
    pub top1: f64,
    /// Mean cross-entropy (natural log).
    pub loss: f64,
    /// Top-1 per class; 0 for a class without images (see `per_class_n`).
    pub per_class: Vec<f64>,
    /// Images per class.
    pub per_class_n: Vec<usize>,
    /// Images evaluated.
    pub n: usize,
}

pub fn evaluate(cfg: &NetConfig, params: &Params, data: &Images) -> Result<Metrics, NnError> {
    cfg.validate().map_err(NnError::Config)?;
    check_params(cfg, params)?;
    data.check(cfg.input, cfg.classes)?;
    let tensors: Vec<Tensor> = cfg.param_shapes().iter().map(|(name, _)| params[name].detach()).collect();
    evaluate_tensors(cfg, &tensors, data)
}

/// `evaluate` on checked inputs, with the parameters in network order; the tensors
/// should be constants (detached) so that no graph is built.
pub(crate) fn evaluate_tensors(cfg: &NetConfig, params: &[Tensor], data: &Images) -> Result<Metrics, NnError> {
    let mut unused = Rng::new(0); // no augmentation: nothing is drawn
    evaluate_batches(cfg, data.labels, |indices| {
        let (x, _) = data.batch(indices, &Augment::NONE, &mut unused)?;
        Ok(forward(cfg, params, &x, &mut Mode::Eval)?)
    })
}

/// `evaluate_tensors` on the cached output of layers 1..=frozen of `labels`' images,
/// computed by `Features::for_evaluation`: the same bits.
pub(crate) fn evaluate_features(
    cfg: &NetConfig,
    params: &[Tensor],
    frozen: usize,
    features: &Features,
    labels: &[u16],
) -> Result<Metrics, NnError> {
    evaluate_batches(cfg, labels, |indices| Ok(above(cfg, params, frozen, features.gather(indices)?, &mut Mode::Eval)?))
}

/// Metrics over the logits `logits_of` gives for each fixed chunk of image indices.
fn evaluate_batches(
    cfg: &NetConfig,
    labels: &[u16],
    mut logits_of: impl FnMut(&[usize]) -> Result<Tensor, NnError>,
) -> Result<Metrics, NnError> {
    if labels.is_empty() {
        return Err(NnError::Data("no images to evaluate".into()));
    }
    let classes = cfg.classes;
    let mut hits = vec![0usize; classes];
    let mut counts = vec![0usize; classes];
    let mut loss_sum = 0f64;
    let order: Vec<usize> = (0..labels.len()).collect();
    for indices in order.chunks(EVAL_BATCH) {
        let logits = logits_of(indices)?.to_vec2::<f32>()?;
        for (row, &i) in logits.iter().zip(indices) {
            let label = labels[i] as usize;
            counts[label] += 1;
            if argmax(row) == label {
                hits[label] += 1;
            }
            loss_sum += cross_entropy_f64(row, label);
        }
    }
    let n = labels.len();
    Ok(Metrics {
        top1: hits.iter().sum::<usize>() as f64 / n as f64,
        loss: loss_sum / n as f64,
        per_class: hits.iter().zip(&counts).map(|(&h, &c)| if c == 0 { 0.0 } else { h as f64 / c as f64 }).collect(),
        per_class_n: counts,
        n,
    })
}

/// -log softmax(row)[label], in f64 with the max subtracted for stability.
fn cross_entropy_f64(row: &[f32], label: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - row[label] as f64
}
