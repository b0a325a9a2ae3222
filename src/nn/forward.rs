//! The forward pass of a [`NetConfig`] network over a list of parameter tensors.
//!
//! Which tensors are trained is decided by the caller, not here: a parameter that is a
//! candle variable is tracked, any other is a constant. A frozen prefix of constants
//! fed with constant images therefore builds no graph at all, and backpropagation stops
//! at the first trainable layer.

use candle_core::{Device, Result, Tensor};

use super::config::NetConfig;
use super::layer_spec::LayerSpec;
use super::ops::{self, Rows};
use crate::rng::Rng;

pub(crate) enum Mode<'r> {
    /// No dropout.
    Eval,
    /// Dropout masks drawn from this stream, layer by layer, row-major.
    Train { dropout: &'r mut Rng },
}

/// Logits (B, classes) for the batch `x` (B, C, H, W). `params` holds the tensors in
/// [`NetConfig::param_shapes`] order: weight and bias of each layer, then the classifier's.
pub(crate) fn forward(cfg: &NetConfig, params: &[Tensor], x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
    above(cfg, params, 0, x.clone(), mode)
}

/// `forward` for training with layers 1..=frozen held fixed: those compute each image
/// exactly as [`frozen_features`] does whatever batch it comes in, so that a run on
/// cached features and one through the layers give the same bits.
pub(crate) fn forward_frozen(
    cfg: &NetConfig,
    params: &[Tensor],
    frozen: usize,
    x: &Tensor,
    mode: &mut Mode,
) -> Result<Tensor> {
    let h = layers(cfg, params, 0..frozen, x.clone(), mode, Rows::Independent)?;
    above(cfg, params, frozen, h, mode)
}

/// The output of layers 1..=frozen for the batch `x`, without dropout: (B, C, H, W)
/// after a conv layer, (B, units) after an fc one. `rows` as for [`Rows`]: training
/// caches them with `Rows::Independent`, which [`forward_frozen`] matches; the
/// validation features use `Rows::Batch` in the chunks `evaluate` uses, which match
/// `forward` on those chunks.
pub(crate) fn frozen_features(
    cfg: &NetConfig,
    params: &[Tensor],
    frozen: usize,
    x: &Tensor,
    rows: Rows,
) -> Result<Tensor> {
    layers(cfg, params, 0..frozen, x.clone(), &mut Mode::Eval, rows)
}

/// Logits from the output `h` of layers 1..=first: the layers above it and the
/// classifier.
pub(crate) fn above(cfg: &NetConfig, params: &[Tensor], first: usize, h: Tensor, mode: &mut Mode) -> Result<Tensor> {
    let mut h = layers(cfg, params, first..cfg.layers.len(), h, mode, Rows::Batch)?;
    if h.rank() > 2 {
        h = ops::flatten(&h)?;
    }
    let n = cfg.layers.len();
    ops::linear(&h, &params[2 * n], &params[2 * n + 1])
}

/// The layers `range` (0-based) applied to `h`.
fn layers(
    cfg: &NetConfig,
    params: &[Tensor],
    range: std::ops::Range<usize>,
    mut h: Tensor,
    mode: &mut Mode,
    rows: Rows,
) -> Result<Tensor> {
    // Batches are built on the CPU; parameters may live on a GPU (a no-op on the CPU).
    if let Some(p) = params.first() {
        h = h.to_device(p.device())?;
    }
    for i in range {
        let (w, b) = (&params[2 * i], &params[2 * i + 1]);
        h = match cfg.layers[i] {
            LayerSpec::Conv { stride, pad, pool, lrn, .. } => {
                let mut y = match pool {
                    Some(pool) => ops::conv_relu_pool(&h, w, b, stride, pad, pool)?,
                    None => ops::conv_relu(&h, w, b, stride, pad)?,
                };
                if lrn {
                    y = ops::lrn(&y)?;
                }
                y
            }
            LayerSpec::Fc { dropout, .. } => {
                if h.rank() > 2 {
                    h = ops::flatten(&h)?;
                }
                let y = ops::linear_relu(&h, w, b, rows)?;
                // Dropout is part of the training-mode forward, frozen layer or not (a
                // frozen fc7 in the paper still drops out): it regularises the layers
                // above it.
                match mode {
                    Mode::Train { dropout: rng } if dropout > 0.0 => {
                        let mask = dropout_mask(rng, y.dims(), dropout)?.to_device(y.device())?;
                        ops::dropout(&y, &mask)?
                    }
                    _ => y,
                }
            }
        };
    }
    Ok(h)
}

/// An inverted-dropout mask drawn on the CPU from our own stream (candle's RNG cannot
/// be seeded): each unit is kept with probability 1 - p and scaled by 1 / (1 - p).
fn dropout_mask(rng: &mut Rng, dims: &[usize], p: f32) -> Result<Tensor> {
    let keep = 1.0 - p;
    let scale = 1.0 / keep;
    let len: usize = dims.iter().product();
    let mask: Vec<f32> = (0..len).map(|_| if rng.f32() < keep { scale } else { 0.0 }).collect();
    Tensor::from_vec(mask, dims, &Device::Cpu)
}
