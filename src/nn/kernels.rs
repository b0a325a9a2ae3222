//! CPU kernels for the layer operations, behind candle's custom-op interface: each
//! forward is a `CustomOp` whose `bwd` builds its gradients with a further custom op,
//! so candle's autograd drives them like any built-in op.
//!
//! Why: candle 0.11's CPU convolution runs at 5-60 GFLOP/s, its input gradient is a
//! transposed convolution, and its max-pool backward is nine passes (measured here op by op against PyTorch).
//! Here a convolution's forward is GEMMs per image (shifted GEMMs over the padded image
//! at stride 1 with 8 input channels or more, im2col + one GEMM otherwise) with bias,
//! ReLU and max-pool fused in; its backward is im2col + GEMM for the weight gradient and
//! GEMM + col2im for the input gradient; max-pool records its argmax; gradients nobody
//! needs (the images', a frozen layer's output's) are not computed.
//!
//! # Determinism
//!
//! Work is split across the current rayon pool over independent outputs only: images
//! (forward, input gradient), channel planes (pooling). The one reduction over images,
//! the weight and bias gradients, is summed in fixed groups of images (independent of
//! the thread count) and the groups' partial sums are added in order. GEMMs inside a
//! parallel loop run single-threaded; a GEMM on its own (fully connected layers) uses
//! gemm's rayon parallelism, which splits over outputs only (pinned by a test in
//! `ops.rs`). So results are the same bits for any pool size.

mod conv;
mod cpu;
mod geometry;
mod grads;
mod linear;
mod matmul;
mod pool;
mod shifted;
#[cfg(test)]
mod test_util;

pub(crate) use conv::conv2d;
pub(crate) use linear::{Rows, linear};
#[cfg(test)]
pub(crate) use pool::max_pool;
