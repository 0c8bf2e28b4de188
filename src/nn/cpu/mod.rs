//! The CPU backend: ndarray tensors, hand-written forward and backward passes, GEMM from the
//! `gemm` crate, rayon threads. It is the numerical reference of every other backend.
//!
//! `CpuBackend<f32>` trains; `CpuBackend<f64>` exists so that gradient checks can use finite
//! differences at double precision. Reductions whose order could depend on the thread count are
//! done in a fixed order, so a computation gives the same bits on any number of threads.

mod conv;
mod direct;
pub mod gemm;
mod lstm;
mod winograd;

use std::fmt::Debug;
use std::iter::Sum;
use std::marker::PhantomData;

use ndarray::{ArrayD, IxDyn};
use num_traits::{Float, FromPrimitive, ToPrimitive};
use rayon::prelude::*;

use self::gemm::{gemm as gemm_into, MatRef};
use super::backend::{AdamStep, Backend, BatchNormSaved, LstmRun, SparseRows};

/// Whether the CPU backend's 3×3 convolution of `channels` inputs to `out_channels` outputs
/// takes the direct path, whose sums are in an order fixed by the shapes alone (the same bits
/// with AVX-512, AVX2 or neither); the wider layers go through Winograd or im2col + GEMM.
pub fn convolution_is_direct(channels: usize, out_channels: usize) -> bool {
    direct::applies(channels, out_channels)
}

/// Element types of the CPU backend.
pub trait Elem:
    Float
    + FromPrimitive
    + ToPrimitive
    + Sum
    + Default
    + Debug
    + Send
    + Sync
    + 'static
    + std::ops::AddAssign
{
    /// The logistic function, as fast as the type allows.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::one() / (Self::one() + (-self).exp())
    }

    /// The hyperbolic tangent, as fast as the type allows.
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        self.tanh()
    }
}

impl Elem for f32 {
    #[inline(always)]
    fn sigmoid(self) -> f32 {
        1.0 / (1.0 + exp_f32(-self))
    }

    #[inline(always)]
    fn fast_tanh(self) -> f32 {
        // tanh x = 2σ(2x) − 1: accurate to a few units in the last place in absolute terms.
        2.0 / (1.0 + exp_f32(-2.0 * self)) - 1.0
    }
}

/// Exact (libm), for the gradient checks.
impl Elem for f64 {}

/// `exp` for f32 in branch-free arithmetic that the compiler vectorises (Cephes' `expf`
/// polynomial after reduction by powers of two; about 1 ulp of error). The libm call it replaces
/// took a fifth of an LSTM step.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.7);
    let (n, power) = round_for_exp(x * LOG2E);
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((power + 127) << 23) as u32)
}

/// `y` (at most 2²² in magnitude) rounded to the nearest integer, as an `f32` and as an `i32`,
/// without a libm call: adding 1.5·2²³ leaves the integer in the low mantissa bits (the sum's
/// unit in the last place is 1), and subtracting it again gives the float. The integer is read
/// from those bits rather than by an `as i32` cast, which saturates and so compiles lane by lane
/// instead of vectorising.
#[inline(always)]
fn round_for_exp(y: f32) -> (f32, i32) {
    const ROUND: f32 = 12_582_912.0;
    let shifted = y + ROUND;
    let integer = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    (shifted - ROUND, integer)
}

/// Elements per parallel task of the element-wise and row-wise loops: a smaller tensor is done on
/// the calling thread. Every such loop computes each output element exactly as the serial loop
/// would, so results do not depend on the number of threads.
const TASK_ELEMS: usize = 1 << 14;

/// Rows of `width` elements per parallel task.
fn task_rows(width: usize) -> usize {
    (TASK_ELEMS / width.max(1)).max(1)
}

/// `f` on each pair of corresponding elements of `a` and `b`, in parallel chunks.
fn zip_apply<T: Elem>(a: &mut [T], b: &[T], f: impl Fn(&mut T, T) + Sync) {
    assert_eq!(a.len(), b.len(), "element-wise operands differ in length");
    a.par_chunks_mut(TASK_ELEMS)
        .zip(b.par_chunks(TASK_ELEMS))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, &y)| f(x, y)));
}

/// `f` on each element of `a`, in parallel chunks.
fn apply<T: Elem>(a: &mut [T], f: impl Fn(&mut T) + Sync) {
    a.par_chunks_mut(TASK_ELEMS)
        .for_each(|a| a.iter_mut().for_each(&f));
}

/// A new vector of `rows × width` elements whose row `r` is written by `fill(r, row)`, rows in
/// parallel.
fn build_rows<T: Elem>(rows: usize, width: usize, fill: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
    let mut out = vec![T::zero(); rows * width];
    if width > 0 {
        out.par_chunks_mut(width)
            .with_min_len(task_rows(width))
            .enumerate()
            .for_each(|(r, row)| fill(r, row));
    }
    out
}

/// A vector of `n` zeros, written in parallel when it is large (an allocator zeroes reused
/// memory on one thread).
fn zeroed<T: Elem>(n: usize) -> Vec<T> {
    if n < 4 * TASK_ELEMS {
        return vec![T::zero(); n];
    }
    let mut out = Vec::with_capacity(n);
    out.par_extend(rayon::iter::repeat_n(T::zero(), n).with_min_len(TASK_ELEMS));
    out
}

/// `f` of each element of `x`, as a new vector written in parallel.
fn map_new<T: Elem>(x: &[T], f: impl Fn(T) -> T + Sync + Send) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    x.par_iter()
        .with_min_len(TASK_ELEMS)
        .map(|&v| f(v))
        .collect_into_vec(&mut out);
    out
}

/// `f` of each pair of corresponding elements of `a` and `b`, as a new vector written in
/// parallel.
fn zip_map_new<T: Elem>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync + Send) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "element-wise operands differ in length");
    let mut out = Vec::with_capacity(a.len());
    a.par_iter()
        .zip(b)
        .with_min_len(TASK_ELEMS)
        .map(|(&x, &y)| f(x, y))
        .collect_into_vec(&mut out);
    out
}

/// The ReLU of one value; NaN gives 0.
#[inline(always)]
fn relu_value<T: Elem>(v: T) -> T {
    if v.is_nan() || v <= T::zero() {
        T::zero()
    } else {
        v
    }
}

/// The gradient `d` of a ReLU's output `y`, taken back through the ReLU.
#[inline(always)]
fn relu_grad<T: Elem>(y: T, d: T) -> T {
    if y.is_nan() || y <= T::zero() {
        T::zero()
    } else {
        d
    }
}

fn cast<T: Elem>(x: f64) -> T {
    T::from_f64(x).unwrap_or_else(T::nan)
}

/// The CPU backend over element type `T`.
#[derive(Clone, Debug)]
pub struct CpuBackend<T> {
    threads: usize,
    _elem: PhantomData<T>,
}

impl<T: Elem> Default for CpuBackend<T> {
    fn default() -> Self {
        CpuBackend::new()
    }
}

impl<T: Elem> CpuBackend<T> {
    /// A backend using rayon's current thread pool.
    pub fn new() -> Self {
        CpuBackend {
            threads: rayon::current_num_threads(),
            _elem: PhantomData,
        }
    }
}

/// The tensor type of the CPU backend.
pub type CpuTensor<T> = ArrayD<T>;

fn data<T: Elem>(t: &CpuTensor<T>) -> &[T] {
    t.as_slice()
        .expect("CPU tensors are kept in standard layout")
}

fn data_mut<T: Elem>(t: &mut CpuTensor<T>) -> &mut [T] {
    t.as_slice_mut()
        .expect("CPU tensors are kept in standard layout")
}

fn tensor<T: Elem>(shape: &[usize], values: Vec<T>) -> CpuTensor<T> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("the values fill the shape")
}

/// Rows and columns of a tensor seen as a matrix `[shape[0], rest]`.
fn as_matrix<T: Elem>(t: &CpuTensor<T>) -> (usize, usize) {
    let rows = t.shape().first().copied().unwrap_or(1);
    (rows, t.shape().iter().skip(1).product())
}

/// [`Backend::conv3x3`], followed by a ReLU if `relu`.
fn conv_forward<T: Elem>(
    x: &CpuTensor<T>,
    weight: &CpuTensor<T>,
    bias: &CpuTensor<T>,
    relu: bool,
) -> CpuTensor<T> {
    let s = x.shape();
    assert_eq!(s.len(), 4, "conv3x3: input {s:?} is not [N, C, H, W]");
    let out = weight.shape()[0];
    assert_eq!(weight.shape(), [out, s[1], 3, 3], "conv3x3: weight shape");
    assert_eq!(bias.len(), out, "conv3x3: bias length");
    let dims = [s[0], s[1], s[2], s[3]];
    let y = conv::forward(data(x), dims, data(weight), out, data(bias), relu);
    tensor(&[s[0], out, s[2], s[3]], y)
}

/// [`Backend::conv3x3_backward`], or with `relu_output` [`Backend::conv3x3_relu_backward`].
fn conv_backward<T: Elem>(
    x: &CpuTensor<T>,
    weight: &CpuTensor<T>,
    relu_output: Option<&CpuTensor<T>>,
    dy: &CpuTensor<T>,
    input_grad: bool,
) -> (Option<CpuTensor<T>>, CpuTensor<T>, CpuTensor<T>) {
    let s = x.shape();
    assert_eq!(
        s.len(),
        4,
        "conv3x3_backward: input {s:?} is not [N, C, H, W]"
    );
    let out = weight.shape()[0];
    assert_eq!(
        weight.shape(),
        [out, s[1], 3, 3],
        "conv3x3_backward: weight shape"
    );
    let y_shape = [s[0], out, s[2], s[3]];
    assert_eq!(dy.shape(), y_shape, "conv3x3_backward: gradient shape");
    if let Some(y) = relu_output {
        assert_eq!(y.shape(), y_shape, "conv3x3_relu_backward: output shape");
    }
    let (dx, dw, db) = conv::backward(
        data(x),
        [s[0], s[1], s[2], s[3]],
        data(weight),
        out,
        data(dy),
        relu_output.map(data),
        input_grad,
    );
    (
        dx.map(|dx| tensor(s, dx)),
        tensor(weight.shape(), dw),
        tensor(&[out], db),
    )
}

impl<T: Elem> Backend for CpuBackend<T> {
    type Tensor = CpuTensor<T>;
    type Index = Vec<u32>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn zeros(&self, shape: &[usize]) -> Self::Tensor {
        ArrayD::zeros(IxDyn(shape))
    }

    fn tensor_f32(&self, shape: &[usize], values: &[f32]) -> Self::Tensor {
        tensor(shape, values.iter().map(|&v| cast(v as f64)).collect())
    }

    fn to_f32(&self, t: &Self::Tensor) -> Vec<f32> {
        t.iter().map(|v| v.to_f32().unwrap_or(f32::NAN)).collect()
    }

    fn tensor_f64(&self, shape: &[usize], values: &[f64]) -> Self::Tensor {
        tensor(shape, values.iter().map(|&v| cast(v)).collect())
    }

    fn to_f64(&self, t: &Self::Tensor) -> Vec<f64> {
        t.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).collect()
    }

    fn shape(&self, t: &Self::Tensor) -> Vec<usize> {
        t.shape().to_vec()
    }

    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Self::Tensor {
        tensor(shape, map_new(data(t), |v| v))
    }

    fn reshape_owned(&self, t: Self::Tensor, shape: &[usize]) -> Self::Tensor {
        t.into_shape_with_order(IxDyn(shape))
            .expect("reshape: the values fill the shape")
    }

    fn matmul(&self, a: &Self::Tensor, b: &Self::Tensor, ta: bool, tb: bool) -> Self::Tensor {
        let (m, n) = (
            if ta { a.shape()[1] } else { a.shape()[0] },
            if tb { b.shape()[0] } else { b.shape()[1] },
        );
        let mut c = self.zeros(&[m, n]);
        self.matmul_acc(&mut c, a, b, ta, tb);
        c
    }

    fn matmul_acc(
        &self,
        c: &mut Self::Tensor,
        a: &Self::Tensor,
        b: &Self::Tensor,
        ta: bool,
        tb: bool,
    ) {
        let (ar, ac) = (a.shape()[0], a.shape()[1]);
        let (br, bc) = (b.shape()[0], b.shape()[1]);
        let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if tb { (bc, br) } else { (br, bc) };
        assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
        assert_eq!(c.shape(), [m, n], "matmul: output shape");
        gemm_into(
            data_mut(c),
            MatRef::new(data(a), m, k, ta),
            MatRef::new(data(b), k, n, tb),
            true,
            self.threads,
        );
    }

    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Self::Tensor {
        assert_eq!(a.shape(), b.shape(), "add: shapes differ");
        tensor(a.shape(), zip_map_new(data(a), data(b), |x, y| x + y))
    }

    fn add_assign(&self, a: &mut Self::Tensor, b: &Self::Tensor) {
        assert_eq!(a.shape(), b.shape(), "add: shapes differ");
        zip_apply(data_mut(a), data(b), |x, y| *x += y);
    }

    fn scale(&self, a: &mut Self::Tensor, factor: f64) {
        let f: T = cast(factor);
        apply(data_mut(a), |x| *x = *x * f);
    }

    fn fill(&self, a: &mut Self::Tensor, value: f64) {
        data_mut(a).fill(cast(value));
    }

    fn add_bias(&self, x: &mut Self::Tensor, bias: &Self::Tensor) {
        let (_, cols) = as_matrix(x);
        let b = data(bias);
        assert_eq!(b.len(), cols, "add_bias: bias length");
        data_mut(x)
            .par_chunks_mut(cols.max(1))
            .with_min_len(task_rows(cols))
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &bv)| *v += bv));
    }

    fn sum_rows(&self, x: &Self::Tensor) -> Self::Tensor {
        let (_, cols) = as_matrix(x);
        let mut out = vec![T::zero(); cols];
        for row in data(x).chunks(cols.max(1)) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
        tensor(&[cols], out)
    }

    fn relu(&self, x: &Self::Tensor) -> Self::Tensor {
        tensor(x.shape(), map_new(data(x), relu_value))
    }

    fn relu_backward(&self, y: &Self::Tensor, dy: &Self::Tensor) -> Self::Tensor {
        assert_eq!(y.shape(), dy.shape(), "relu_backward: shapes differ");
        tensor(dy.shape(), zip_map_new(data(y), data(dy), relu_grad))
    }

    fn sum_squares(&self, x: &Self::Tensor) -> f64 {
        data(x)
            .iter()
            .map(|v| {
                let v = v.to_f64().unwrap_or(f64::NAN);
                v * v
            })
            .sum()
    }

    fn conv3x3(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        bias: &Self::Tensor,
    ) -> Self::Tensor {
        conv_forward(x, weight, bias, false)
    }

    fn conv3x3_backward(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        dy: &Self::Tensor,
        input_grad: bool,
    ) -> (Option<Self::Tensor>, Self::Tensor, Self::Tensor) {
        conv_backward(x, weight, None, dy, input_grad)
    }

    fn conv3x3_relu(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        bias: &Self::Tensor,
    ) -> Self::Tensor {
        conv_forward(x, weight, bias, true)
    }

    fn conv3x3_relu_backward(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        input_grad: bool,
    ) -> (Option<Self::Tensor>, Self::Tensor, Self::Tensor) {
        conv_backward(x, weight, Some(y), dy, input_grad)
    }

    fn batch_norm_train(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f64,
    ) -> (
        Self::Tensor,
        BatchNormSaved<Self::Tensor>,
        Self::Tensor,
        Self::Tensor,
    ) {
        let s = x.shape();
        let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
        let count = (n * hw) as f64;
        let xs = data(x);
        let stats: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let values = (0..n).flat_map(|i| xs[(i * c + ch) * hw..][..hw].iter());
                let sum: f64 = values.clone().map(|v| v.to_f64().unwrap_or(0.0)).sum();
                let mean = sum / count;
                let var = values
                    .map(|v| {
                        let d = v.to_f64().unwrap_or(0.0) - mean;
                        d * d
                    })
                    .sum::<f64>()
                    / count;
                (mean, var)
            })
            .collect();
        let (g, b) = (data(gamma), data(beta));
        let y = build_rows(n * c, hw, |plane, out| {
            let ch = plane % c;
            let (mean, var) = stats[ch];
            let scale: T = cast(1.0 / (var + eps).sqrt());
            let mean: T = cast(mean);
            for (y, &x) in out.iter_mut().zip(&xs[plane * hw..(plane + 1) * hw]) {
                *y = (x - mean) * scale * g[ch] + b[ch];
            }
        });
        let mean = tensor(&[c], stats.iter().map(|s| cast(s.0)).collect());
        let inv_std = tensor(
            &[c],
            stats
                .iter()
                .map(|s| cast(1.0 / (s.1 + eps).sqrt()))
                .collect(),
        );
        let unbiased = count / (count - 1.0).max(1.0);
        let var = tensor(&[c], stats.iter().map(|s| cast(s.1 * unbiased)).collect());
        (
            tensor(s, y),
            BatchNormSaved {
                mean: mean.clone(),
                inv_std,
            },
            mean,
            var,
        )
    }

    fn batch_norm_eval(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        mean: &Self::Tensor,
        var: &Self::Tensor,
        eps: f64,
    ) -> Self::Tensor {
        let s = x.shape();
        let (c, hw) = (s[1], s[2] * s[3]);
        let (g, b, m, v) = (data(gamma), data(beta), data(mean), data(var));
        let eps: T = cast(eps);
        let mut y = data(x).to_vec();
        if hw > 0 {
            y.par_chunks_mut(hw)
                .with_min_len(task_rows(hw))
                .enumerate()
                .for_each(|(plane_index, plane)| {
                    let ch = plane_index % c;
                    let scale = g[ch] / (v[ch] + eps).sqrt();
                    for value in plane {
                        *value = (*value - m[ch]) * scale + b[ch];
                    }
                });
        }
        tensor(s, y)
    }

    fn batch_norm_backward(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        saved: &BatchNormSaved<Self::Tensor>,
        dy: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor, Self::Tensor) {
        let s = x.shape();
        let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
        let count: T = cast((n * hw) as f64);
        let (xs, dys) = (data(x), data(dy));
        let (g, mean, inv_std) = (data(gamma), data(&saved.mean), data(&saved.inv_std));
        // Per channel: Σ dy and Σ dy · x̂.
        let sums: Vec<(T, T)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mut sum = T::zero();
                let mut dot = T::zero();
                for i in 0..n {
                    let base = (i * c + ch) * hw;
                    for j in base..base + hw {
                        sum += dys[j];
                        dot += dys[j] * (xs[j] - mean[ch]) * inv_std[ch];
                    }
                }
                (sum, dot)
            })
            .collect();
        let dx = build_rows(n * c, hw, |plane, out| {
            let ch = plane % c;
            let (sum, dot) = sums[ch];
            let k = g[ch] * inv_std[ch] / count;
            let base = plane * hw;
            for (j, d) in (base..base + hw).zip(out) {
                let xhat = (xs[j] - mean[ch]) * inv_std[ch];
                *d = k * (count * dys[j] - sum - xhat * dot);
            }
        });
        let dgamma = tensor(&[c], sums.iter().map(|s| s.1).collect());
        let dbeta = tensor(&[c], sums.iter().map(|s| s.0).collect());
        (tensor(s, dx), dgamma, dbeta)
    }

    fn lerp_assign(&self, running: &mut Self::Tensor, batch: &Self::Tensor, momentum: f64) {
        let m: T = cast(momentum);
        zip_apply(data_mut(running), data(batch), |r, b| {
            *r = (T::one() - m) * *r + m * b;
        });
    }

    fn gather_rows(&self, table: &Self::Tensor, rows: &[u32]) -> Self::Tensor {
        let (n, width) = as_matrix(table);
        let t = data(table);
        if let Some(&r) = rows.iter().find(|&&r| r as usize >= n) {
            panic!("gather_rows: row {r} of {n}");
        }
        let out = build_rows(rows.len(), width, |i, row| {
            let r = rows[i] as usize;
            row.copy_from_slice(&t[r * width..(r + 1) * width]);
        });
        let mut shape = table.shape().to_vec();
        shape[0] = rows.len();
        tensor(&shape, out)
    }

    fn scatter_add_rows(&self, dy: &Self::Tensor, rows: &[u32], table_rows: usize) -> Self::Tensor {
        let (_, width) = as_matrix(dy);
        let d = data(dy);
        let mut out = vec![T::zero(); table_rows * width];
        for (i, &r) in rows.iter().enumerate() {
            let target = &mut out[r as usize * width..(r as usize + 1) * width];
            for (o, &v) in target.iter_mut().zip(&d[i * width..(i + 1) * width]) {
                *o += v;
            }
        }
        let mut shape = dy.shape().to_vec();
        shape[0] = table_rows;
        tensor(&shape, out)
    }

    fn concat(&self, parts: &[&Self::Tensor], axis: usize) -> Self::Tensor {
        let first = parts.first().expect("concat: at least one part").shape();
        assert!(
            axis < first.len(),
            "concat: axis {axis} of a {}-d tensor",
            first.len()
        );
        for p in parts {
            let s = p.shape();
            assert!(
                s.len() == first.len() && (0..s.len()).all(|d| d == axis || s[d] == first[d]),
                "concat: shapes agree off the axis"
            );
        }
        // Row `o` of the output (an index over the axes before `axis`) is every part's row `o`.
        let outer: usize = first[..axis].iter().product();
        let inner: usize = first[axis + 1..].iter().product();
        let blocks: Vec<usize> = parts.iter().map(|p| p.shape()[axis] * inner).collect();
        let width: usize = blocks.iter().sum();
        let out = build_rows(outer, width, |o, row| {
            let mut at = 0;
            for (p, &block) in parts.iter().zip(&blocks) {
                row[at..at + block].copy_from_slice(&data(p)[o * block..(o + 1) * block]);
                at += block;
            }
        });
        let mut shape = first.to_vec();
        shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
        tensor(&shape, out)
    }

    fn slice(&self, x: &Self::Tensor, axis: usize, start: usize, len: usize) -> Self::Tensor {
        let s = x.shape();
        assert!(
            axis < s.len() && start + len <= s[axis],
            "slice: {start}..{} of axis {axis} of shape {s:?}",
            start + len
        );
        let outer: usize = s[..axis].iter().product();
        let inner: usize = s[axis + 1..].iter().product();
        let (full, block) = (s[axis] * inner, len * inner);
        let xs = data(x);
        let out = build_rows(outer, block, |o, row| {
            row.copy_from_slice(&xs[o * full + start * inner..][..block]);
        });
        let mut shape = s.to_vec();
        shape[axis] = len;
        tensor(&shape, out)
    }

    fn lstm_cell(
        &self,
        gates: &Self::Tensor,
        c_prev: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor, Self::Tensor) {
        let (b, h) = (c_prev.shape()[0], c_prev.shape()[1]);
        assert_eq!(gates.shape(), [b, 4 * h], "lstm_cell: gates shape");
        let mut act = data(gates).to_vec();
        let mut hs = vec![T::zero(); b * h];
        let mut cs = vec![T::zero(); b * h];
        let cp = data(c_prev);
        if h > 0 {
            act.par_chunks_mut(4 * h)
                .zip(hs.par_chunks_mut(h))
                .zip(cs.par_chunks_mut(h))
                .zip(cp.par_chunks(h))
                .with_min_len(task_rows(4 * h))
                .for_each(|(((a, h_out), c_out), c_prev)| lstm::cell_row(a, c_prev, h_out, c_out));
        }
        (
            tensor(&[b, h], hs),
            tensor(&[b, h], cs),
            tensor(&[b, 4 * h], act),
        )
    }

    fn lstm_cell_backward(
        &self,
        activated: &Self::Tensor,
        c_prev: &Self::Tensor,
        c: &Self::Tensor,
        dh: &Self::Tensor,
        dc: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor) {
        let (b, h) = (c.shape()[0], c.shape()[1]);
        let (act, cp, cs, dhs, dcs) = (data(activated), data(c_prev), data(c), data(dh), data(dc));
        let mut dgates = vec![T::zero(); b * 4 * h];
        let mut dc_prev = vec![T::zero(); b * h];
        if h > 0 {
            dgates
                .par_chunks_mut(4 * h)
                .zip(dc_prev.par_chunks_mut(h))
                .zip(act.par_chunks(4 * h))
                .zip(cp.par_chunks(h).zip(cs.par_chunks(h)))
                .zip(dhs.par_chunks(h).zip(dcs.par_chunks(h)))
                .with_min_len(task_rows(4 * h))
                .for_each(|((((dg, dcp), a), (cp, c)), (dh, dc))| {
                    lstm::cell_backward_row(a, cp, c, dh, dc, dg, dcp)
                });
        }
        (tensor(&[b, 4 * h], dgates), tensor(&[b, h], dc_prev))
    }

    fn lstm_run(
        &self,
        gates_in: &Self::Tensor,
        offset: Option<&Self::Tensor>,
        w_hh: &Self::Tensor,
        lengths: &[usize],
        reverse: bool,
    ) -> LstmRun<Self::Tensor> {
        let (batch, hidden) = (lengths.len(), w_hh.shape()[1]);
        assert_eq!(w_hh.shape(), [4 * hidden, hidden], "lstm_run: w_hh shape");
        let rows = gates_in.shape()[0];
        assert!(
            gates_in.shape() == [rows, 4 * hidden] && rows.checked_rem(batch).unwrap_or(rows) == 0,
            "lstm_run: gates shape"
        );
        if let Some(offset) = offset {
            assert_eq!(
                offset.shape(),
                [batch, 4 * hidden],
                "lstm_run: offset shape"
            );
        }
        let run = lstm::run(
            data(gates_in),
            offset.map(data),
            data(w_hh),
            lengths,
            hidden,
            reverse,
        );
        let saved_rows = run.saved.h_prev.len() / hidden.max(1);
        let state = |values: Vec<T>| tensor(&[saved_rows, hidden], values);
        LstmRun {
            outputs: tensor(&[rows, hidden], run.outputs),
            h_n: tensor(&[batch, hidden], run.h_n),
            c_n: tensor(&[batch, hidden], run.c_n),
            // Block by block (`lstm::Saved`): h_prev, c_prev, c, activated.
            saved: vec![
                state(run.saved.h_prev),
                state(run.saved.c_prev),
                state(run.saved.c),
                tensor(&[saved_rows, 4 * hidden], run.saved.activated),
            ],
        }
    }

    fn lstm_run_backward(
        &self,
        run: &LstmRun<Self::Tensor>,
        w_hh: &Self::Tensor,
        d_outputs: &Self::Tensor,
        [d_h_n, d_c_n]: [Option<&Self::Tensor>; 2],
        lengths: &[usize],
        reverse: bool,
    ) -> (Self::Tensor, Self::Tensor) {
        let hidden = w_hh.shape()[1];
        assert_eq!(
            d_outputs.shape(),
            run.outputs.shape(),
            "lstm_run_backward: shapes"
        );
        for d in [d_h_n, d_c_n].into_iter().flatten() {
            assert_eq!(
                d.shape(),
                run.h_n.shape(),
                "lstm_run_backward: final state shape"
            );
        }
        let [h_prev, c_prev, c, activated] = &run.saved[..] else {
            panic!("lstm_run_backward: not a run of this backend");
        };
        let saved = lstm::Saved {
            h_prev: data(h_prev),
            c_prev: data(c_prev),
            c: data(c),
            activated: data(activated),
        };
        let (d_gates, d_w_hh) = lstm::run_backward(
            &saved,
            data(w_hh),
            data(d_outputs),
            [d_h_n.map(data), d_c_n.map(data)],
            lengths,
            hidden,
            reverse,
        );
        (
            tensor(&[d_outputs.shape()[0], 4 * hidden], d_gates),
            tensor(&[4 * hidden, hidden], d_w_hh),
        )
    }

    fn select_rows(&self, keep: &[bool], new: &Self::Tensor, old: &Self::Tensor) -> Self::Tensor {
        let (rows, width) = as_matrix(new);
        assert_eq!(keep.len(), rows, "select_rows: one flag per row");
        assert_eq!(new.shape(), old.shape(), "select_rows: shapes differ");
        let (n, o) = (data(new), data(old));
        let out = build_rows(rows, width, |r, row| {
            let src = if keep[r] { n } else { o };
            row.copy_from_slice(&src[r * width..(r + 1) * width]);
        });
        tensor(new.shape(), out)
    }

    fn max_groups(&self, x: &Self::Tensor, size: usize) -> (Self::Tensor, Vec<u32>) {
        let (rows, width) = as_matrix(x);
        assert!(
            size > 0 && rows % size == 0,
            "max_groups: rows not a multiple of the group size"
        );
        let groups = rows / size;
        let xs = data(x);
        let mut out = vec![T::zero(); groups * width];
        let mut argmax = vec![0u32; groups * width];
        if width > 0 {
            out.par_chunks_mut(width)
                .zip(argmax.par_chunks_mut(width))
                .with_min_len(task_rows(width * size))
                .enumerate()
                .for_each(|(g, (out, argmax))| {
                    for d in 0..width {
                        let mut best = g * size;
                        for r in g * size + 1..(g + 1) * size {
                            if xs[r * width + d] > xs[best * width + d] {
                                best = r;
                            }
                        }
                        out[d] = xs[best * width + d];
                        argmax[d] = best as u32;
                    }
                });
        }
        let mut shape = x.shape().to_vec();
        shape[0] = groups;
        (tensor(&shape, out), argmax)
    }

    fn index_to_vec(&self, index: &Vec<u32>) -> Vec<u32> {
        index.clone()
    }

    fn max_groups_backward(
        &self,
        dy: &Self::Tensor,
        argmax: &Vec<u32>,
        rows: usize,
    ) -> Self::Tensor {
        let (groups, width) = as_matrix(dy);
        assert_eq!(
            argmax.len(),
            groups * width,
            "max_groups_backward: one index per element"
        );
        let d = data(dy);
        let mut out = vec![T::zero(); rows * width];
        if width > 0 && groups > 0 {
            // Group `g`'s winners are rows of group `g`, so the groups' gradients are disjoint.
            let size = rows / groups;
            assert_eq!(
                size * groups,
                rows,
                "max_groups_backward: rows not a multiple of the groups"
            );
            out.par_chunks_mut(size * width)
                .zip(argmax.par_chunks(width).zip(d.par_chunks(width)))
                .enumerate()
                .for_each(|(g, (out, (winners, d)))| {
                    for (col, (&r, &v)) in winners.iter().zip(d).enumerate() {
                        let local = (r as usize)
                            .checked_sub(g * size)
                            .filter(|&l| l < size)
                            .expect("max_groups_backward: a winner outside its group");
                        out[local * width + col] += v;
                    }
                });
        }
        let mut shape = dy.shape().to_vec();
        shape[0] = rows;
        tensor(&shape, out)
    }

    fn sparse_rows(&self, s: &SparseRows, x: &Self::Tensor) -> Self::Tensor {
        let (_, width) = as_matrix(x);
        let xs = data(x);
        let out = build_rows(s.rows(), width, |r, row| {
            for e in s.offsets[r] as usize..s.offsets[r + 1] as usize {
                let (col, w) = (s.cols[e] as usize, cast::<T>(s.weights[e] as f64));
                for (o, &v) in row.iter_mut().zip(&xs[col * width..(col + 1) * width]) {
                    *o += w * v;
                }
            }
        });
        let mut shape = x.shape().to_vec();
        shape[0] = s.rows();
        tensor(&shape, out)
    }

    fn sparse_rows_backward(
        &self,
        s: &SparseRows,
        dy: &Self::Tensor,
        x_rows: usize,
    ) -> Self::Tensor {
        let (_, width) = as_matrix(dy);
        let d = data(dy);
        let mut out = vec![T::zero(); x_rows * width];
        for r in 0..s.rows() {
            for e in s.offsets[r] as usize..s.offsets[r + 1] as usize {
                let (col, w) = (s.cols[e] as usize, cast::<T>(s.weights[e] as f64));
                let target = &mut out[col * width..(col + 1) * width];
                for (o, &v) in target.iter_mut().zip(&d[r * width..(r + 1) * width]) {
                    *o += w * v;
                }
            }
        }
        let mut shape = dy.shape().to_vec();
        shape[0] = x_rows;
        tensor(&shape, out)
    }

    fn cross_entropy(
        &self,
        logits: &Self::Tensor,
        targets: &[u32],
        ignore: u32,
        mask: Option<&[bool]>,
    ) -> (f64, Self::Tensor, usize) {
        let (rows, classes) = as_matrix(logits);
        assert_eq!(targets.len(), rows, "cross_entropy: one target per row");
        if let Some(mask) = mask {
            assert_eq!(mask.len(), rows * classes, "cross_entropy: mask shape");
        }
        let xs = data(logits);
        let counted = targets.iter().filter(|&&t| t != ignore).count();
        let denominator = counted.max(1) as f64;
        let mut grad = vec![T::zero(); xs.len()];
        let mut loss = 0.0f64;
        for r in 0..rows {
            if targets[r] == ignore {
                continue;
            }
            let row = &xs[r * classes..(r + 1) * classes];
            let allowed = |j: usize| mask.is_none_or(|m| m[r * classes + j]);
            let max = (0..classes)
                .filter(|&j| allowed(j))
                .map(|j| row[j].to_f64().unwrap_or(f64::NAN))
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..classes)
                .filter(|&j| allowed(j))
                .map(|j| (row[j].to_f64().unwrap_or(f64::NAN) - max).exp())
                .sum();
            let log_z = max + sum.ln();
            let t = targets[r] as usize;
            loss -= row[t].to_f64().unwrap_or(f64::NAN) - log_z;
            for j in (0..classes).filter(|&j| allowed(j)) {
                let p = (row[j].to_f64().unwrap_or(f64::NAN) - log_z).exp();
                let onehot = if j == t { 1.0 } else { 0.0 };
                grad[r * classes + j] = cast((p - onehot) / denominator);
            }
        }
        (loss / denominator, tensor(logits.shape(), grad), counted)
    }

    fn log_softmax(&self, logits: &Self::Tensor) -> Self::Tensor {
        let (_, classes) = as_matrix(logits);
        let mut out = data(logits).to_vec();
        out.par_chunks_mut(classes.max(1))
            .with_min_len(task_rows(classes))
            .for_each(|row| {
                let max = row.iter().copied().fold(T::neg_infinity(), T::max);
                let log_z = max + row.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
                row.iter_mut().for_each(|v| *v = *v - log_z);
            });
        tensor(logits.shape(), out)
    }

    fn sgd_step(&self, param: &mut Self::Tensor, grad: &Self::Tensor, lr: f64) {
        let lr: T = cast(lr);
        zip_apply(data_mut(param), data(grad), |p, g| *p = *p - lr * g);
    }

    fn adam_step(
        &self,
        param: &mut Self::Tensor,
        grad: &Self::Tensor,
        m: &mut Self::Tensor,
        v: &mut Self::Tensor,
        h: &AdamStep,
    ) {
        let (b1, b2) = (h.beta1 as f64, h.beta2 as f64);
        let step = h.step.max(1) as i32;
        let correction1 = 1.0 - b1.powi(step);
        let correction2 = 1.0 - b2.powi(step);
        let (b1t, b2t): (T, T) = (cast(b1), cast(b2));
        let lr: T = cast(h.lr as f64);
        let decay: T = cast(1.0 - h.lr as f64 * h.weight_decay as f64);
        let (c1, c2): (T, T) = (cast(correction1), cast(correction2.sqrt()));
        let eps: T = cast(h.eps as f64);
        let one = T::one();
        let ps = data_mut(param);
        let (gs, ms, vs) = (data(grad), data_mut(m), data_mut(v));
        assert!(
            gs.len() == ps.len() && ms.len() == ps.len() && vs.len() == ps.len(),
            "adam_step: parameter, gradient and moments differ in length"
        );
        ps.par_chunks_mut(TASK_ELEMS)
            .zip(gs.par_chunks(TASK_ELEMS))
            .zip(ms.par_chunks_mut(TASK_ELEMS))
            .zip(vs.par_chunks_mut(TASK_ELEMS))
            .for_each(|(((ps, gs), ms), vs)| {
                for (((p, &g), m), v) in ps.iter_mut().zip(gs).zip(ms).zip(vs) {
                    *m = b1t * *m + (one - b1t) * g;
                    *v = b2t * *v + (one - b2t) * g * g;
                    *p = *p * decay - lr * (*m / c1) / ((*v).sqrt() / c2 + eps);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = (x as f64).exp();
            let approx = super::exp_f32(x) as f64;
            worst = worst.max(((approx - exact) / exact).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst:e}");
        assert!(super::exp_f32(-200.0) < 1e-37);
    }

    /// The integer read from the bits equals the rounded float's, over every input `exp_f32`
    /// gives it (its clamped argument times log₂ e) and beyond, sampled every 97th float.
    #[test]
    fn exp_rounding_reads_the_integer_from_the_bits() {
        let mut checked = 0;
        for bits in (0..u32::MAX).step_by(97) {
            let y = f32::from_bits(bits);
            if y.is_nan() || y.abs() > 1024.0 {
                continue;
            }
            let (rounded, integer) = super::round_for_exp(y);
            assert_eq!(rounded, y.round_ties_even(), "{y}");
            assert_eq!(integer, rounded as i32, "{y}");
            checked += 1;
        }
        assert!(checked > 20_000_000, "{checked}");
    }
}
