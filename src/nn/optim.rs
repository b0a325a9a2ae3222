//! SGD with momentum and L2 weight decay, as PyTorch's `torch.optim.SGD` (dampening 0,
//! no Nesterov): d = g + wd * w; buf = momentum * buf + d; w -= lr * buf.
//!
//! The update runs in place on the parameter's storage in one pass, and the momentum
//! buffers are plain `Vec<f32>`s: no tensor is allocated per step, and no gradient
//! (which holds the whole step's graph) outlives the step.

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, bail};

pub(crate) struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Sgd {
    /// Updates `param` (a variable's tensor) in place from `grad`, and `buf`, its
    /// momentum buffer (same length).
    pub fn step(&self, param: &Tensor, grad: &Tensor, buf: &mut [f32], lr: f64) -> Result<()> {
        let grad = grad.contiguous()?;
        let op = Step {
            lr: lr as f32,
            momentum: self.momentum as f32,
            weight_decay: self.weight_decay as f32,
            buf: RefCell::new(buf),
        };
        param.inplace_op2(&grad, &op)
    }
}

struct Step<'a> {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    buf: RefCell<&'a mut [f32]>,
}

impl InplaceOp2 for Step<'_> {
    fn name(&self) -> &'static str {
        "sgd-step"
    }

    fn cpu_fwd(&self, w: &mut CpuStorage, wl: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (w, g) else {
            bail!("sgd-step: parameters and gradients must be f32")
        };
        let (Some((w0, w1)), Some((g0, g1))) = (wl.contiguous_offsets(), gl.contiguous_offsets()) else {
            bail!("sgd-step: parameters and gradients must be contiguous")
        };
        let (w, g) = (&mut w[w0..w1], &g[g0..g1]);
        let mut buf = self.buf.borrow_mut();
        if w.len() != g.len() || w.len() != buf.len() {
            bail!("sgd-step: {} weights, {} gradients, {} momentum", w.len(), g.len(), buf.len())
        }
        let (lr, mom, wd) = (self.lr, self.momentum, self.weight_decay);
        for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
            let d = g + wd * *w;
            *b = mom * *b + d;
            *w -= lr * *b;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_the_pytorch_rule() {
        let w = Var::from_vec(vec![1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let g = Tensor::new(&[0.5f32, 0.25], &Device::Cpu).unwrap();
        let sgd = Sgd { momentum: 0.9, weight_decay: 0.1 };
        let mut buf = vec![0.0f32; 2];
        sgd.step(w.as_tensor(), &g, &mut buf, 0.1).unwrap();
        // d = g + 0.1 w = [0.6, 0.05]; buf = d; w -= 0.1 d
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.94).abs() < 1e-6 && (got[1] + 2.005).abs() < 1e-6, "{got:?}");
        sgd.step(w.as_tensor(), &g, &mut buf, 0.1).unwrap();
        // d = [0.5 + 0.094, 0.25 - 0.2005]; buf = 0.9 * old + d
        let want0 = 0.94 - 0.1 * (0.9 * 0.6 + 0.594);
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - want0).abs() < 1e-6, "{got:?} {want0}");
    }
}
