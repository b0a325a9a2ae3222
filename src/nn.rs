//! The neural networks of the experiment: a small CaffeNet-style family of
//! convolutional networks described as data ([`NetConfig`]), their seeded
//! initialisation, the transfer of layers 1..n between networks, training with frozen
//! layers, evaluation and checkpoints. Built on candle, CPU only.
//!
//! # Determinism
//!
//! Every random draw (initialisation, batch order, dropout masks, augmentation) comes
//! from [`crate::rng::Rng`] streams derived from a seed, never from candle's RNG, and
//! the candle CPU kernels used here split work over independent outputs only, so a run
//! gives the same bytes whatever the thread count (pinned by a test with 1- and
//! 2-thread pools).
//!
//! # Threads
//!
//! `train` and `evaluate` are meant to run inside the caller's
//! `rayon::ThreadPool::install`. How candle-core 0.11 picks its threads:
//!
//! - Convolutions (`conv2d`, `conv_transpose2d` in the backward pass) use rayon
//!   parallel iterators, so they run on the installed pool with its thread count.
//! - Matrix multiplies call gemm with `Parallelism::Rayon(get_num_threads())`, where
//!   `candle_core::utils::get_num_threads()` reads `RAYON_NUM_THREADS` on every call
//!   (else the number of physical cores). gemm splits the product into that many
//!   tasks and spawns them on the *current* pool, so the installed pool still bounds
//!   the concurrency: with a 1-thread pool the tasks run one after the other. Nothing to
//!   set per call; an env var would be process-global and `set_var` is unsound once
//!   threads run, so we deliberately do not touch it.
//! - Large element-wise ops (>= 64k elements) run on candle's own global "barrier
//!   pool", sized once at first use from `CANDLE_NUM_THREADS`, else
//!   `RAYON_NUM_THREADS`, else the physical cores; it does not follow the installed
//!   pool. Its callers are serialised by a lock, so concurrent stages do not deadlock,
//!   but a 1-thread stage may briefly use more cores for element-wise work. The binary
//!   can cap it by setting `CANDLE_NUM_THREADS` before any thread starts (e.g. at the
//!   top of `main`). Element-wise results do not depend on its size.
//!
//! # Speed
//!
//! Stock candle convolutions are slow on CPU (see docs/PERF-NOTES.md); the layer
//! operations live in `ops.rs`, one function each, so that custom kernels can replace
//! them without touching the rest. Images are converted from u8 one batch at a time,
//! the optimizer updates parameters in place, and frozen layers build no autograd
//! graph.

mod atomic;
mod checkpoint;
mod config;
mod data;
mod error;
mod evaluate;
mod forward;
mod layer_spec;
mod ops;
mod optim;
mod params;
mod resume;
mod schedule;
#[cfg(test)]
mod synthetic;
mod train;
mod transfer;

pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use config::{CLASSIFIER_BIAS, CLASSIFIER_WEIGHT, NetConfig, layer_param};
pub use data::{Augment, Images};
pub use error::NnError;
pub use evaluate::{Metrics, evaluate};
pub use layer_spec::LayerSpec;
pub use params::{Params, init};
pub use schedule::Schedule;
pub use train::{EpochLog, OnBatch, OnEpoch, TrainConfig, TrainHooks, train};
pub use transfer::{TransferReport, transfer};
