//! The operations of `kernels/reduce.cu`: column sums, the sum of squares (block partials in
//! f64, finished on the host), batch normalisation's statistics and gradient sums (with their
//! per-element passes of `elementwise.cu`), and the sum of split-K partial products.

use super::device::Arg;
use super::kernels::Kernel;
use super::launch::{int, THREADS};
use super::tensor::{as_matrix, same_len, GpuTensor};
use super::GpuBackend;
use crate::nn::backend::BatchNormSaved;

/// `out [m, n]` (+)= the sum of a partial buffer `[splits, m, n]`.
pub(super) fn sum_splits(
    gpu: &GpuBackend,
    out: &mut GpuTensor,
    partial: &GpuTensor,
    splits: usize,
    accumulate: bool,
) {
    let n = out.len();
    gpu.launch_1d(
        Kernel::SumSplits,
        n,
        &[
            out.arg(),
            partial.arg(),
            Arg::I32(int(splits, "splits")),
            Arg::I64(n as i64),
            Arg::I32(accumulate as i32),
        ],
    );
}

pub(super) fn sum_rows(gpu: &GpuBackend, x: &GpuTensor) -> GpuTensor {
    let (rows, cols) = as_matrix(x);
    let out = gpu.empty(&[cols]);
    gpu.launch_1d(
        Kernel::SumRows,
        cols,
        &[
            out.arg(),
            x.arg(),
            Arg::I32(int(rows, "rows")),
            Arg::I32(int(cols, "cols")),
        ],
    );
    out
}

pub(super) fn sum_squares(gpu: &GpuBackend, x: &GpuTensor) -> f64 {
    if x.len() == 0 {
        return 0.0;
    }
    let blocks = (x.len().div_ceil(THREADS as usize) as u64)
        .min(gpu.device.max_blocks().min(1024) as u64) as usize;
    // Doubles, in a buffer of twice as many f32 slots.
    let partial = gpu.empty(&[2 * blocks]);
    gpu.launch_blocks(
        Kernel::SumSquares,
        blocks,
        &[partial.arg(), x.arg(), Arg::I64(x.len() as i64)],
    );
    let mut values = vec![0f64; blocks];
    gpu.download(partial.ptr(), &mut values);
    values.iter().sum()
}

pub(super) fn batch_norm_train(
    gpu: &GpuBackend,
    x: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    eps: f64,
) -> (GpuTensor, BatchNormSaved<GpuTensor>, GpuTensor, GpuTensor) {
    let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
    assert!(
        gamma.len() == c && beta.len() == c,
        "batch_norm: one γ and β per channel"
    );
    let (mean, inv_std, var) = (gpu.empty(&[c]), gpu.empty(&[c]), gpu.empty(&[c]));
    gpu.launch_blocks(
        Kernel::BatchNormStats,
        c,
        &[
            mean.arg(),
            inv_std.arg(),
            var.arg(),
            x.arg(),
            Arg::I32(int(n, "images")),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(plane, "plane")),
            Arg::F64(eps),
        ],
    );
    let y = gpu.empty(&x.shape);
    gpu.launch_1d(
        Kernel::BatchNormApply,
        x.len(),
        &[
            y.arg(),
            x.arg(),
            gamma.arg(),
            beta.arg(),
            mean.arg(),
            inv_std.arg(),
            Arg::I64(x.len() as i64),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(plane, "plane")),
        ],
    );
    (
        y,
        BatchNormSaved {
            mean: mean.clone(),
            inv_std,
        },
        mean,
        var,
    )
}

pub(super) fn batch_norm_backward(
    gpu: &GpuBackend,
    x: &GpuTensor,
    gamma: &GpuTensor,
    saved: &BatchNormSaved<GpuTensor>,
    dy: &GpuTensor,
) -> (GpuTensor, GpuTensor, GpuTensor) {
    let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
    same_len("batch_norm_backward", &[x, dy]);
    assert_eq!(gamma.len(), c, "batch_norm_backward: one γ per channel");
    let (sum_dy, sum_dy_xhat) = (gpu.empty(&[c]), gpu.empty(&[c]));
    gpu.launch_blocks(
        Kernel::BatchNormSums,
        c,
        &[
            sum_dy.arg(),
            sum_dy_xhat.arg(),
            x.arg(),
            dy.arg(),
            saved.mean.arg(),
            saved.inv_std.arg(),
            Arg::I32(int(n, "images")),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(plane, "plane")),
        ],
    );
    let dx = gpu.empty(&x.shape);
    gpu.launch_1d(
        Kernel::BatchNormBackward,
        x.len(),
        &[
            dx.arg(),
            x.arg(),
            dy.arg(),
            gamma.arg(),
            saved.mean.arg(),
            saved.inv_std.arg(),
            sum_dy.arg(),
            sum_dy_xhat.arg(),
            Arg::F32((n * plane) as f32),
            Arg::I64(x.len() as i64),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(plane, "plane")),
        ],
    );
    (dx, sum_dy_xhat, sum_dy)
}
