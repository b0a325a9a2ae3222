//! The layer operations, one function each. On the CPU, convolution, max-pool and the
//! fully connected layers run on the custom kernels of `kernels.rs` (im2col + GEMM,
//! argmax pooling, fused bias + ReLU); on any other device (a CUDA GPU) on candle's
//! stock ops (`stock.rs`). LRN, dropout and the loss are stock candle ops everywhere:
//! they are not where the time goes.

mod stock;

use candle_core::{Result, Tensor};

use super::kernels;
pub(crate) use super::kernels::Rows;

/// AlexNet's local response normalisation: 5 channels, alpha 1e-4, beta 0.75, k 1
/// (PyTorch's `LocalResponseNorm(5)`: alpha is divided by the window size).
const LRN_SIZE: usize = 5;
const LRN_ALPHA: f64 = 1e-4;
const LRN_BETA: f64 = 0.75;
const LRN_K: f64 = 1.0;

/// Convolution with a (out, in, k, k) kernel, plus bias, then ReLU.
pub(crate) fn conv_relu(x: &Tensor, weight: &Tensor, bias: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return stock::conv_relu(x, weight, bias, stride, pad);
    }
    kernels::conv2d(x, weight, bias, stride, pad, true, None)
}

/// `conv_relu` then a max-pool with (size, stride) windows, in one op: the
/// full-resolution activation is never stored.
pub(crate) fn conv_relu_pool(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: usize,
    pool: (usize, usize),
) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return stock::max_pool(&stock::conv_relu(x, weight, bias, stride, pad)?, pool);
    }
    kernels::conv2d(x, weight, bias, stride, pad, true, Some(pool))
}

/// Local response normalisation across channels:
/// y_c = x_c / (k + alpha/n * sum over the n channels around c of x^2)^beta.
pub(crate) fn lrn(x: &Tensor) -> Result<Tensor> {
    let channels = x.dim(1)?;
    let half = LRN_SIZE / 2;
    let sq = x.sqr()?.pad_with_zeros(1, half, LRN_SIZE - 1 - half)?;
    let mut sum = sq.narrow(1, 0, channels)?;
    for i in 1..LRN_SIZE {
        sum = (sum + sq.narrow(1, i, channels)?)?;
    }
    let denom = sum.affine(LRN_ALPHA / LRN_SIZE as f64, LRN_K)?.powf(LRN_BETA)?;
    x.div(&denom)
}

/// Fully connected: x (B, in) times weight (out, in) transposed, plus bias.
pub(crate) fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return stock::linear(x, weight, bias);
    }
    kernels::linear(x, weight, bias, false, Rows::Batch)
}

/// `linear` then ReLU, in one pass; `rows` says whether a row's bits may depend on the
/// batch (see [`Rows`]).
pub(crate) fn linear_relu(x: &Tensor, weight: &Tensor, bias: &Tensor, rows: Rows) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return stock::linear(x, weight, bias)?.relu();
    }
    kernels::linear(x, weight, bias, true, rows)
}

/// Applies a precomputed inverted-dropout mask (0 or 1/(1-p) per unit).
pub(crate) fn dropout(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    x.mul(mask)
}

/// Flattens (B, C, H, W) to (B, C*H*W) in C, H, W order, as PyTorch's `flatten(1)`.
pub(crate) fn flatten(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(1)
}

/// Mean cross-entropy of raw logits (B, classes) against u32 labels (B,).
pub(crate) fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, labels)
}

#[cfg(test)]
mod tests {
    use crate::rng::Rng;
    use gemm::{Parallelism, gemm};

    /// candle hands gemm `Parallelism::Rayon(physical cores)` (or `RAYON_NUM_THREADS`):
    /// checkpoints may only be the same bytes on every machine if gemm splits over
    /// outputs, never over the reduction. Pin that for the f32 kernel we use.
    #[test]
    fn matmul_bits_do_not_depend_on_gemm_threads() {
        let (m, n, k) = (96, 200, 300);
        let mut rng = Rng::new(1);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let run = |par: Parallelism| {
            let mut c = vec![0f32; m * n];
            // Row-major, as candle calls it: dst = 0 * dst + 1 * a b.
            unsafe {
                gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            };
            c
        };
        let single = run(Parallelism::None);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for threads in [2, 3, 5] {
            let c = pool.install(|| run(Parallelism::Rayon(threads)));
            assert!(single.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()), "{threads}");
        }
    }
}
