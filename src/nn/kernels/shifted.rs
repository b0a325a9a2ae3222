//! Stride-1 convolution as a sum of shifted GEMMs, with no im2col copy.
//!
//! Pad the image once to hp x wp (hp = h + 2 pad, wp = w + 2 pad) and compute the output
//! in "padded-width" layout, oh rows of wp columns (the last wp - ow of each row are
//! junk). Then the input seen by kernel tap (ky, kx) is one strided view of the padded
//! image, cin rows of oh * wp values starting at ky * wp + kx, and
//!
//!   out = sum over taps of W[:, :, ky, kx] (cout x cin) . view(ky, kx) (cin x oh*wp).
//!
//! For 32 channels at 28x28 the im2col matrix would be 288 x 784 floats per image;
//! here the largest buffer is the padded image, and each tap's view goes to gemm's
//! packing as it is. Forward only: the same shifting for the gradients (G . view^T per
//! tap for dW, W^T G added tap by tap into a padded buffer for dX) repacks every
//! operand once per tap, and measured slower than im2col + col2im, which the backward
//! pass therefore uses. (So did the input gradient computed as this forward on the
//! output gradient with the kernel flipped.)

use gemm::Parallelism;

use super::geometry::ConvGeom;
use super::matmul::{Mat, MatMut, matmul};

#[derive(Clone, Copy)]
pub(super) struct Shifted {
    g: ConvGeom,
    wp: usize,
    /// hp * wp.
    plane: usize,
}

impl Shifted {
    /// The shifted form of `g`: stride 1 only, and worth it when each tap's GEMM has a
    /// useful reduction length (`cin`); tiny inputs (1 or 3 channels) go through im2col.
    pub fn new(g: &ConvGeom) -> Option<Shifted> {
        (g.stride == 1 && g.cin >= 8).then(|| {
            let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
            Shifted { g: *g, wp, plane: hp * wp }
        })
    }

    /// Length of a padded image buffer: the last tap's view runs kw - 1 values past
    /// the last plane (into junk columns).
    pub fn padded_len(&self) -> usize {
        self.g.cin * self.plane + self.g.kw - 1
    }

    /// Columns of the padded-width output: oh * wp.
    pub fn q(&self) -> usize {
        self.g.oh * self.wp
    }

    /// Copies one image (cin x h x w) into `xpad` with zero borders.
    pub fn pad(&self, x: &[f32], xpad: &mut [f32]) {
        let (g, wp) = (&self.g, self.wp);
        xpad.fill(0.0);
        for c in 0..g.cin {
            for iy in 0..g.h {
                let at = c * self.plane + (iy + g.pad) * wp + g.pad;
                xpad[at..at + g.w].copy_from_slice(&x[(c * g.h + iy) * g.w..][..g.w]);
            }
        }
    }

    /// (offset of tap (ky, kx) in a weight's (ky, kx) block, offset of its view in a
    /// padded buffer), taps in row-major order.
    fn taps(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let (kh, kw, wp) = (self.g.kh, self.g.kw, self.wp);
        (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (ky * kw + kx, ky * wp + kx)))
    }

    fn view<'a>(&self, padded: &'a [f32], at: usize) -> Mat<'a> {
        Mat::strided(&padded[at..], self.g.cin, self.q(), self.plane, 1)
    }

    /// W[:, :, ky, kx] as cout x cin.
    fn tap<'a>(&self, w: &'a [f32], at: usize) -> Mat<'a> {
        let g = &self.g;
        Mat::strided(&w[at..], g.cout, g.cin, g.k(), g.kh * g.kw)
    }

    /// `out` (cout x q) = the convolution of the padded image, junk columns included.
    pub fn forward(&self, w: &[f32], xpad: &[f32], out: &mut [f32]) {
        let (cout, q) = (self.g.cout, self.q());
        for (i, (wat, at)) in self.taps().enumerate() {
            let dst = MatMut::rows(out, cout, q);
            matmul(dst, self.tap(w, wat), self.view(xpad, at), i > 0, Parallelism::None);
        }
    }

    /// Row `oy` of output channel `o` in a padded-width buffer: its ow valid values.
    pub fn row<'a>(&self, buf: &'a [f32], o: usize, oy: usize) -> &'a [f32] {
        &buf[o * self.q() + oy * self.wp..][..self.g.ow]
    }

    /// Padded width: the row stride of the padded-width layout.
    pub fn wp(&self) -> usize {
        self.wp
    }
}
