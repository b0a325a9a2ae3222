//! The frozen layers computed once.
//!
//! When training holds layers 1..=n fixed and nothing random happens below layer n + 1
//! (no augmentation, no dropout in layers 1..=n), the output of layer n for an image is
//! a pure function of (the frozen parameters, the image). `train` then computes it once
//! for every training image, in fixed chunks, keeps it as one f32 buffer, and trains
//! layers n+1.. on batches gathered from it: one forward pass through the frozen layers
//! per image for the whole run instead of one per epoch. The validation images are
//! cached the same way whenever n > 0 (their pass has neither augmentation nor
//! dropout).
//!
//! The result is the same bits as the per-batch path because every frozen layer
//! computes an image the same way in any batch: convolutions, pools and LRN work image
//! by image, and frozen fully connected layers ask their GEMM for batch-independent
//! rows (`Rows::Independent`, which the per-batch path uses for them too). The
//! validation features are computed in the chunks `evaluate` uses, so the epoch's
//! validation metrics equal `evaluate` on the same parameters.
//!
//! Memory is bounded: when the buffers would exceed [`CACHE_LIMIT`] bytes, the
//! training images (then the validation images) go through the frozen layers batch by
//! batch as before; the results are the same, only slower.

use candle_core::{Device, Tensor};

use super::config::NetConfig;
use super::data::{Augment, Images};
use super::error::NnError;
use super::forward::frozen_features;
use super::layer_spec::LayerSpec;
use super::ops::Rows;
use super::step::{EVAL_BATCH, TrainConfig};
use crate::rng::Rng;

/// The most bytes of cached features a run keeps (training and validation together).
pub(crate) const CACHE_LIMIT: usize = 1 << 30;

/// Images per forward pass while computing training features. Any size gives the same
/// bits; this one bounds the transient memory of a pass.
const CHUNK: usize = 256;

/// Which image sets a run caches the frozen layers' outputs for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CachePlan {
    pub train: bool,
    pub val: bool,
}

impl CachePlan {
    /// The plan for `n_train` training and `n_val` validation images with at most
    /// `limit` bytes of features (0 forces the per-batch path). Training images come
    /// first: they save a pass per epoch and batch, validation images one per epoch.
    pub fn new(cfg: &NetConfig, tc: &TrainConfig, n_train: usize, n_val: usize, limit: usize) -> CachePlan {
        if tc.frozen == 0 || limit == 0 {
            return CachePlan { train: false, val: false };
        }
        let deterministic = tc.augment == Augment::NONE
            && cfg.layers[..tc.frozen].iter().all(|l| !matches!(l, LayerSpec::Fc { dropout, .. } if *dropout > 0.0));
        let train_bytes = feature_bytes(cfg, tc.frozen, n_train);
        let train = deterministic && train_bytes <= limit;
        let left = if train { limit - train_bytes } else { limit };
        CachePlan { train, val: n_val > 0 && feature_bytes(cfg, tc.frozen, n_val) <= left }
    }
}

/// Bytes of the output of layers 1..=frozen for `images` images (saturating).
fn feature_bytes(cfg: &NetConfig, frozen: usize, images: usize) -> usize {
    let per_image: usize = cfg.shapes()[frozen - 1].iter().product();
    per_image.saturating_mul(images).saturating_mul(size_of::<f32>())
}

/// The output of layers 1..=frozen for every image of a set, image by image.
pub(crate) struct Features {
    values: Vec<f32>,
    /// One image's output: (C, H, W) after a conv layer, (units,) after an fc one.
    dims: Vec<usize>,
}

impl Features {
    /// Runs every image through layers 1..=frozen, `chunk` images at a time in index
    /// order, with `rows` for the fully connected GEMMs (see [`frozen_features`]).
    fn compute(
        cfg: &NetConfig,
        params: &[Tensor],
        frozen: usize,
        images: &Images,
        chunk: usize,
        rows: Rows,
    ) -> Result<Features, NnError> {
        let shape = cfg.shapes()[frozen - 1];
        let dims: Vec<usize> = match cfg.layers[frozen - 1] {
            LayerSpec::Conv { .. } => shape.to_vec(),
            LayerSpec::Fc { .. } => vec![shape[0]],
        };
        let per_image: usize = dims.iter().product();
        let mut values = Vec::with_capacity(per_image * images.len());
        let order: Vec<usize> = (0..images.len()).collect();
        let mut unused = Rng::new(0); // no augmentation: nothing is drawn
        for indices in order.chunks(chunk) {
            let (x, _) = images.batch(indices, &Augment::NONE, &mut unused)?;
            let h = frozen_features(cfg, params, frozen, &x, rows)?;
            values.extend(h.flatten_all()?.to_vec1::<f32>()?);
        }
        debug_assert_eq!(values.len(), per_image * images.len());
        Ok(Features { values, dims })
    }

    /// The training features: any chunking gives the same bits.
    pub fn for_training(
        cfg: &NetConfig,
        params: &[Tensor],
        frozen: usize,
        images: &Images,
    ) -> Result<Features, NnError> {
        Features::compute(cfg, params, frozen, images, CHUNK, Rows::Independent)
    }

    /// The validation features, for `evaluate_features`: computed in the chunks, and
    /// with the GEMMs, that `evaluate` uses, so the metrics are the same bits.
    pub fn for_evaluation(
        cfg: &NetConfig,
        params: &[Tensor],
        frozen: usize,
        images: &Images,
    ) -> Result<Features, NnError> {
        Features::compute(cfg, params, frozen, images, EVAL_BATCH, Rows::Batch)
    }

    /// The features of the images at `indices`, as the frozen layers would hand them
    /// to the next one: (B, C, H, W) or (B, units).
    pub fn gather(&self, indices: &[usize]) -> Result<Tensor, NnError> {
        let per_image: usize = self.dims.iter().product();
        let mut batch = Vec::with_capacity(indices.len() * per_image);
        for &i in indices {
            batch.extend_from_slice(&self.values[i * per_image..][..per_image]);
        }
        let mut dims = vec![indices.len()];
        dims.extend_from_slice(&self.dims);
        Ok(Tensor::from_vec(batch, dims, &Device::Cpu)?)
    }
}
