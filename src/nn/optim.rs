//! SGD with momentum and L2 weight decay, as PyTorch's `torch.optim.SGD` (dampening 0,
//! no Nesterov): d = g + wd * w; buf = momentum * buf + d; w -= lr * buf.
//!
//! On the CPU the update runs in place on the parameter's storage in one pass, and the
//! momentum buffers are plain `Vec<f32>`s: no tensor is allocated per step, and no
//! gradient (which holds the whole step's graph) outlives the step. On another device
//! (a GPU) the same rule runs as tensor operations there, with the buffers on the device.

use std::cell::RefCell;

use candle_core::{CpuStorage, Device, InplaceOp2, Layout, Result, Tensor, Var, bail};

/// One parameter's momentum buffer, where its parameter lives.
pub(crate) enum Momentum {
    Host(Vec<f32>),
    Device(Tensor),
}

impl Momentum {
    /// `values` placed on `device`, shaped like their parameter (`dims`) there.
    pub fn new(values: Vec<f32>, dims: &[usize], device: &Device) -> Result<Momentum> {
        Ok(if device.is_cpu() {
            Momentum::Host(values)
        } else {
            Momentum::Device(Tensor::from_vec(values, dims, device)?)
        })
    }

    /// The values, on the host (for the resume state).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        match self {
            Momentum::Host(v) => Ok(v.clone()),
            Momentum::Device(t) => t.flatten_all()?.to_vec1(),
        }
    }
}

pub(crate) struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Sgd {
    /// Updates `param` in place from `grad`, and `buf`, its momentum buffer (same
    /// length; on a device, also the same shape).
    pub fn step(&self, param: &Var, grad: &Tensor, buf: &mut Momentum, lr: f64) -> Result<()> {
        match buf {
            Momentum::Host(buf) => self.step_in_place(param, grad, buf, lr),
            Momentum::Device(buf) => {
                let w = param.as_tensor().detach();
                let d = (grad.detach() + w.affine(self.weight_decay, 0.0)?)?;
                *buf = (buf.affine(self.momentum, 0.0)? + d)?;
                param.set(&(w - buf.affine(lr, 0.0)?)?)
            }
        }
    }

    fn step_in_place(&self, param: &Tensor, grad: &Tensor, buf: &mut [f32], lr: f64) -> Result<()> {
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
    use crate::rng::Rng;

    #[test]
    fn matches_the_pytorch_rule() {
        let w = Var::from_vec(vec![1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let g = Tensor::new(&[0.5f32, 0.25], &Device::Cpu).unwrap();
        let sgd = Sgd { momentum: 0.9, weight_decay: 0.1 };
        let mut buf = Momentum::Host(vec![0.0f32; 2]);
        sgd.step(&w, &g, &mut buf, 0.1).unwrap();
        // d = g + 0.1 w = [0.6, 0.05]; buf = d; w -= 0.1 d
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.94).abs() < 1e-6 && (got[1] + 2.005).abs() < 1e-6, "{got:?}");
        sgd.step(&w, &g, &mut buf, 0.1).unwrap();
        // d = [0.5 + 0.094, 0.25 - 0.2005]; buf = 0.9 * old + d
        let want0 = 0.94 - 0.1 * (0.9 * 0.6 + 0.594);
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - want0).abs() < 1e-6, "{got:?} {want0}");
    }

    /// The tensor form of the update (used on GPUs) follows the in-place one: run both
    /// on the CPU over a few steps of (2, 3) parameters.
    #[test]
    fn the_tensor_update_matches_the_in_place_one() {
        let mut rng = Rng::new(3);
        let start: Vec<f32> = (0..6).map(|_| rng.normal()).collect();
        let host = Var::from_vec(start.clone(), (2, 3), &Device::Cpu).unwrap();
        let tensor = Var::from_vec(start, (2, 3), &Device::Cpu).unwrap();
        let sgd = Sgd { momentum: 0.9, weight_decay: 5e-4 };
        let (mut a, mut b) = (
            Momentum::Host(vec![0.0; 6]),
            Momentum::Device(Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap()),
        );
        for step in 0..4 {
            let g: Vec<f32> = (0..6).map(|_| rng.normal()).collect();
            let g = Tensor::from_vec(g, (2, 3), &Device::Cpu).unwrap();
            let lr = 0.1 / (step + 1) as f64;
            sgd.step(&host, &g, &mut a, lr).unwrap();
            sgd.step(&tensor, &g, &mut b, lr).unwrap();
        }
        let (x, y) = (
            host.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert!(x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-6), "{x:?} {y:?}");
        assert_eq!(tensor.dims(), &[2, 3]);
        let (ma, mb) = (a.to_vec().unwrap(), b.to_vec().unwrap());
        assert!(ma.iter().zip(&mb).all(|(p, q)| (p - q).abs() < 1e-6));
    }
}
