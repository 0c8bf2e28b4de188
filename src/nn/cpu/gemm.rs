//! Matrix multiplication for the CPU backend, on the `gemm` crate.
//!
//! `gemm` was chosen by measurement on the shapes of SED's models (BENCHMARKS.md): it matches or
//! beats `matrixmultiply` on the convolution and LSTM shapes. Products of middling size are split
//! here into fixed blocks, one per task, where the crate's own threading leaves a core idle.
//! This is the only `unsafe` of the backend: the slices' lengths are checked against the shapes
//! and strides before the call, and the blocks of a split product write disjoint elements.

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

/// Work up to which a parallel product is split by us into blocks, each one product on one
/// thread: the `gemm` crate's own threads leave a core idle on the recurrent products of an
/// LSTM step (`[320, 256] · [256, 1024]`). Larger products use the crate's threads, except
/// where `b` is column-major (a linear layer's `x · Wᵀ`): split by columns, each block packs its
/// own part of `b`, which measured faster at every size.
const BLOCKED_WORK: usize = 1 << 28;

/// Blocks of a product split by us. Fixed, so that the blocks (and the bits of the result) do
/// not depend on the number of threads.
const BLOCKS: usize = 8;

impl<'a, T> MatRef<'a, T> {
    /// Rows `start..start + rows` of the view.
    fn row_range(self, start: usize, rows: usize) -> MatRef<'a, T> {
        MatRef {
            data: &self.data[start * self.row_stride..],
            rows,
            ..self
        }
    }

    /// Columns `start..start + cols` of the view.
    fn col_range(self, start: usize, cols: usize) -> MatRef<'a, T> {
        MatRef {
            data: &self.data[start * self.col_stride..],
            cols,
            ..self
        }
    }
}

/// The output of a product: `ptr[i * row_stride + j]` is element `(i, j)`. Blocks of a split
/// product write disjoint elements through copies of it.
#[derive(Clone, Copy)]
struct Output<T> {
    ptr: *mut T,
    row_stride: usize,
}

impl<T> Output<T> {
    /// The output starting `elements` further.
    ///
    /// # Safety
    /// The result must stay inside the output it was made from.
    unsafe fn offset(self, elements: usize) -> Output<T> {
        Output {
            // SAFETY: the caller's promise.
            ptr: unsafe { self.ptr.add(elements) },
            row_stride: self.row_stride,
        }
    }
}

// SAFETY: an `Output` is only shared between the blocks of one product, which write disjoint
// elements, while the `&mut` borrow it was made from is held.
unsafe impl<T: Send> Send for Output<T> {}
unsafe impl<T: Send> Sync for Output<T> {}

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
    let out = Output {
        ptr: c.as_mut_ptr(),
        row_stride: n,
    };
    let work = m * n * k;
    // Split the columns where `b` is column-major (so that each block packs only its part of
    // it), otherwise the rows.
    let by_columns = b.col_stride != 1;
    if work < PARALLEL_WORK || (work >= BLOCKED_WORK && !by_columns) {
        let parallelism = if threads > 1 && work >= PARALLEL_WORK {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: `out` covers `m × n` row-major elements of `c`, checked above.
        unsafe { product(out, a, b, accumulate, parallelism) };
        return;
    }
    let (length, block) = if by_columns {
        (n, n.div_ceil(BLOCKS).next_multiple_of(16))
    } else {
        (m, m.div_ceil(BLOCKS).max(16))
    };
    let run = |start: usize| {
        let len = block.min(length - start);
        // SAFETY: block `start` writes rows (or columns) `start..start + len` of `c` only,
        // inside the `m × n` elements checked above; blocks do not overlap.
        unsafe {
            if by_columns {
                product(
                    out.offset(start),
                    a,
                    b.col_range(start, len),
                    accumulate,
                    gemm::Parallelism::None,
                );
            } else {
                product(
                    out.offset(start * n),
                    a.row_range(start, len),
                    b,
                    accumulate,
                    gemm::Parallelism::None,
                );
            }
        }
    };
    let starts = (0..length).step_by(block);
    if threads > 1 {
        use rayon::prelude::*;
        starts.collect::<Vec<_>>().into_par_iter().for_each(run);
    } else {
        starts.for_each(run);
    }
}

/// `out (+)= a · b` by the `gemm` crate.
///
/// # Safety
/// `out` must be valid for writes of `a.rows × b.cols` elements at its strides, not aliased by
/// `a` or `b` or by another thread's writes.
unsafe fn product<T: Elem>(
    out: Output<T>,
    a: MatRef<T>,
    b: MatRef<T>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    a.check();
    b.check();
    // SAFETY: the inputs' indices lie inside their slices (checked just above); the output's
    // are the caller's promise.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.ptr,
            1,
            out.row_stride as isize,
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

    /// Products split into blocks (by rows, or by columns where `b` is transposed) equal the
    /// plain sum, with the same bits on one thread and on several.
    #[test]
    fn blocked_products() {
        let (m, k, n) = (70, 200, 301);
        assert!((PARALLEL_WORK..BLOCKED_WORK).contains(&(m * k * n)));
        let a: Vec<f64> = (0..m * k)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let b: Vec<f64> = (0..k * n)
            .map(|i| ((i * 53) % 97) as f64 / 48.0 - 1.0)
            .collect();
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let at = |i: usize, j: usize| if ta { a[j * m + i] } else { a[i * k + j] };
            let bt = |i: usize, j: usize| if tb { b[j * k + i] } else { b[i * n + j] };
            let start: Vec<f64> = (0..m * n).map(|i| (i % 7) as f64).collect();
            let mut one = start.clone();
            gemm(
                &mut one,
                MatRef::new(&a, m, k, ta),
                MatRef::new(&b, k, n, tb),
                true,
                1,
            );
            let mut two = start.clone();
            gemm(
                &mut two,
                MatRef::new(&a, m, k, ta),
                MatRef::new(&b, k, n, tb),
                true,
                2,
            );
            assert_eq!(one, two, "thread counts differ (ta {ta}, tb {tb})");
            for i in 0..m {
                for j in 0..n {
                    let expected =
                        start[i * n + j] + (0..k).map(|l| at(i, l) * bt(l, j)).sum::<f64>();
                    let got = one[i * n + j];
                    assert!(
                        (got - expected).abs() < 1e-9,
                        "({i}, {j}): {got} vs {expected}"
                    );
                }
            }
        }
    }
}
