//! The operations of `kernels/gemm.cu`: matrix products and the 3×3 convolution with both
//! gradients, all tiled products over one kernel body, in f32 or TF32; long inner dimensions
//! split into slices whose partial products `reduce.cu` sums in order.

use super::device::Arg;
use super::kernels::Kernel;
use super::launch::{int, TILE};
use super::reduce;
use super::tensor::GpuTensor;
use super::GpuBackend;

/// How many slices of K a product with `m × n` outputs should run in: enough blocks to
/// fill a GPU when the output has few tiles and K is long.
fn split_count(m: usize, n: usize, k: usize) -> usize {
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    if tiles >= 128 || k < 1024 {
        return 1;
    }
    (256usize.div_ceil(tiles)).min(k / 256).clamp(1, 64)
}

/// `c (+)= op(a) · op(b)`.
fn gemm(
    gpu: &GpuBackend,
    c: &mut GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    ta: bool,
    tb: bool,
    accumulate: bool,
) {
    let (ar, ac) = (a.shape[0], a.shape[1]);
    let (br, bc) = (b.shape[0], b.shape[1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
    assert_eq!(c.shape, [m, n], "matmul: output shape");
    if k == 0 {
        if !accumulate {
            gpu.device.zero(c.ptr(), c.len() * 4);
        }
        return;
    }
    let splits = split_count(m, n, k);
    let dims = [
        Arg::I32(int(m, "M")),
        Arg::I32(int(n, "N")),
        Arg::I32(int(k, "K")),
        Arg::I32(ta as i32),
        Arg::I32(tb as i32),
    ];
    if splits == 1 {
        let mut args = vec![c.arg(), a.arg(), b.arg()];
        args.extend(dims);
        args.extend([Arg::I32(accumulate as i32), Arg::I32(1), gpu.tf32_arg()]);
        gpu.launch_tiles(Kernel::Gemm, m, n, 1, &args);
    } else {
        let partial = gpu.empty(&[splits, m, n]);
        let mut args = vec![partial.arg(), a.arg(), b.arg()];
        args.extend(dims);
        args.extend([Arg::I32(0), Arg::I32(int(splits, "splits")), gpu.tf32_arg()]);
        gpu.launch_tiles(Kernel::Gemm, m, n, splits, &args);
        reduce::sum_splits(gpu, c, &partial, splits, accumulate);
    }
}

pub(super) fn matmul(
    gpu: &GpuBackend,
    a: &GpuTensor,
    b: &GpuTensor,
    ta: bool,
    tb: bool,
) -> GpuTensor {
    let m = if ta { a.shape[1] } else { a.shape[0] };
    let n = if tb { b.shape[0] } else { b.shape[1] };
    let mut c = gpu.empty(&[m, n]);
    gemm(gpu, &mut c, a, b, ta, tb, false);
    c
}

pub(super) fn matmul_acc(
    gpu: &GpuBackend,
    c: &mut GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    ta: bool,
    tb: bool,
) {
    gemm(gpu, c, a, b, ta, tb, true);
}

pub(super) fn conv3x3(
    gpu: &GpuBackend,
    x: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
) -> GpuTensor {
    let [n, c, h, w] = x.shape[..] else {
        panic!("conv3x3: input {:?} is not [N, C, H, W]", x.shape)
    };
    let out = weight.shape[0];
    assert_eq!(weight.shape, [out, c, 3, 3], "conv3x3: weight shape");
    assert_eq!(bias.len(), out, "conv3x3: bias length");
    int(n * h * w, "pixels");
    let y = gpu.empty(&[n, out, h, w]);
    gpu.launch_tiles(
        Kernel::Conv3x3Forward,
        out,
        n * h * w,
        1,
        &[
            y.arg(),
            x.arg(),
            weight.arg(),
            bias.arg(),
            Arg::I32(int(n, "images")),
            Arg::I32(int(c, "channels")),
            Arg::I32(int(out, "channels")),
            Arg::I32(int(h, "height")),
            Arg::I32(int(w, "width")),
            gpu.tf32_arg(),
        ],
    );
    y
}

pub(super) fn conv3x3_backward(
    gpu: &GpuBackend,
    x: &GpuTensor,
    weight: &GpuTensor,
    dy: &GpuTensor,
    input_grad: bool,
) -> (Option<GpuTensor>, GpuTensor, GpuTensor) {
    let [n, c, h, w] = x.shape[..] else {
        panic!("conv3x3_backward: input {:?} is not [N, C, H, W]", x.shape)
    };
    let out = weight.shape[0];
    assert_eq!(
        weight.shape,
        [out, c, 3, 3],
        "conv3x3_backward: weight shape"
    );
    assert_eq!(dy.shape, [n, out, h, w], "conv3x3_backward: gradient shape");
    int(n * h * w, "pixels");
    let geometry = [
        Arg::I32(int(n, "images")),
        Arg::I32(int(c, "channels")),
        Arg::I32(int(out, "channels")),
        Arg::I32(int(h, "height")),
        Arg::I32(int(w, "width")),
    ];
    let dx = input_grad.then(|| {
        let dx = gpu.empty(&x.shape);
        let mut args = vec![dx.arg(), dy.arg(), weight.arg()];
        args.extend(geometry);
        args.push(gpu.tf32_arg());
        gpu.launch_tiles(Kernel::Conv3x3BackwardData, c, n * h * w, 1, &args);
        dx
    });
    let (m, cols, k) = (out, c * 9, n * h * w);
    let splits = split_count(m, cols, k);
    let mut dw = gpu.empty(&weight.shape);
    if n == 0 {
        gpu.device.zero(dw.ptr(), dw.len() * 4);
    } else if splits == 1 {
        let mut args = vec![dw.arg(), x.arg(), dy.arg()];
        args.extend(geometry);
        args.extend([Arg::I32(1), gpu.tf32_arg()]);
        gpu.launch_tiles(Kernel::Conv3x3BackwardWeight, m, cols, 1, &args);
    } else {
        let partial = gpu.empty(&[splits, m, cols]);
        let mut args = vec![partial.arg(), x.arg(), dy.arg()];
        args.extend(geometry);
        args.extend([Arg::I32(int(splits, "splits")), gpu.tf32_arg()]);
        gpu.launch_tiles(Kernel::Conv3x3BackwardWeight, m, cols, splits, &args);
        reduce::sum_splits(gpu, &mut dw, &partial, splits, false);
    }
    let db = gpu.empty(&[out]);
    gpu.launch_blocks(
        Kernel::ConvBiasBackward,
        out,
        &[
            db.arg(),
            dy.arg(),
            Arg::I32(int(n, "images")),
            Arg::I32(int(out, "channels")),
            Arg::I32(int(h * w, "plane")),
        ],
    );
    (dx, dw, db)
}
