//! The GPU backend: the [`Backend`] operations as launches of the hand-written kernels in
//! `kernels/*.cu`, on a [`Device`]: a CUDA GPU ([`cuda::CudaDevice`], feature `cuda`) or the CPU
//! emulation of one ([`emulator::EmulatedDevice`], for tests).
//!
//! Tensors are f32 device buffers with a shape; cloning one copies it on the device. Index
//! arguments (rows, targets, masks, sparse matrices) arrive on the host and are uploaded per
//! call; scatter-adds and the transposed sparse sum are turned into gathers over an inverse
//! index built on the host, so that no kernel needs atomics and every result is deterministic.
//! Reductions to a scalar (`sum_squares`, the loss) finish on the host in f64.

pub(crate) mod device;
pub mod emulator;
pub mod kernels;

#[cfg(feature = "cuda")]
pub mod cuda;

use std::fmt;
use std::sync::Arc;

pub(crate) use self::device::{Arg, Device, LaunchShape};
use self::kernels::Kernel;
use super::backend::{AdamStep, Backend, BatchNormSaved, SparseRows};

/// Threads per block of the kernels (`KAREL_THREADS` in `kernels/common.cuh`).
const THREADS: u32 = 256;
/// Output tile of the matrix-product kernels (`TILE_M`, `TILE_N`).
const TILE: usize = 64;

/// A device buffer of `len` f32 values, freed on drop.
struct Buffer {
    ptr: u64,
    len: usize,
    device: Arc<dyn Device>,
}

impl Buffer {
    fn new(device: &Arc<dyn Device>, len: usize) -> Buffer {
        Buffer {
            ptr: device.alloc(len * 4),
            len,
            device: device.clone(),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.device.free(self.ptr);
    }
}

/// A tensor on the device.
pub struct GpuTensor {
    buffer: Buffer,
    shape: Vec<usize>,
}

impl GpuTensor {
    fn ptr(&self) -> u64 {
        self.buffer.ptr
    }

    fn len(&self) -> usize {
        self.buffer.len
    }

    fn arg(&self) -> Arg {
        Arg::Ptr(self.ptr())
    }
}

impl Clone for GpuTensor {
    fn clone(&self) -> GpuTensor {
        let buffer = Buffer::new(&self.buffer.device, self.len());
        self.buffer
            .device
            .copy(buffer.ptr, self.ptr(), self.len() * 4);
        GpuTensor {
            buffer,
            shape: self.shape.clone(),
        }
    }
}

impl fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GpuTensor({:?} on {})",
            self.shape,
            self.buffer.device.kind()
        )
    }
}

/// Row indices on the device (`u32`), as [`Backend::max_groups`] computes them.
pub struct GpuIndex(Buffer);

impl Clone for GpuIndex {
    fn clone(&self) -> GpuIndex {
        let buffer = Buffer::new(&self.0.device, self.0.len);
        self.0.device.copy(buffer.ptr, self.0.ptr, self.0.len * 4);
        GpuIndex(buffer)
    }
}

impl fmt::Debug for GpuIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GpuIndex({} on {})", self.0.len, self.0.device.kind())
    }
}

/// Raw values uploaded for one call (indices, masks): freed when dropped.
struct Upload(Buffer);

impl Upload {
    fn arg(&self) -> Arg {
        Arg::Ptr(self.0.ptr)
    }
}

/// Plain-old-data values (no padding, every bit pattern valid) viewed as their bytes.
fn bytes_of<T: bytemuck::Pod>(values: &[T]) -> &[u8] {
    bytemuck::cast_slice(values)
}

fn int(n: usize, what: &str) -> i32 {
    i32::try_from(n).unwrap_or_else(|_| panic!("{what} = {n} exceeds the kernels' 32-bit range"))
}

/// Checks that tensors a kernel reads element by element alongside each other have one length
/// (the kernels would read out of bounds where the CPU backend panics).
fn same_len(what: &str, tensors: &[&GpuTensor]) {
    if let Some(first) = tensors.first() {
        for t in tensors {
            assert_eq!(
                t.len(),
                first.len(),
                "{what}: shapes {:?} and {:?} differ",
                t.shape,
                first.shape
            );
        }
    }
}

/// Checks a compressed-sparse-row matrix against the rows of the dense side.
fn check_sparse(what: &str, offsets: &[u32], cols: &[u32], x_rows: usize) {
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_none_or(|&l| l as usize == cols.len()),
        "{what}: malformed sparse rows"
    );
    if let Some(&bad) = cols.iter().find(|&&c| c as usize >= x_rows) {
        panic!("{what}: column {bad} of {x_rows}");
    }
}

/// Rows and columns of a tensor seen as a matrix `[shape[0], rest]` (as the CPU backend).
fn as_matrix(t: &GpuTensor) -> (usize, usize) {
    let rows = t.shape.first().copied().unwrap_or(1);
    (rows, t.len().checked_div(rows).unwrap_or(0))
}

/// The GPU backend.
#[derive(Clone)]
pub struct GpuBackend {
    device: Arc<dyn Device>,
    /// Matrix products and convolutions on the tensor cores in TF32 (f32 accumulation) rather
    /// than in f32 FMA.
    tf32: bool,
}

impl fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GpuBackend({}{})",
            self.device.describe(),
            if self.tf32 { ", TF32" } else { "" }
        )
    }
}

impl GpuBackend {
    /// The backend on a device. Devices take raw addresses, so only the crate builds one:
    /// outside it, a backend comes from [`GpuBackend::cuda`] or [`GpuBackend::emulated`].
    pub(crate) fn new(device: Arc<dyn Device>) -> GpuBackend {
        GpuBackend {
            device,
            tf32: false,
        }
    }

    /// The same backend with matrix products and convolutions in TF32 on the tensor cores
    /// (`true`, compute capability 8.0 and later: about 3 significant digits per product,
    /// accumulated in f32) or in f32 (`false`, the default and the exact path).
    pub fn with_tf32(mut self, tf32: bool) -> GpuBackend {
        self.tf32 = tf32;
        self
    }

    /// The backend on the CPU emulation of a GPU (tests).
    pub fn emulated() -> Result<GpuBackend, String> {
        Ok(GpuBackend::new(emulator::EmulatedDevice::new()?))
    }

    /// The emulated GPU running blocks and threads in `order` (see [`emulator::ThreadOrder`]).
    pub fn emulated_in_order(order: emulator::ThreadOrder) -> Result<GpuBackend, String> {
        Ok(GpuBackend::new(emulator::EmulatedDevice::with_order(
            order,
        )?))
    }

    /// The backend on CUDA device `ordinal`.
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize) -> Result<GpuBackend, String> {
        Ok(GpuBackend::new(cuda::CudaDevice::new(ordinal)?))
    }

    /// Whether a CUDA device can be opened (false without the `cuda` feature).
    pub fn cuda_present() -> bool {
        #[cfg(feature = "cuda")]
        {
            cuda::CudaDevice::new(0).is_ok()
        }
        #[cfg(not(feature = "cuda"))]
        {
            false
        }
    }

    /// The device in words (kind, name, compute capability).
    pub fn describe_device(&self) -> String {
        format!("{} {}", self.device.kind(), self.device.describe())
    }

    fn tf32_arg(&self) -> Arg {
        Arg::I32(self.tf32 as i32)
    }

    fn empty(&self, shape: &[usize]) -> GpuTensor {
        GpuTensor {
            buffer: Buffer::new(&self.device, shape.iter().product()),
            shape: shape.to_vec(),
        }
    }

    fn upload<T: bytemuck::Pod>(&self, values: &[T]) -> Upload {
        let bytes = bytes_of(values);
        let buffer = Buffer {
            ptr: self.device.alloc(bytes.len()),
            len: 0,
            device: self.device.clone(),
        };
        self.device.upload(buffer.ptr, bytes);
        Upload(buffer)
    }

    /// A grid-stride launch over `n` elements.
    fn launch_1d(&self, kernel: Kernel, n: usize, args: &[Arg]) {
        if n == 0 {
            return;
        }
        let blocks = (n.div_ceil(THREADS as usize) as u64).min(self.device.max_blocks() as u64);
        self.device.launch(
            kernel,
            LaunchShape {
                grid: [blocks as u32, 1, 1],
                block: [THREADS, 1, 1],
            },
            args,
        );
    }

    /// One block per item (channel reductions).
    fn launch_per_block(&self, kernel: Kernel, blocks: usize, args: &[Arg]) {
        if blocks == 0 {
            return;
        }
        self.device.launch(
            kernel,
            LaunchShape {
                grid: [int(blocks, "blocks") as u32, 1, 1],
                block: [THREADS, 1, 1],
            },
            args,
        );
    }

    /// A launch of a tiled matrix-product kernel over an `m × n` output, `splits` along K.
    fn launch_tiles(&self, kernel: Kernel, m: usize, n: usize, splits: usize, args: &[Arg]) {
        if m == 0 || n == 0 {
            return;
        }
        let (tiles_n, tiles_m) = (n.div_ceil(TILE), m.div_ceil(TILE));
        assert!(tiles_m <= 65_535, "{kernel}: {m} output rows");
        self.device.launch(
            kernel,
            LaunchShape {
                grid: [int(tiles_n, "tiles") as u32, tiles_m as u32, splits as u32],
                block: [THREADS, 1, 1],
            },
            args,
        );
    }

    /// How many slices of K a product with `m × n` outputs should run in: enough blocks to
    /// fill a GPU when the output has few tiles and K is long.
    fn splits(m: usize, n: usize, k: usize) -> usize {
        let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
        if tiles >= 128 || k < 1024 {
            return 1;
        }
        (256usize.div_ceil(tiles)).min(k / 256).clamp(1, 64)
    }

    /// `c (+)= op(a) · op(b)`.
    fn gemm(
        &self,
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
                self.device.zero(c.ptr(), c.len() * 4);
            }
            return;
        }
        let splits = GpuBackend::splits(m, n, k);
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
            args.extend([Arg::I32(accumulate as i32), Arg::I32(1), self.tf32_arg()]);
            self.launch_tiles(Kernel::Gemm, m, n, 1, &args);
        } else {
            let partial = self.empty(&[splits, m, n]);
            let mut args = vec![partial.arg(), a.arg(), b.arg()];
            args.extend(dims);
            args.extend([
                Arg::I32(0),
                Arg::I32(int(splits, "splits")),
                self.tf32_arg(),
            ]);
            self.launch_tiles(Kernel::Gemm, m, n, splits, &args);
            self.sum_splits(c, &partial, splits, accumulate);
        }
    }

    /// `out [m, n]` (+)= the sum of a partial buffer `[splits, m, n]`.
    fn sum_splits(
        &self,
        out: &mut GpuTensor,
        partial: &GpuTensor,
        splits: usize,
        accumulate: bool,
    ) {
        let n = out.len();
        self.launch_1d(
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

    /// `out` = the sparse rows `offsets/cols/weights` times `x` (`weights` None: all 1).
    fn sparse_product(
        &self,
        offsets: &[u32],
        cols: &[u32],
        weights: Option<&[f32]>,
        x: &GpuTensor,
        out_shape: &[usize],
    ) -> GpuTensor {
        let out = self.empty(out_shape);
        let (_, width) = as_matrix(x);
        let width = if x.len() == 0 {
            out.len().checked_div(out_shape[0]).unwrap_or(0)
        } else {
            width
        };
        let (offsets, cols) = (self.upload(offsets), self.upload(cols));
        let weights = weights.map(|w| self.upload(w));
        self.launch_1d(
            Kernel::SparseRows,
            out.len(),
            &[
                out.arg(),
                x.arg(),
                offsets.arg(),
                cols.arg(),
                weights.as_ref().map_or(Arg::Ptr(0), Upload::arg),
                Arg::I64(out.len() as i64),
                Arg::I32(int(width, "width")),
            ],
        );
        out
    }
}

/// The rows grouped by target: CSR offsets over `targets` rows and the source indices, each
/// row's sources in increasing order.
fn inverse_index(rows: &[u32], targets: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; targets + 1];
    for &r in rows {
        assert!((r as usize) < targets, "row {r} of {targets}");
        offsets[r as usize + 1] += 1;
    }
    for t in 0..targets {
        offsets[t + 1] += offsets[t];
    }
    let mut cursor = offsets.clone();
    let mut sources = vec![0u32; rows.len()];
    for (i, &r) in rows.iter().enumerate() {
        sources[cursor[r as usize] as usize] = i as u32;
        cursor[r as usize] += 1;
    }
    (offsets, sources)
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Index = GpuIndex;

    fn name(&self) -> &'static str {
        self.device.kind()
    }

    fn synchronize(&self) {
        self.device.synchronize();
    }

    fn zeros(&self, shape: &[usize]) -> GpuTensor {
        let t = self.empty(shape);
        self.device.zero(t.ptr(), t.len() * 4);
        t
    }

    fn tensor_f32(&self, shape: &[usize], data: &[f32]) -> GpuTensor {
        let t = self.empty(shape);
        assert_eq!(
            t.len(),
            data.len(),
            "tensor_f32: {} values for {shape:?}",
            data.len()
        );
        self.device.upload(t.ptr(), bytes_of(data));
        t
    }

    fn to_f32(&self, t: &GpuTensor) -> Vec<f32> {
        let mut out = vec![0f32; t.len()];
        // SAFETY: f32 values viewed as bytes, written in full by the download.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, out.len() * 4) };
        self.device.download(t.ptr(), bytes);
        out
    }

    fn tensor_f64(&self, shape: &[usize], data: &[f64]) -> GpuTensor {
        let values: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        self.tensor_f32(shape, &values)
    }

    fn to_f64(&self, t: &GpuTensor) -> Vec<f64> {
        self.to_f32(t).into_iter().map(f64::from).collect()
    }

    fn shape(&self, t: &GpuTensor) -> Vec<usize> {
        t.shape.clone()
    }

    fn reshape(&self, t: &GpuTensor, shape: &[usize]) -> GpuTensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            t.len(),
            "reshape {:?} to {shape:?}",
            t.shape
        );
        let mut out = t.clone();
        out.shape = shape.to_vec();
        out
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor, ta: bool, tb: bool) -> GpuTensor {
        let m = if ta { a.shape[1] } else { a.shape[0] };
        let n = if tb { b.shape[0] } else { b.shape[1] };
        let mut c = self.empty(&[m, n]);
        self.gemm(&mut c, a, b, ta, tb, false);
        c
    }

    fn matmul_acc(&self, c: &mut GpuTensor, a: &GpuTensor, b: &GpuTensor, ta: bool, tb: bool) {
        self.gemm(c, a, b, ta, tb, true);
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        assert_eq!(a.shape, b.shape, "add: shapes differ");
        let out = self.empty(&a.shape);
        self.launch_1d(
            Kernel::Add,
            a.len(),
            &[out.arg(), a.arg(), b.arg(), Arg::I64(a.len() as i64)],
        );
        out
    }

    fn add_assign(&self, a: &mut GpuTensor, b: &GpuTensor) {
        assert_eq!(a.shape, b.shape, "add: shapes differ");
        self.launch_1d(
            Kernel::AddAssign,
            a.len(),
            &[a.arg(), b.arg(), Arg::I64(a.len() as i64)],
        );
    }

    fn scale(&self, a: &mut GpuTensor, factor: f64) {
        self.launch_1d(
            Kernel::Scale,
            a.len(),
            &[a.arg(), Arg::F32(factor as f32), Arg::I64(a.len() as i64)],
        );
    }

    fn fill(&self, a: &mut GpuTensor, value: f64) {
        self.launch_1d(
            Kernel::Fill,
            a.len(),
            &[a.arg(), Arg::F32(value as f32), Arg::I64(a.len() as i64)],
        );
    }

    fn add_bias(&self, x: &mut GpuTensor, bias: &GpuTensor) {
        let (_, cols) = as_matrix(x);
        assert_eq!(bias.len(), cols, "add_bias: bias length");
        self.launch_1d(
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

    fn sum_rows(&self, x: &GpuTensor) -> GpuTensor {
        let (rows, cols) = as_matrix(x);
        let out = self.empty(&[cols]);
        self.launch_1d(
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

    fn relu(&self, x: &GpuTensor) -> GpuTensor {
        let y = self.empty(&x.shape);
        self.launch_1d(
            Kernel::Relu,
            x.len(),
            &[y.arg(), x.arg(), Arg::I64(x.len() as i64)],
        );
        y
    }

    fn relu_backward(&self, y: &GpuTensor, dy: &GpuTensor) -> GpuTensor {
        same_len("relu_backward", &[y, dy]);
        let dx = self.empty(&y.shape);
        self.launch_1d(
            Kernel::ReluBackward,
            y.len(),
            &[dx.arg(), y.arg(), dy.arg(), Arg::I64(y.len() as i64)],
        );
        dx
    }

    fn sum_squares(&self, x: &GpuTensor) -> f64 {
        if x.len() == 0 {
            return 0.0;
        }
        let blocks = (x.len().div_ceil(THREADS as usize) as u64)
            .min(self.device.max_blocks().min(1024) as u64) as usize;
        // Doubles, in a buffer of twice as many f32 slots.
        let partial = self.empty(&[2 * blocks]);
        self.device.launch(
            Kernel::SumSquares,
            LaunchShape {
                grid: [blocks as u32, 1, 1],
                block: [THREADS, 1, 1],
            },
            &[partial.arg(), x.arg(), Arg::I64(x.len() as i64)],
        );
        let mut values = vec![0f64; blocks];
        // SAFETY: f64 values viewed as bytes, written in full by the download.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, blocks * 8) };
        self.device.download(partial.ptr(), bytes);
        values.iter().sum()
    }

    fn conv3x3(&self, x: &GpuTensor, weight: &GpuTensor, bias: &GpuTensor) -> GpuTensor {
        let [n, c, h, w] = x.shape[..] else {
            panic!("conv3x3: input {:?} is not [N, C, H, W]", x.shape)
        };
        let out = weight.shape[0];
        assert_eq!(weight.shape, [out, c, 3, 3], "conv3x3: weight shape");
        assert_eq!(bias.len(), out, "conv3x3: bias length");
        int(n * h * w, "pixels");
        let y = self.empty(&[n, out, h, w]);
        self.launch_tiles(
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
                self.tf32_arg(),
            ],
        );
        y
    }

    fn conv3x3_backward(
        &self,
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
            let dx = self.empty(&x.shape);
            let mut args = vec![dx.arg(), dy.arg(), weight.arg()];
            args.extend(geometry);
            args.push(self.tf32_arg());
            self.launch_tiles(Kernel::Conv3x3BackwardData, c, n * h * w, 1, &args);
            dx
        });
        let (m, cols, k) = (out, c * 9, n * h * w);
        let splits = GpuBackend::splits(m, cols, k);
        let mut dw = self.empty(&weight.shape);
        if n == 0 {
            self.device.zero(dw.ptr(), dw.len() * 4);
        } else if splits == 1 {
            let mut args = vec![dw.arg(), x.arg(), dy.arg()];
            args.extend(geometry);
            args.extend([Arg::I32(1), self.tf32_arg()]);
            self.launch_tiles(Kernel::Conv3x3BackwardWeight, m, cols, 1, &args);
        } else {
            let partial = self.empty(&[splits, m, cols]);
            let mut args = vec![partial.arg(), x.arg(), dy.arg()];
            args.extend(geometry);
            args.extend([Arg::I32(int(splits, "splits")), self.tf32_arg()]);
            self.launch_tiles(Kernel::Conv3x3BackwardWeight, m, cols, splits, &args);
            self.sum_splits(&mut dw, &partial, splits, false);
        }
        let db = self.empty(&[out]);
        self.launch_per_block(
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

    fn batch_norm_train(
        &self,
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
        let (mean, inv_std, var) = (self.empty(&[c]), self.empty(&[c]), self.empty(&[c]));
        self.launch_per_block(
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
        let y = self.empty(&x.shape);
        self.launch_1d(
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

    fn batch_norm_eval(
        &self,
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
        let y = self.empty(&x.shape);
        self.launch_1d(
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

    fn batch_norm_backward(
        &self,
        x: &GpuTensor,
        gamma: &GpuTensor,
        saved: &BatchNormSaved<GpuTensor>,
        dy: &GpuTensor,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
        same_len("batch_norm_backward", &[x, dy]);
        assert_eq!(gamma.len(), c, "batch_norm_backward: one γ per channel");
        let (sum_dy, sum_dy_xhat) = (self.empty(&[c]), self.empty(&[c]));
        self.launch_per_block(
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
        let dx = self.empty(&x.shape);
        self.launch_1d(
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

    fn lerp_assign(&self, running: &mut GpuTensor, batch: &GpuTensor, momentum: f64) {
        same_len("lerp_assign", &[running, batch]);
        self.launch_1d(
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

    fn gather_rows(&self, table: &GpuTensor, rows: &[u32]) -> GpuTensor {
        let (n, width) = as_matrix(table);
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
            panic!("gather_rows: row {bad} of {n}");
        }
        let mut shape = table.shape.clone();
        shape[0] = rows.len();
        let out = self.empty(&shape);
        let indices = self.upload(rows);
        self.launch_1d(
            Kernel::GatherRows,
            out.len(),
            &[
                out.arg(),
                table.arg(),
                indices.arg(),
                Arg::I64(out.len() as i64),
                Arg::I32(int(width, "width")),
            ],
        );
        out
    }

    fn scatter_add_rows(&self, dy: &GpuTensor, rows: &[u32], table_rows: usize) -> GpuTensor {
        assert_eq!(
            dy.shape[0],
            rows.len(),
            "scatter_add_rows: one row index per row"
        );
        let mut shape = dy.shape.clone();
        shape[0] = table_rows;
        let (offsets, sources) = inverse_index(rows, table_rows);
        self.sparse_product(&offsets, &sources, None, dy, &shape)
    }

    fn concat(&self, parts: &[&GpuTensor], axis: usize) -> GpuTensor {
        let first = parts.first().expect("concat: at least one part");
        let mut shape = first.shape.clone();
        shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
        for p in parts {
            let (mut a, mut b) = (p.shape.clone(), first.shape.clone());
            a[axis] = 0;
            b[axis] = 0;
            assert_eq!(a, b, "concat: shapes disagree off axis {axis}");
        }
        let out = self.empty(&shape);
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let mut offset = 0;
        for p in parts {
            let cols = p.shape[axis] * inner;
            self.launch_1d(
                Kernel::StridedCopy,
                outer * cols,
                &[
                    out.arg(),
                    Arg::I64((shape[axis] * inner) as i64),
                    Arg::I64((offset * inner) as i64),
                    p.arg(),
                    Arg::I64(cols as i64),
                    Arg::I64(0),
                    Arg::I64(outer as i64),
                    Arg::I64(cols as i64),
                ],
            );
            offset += p.shape[axis];
        }
        out
    }

    fn slice(&self, x: &GpuTensor, axis: usize, start: usize, len: usize) -> GpuTensor {
        assert!(start + len <= x.shape[axis], "slice out of range");
        let mut shape = x.shape.clone();
        shape[axis] = len;
        let out = self.empty(&shape);
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        self.launch_1d(
            Kernel::StridedCopy,
            out.len(),
            &[
                out.arg(),
                Arg::I64((len * inner) as i64),
                Arg::I64(0),
                x.arg(),
                Arg::I64((x.shape[axis] * inner) as i64),
                Arg::I64((start * inner) as i64),
                Arg::I64(outer as i64),
                Arg::I64((len * inner) as i64),
            ],
        );
        out
    }

    fn lstm_cell(
        &self,
        gates: &GpuTensor,
        c_prev: &GpuTensor,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        let (b, h) = (c_prev.shape[0], c_prev.shape[1]);
        assert_eq!(gates.shape, [b, 4 * h], "lstm_cell: gates shape");
        let (hs, cs, act) = (
            self.empty(&[b, h]),
            self.empty(&[b, h]),
            self.empty(&[b, 4 * h]),
        );
        self.launch_1d(
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

    fn lstm_cell_backward(
        &self,
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
        let (dgates, dc_prev) = (self.empty(&[b, 4 * h]), self.empty(&[b, h]));
        self.launch_1d(
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

    fn select_rows(&self, keep: &[bool], new: &GpuTensor, old: &GpuTensor) -> GpuTensor {
        let (rows, width) = as_matrix(new);
        assert_eq!(keep.len(), rows, "select_rows: one flag per row");
        assert_eq!(new.shape, old.shape, "select_rows: shapes differ");
        let flags: Vec<u8> = keep.iter().map(|&k| k as u8).collect();
        let flags = self.upload(&flags);
        let out = self.empty(&new.shape);
        self.launch_1d(
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

    fn max_groups(&self, x: &GpuTensor, size: usize) -> (GpuTensor, GpuIndex) {
        let (rows, width) = as_matrix(x);
        assert!(
            size > 0 && rows % size == 0,
            "max_groups: rows not a multiple of the group size"
        );
        let mut shape = x.shape.clone();
        shape[0] = rows / size;
        let out = self.empty(&shape);
        let argmax = Buffer::new(&self.device, out.len());
        self.launch_1d(
            Kernel::MaxGroups,
            out.len(),
            &[
                out.arg(),
                Arg::Ptr(argmax.ptr),
                x.arg(),
                Arg::I64(out.len() as i64),
                Arg::I32(int(size, "group size")),
                Arg::I32(int(width, "width")),
            ],
        );
        (out, GpuIndex(argmax))
    }

    fn index_to_vec(&self, index: &GpuIndex) -> Vec<u32> {
        let mut values = vec![0u32; index.0.len];
        // SAFETY: u32 values viewed as bytes, written in full by the download.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, values.len() * 4)
        };
        self.device.download(index.0.ptr, bytes);
        values
    }

    fn max_groups_backward(&self, dy: &GpuTensor, argmax: &GpuIndex, rows: usize) -> GpuTensor {
        let (_, width) = as_matrix(dy);
        assert_eq!(
            argmax.0.len,
            dy.len(),
            "max_groups_backward: one winner per element"
        );
        let mut shape = dy.shape.clone();
        shape[0] = rows;
        let dx = self.zeros(&shape);
        self.launch_1d(
            Kernel::MaxGroupsBackward,
            dy.len(),
            &[
                dx.arg(),
                dy.arg(),
                Arg::Ptr(argmax.0.ptr),
                Arg::I64(dy.len() as i64),
                Arg::I32(int(width, "width")),
            ],
        );
        dx
    }

    fn sparse_rows(&self, s: &SparseRows, x: &GpuTensor) -> GpuTensor {
        check_sparse("sparse_rows", &s.offsets, &s.cols, x.shape[0]);
        assert_eq!(
            s.weights.len(),
            s.cols.len(),
            "sparse_rows: one weight per entry"
        );
        let mut shape = x.shape.clone();
        shape[0] = s.rows();
        self.sparse_product(&s.offsets, &s.cols, Some(&s.weights), x, &shape)
    }

    fn sparse_rows_backward(&self, s: &SparseRows, dy: &GpuTensor, x_rows: usize) -> GpuTensor {
        check_sparse("sparse_rows_backward", &s.offsets, &s.cols, x_rows);
        assert_eq!(
            dy.shape[0],
            s.rows(),
            "sparse_rows_backward: one gradient row per row"
        );
        // Sᵀ in compressed rows: for each column of S, its entries in row order.
        let entries: Vec<u32> = (0..s.rows())
            .flat_map(|r| std::iter::repeat_n(r as u32, (s.offsets[r + 1] - s.offsets[r]) as usize))
            .collect();
        let (offsets, order) = inverse_index(&s.cols, x_rows);
        let rows: Vec<u32> = order.iter().map(|&e| entries[e as usize]).collect();
        let weights: Vec<f32> = order.iter().map(|&e| s.weights[e as usize]).collect();
        let mut shape = dy.shape.clone();
        shape[0] = x_rows;
        self.sparse_product(&offsets, &rows, Some(&weights), dy, &shape)
    }

    fn cross_entropy(
        &self,
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
        let grad = self.empty(&logits.shape);
        let losses = self.empty(&[2 * rows]);
        let target_ids = self.upload(targets);
        let flags = mask.map(|m| {
            let bytes: Vec<u8> = m.iter().map(|&b| b as u8).collect();
            self.upload(&bytes)
        });
        self.launch_1d(
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
        // SAFETY: f64 values viewed as bytes, written in full by the download.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, rows * 8) };
        self.device.download(losses.ptr(), bytes);
        (values.iter().sum::<f64>() / denominator, grad, counted)
    }

    fn log_softmax(&self, logits: &GpuTensor) -> GpuTensor {
        let (rows, classes) = as_matrix(logits);
        let out = self.empty(&logits.shape);
        self.launch_1d(
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

    fn sgd_step(&self, param: &mut GpuTensor, grad: &GpuTensor, lr: f64) {
        same_len("sgd_step", &[param, grad]);
        self.launch_1d(
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

    fn adam_step(
        &self,
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
        self.launch_1d(
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
}
