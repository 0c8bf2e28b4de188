//! The operations of `kernels/loss.cu`: softmax cross-entropy (per-row losses in f64, summed
//! on the host) and log-softmax.

use super::device::Arg;
use super::kernels::Kernel;
use super::launch::int;
use super::tensor::{as_matrix, GpuTensor, Upload};
use super::GpuBackend;

pub(super) fn cross_entropy(
    gpu: &GpuBackend,
    logits: &GpuTensor,
    targets: &[u32],
    ignore: u32,
    mask: Option<&[bool]>,
) -> (f64, GpuTensor, usize) {
    let (rows, classes) = as_matrix(logits);
    assert_eq!(targets.len(), rows, "cross_entropy: one target per row");
    if let Some(mask) = mask {
        assert_eq!(mask.len(), rows * classes, "cross_entropy: mask shape");
    }
    if let Some(&bad) = targets
        .iter()
        .find(|&&t| t != ignore && t as usize >= classes)
    {
        panic!("cross_entropy: target {bad} of {classes} classes");
    }
    let counted = targets.iter().filter(|&&t| t != ignore).count();
    let denominator = counted.max(1) as f64;
    let grad = gpu.empty(&logits.shape);
    let losses = gpu.empty(&[2 * rows]);
    let target_ids = gpu.upload(targets);
    let flags = mask.map(|m| {
        let bytes: Vec<u8> = m.iter().map(|&b| b as u8).collect();
        gpu.upload(&bytes)
    });
    gpu.launch_1d(
        Kernel::CrossEntropy,
        rows,
        &[
            losses.arg(),
            grad.arg(),
            logits.arg(),
            target_ids.arg(),
            flags.as_ref().map_or(Arg::Ptr(0), Upload::arg),
            Arg::U32(ignore),
            Arg::I32(int(rows, "rows")),
            Arg::I32(int(classes, "classes")),
            Arg::F64(denominator),
        ],
    );
    let mut values = vec![0f64; rows];
    gpu.download(losses.ptr(), &mut values);
    (values.iter().sum::<f64>() / denominator, grad, counted)
}

pub(super) fn log_softmax(gpu: &GpuBackend, logits: &GpuTensor) -> GpuTensor {
    let (rows, classes) = as_matrix(logits);
    let out = gpu.empty(&logits.shape);
    gpu.launch_1d(
        Kernel::LogSoftmax,
        rows,
        &[
            out.arg(),
            logits.arg(),
            Arg::I32(int(rows, "rows")),
            Arg::I32(int(classes, "classes")),
        ],
    );
    out
}
