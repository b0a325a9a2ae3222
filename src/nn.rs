//! The neural networks of the experiment: a small CaffeNet-style family of
//! convolutional networks described as data ([`NetConfig`]), their seeded
//! initialisation, the transfer of layers 1..n between networks, training with frozen
//! layers, evaluation and checkpoints. Built on candle: custom kernels on the CPU,
//! stock candle ops on a CUDA GPU (`device.rs`).
//!
//! # Determinism
//!
//! Every random draw (initialisation, batch order, dropout masks, augmentation) comes
//! from [`crate::rng::Rng`] streams derived from a seed, never from candle's RNG, and
//! the CPU kernels used here split work over independent outputs only (sums over the
//! images of a batch go in fixed groups, see `kernels.rs`), so a run gives the same
//! bytes whatever the thread count (pinned by a test with 1- and 2-thread pools).
//!
//! # Threads
//!
//! `train` and `evaluate` are meant to run inside the caller's
//! `rayon::ThreadPool::install`:
//!
//! - Convolutions, their max-pools and fully connected layers are our own kernels
//!   (`kernels.rs`). They split work with rayon parallel iterators over the *current*
//!   pool (images, channel planes), and the fully connected GEMMs give gemm
//!   `Parallelism::Rayon(current pool size)`; so the installed pool bounds them all.
//! - The remaining candle ops (LRN, dropout, the loss, candle's own gradient
//!   accumulation) are element-wise. Large ones (>= 64k elements) run on candle's own
//!   global "barrier pool", sized once at first use from `CANDLE_NUM_THREADS`, else
//!   `RAYON_NUM_THREADS`, else the physical cores; it does not follow the installed
//!   pool. Its callers are serialised by a lock, so concurrent stages do not deadlock,
//!   but a 1-thread stage may briefly use more cores for element-wise work. The binary
//!   can cap it by setting `CANDLE_NUM_THREADS` before any thread starts (e.g. at the
//!   top of `main`). Element-wise results do not depend on its size. An env var would
//!   be process-global and `set_var` is unsound once threads run, so the module
//!   deliberately does not touch it.
//!
//! # Speed
//!
//! Stock candle convolutions are slow on CPU (see `nn::kernels` for the numbers), so the layer
//! operations in `ops.rs` run on custom kernels: convolution as GEMMs with bias, ReLU
//! and max-pool fused in, and gradients computed only for what is trained (not for the
//! images nor for a frozen layer's output). Images are converted from u8 one batch at
//! a time, the optimizer updates parameters in place, and frozen layers build no
//! autograd graph; with layers frozen and no augmentation, their outputs are computed once
//! per run (`features.rs`). `cargo bench --bench train` measures it (and `benches/train_torch.py`
//! the same network in PyTorch).

mod atomic;
mod checkpoint;
mod config;
mod data;
mod device;
mod error;
mod evaluate;
mod features;
mod forward;
mod kernels;
mod layer_spec;
mod ops;
mod optim;
mod params;
mod resume;
mod schedule;
mod step;
#[cfg(test)]
mod synthetic;
mod train;
mod transfer;

pub use checkpoint::{MODEL_FILE, load_checkpoint, save_checkpoint};
pub use config::{CLASSIFIER_BIAS, CLASSIFIER_WEIGHT, NetConfig, layer_param};
pub use data::{Augment, Images};
pub use device::Backend;
pub use error::NnError;
pub use evaluate::{Metrics, evaluate};
pub use layer_spec::LayerSpec;
pub use params::{Params, init};
pub use schedule::Schedule;
pub use step::{EpochLog, TrainConfig};
pub use train::{OnBatch, OnEpoch, TrainHooks, train};
pub use transfer::{TransferReport, transfer};
