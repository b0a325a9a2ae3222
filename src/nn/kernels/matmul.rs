//! A bounds-checked front for the `gemm` crate's f32 kernel (AVX-512 with its x86-v4
//! feature). Matrices are slices with a row and a column stride, so a transpose is a
//! swap of strides, never a copy.

use gemm::{Parallelism, gemm};

#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// `rows` x `cols`, row-major, at the start of `data`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    pub fn t(self) -> Mat<'a> {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// `rows` x `cols` with the given strides, at the start of `data`.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Mat<'a> {
        Mat { data, rows, cols, row_stride, col_stride }
    }
}

pub(super) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// `rows` x `cols`, row-major, at the start of `data`.
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        MatMut { data, rows, cols, row_stride: cols, col_stride: 1 }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// dst = lhs rhs, or dst += lhs rhs when `accumulate`.
///
/// Panics when the shapes disagree or a matrix does not fit its slice.
pub(super) fn matmul(dst: MatMut, lhs: Mat, rhs: Mat, accumulate: bool, parallelism: Parallelism) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(lhs.rows == m && rhs.rows == k && rhs.cols == n, "matmul shapes");
    assert!(fits(dst.data.len(), m, n, dst.row_stride, dst.col_stride), "matmul dst");
    assert!(fits(lhs.data.len(), m, k, lhs.row_stride, lhs.col_stride), "matmul lhs");
    assert!(fits(rhs.data.len(), k, n, rhs.row_stride, rhs.col_stride), "matmul rhs");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.row_stride + j * dst.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: every index the kernel touches is below the bounds checked above, and
    // dst is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.col_stride as isize,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The fewest rows an `m x k` by `k x n` product needs so that each row's result is the
/// same bits whatever `m` is (from this count up).
///
/// gemm 0.19 picks its algorithm from the shape, and the algorithms sum in different
/// orders: a dot-product kernel when m * n <= 256, a matrix-vector kernel when m = 1,
/// and for m, n <= 64 a reduction blocked by 512 where larger products split k into
/// even blocks (the same when k <= 512). Above all three thresholds every row goes
/// through the same blocked kernel with blocks that depend on k alone. Padding a small
/// batch with zero rows up to this count therefore makes a row's result independent
/// of the batch it came in (pinned by a test below, so a gemm update that moves the
/// thresholds fails loudly).
pub(super) fn independent_rows(n: usize, k: usize) -> usize {
    let mut rows = (256 / n.max(1) + 1).max(2);
    if n <= 64 && k > 512 {
        rows = rows.max(65);
    }
    rows
}

/// gemm's own threads for a GEMM that is not inside a parallel loop: as many tasks as
/// the current rayon pool has threads (gemm spawns them on that pool).
pub(super) fn pool_parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// x (m x k) times w^T (w: n x k), the layout of a fully connected layer, with the
    /// rows padded to `independent_rows`; the first m rows of the result.
    fn padded_rows(x: &[f32], w: &[f32], m: usize, n: usize, k: usize, par: Parallelism) -> Vec<f32> {
        let rows = m.max(independent_rows(n, k));
        let mut xp = x[..m * k].to_vec();
        xp.resize(rows * k, 0.0);
        let mut y = vec![0.5f32; rows * n];
        matmul(MatMut::rows(&mut y, rows, n), Mat::rows(&xp, rows, k), Mat::rows(w, n, k).t(), true, par);
        y.truncate(m * n);
        y
    }

    /// Every row of a padded product is the same bits as in a large batch, across the
    /// shapes where gemm 0.19 switches algorithm (see `independent_rows`).
    #[test]
    fn padded_rows_do_not_depend_on_the_batch() {
        let mut rng = Rng::new(5);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (n, k) in [
            (1, 7),
            (3, 64),
            (4, 256),
            (10, 288),
            (16, 16),
            (5, 2),
            (64, 64),
            (64, 600),
            (10, 3136),
            (256, 3136),
            (100, 1000),
            (300, 5),
        ] {
            let big = 300;
            let x: Vec<f32> = (0..big * k).map(|_| rng.normal()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            let reference = padded_rows(&x, &w, big, n, k, Parallelism::None);
            for m in [1, 2, 3, 4, 5, 8, 16, 17, 25, 26, 31, 32, 33, 63, 64, 65, 100, 128, 129, 200, 256, 257] {
                let got = padded_rows(&x, &w, m, n, k, Parallelism::None);
                let same = |got: &[f32]| got.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same(&got), "n {n} k {k} m {m}");
                let threaded = pool.install(|| padded_rows(&x, &w, m, n, k, Parallelism::Rayon(2)));
                assert!(same(&threaded), "n {n} k {k} m {m}, 2 threads");
            }
        }
    }

    #[test]
    fn strides_and_accumulation() {
        // a (2x3) row-major, b (3x2) given as its transpose (2x3) row-major.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0];
        let mut c = [10.0; 4];
        matmul(MatMut::rows(&mut c, 2, 2), Mat::rows(&a, 2, 3), Mat::rows(&bt, 2, 3).t(), false, Parallelism::None);
        assert_eq!(c, [-2.0, 4.0, -2.0, 13.0]);
        matmul(MatMut::rows(&mut c, 2, 2), Mat::rows(&a, 2, 3), Mat::rows(&bt, 2, 3).t(), true, Parallelism::None);
        assert_eq!(c, [-4.0, 8.0, -4.0, 26.0]);
    }
}
