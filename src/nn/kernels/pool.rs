//! Max-pool over square windows (any size and stride, output size rounded down as in
//! PyTorch) that records where each maximum came from, so the backward pass is one
//! scatter instead of candle's upsample / compare / average-pool chain. Ties go to the
//! first maximum in the window, as in PyTorch.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::cpu::f32s;

/// A max-pool on its own. The network only pools right after a convolution + ReLU,
/// which `conv2d` fuses; this op is the seam for any other use and the reference the
/// fused pool is tested against.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn max_pool(x: &Tensor, size: usize, stride: usize) -> Result<Tensor> {
    let x = x.contiguous()?;
    if x.track_op() {
        x.apply_op1(MaxPool { size, stride, argmax: Some(OnceLock::new()) })
    } else {
        // Nothing will ask for a gradient: do not record the argmax.
        x.apply_op1_no_bwd(&MaxPool { size, stride, argmax: None })
    }
}

struct MaxPool {
    size: usize,
    stride: usize,
    /// Per output value, the offset of its maximum within its input plane; filled by
    /// the forward pass when a backward pass may follow.
    argmax: Option<OnceLock<Vec<u32>>>,
}

/// Max-pool windows over one plane, giving oh x ow.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    pub size: usize,
    pub stride: usize,
    /// The plane's width: recorded argmax offsets are y * width + x.
    pub width: usize,
    /// Distance between the plane's rows in memory: its width, or more where rows are
    /// padded.
    pub row_stride: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window {
    /// None when the window does not fit the plane.
    pub fn new(size: usize, stride: usize, h: usize, w: usize) -> Option<Window> {
        if size == 0 || stride == 0 || h < size || w < size || h * w > u32::MAX as usize {
            return None;
        }
        let (oh, ow) = ((h - size) / stride + 1, (w - size) / stride + 1);
        Some(Window { size, stride, width: w, row_stride: w, oh, ow })
    }

    /// The same windows over a plane whose rows are `row_stride` apart in memory.
    pub fn with_row_stride(self, row_stride: usize) -> Window {
        Window { row_stride, ..self }
    }

    /// Pools plane `x` into `y`, recording each maximum's offset (y * width + x) when
    /// asked. Ties go to the first maximum in row-major window order.
    pub fn pool(&self, x: &[f32], y: &mut [f32], argmax: Option<&mut [u32]>) {
        if self.size == 2 && self.stride == 2 {
            return self.pool_2x2(x, y, argmax);
        }
        let (size, stride, w) = (self.size, self.stride, self.row_stride);
        let mut argmax = argmax;
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let corner = oy * stride * w + ox * stride;
                let (mut best, mut at) = (x[corner], (0, 0));
                for dy in 0..size {
                    let row = corner + dy * w;
                    for (dx, &v) in x[row..row + size].iter().enumerate() {
                        if v > best {
                            (best, at) = (v, (dy, dx));
                        }
                    }
                }
                y[oy * self.ow + ox] = best;
                if let Some(argmax) = argmax.as_deref_mut() {
                    argmax[oy * self.ow + ox] = ((oy * stride + at.0) * self.width + ox * stride + at.1) as u32;
                }
            }
        }
    }

    /// `pool` for the common 2x2 windows at stride 2, without the window loops.
    fn pool_2x2(&self, x: &[f32], y: &mut [f32], mut argmax: Option<&mut [u32]>) {
        let (w, width) = (self.row_stride, self.width);
        for oy in 0..self.oh {
            let top = 2 * oy * w;
            let (r0, r1) = (&x[top..top + 2 * self.ow], &x[top + w..top + w + 2 * self.ow]);
            let yr = &mut y[oy * self.ow..][..self.ow];
            for (ox, out) in yr.iter_mut().enumerate() {
                let i = 2 * ox;
                let (mut best, mut at) = (r0[i], 0);
                for (v, a) in [(r0[i + 1], 1), (r1[i], width), (r1[i + 1], width + 1)] {
                    if v > best {
                        (best, at) = (v, a);
                    }
                }
                *out = best;
                if let Some(argmax) = argmax.as_deref_mut() {
                    argmax[oy * self.ow + ox] = (2 * oy * width + i + at) as u32;
                }
            }
        }
    }
}

/// Input (n, c, h, w) to output height and width.
fn out_dims(dims: &[usize], size: usize, stride: usize) -> Result<(usize, usize, usize, usize, usize, usize)> {
    let &[n, c, h, w] = dims else { bail!("max-pool: expected (n, c, h, w), got {dims:?}") };
    let Some(window) = Window::new(size, stride, h, w) else {
        bail!("max-pool: window {size} stride {stride} does not fit {h}x{w}")
    };
    Ok((n, c, h, w, window.oh, window.ow))
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w, oh, ow) = out_dims(xl.dims(), self.size, self.stride)?;
        let x = f32s(xs, xl, "max-pool")?;
        let (size, stride) = (self.size, self.stride);
        let mut y = vec![0f32; n * c * oh * ow];
        let mut argmax = vec![0u32; if self.argmax.is_some() { y.len() } else { 0 }];
        // One channel plane per task; argmax chunks are empty when not recording.
        let window = Window { size, stride, width: w, row_stride: w, oh, ow };
        let planes = y.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w));
        match &self.argmax {
            Some(_) => {
                planes.zip(argmax.par_chunks_mut(oh * ow)).for_each(|((yp, xp), ap)| window.pool(xp, yp, Some(ap)))
            }
            None => planes.for_each(|(yp, xp)| window.pool(xp, yp, None)),
        }
        if let Some(slot) = &self.argmax
            && slot.set(argmax).is_err()
        {
            bail!("max-pool: forward ran twice")
        }
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let Some(argmax) = self.argmax.as_ref().and_then(OnceLock::get) else {
            bail!("max-pool: backward without a recorded forward")
        };
        let (_, _, h, w) = x.dims4()?;
        let op = MaxPoolGrad { argmax, plane: h * w };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?.reshape(x.shape())?))
    }
}

/// Scatters the output gradient to the recorded maxima. Applied to the output
/// gradient; gives the input gradient flat.
struct MaxPoolGrad<'a> {
    argmax: &'a [u32],
    /// Input height x width.
    plane: usize,
}

impl CustomOp1 for MaxPoolGrad<'_> {
    fn name(&self) -> &'static str {
        "max-pool-grad"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let grad = f32s(gs, gl, "max-pool-grad")?;
        let &[n, c, oh, ow] = gl.dims() else { bail!("max-pool-grad: expected (n, c, h, w)") };
        if grad.len() != self.argmax.len() {
            bail!("max-pool-grad: {} gradients for {} recorded maxima", grad.len(), self.argmax.len())
        }
        let mut dx = vec![0f32; n * c * self.plane];
        // Planes are independent; inside one, overlapping windows add up in order.
        dx.par_chunks_mut(self.plane).zip(grad.par_chunks(oh * ow)).zip(self.argmax.par_chunks(oh * ow)).for_each(
            |((dp, gp), ap)| {
                for (&g, &at) in gp.iter().zip(ap) {
                    dp[at as usize] += g;
                }
            },
        );
        let len = dx.len();
        Ok((CpuStorage::F32(dx), Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::nn::kernels::test_util::{assert_close, random};

    /// candle's own max-pool backward scales the gradient by 1/size^2 (candle 0.11
    /// multiplies by the tie-count average where it should divide), so the reference is
    /// built from ops whose backward is right: windows cut out by reshape and permute,
    /// then a max over the last dimension.
    fn reference(x: &Tensor, size: usize) -> Tensor {
        let (n, c, h, w) = x.dims4().unwrap();
        let (oh, ow) = (h / size, w / size);
        x.narrow(2, 0, oh * size)
            .unwrap()
            .narrow(3, 0, ow * size)
            .unwrap()
            .reshape((n, c, oh, size, ow, size))
            .unwrap()
            .permute((0, 1, 2, 4, 3, 5))
            .unwrap()
            .reshape((n, c, oh, ow, size * size))
            .unwrap()
            .max(candle_core::D::Minus1)
            .unwrap()
    }

    #[test]
    fn matches_a_reference_built_from_candle_ops() {
        for (dims, size) in [([2, 3, 6, 6], 2), ([1, 2, 7, 5], 2), ([2, 1, 9, 8], 3), ([1, 2, 4, 4], 1)] {
            let x = Var::from_tensor(&random(&dims, 1)).unwrap();
            let ours = max_pool(&x, size, size).unwrap();
            let stock = reference(&x, size);
            let case = format!("{dims:?} {size}");
            assert_close(&ours, &stock, &case);
            assert_close(&ours, &x.max_pool2d(size).unwrap(), &case);
            let r = random(stock.dims(), 2);
            let ga = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (stock * &r).unwrap().sum_all().unwrap().backward().unwrap();
            assert_close(ga.get(&x).unwrap(), gb.get(&x).unwrap(), &case);
        }
    }

    /// Overlapping windows (candle has no backward for them): each input collects the
    /// gradients of every window whose maximum it is, and ties go to the first.
    #[test]
    fn overlapping_windows_and_ties() {
        let x = Var::from_vec(
            vec![1.0f32, 5.0, 2.0, 5.0, 0.0, 0.0, 0.0, 0.0, 3.0],
            (1, 1, 3, 3),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let y = max_pool(&x, 2, 1).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [5.0, 5.0, 5.0, 3.0]);
        let r = Tensor::new(&[1.0f32, 10.0, 100.0, 1000.0], &candle_core::Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 2))
            .unwrap();
        let grads = (y * r).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, [0.0, 11.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 1000.0]);
    }
}
