//! The forward pass of a [`NetConfig`] network over a list of parameter tensors.
//!
//! Which tensors are trained is decided by the caller, not here: a parameter that is a
//! candle variable is tracked, any other is a constant. A frozen prefix of constants
//! fed with constant images therefore builds no graph at all, and backpropagation stops
//! at the first trainable layer.

use candle_core::{Device, Result, Tensor};

use super::config::NetConfig;
use super::layer_spec::LayerSpec;
use super::ops;
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
    let mut h = x.clone();
    for (i, layer) in cfg.layers.iter().enumerate() {
        let (w, b) = (&params[2 * i], &params[2 * i + 1]);
        h = match *layer {
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
                let y = ops::linear_relu(&h, w, b)?;
                // Dropout is part of the training-mode forward, frozen layer or not (a
                // frozen fc7 in the paper still drops out): it regularises the layers
                // above it.
                match mode {
                    Mode::Train { dropout: rng } if dropout > 0.0 => {
                        let mask = dropout_mask(rng, y.dims(), dropout)?;
                        ops::dropout(&y, &mask)?
                    }
                    _ => y,
                }
            }
        };
    }
    if h.rank() > 2 {
        h = ops::flatten(&h)?;
    }
    let n = cfg.layers.len();
    ops::linear(&h, &params[2 * n], &params[2 * n + 1])
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
