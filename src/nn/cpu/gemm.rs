//! Matrix multiplication for the CPU backend, on the `gemm` crate.
//!
//! `gemm` was chosen by measurement on the shapes of SED's models (BENCHMARKS.md): it matches or
//! beats `matrixmultiply` on the convolution and LSTM shapes. This is the only `unsafe` of the
//! backend: the slices' lengths are checked against the shapes and strides before the call.

use super::Elem;

/// A matrix view: `data[i * row_stride + j * col_stride]` is element `(i, j)`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix, transposed if `transpose` (then `data` is `cols × rows`).
    pub fn new(data: &'a [T], rows: usize, cols: usize, transpose: bool) -> MatRef<'a, T> {
        if transpose {
            MatRef {
                data,
                rows,
                cols,
                row_stride: 1,
                col_stride: rows,
            }
        } else {
            MatRef {
                data,
                rows,
                cols,
                row_stride: cols,
                col_stride: 1,
            }
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of its slice");
        }
    }
}

/// Work (multiply-adds) above which a product is split over threads.
const PARALLEL_WORK: usize = 1 << 22;

/// `c = a · b` or `c += a · b` (`accumulate`), with `c` row-major `a.rows × b.cols`. `threads`
/// caps the threads used (1 inside already-parallel loops).
pub fn gemm<T: Elem>(c: &mut [T], a: MatRef<T>, b: MatRef<T>, accumulate: bool, threads: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(c.len() >= m * n, "output too small");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_WORK {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product reads or writes lies inside the slices, as checked above
    // (output: `m × n` row-major within `c`; inputs: the views' last elements within their
    // slices); `c` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_transposes() {
        // a = [[1, 2, 3], [4, 5, 6]], b = [[1, 0], [0, 1], [1, 1]]
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [0.0; 4];
        gemm(
            &mut c,
            MatRef::new(&a, 2, 3, false),
            MatRef::new(&b, 3, 2, false),
            false,
            1,
        );
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        gemm(
            &mut c,
            MatRef::new(&a, 2, 3, false),
            MatRef::new(&b, 3, 2, false),
            true,
            1,
        );
        assert_eq!(c, [8.0, 10.0, 20.0, 22.0]);
        // aᵀ · a: a stored 2×3 read as 3×2.
        let mut d = [0.0; 9];
        gemm(
            &mut d,
            MatRef::new(&a, 3, 2, true),
            MatRef::new(&a, 2, 3, false),
            false,
            1,
        );
        assert_eq!(d, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
    }
}
