//! Unpacking a gradient op's single output into the three gradients candle expects.
//!
//! A layer's backward op (convolution or fully connected) writes its gradients into one
//! flat buffer, `[dw | db | dx]`, each part present only when it was asked for; this is
//! the one place that knows that layout.

use candle_core::{Result, Tensor};

/// (input, weight, bias) gradients from `packed`; a weight or bias that does not track
/// gradients (a frozen layer) gets `None`.
pub(super) fn unpack(
    packed: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    need_dx: bool,
    need_dw: bool,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let (wlen, blen) = (weight.elem_count(), bias.elem_count());
    let (mut dw, mut db, mut dx) = (None, None, None);
    let mut at = 0;
    if need_dw {
        dw = Some(packed.narrow(0, 0, wlen)?.reshape(weight.shape())?);
        db = Some(packed.narrow(0, wlen, blen)?);
        at = wlen + blen;
    }
    if need_dx {
        dx = Some(packed.narrow(0, at, x.elem_count())?.reshape(x.shape())?);
    }
    let keep = |t: &Tensor, d: Option<Tensor>| d.filter(|_| t.track_op());
    Ok((dx, keep(weight, dw), keep(bias, db)))
}
