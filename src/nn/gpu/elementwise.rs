//! The operations of `kernels/elementwise.cu`: one thread per element (grid-stride loops) for
//! sums, scaling, fills, the bias, ReLU, interpolation of running statistics, row selection,
//! the LSTM cell, batch normalisation in evaluation and the optimiser steps.

use super::device::Arg;
use super::kernels::Kernel;
use super::launch::int;
use super::tensor::{as_matrix, same_len, GpuTensor};
use super::GpuBackend;
use crate::nn::backend::AdamStep;

pub(super) fn add(gpu: &GpuBackend, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
    assert_eq!(a.shape, b.shape, "add: shapes differ");
    let out = gpu.empty(&a.shape);
    gpu.launch_1d(
        Kernel::Add,
        a.len(),
        &[out.arg(), a.arg(), b.arg(), Arg::I64(a.len() as i64)],
    );
    out
}

pub(super) fn add_assign(gpu: &GpuBackend, a: &mut GpuTensor, b: &GpuTensor) {
    assert_eq!(a.shape, b.shape, "add: shapes differ");
    gpu.launch_1d(
        Kernel::AddAssign,
        a.len(),
        &[a.arg(), b.arg(), Arg::I64(a.len() as i64)],
    );
}

pub(super) fn scale(gpu: &GpuBackend, a: &mut GpuTensor, factor: f64) {
    gpu.launch_1d(
        Kernel::Scale,
        a.len(),
        &[a.arg(), Arg::F32(factor as f32), Arg::I64(a.len() as i64)],
    );
}

pub(super) fn fill(gpu: &GpuBackend, a: &mut GpuTensor, value: f64) {
    gpu.launch_1d(
        Kernel::Fill,
        a.len(),
        &[a.arg(), Arg::F32(value as f32), Arg::I64(a.len() as i64)],
    );
}

pub(super) fn add_bias(gpu: &GpuBackend, x: &mut GpuTensor, bias: &GpuTensor) {
    let (_, cols) = as_matrix(x);
    assert_eq!(bias.len(), cols, "add_bias: bias length");
    gpu.launch_1d(
        Kernel::AddBias,
        x.len(),
        &[
            x.arg(),
            bias.arg(),
            Arg::I64(x.len() as i64),
            Arg::I32(int(cols, "cols")),
        ],
    );
}

pub(super) fn relu(gpu: &GpuBackend, x: &GpuTensor) -> GpuTensor {
    let y = gpu.empty(&x.shape);
    gpu.launch_1d(
        Kernel::Relu,
        x.len(),
        &[y.arg(), x.arg(), Arg::I64(x.len() as i64)],
    );
    y
}

pub(super) fn relu_backward(gpu: &GpuBackend, y: &GpuTensor, dy: &GpuTensor) -> GpuTensor {
    same_len("relu_backward", &[y, dy]);
    let dx = gpu.empty(&y.shape);
    gpu.launch_1d(
        Kernel::ReluBackward,
        y.len(),
        &[dx.arg(), y.arg(), dy.arg(), Arg::I64(y.len() as i64)],
    );
    dx
}

pub(super) fn batch_norm_eval(
    gpu: &GpuBackend,
    x: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    mean: &GpuTensor,
    var: &GpuTensor,
    eps: f64,
) -> GpuTensor {
    let (c, plane) = (x.shape[1], x.shape[2] * x.shape[3]);
    for t in [gamma, beta, mean, var] {
        assert_eq!(t.len(), c, "batch_norm_eval: one statistic per channel");
    }
    let y = gpu.empty(&x.shape);
    gpu.launch_1d(
        Kernel::BatchNormEval,
        x.len(),
        &[
            y.arg(),
            x.arg(),
            gamma.arg(),
            beta.arg(),
            mean.arg(),
            var.arg(),
            Arg::F32(eps as f32),
            Arg::I64(x.len() as i64),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(plane, "plane")),
        ],
    );
    y
}

pub(super) fn lerp_assign(
    gpu: &GpuBackend,
    running: &mut GpuTensor,
    batch: &GpuTensor,
    momentum: f64,
) {
    same_len("lerp_assign", &[running, batch]);
    gpu.launch_1d(
        Kernel::Lerp,
        running.len(),
        &[
            running.arg(),
            batch.arg(),
            Arg::F32(momentum as f32),
            Arg::I64(running.len() as i64),
        ],
    );
}

pub(super) fn lstm_cell(
    gpu: &GpuBackend,
    gates: &GpuTensor,
    c_prev: &GpuTensor,
) -> (GpuTensor, GpuTensor, GpuTensor) {
    let (b, h) = (c_prev.shape[0], c_prev.shape[1]);
    assert_eq!(gates.shape, [b, 4 * h], "lstm_cell: gates shape");
    let (hs, cs, act) = (
        gpu.empty(&[b, h]),
        gpu.empty(&[b, h]),
        gpu.empty(&[b, 4 * h]),
    );
    gpu.launch_1d(
        Kernel::LstmCell,
        b * h,
        &[
            act.arg(),
            hs.arg(),
            cs.arg(),
            gates.arg(),
            c_prev.arg(),
            Arg::I64((b * h) as i64),
            Arg::I32(int(h, "hidden")),
        ],
    );
    (hs, cs, act)
}

pub(super) fn lstm_cell_backward(
    gpu: &GpuBackend,
    activated: &GpuTensor,
    c_prev: &GpuTensor,
    c: &GpuTensor,
    dh: &GpuTensor,
    dc: &GpuTensor,
) -> (GpuTensor, GpuTensor) {
    let (b, h) = (c.shape[0], c.shape[1]);
    same_len("lstm_cell_backward", &[c_prev, c, dh, dc]);
    assert_eq!(
        activated.shape,
        [b, 4 * h],
        "lstm_cell_backward: gates shape"
    );
    let (dgates, dc_prev) = (gpu.empty(&[b, 4 * h]), gpu.empty(&[b, h]));
    gpu.launch_1d(
        Kernel::LstmCellBackward,
        b * h,
        &[
            dgates.arg(),
            dc_prev.arg(),
            activated.arg(),
            c_prev.arg(),
            c.arg(),
            dh.arg(),
            dc.arg(),
            Arg::I64((b * h) as i64),
            Arg::I32(int(h, "hidden")),
        ],
    );
    (dgates, dc_prev)
}

pub(super) fn select_rows(
    gpu: &GpuBackend,
    keep: &[bool],
    new: &GpuTensor,
    old: &GpuTensor,
) -> GpuTensor {
    let (rows, width) = as_matrix(new);
    assert_eq!(keep.len(), rows, "select_rows: one flag per row");
    assert_eq!(new.shape, old.shape, "select_rows: shapes differ");
    let flags: Vec<u8> = keep.iter().map(|&k| k as u8).collect();
    let flags = gpu.upload(&flags);
    let out = gpu.empty(&new.shape);
    gpu.launch_1d(
        Kernel::SelectRows,
        out.len(),
        &[
            out.arg(),
            flags.arg(),
            new.arg(),
            old.arg(),
            Arg::I64(out.len() as i64),
            Arg::I32(int(width, "width")),
        ],
    );
    out
}

pub(super) fn sgd_step(gpu: &GpuBackend, param: &mut GpuTensor, grad: &GpuTensor, lr: f64) {
    same_len("sgd_step", &[param, grad]);
    gpu.launch_1d(
        Kernel::SgdStep,
        param.len(),
        &[
            param.arg(),
            grad.arg(),
            Arg::F32(lr as f32),
            Arg::I64(param.len() as i64),
        ],
    );
}

pub(super) fn adam_step(
    gpu: &GpuBackend,
    param: &mut GpuTensor,
    grad: &GpuTensor,
    m: &mut GpuTensor,
    v: &mut GpuTensor,
    h: &AdamStep,
) {
    same_len("adam_step", &[param, grad, m, v]);
    // The scalars exactly as the CPU backend derives them.
    let (b1, b2) = (h.beta1 as f64, h.beta2 as f64);
    let step = h.step.max(1) as i32;
    let correction1 = 1.0 - b1.powi(step);
    let correction2 = 1.0 - b2.powi(step);
    let decay = 1.0 - h.lr as f64 * h.weight_decay as f64;
    gpu.launch_1d(
        Kernel::AdamStep,
        param.len(),
        &[
            param.arg(),
            grad.arg(),
            m.arg(),
            v.arg(),
            Arg::F32(b1 as f32),
            Arg::F32(b2 as f32),
            Arg::F32(h.lr),
            Arg::F32(decay as f32),
            Arg::F32(correction1 as f32),
            Arg::F32(correction2.sqrt() as f32),
            Arg::F32(h.eps),
            Arg::I64(param.len() as i64),
        ],
    );
}
