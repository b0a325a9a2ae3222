//! Access to candle's CPU storage from a custom op, and per-thread scratch buffers.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, bail};

/// The f32 values of a contiguous argument of a custom op.
pub(super) fn f32s<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else { bail!("{op}: expected f32, got {:?}", storage.dtype()) };
    let Some((start, end)) = layout.contiguous_offsets() else { bail!("{op}: expected a contiguous tensor") };
    Ok(&values[start..end])
}

/// Runs `f` on the values of a tensor an op holds (one that is not an argument, such
/// as the forward result kept for the backward pass).
pub(super) fn with_f32s<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(f32s(cpu, layout, op)?),
        _ => bail!("{op}: CPU tensors only"),
    }
}

/// Buffers reused by the kernels on each thread, so that the per-image im2col and
/// gradient matrices are not allocated (and faulted in) on every call. They grow to
/// the largest layer seen and stay: a few MB per thread.
#[derive(Default)]
pub(super) struct Scratch {
    /// Column matrix, or padded image.
    pub col: Vec<f32>,
    /// Masked output gradient.
    pub grad: Vec<f32>,
    /// Padded-width output, or padded input gradient.
    pub out: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers. `f` must not re-enter (it does not:
/// the kernels call no rayon code while they hold it).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// `buf` resized to `len`; the contents are stale and must be overwritten.
pub(super) fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `buf`, zeroed, as initialised values. The kernels allocate their large outputs
/// without initialising them and zero each image's part here, on the thread that then
/// writes it, right before it does: one parallel, cache-warm pass instead of a serial
/// `vec![0; len]` over the whole batch (up to 12.8 MB) that is written again anyway.
pub(super) fn zeroed<T: Copy + Default>(buf: &mut [MaybeUninit<T>]) -> &mut [T] {
    buf.fill(MaybeUninit::new(T::default()));
    // SAFETY: every element was initialised just above, and MaybeUninit<T> has the
    // layout of T.
    unsafe { &mut *(buf as *mut [MaybeUninit<T>] as *mut [T]) }
}
