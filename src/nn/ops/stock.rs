//! The layer operations on candle's stock ops, for devices without our custom kernels
//! (a CUDA GPU). They compute the same functions as the kernels, up to rounding, which
//! the tests below check on the CPU: forward values and gradients.
//!
//! Max-pooling is built from strided views and a max-reduction rather than candle's
//! `max_pool2d`, whose backward pass scales the gradient by 1/size^2 and rejects
//! overlapping windows (size != stride).

use candle_core::{D, Result, Tensor};

/// Convolution with a (out, in, k, k) kernel, plus bias, then ReLU.
pub(crate) fn conv_relu(x: &Tensor, weight: &Tensor, bias: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let y = x.conv2d(weight, pad, stride, 1, 1)?;
    y.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?.relu()
}

/// Max over (size x size) windows every `stride` pixels, floor mode (windows that do
/// not fit are dropped), as the network's shapes assume.
pub(crate) fn max_pool(x: &Tensor, (size, stride): (usize, usize)) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = ((h - size) / stride + 1, (w - size) / stride + 1);
    if size == stride && h % size == 0 && w % size == 0 {
        // Non-overlapping windows that tile the image: one reshape.
        return x.reshape((b, c, oh, size, ow, size))?.max(5)?.max(3);
    }
    // Window offset (i, j) seen as one strided view per offset; the max over the views.
    // Padding at the end makes every view a whole number of strides long; the padded
    // values are never picked, as each view keeps only the first of every `stride`.
    let padded = x.pad_with_zeros(2, 0, stride)?.pad_with_zeros(3, 0, stride)?;
    let mut views = Vec::with_capacity(size * size);
    for i in 0..size {
        let rows = padded.narrow(2, i, oh * stride)?.reshape((b, c, oh, stride, w + stride))?.narrow(3, 0, 1)?;
        let rows = rows.squeeze(3)?;
        for j in 0..size {
            let view = rows.narrow(3, j, ow * stride)?.reshape((b, c, oh, ow, stride))?.narrow(4, 0, 1)?;
            views.push(view);
        }
    }
    Tensor::cat(&views, 4)?.max(D::Minus1)
}

/// x (B, in) times weight (out, in) transposed, plus bias.
pub(crate) fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.matmul(&weight.t()?)?.broadcast_add(bias)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::kernels::{self, Rows};
    use super::*;
    use crate::rng::Rng;

    fn random(rng: &mut Rng, dims: &[usize], scale: f32) -> Tensor {
        let n: usize = dims.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.normal() * scale).collect::<Vec<f32>>(), dims, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The stock conv + ReLU + pool and the fused kernel agree on values and on the
    /// gradients of the weights, the bias and the input, for tiling and overlapping
    /// pools, strides and paddings.
    #[test]
    fn conv_and_pool_match_the_kernels() {
        let mut rng = Rng::new(5);
        for (cin, hw, k, stride, pad, pool) in [
            (3, 12, 3, 1, 1, Some((2, 2))),
            (4, 13, 3, 1, 1, Some((3, 2))),
            (2, 15, 5, 2, 2, None),
            (8, 9, 3, 1, 0, Some((2, 2))),
        ] {
            let x = Var::from_tensor(&random(&mut rng, &[3, cin, hw, hw], 1.0)).unwrap();
            let w = Var::from_tensor(&random(&mut rng, &[6, cin, k, k], 0.3)).unwrap();
            let b = Var::from_tensor(&random(&mut rng, &[6], 0.1)).unwrap();
            let kernel = kernels::conv2d(&x, &w, &b, stride, pad, true, pool).unwrap();
            let mut stock = conv_relu(&x, &w, &b, stride, pad).unwrap();
            if let Some(pool) = pool {
                stock = max_pool(&stock, pool).unwrap();
            }
            assert!(max_diff(&kernel, &stock) < 1e-4, "forward {cin} {hw} {k} {stride} {pad} {pool:?}");
            // A loss that weighs every output differently, so each gradient is distinct.
            let weights = random(&mut rng, kernel.dims(), 1.0);
            let gk = (kernel * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let gs = (stock * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("weight", &w), ("bias", &b)] {
                let (a, s) = (gk.get(v).unwrap(), gs.get(v).unwrap());
                assert!(max_diff(a, s) < 1e-3, "{name} gradient {cin} {hw} {k} {stride} {pad} {pool:?}");
            }
            if let Some(a) = gk.get(&x) {
                assert!(max_diff(a, gs.get(&x).unwrap()) < 1e-3, "input gradient {cin} {hw} {k} {pool:?}");
            }
        }
    }

    #[test]
    fn linear_matches_the_kernel() {
        let mut rng = Rng::new(6);
        let x = Var::from_tensor(&random(&mut rng, &[5, 40], 1.0)).unwrap();
        let w = Var::from_tensor(&random(&mut rng, &[7, 40], 0.2)).unwrap();
        let b = Var::from_tensor(&random(&mut rng, &[7], 0.1)).unwrap();
        let kernel = kernels::linear(&x, &w, &b, true, Rows::Batch).unwrap();
        let stock = linear(&x, &w, &b).unwrap().relu().unwrap();
        assert!(max_diff(&kernel, &stock) < 1e-5);
        let weights = random(&mut rng, kernel.dims(), 1.0);
        let gk = (kernel * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (stock * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            assert!(max_diff(gk.get(v).unwrap(), gs.get(v).unwrap()) < 1e-4);
        }
    }
}
