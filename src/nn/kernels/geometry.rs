//! The shape arithmetic of a 2-D convolution and the im2col / col2im transforms.
//!
//! A column matrix holds one image: K = cin * kh * kw rows in (channel, ky, kx) order
//! by P = oh * ow columns, row-major, so that W (cout x K) times it is the output
//! (cout x P), already in NCHW order.

/// One convolution's sizes, for a batch of `n` images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// From the input (n, cin, h, w) and weight (cout, cin, kh, kw) dimensions; None when
    /// they disagree or the padded input is smaller than the kernel.
    pub fn new(x: &[usize], weight: &[usize], stride: usize, pad: usize) -> Option<ConvGeom> {
        let (&[n, cin, h, w], &[cout, wcin, kh, kw]) = (x, weight) else { return None };
        if wcin != cin || stride == 0 || kh == 0 || kw == 0 {
            return None;
        }
        let oh = (h + 2 * pad).checked_sub(kh)? / stride + 1;
        let ow = (w + 2 * pad).checked_sub(kw)? / stride + 1;
        Some(ConvGeom { n, cin, h, w, cout, kh, kw, stride, pad, oh, ow })
    }

    /// Rows of the column matrix: the GEMM's reduction length.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output positions per image.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    pub fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    pub fn out_len(&self) -> usize {
        self.cout * self.p()
    }

    /// A 1x1 convolution with stride 1 and no padding: the image is its own column
    /// matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// The output columns `lo..hi` whose input column `o * stride + k - pad` lies in
    /// `0..size`, for kernel offset `k`.
    fn valid(&self, out: usize, size: usize, k: usize) -> (usize, usize) {
        let s = self.stride;
        let hi = (size + self.pad).saturating_sub(k).div_ceil(s).min(out);
        let lo = self.pad.saturating_sub(k).div_ceil(s).min(hi);
        (lo, hi)
    }

    /// Visits every output row of every column-matrix row: `visit(at, span)` with `at`
    /// the offset of that output row in the column matrix and `span` the input it reads,
    /// None when the whole row falls in the padding.
    fn for_each_row(&self, mut visit: impl FnMut(usize, Option<Span>)) {
        let p = self.p();
        for c in 0..self.cin {
            for ky in 0..self.kh {
                let (ylo, yhi) = self.valid(self.oh, self.h, ky);
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * p;
                    let (lo, hi) = self.valid(self.ow, self.w, kx);
                    for oy in 0..self.oh {
                        let at = row + oy * self.ow;
                        if oy < ylo || oy >= yhi || lo == hi {
                            visit(at, None);
                            continue;
                        }
                        let iy = oy * self.stride + ky - self.pad;
                        // Input offset of output column lo (an unsigned value: lo is the
                        // first column whose input is inside the image).
                        let first = c * self.h * self.w + iy * self.w + lo * self.stride + kx - self.pad;
                        visit(at, Some(Span { lo, hi, first }));
                    }
                }
            }
        }
    }

    /// Fills `col` (K x P) from one image `x` (cin x h x w).
    pub fn im2col(&self, x: &[f32], col: &mut [f32]) {
        debug_assert!(x.len() == self.in_len() && col.len() == self.k() * self.p());
        let (ow, s) = (self.ow, self.stride);
        self.for_each_row(|at, span| {
            let out = &mut col[at..at + ow];
            let Some(Span { lo, hi, first }) = span else { return out.fill(0.0) };
            out[..lo].fill(0.0);
            out[hi..].fill(0.0);
            if s == 1 {
                out[lo..hi].copy_from_slice(&x[first..first + hi - lo]);
            } else {
                for (o, v) in out[lo..hi].iter_mut().zip(x[first..].iter().step_by(s)) {
                    *o = *v;
                }
            }
        });
    }

    /// Adds `col` (K x P) back onto one image's gradient `dx` (cin x h x w), which the
    /// caller zeroes: the transpose of `im2col`. Sequential, so the order of the sums is
    /// fixed.
    pub fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        debug_assert!(dx.len() == self.in_len() && col.len() == self.k() * self.p());
        let s = self.stride;
        self.for_each_row(|at, span| {
            let Some(Span { lo, hi, first }) = span else { return };
            let src = &col[at + lo..at + hi];
            if s == 1 {
                for (d, v) in dx[first..first + hi - lo].iter_mut().zip(src) {
                    *d += v;
                }
            } else {
                for (d, v) in dx[first..].iter_mut().step_by(s).zip(src) {
                    *d += v;
                }
            }
        });
    }
}

/// The output columns lo..hi of one output row that read the input, and the input
/// offset read by column lo (the next ones are `stride` apart).
struct Span {
    lo: usize,
    hi: usize,
    first: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col then col2im of ones counts how many windows cover each input pixel.
    #[test]
    fn col2im_is_the_transpose_of_im2col() {
        let g = ConvGeom::new(&[1, 1, 4, 5], &[1, 1, 3, 3], 2, 1).unwrap();
        assert_eq!((g.oh, g.ow), (2, 3));
        let x: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let mut col = vec![f32::NAN; g.k() * g.p()];
        g.im2col(&x, &mut col);
        // Window (0, 0) covers rows -1..2, columns -1..2.
        let first: Vec<f32> = (0..9).map(|r| col[r * g.p()]).collect();
        assert_eq!(first, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 5.0, 6.0]);
        let mut dx = vec![0.0; 20];
        g.col2im(&vec![1.0; g.k() * g.p()], &mut dx);
        assert_eq!(&dx[..5], &[1.0, 2.0, 1.0, 2.0, 1.0]);
        assert_eq!(&dx[5..10], &[2.0, 4.0, 2.0, 4.0, 2.0]);
    }
}
