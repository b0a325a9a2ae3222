//! Fully connected layer + bias, optionally + ReLU, as one custom op, and its backward
//! pass as another. The GEMMs run on gemm's own threads over the current pool (they
//! split over outputs, so the bits do not depend on the pool size); the fused ReLU
//! spares a pass and a mask tensor, and a constant input (a frozen layer's output)
//! gets no gradient.
//!
//! A row's result may depend on how many rows the batch has (gemm picks its algorithm
//! from the shape, see `matmul::independent_rows`). That is harmless for trained
//! layers, which see the same batches whatever happens, but the frozen layers'
//! outputs are cached per image by training, so they ask for [`Rows::Independent`].

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

use super::cpu::{f32s, with_f32s};
use super::matmul::{Mat, MatMut, independent_rows, matmul, pool_parallelism};

/// How the forward GEMM may treat the rows of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rows {
    /// The fastest algorithm for the batch's shape; a row's last bits may depend on the
    /// number of rows.
    Batch,
    /// Each row the same bits in any batch: a small batch is padded with zero rows up
    /// to `matmul::independent_rows` (at most a few hundred rows of work, and only for
    /// small batches).
    Independent,
}

/// relu(x weight^T + bias) (or without the ReLU): x (batch, in), weight (out, in),
/// bias (out).
pub(crate) fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, relu: bool, rows: Rows) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear { relu, rows })
}

#[derive(Clone, Copy)]
struct Linear {
    relu: bool,
    rows: Rows,
}

/// (batch, in, out) from the input and weight layouts.
fn dims(x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    match (x.dims(), w.dims()) {
        (&[batch, inputs], &[out, w_in]) if inputs == w_in => Ok((batch, inputs, out)),
        (x, w) => bail!("linear: input {x:?} does not fit weight {w:?}"),
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear-bias-relu"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, inputs, out) = dims(xl, wl)?;
        let (x, w, b) = (f32s(xs, xl, "linear")?, f32s(ws, wl, "linear")?, f32s(bs, bl, "linear")?);
        if b.len() != out {
            bail!("linear: {} biases for {out} outputs", b.len())
        }
        let rows = match self.rows {
            Rows::Batch => batch,
            Rows::Independent => batch.max(independent_rows(out, inputs)),
        };
        let padded: Vec<f32>;
        let x = if rows > batch {
            padded = x.iter().copied().chain(std::iter::repeat_n(0.0, (rows - batch) * inputs)).collect();
            &padded[..]
        } else {
            x
        };
        let mut y: Vec<f32> = b.iter().copied().cycle().take(rows * out).collect();
        let wt = Mat::rows(w, out, inputs).t();
        matmul(MatMut::rows(&mut y, rows, out), Mat::rows(x, rows, inputs), wt, true, pool_parallelism());
        y.truncate(batch * out);
        if self.relu {
            for v in &mut y {
                *v = v.max(0.0);
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let need_dx = x.track_op();
        let need_dw = weight.track_op() || bias.track_op();
        if !need_dx && !need_dw {
            return Ok((None, None, None));
        }
        let op = LinearGrad { relu: self.relu, y: y.clone(), need_dx, need_dw };
        let packed = x.apply_op3_no_bwd(weight, &grad.contiguous()?, &op)?;
        super::grads::unpack(&packed, x, weight, bias, need_dx, need_dw)
    }
}

/// The backward pass of [`Linear`], applied to (x, weight, output gradient); holds the
/// forward output for the ReLU mask. Result, flat: dW and db when `need_dw`, then dX
/// when `need_dx`.
struct LinearGrad {
    relu: bool,
    y: Tensor,
    need_dx: bool,
    need_dw: bool,
}

impl CustomOp3 for LinearGrad {
    fn name(&self) -> &'static str {
        "linear-bias-relu-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, inputs, out) = dims(xl, wl)?;
        let (x, w, grad) = (f32s(xs, xl, "linear-grad")?, f32s(ws, wl, "linear-grad")?, f32s(gs, gl, "linear-grad")?);
        if grad.len() != batch * out {
            bail!("linear-grad: gradient {:?} for output {:?}", gl.dims(), (batch, out))
        }
        let gm: Vec<f32> = match self.relu {
            true => with_f32s(&self.y, "linear-grad", |y| {
                Ok(grad.iter().zip(y).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }).collect())
            })?,
            false => grad.to_vec(),
        };
        let param_len = if self.need_dw { out * inputs + out } else { 0 };
        let mut result = vec![0f32; param_len + if self.need_dx { batch * inputs } else { 0 }];
        let (params, dx) = result.split_at_mut(param_len);
        let par = pool_parallelism();
        if self.need_dw {
            let (dw, db) = params.split_at_mut(out * inputs);
            for row in gm.chunks(out) {
                for (sum, g) in db.iter_mut().zip(row) {
                    *sum += g;
                }
            }
            matmul(
                MatMut::rows(dw, out, inputs),
                Mat::rows(&gm, batch, out).t(),
                Mat::rows(x, batch, inputs),
                false,
                par,
            );
        }
        if self.need_dx {
            matmul(MatMut::rows(dx, batch, inputs), Mat::rows(&gm, batch, out), Mat::rows(w, out, inputs), false, par);
        }
        let len = result.len();
        Ok((CpuStorage::F32(result), Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::nn::kernels::test_util::{assert_close, random};

    #[test]
    fn matches_candle_matmul() {
        for relu in [true, false] {
            let x = Var::from_tensor(&random(&[5, 7], 1)).unwrap();
            let w = Var::from_tensor(&random(&[3, 7], 2)).unwrap();
            let b = Var::from_tensor(&random(&[3], 3)).unwrap();
            let ours = linear(&x, &w, &b, relu, Rows::Batch).unwrap();
            let mut stock = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            if relu {
                stock = stock.relu().unwrap();
            }
            assert_close(&ours, &stock, "forward");
            let r = random(&[5, 3], 4);
            let ga = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (stock * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("dx", &x), ("dw", &w), ("db", &b)] {
                assert_close(ga.get(v).unwrap(), gb.get(v).unwrap(), &format!("{name} relu {relu}"));
            }
        }
    }

    #[test]
    fn a_constant_input_gets_no_gradient() {
        let x = random(&[4, 6], 1);
        let w = Var::from_tensor(&random(&[3, 6], 2)).unwrap();
        let b = Var::from_tensor(&random(&[3], 3)).unwrap();
        let grads = linear(&x, &w, &b, true, Rows::Batch).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&w).is_some() && grads.get(&b).is_some());
    }
}
