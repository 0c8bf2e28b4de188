//! The GPU backend: the [`Backend`] operations as launches of the hand-written kernels in
//! `kernels/*.cu`, on a [`Device`]: a CUDA GPU ([`cuda::CudaDevice`], feature `cuda`) or the CPU
//! emulation of one ([`emulator::EmulatedDevice`], for tests).
//!
//! Tensors are f32 device buffers with a shape; cloning one copies it on the device. Index
//! arguments (rows, targets, masks, sparse matrices) arrive on the host and are uploaded per
//! call; scatter-adds and the transposed sparse sum are turned into gathers over an inverse
//! index built on the host, so that no kernel needs atomics and every result is deterministic.
//! Reductions to a scalar (`sum_squares`, the loss) finish on the host in f64.
//!
//! The files follow the kernel sources: [`kernels`] embeds them and holds the table of entry
//! points ([`kernels::Kernel`]); `launch.rs` turns sizes into grids and launches a `Kernel`;
//! `tensor.rs` has the buffers, tensors, uploads and downloads; `elementwise.rs`, `reduce.rs`,
//! `gemm.rs`, `rows.rs` and `loss.rs` implement the operations whose kernels are in the `.cu`
//! file of the same name. The [`Backend`] impl below only delegates to them.

pub(crate) mod device;
pub mod emulator;
pub mod kernels;

#[cfg(feature = "cuda")]
pub mod cuda;

mod elementwise;
mod gemm;
mod launch;
mod loss;
mod reduce;
mod rows;
mod tensor;

use std::fmt;
use std::sync::Arc;

pub(crate) use self::device::Device;
pub use self::tensor::{GpuIndex, GpuTensor};
use super::backend::{AdamStep, Backend, BatchNormSaved, SparseRows};

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
        tensor::zeros(self, shape)
    }

    fn tensor_f32(&self, shape: &[usize], data: &[f32]) -> GpuTensor {
        tensor::tensor_f32(self, shape, data)
    }

    fn to_f32(&self, t: &GpuTensor) -> Vec<f32> {
        tensor::to_f32(self, t)
    }

    fn tensor_f64(&self, shape: &[usize], data: &[f64]) -> GpuTensor {
        tensor::tensor_f64(self, shape, data)
    }

    fn to_f64(&self, t: &GpuTensor) -> Vec<f64> {
        tensor::to_f64(self, t)
    }

    fn shape(&self, t: &GpuTensor) -> Vec<usize> {
        tensor::shape(t)
    }

    fn reshape(&self, t: &GpuTensor, shape: &[usize]) -> GpuTensor {
        tensor::reshape(t, shape)
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor, ta: bool, tb: bool) -> GpuTensor {
        gemm::matmul(self, a, b, ta, tb)
    }

    fn matmul_acc(&self, c: &mut GpuTensor, a: &GpuTensor, b: &GpuTensor, ta: bool, tb: bool) {
        gemm::matmul_acc(self, c, a, b, ta, tb)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        elementwise::add(self, a, b)
    }

    fn add_assign(&self, a: &mut GpuTensor, b: &GpuTensor) {
        elementwise::add_assign(self, a, b)
    }

    fn scale(&self, a: &mut GpuTensor, factor: f64) {
        elementwise::scale(self, a, factor)
    }

    fn fill(&self, a: &mut GpuTensor, value: f64) {
        elementwise::fill(self, a, value)
    }

    fn add_bias(&self, x: &mut GpuTensor, bias: &GpuTensor) {
        elementwise::add_bias(self, x, bias)
    }

    fn sum_rows(&self, x: &GpuTensor) -> GpuTensor {
        reduce::sum_rows(self, x)
    }

    fn relu(&self, x: &GpuTensor) -> GpuTensor {
        elementwise::relu(self, x)
    }

    fn relu_backward(&self, y: &GpuTensor, dy: &GpuTensor) -> GpuTensor {
        elementwise::relu_backward(self, y, dy)
    }

    fn sum_squares(&self, x: &GpuTensor) -> f64 {
        reduce::sum_squares(self, x)
    }

    fn conv3x3(&self, x: &GpuTensor, weight: &GpuTensor, bias: &GpuTensor) -> GpuTensor {
        gemm::conv3x3(self, x, weight, bias)
    }

    fn conv3x3_backward(
        &self,
        x: &GpuTensor,
        weight: &GpuTensor,
        dy: &GpuTensor,
        input_grad: bool,
    ) -> (Option<GpuTensor>, GpuTensor, GpuTensor) {
        gemm::conv3x3_backward(self, x, weight, dy, input_grad)
    }

    fn batch_norm_train(
        &self,
        x: &GpuTensor,
        gamma: &GpuTensor,
        beta: &GpuTensor,
        eps: f64,
    ) -> (GpuTensor, BatchNormSaved<GpuTensor>, GpuTensor, GpuTensor) {
        reduce::batch_norm_train(self, x, gamma, beta, eps)
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
        elementwise::batch_norm_eval(self, x, gamma, beta, mean, var, eps)
    }

    fn batch_norm_backward(
        &self,
        x: &GpuTensor,
        gamma: &GpuTensor,
        saved: &BatchNormSaved<GpuTensor>,
        dy: &GpuTensor,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        reduce::batch_norm_backward(self, x, gamma, saved, dy)
    }

    fn lerp_assign(&self, running: &mut GpuTensor, batch: &GpuTensor, momentum: f64) {
        elementwise::lerp_assign(self, running, batch, momentum)
    }

    fn gather_rows(&self, table: &GpuTensor, rows: &[u32]) -> GpuTensor {
        rows::gather_rows(self, table, rows)
    }

    fn scatter_add_rows(&self, dy: &GpuTensor, rows: &[u32], table_rows: usize) -> GpuTensor {
        rows::scatter_add_rows(self, dy, rows, table_rows)
    }

    fn concat(&self, parts: &[&GpuTensor], axis: usize) -> GpuTensor {
        rows::concat(self, parts, axis)
    }

    fn slice(&self, x: &GpuTensor, axis: usize, start: usize, len: usize) -> GpuTensor {
        rows::slice(self, x, axis, start, len)
    }

    fn lstm_cell(
        &self,
        gates: &GpuTensor,
        c_prev: &GpuTensor,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        elementwise::lstm_cell(self, gates, c_prev)
    }

    fn lstm_cell_backward(
        &self,
        activated: &GpuTensor,
        c_prev: &GpuTensor,
        c: &GpuTensor,
        dh: &GpuTensor,
        dc: &GpuTensor,
    ) -> (GpuTensor, GpuTensor) {
        elementwise::lstm_cell_backward(self, activated, c_prev, c, dh, dc)
    }

    fn select_rows(&self, keep: &[bool], new: &GpuTensor, old: &GpuTensor) -> GpuTensor {
        elementwise::select_rows(self, keep, new, old)
    }

    fn max_groups(&self, x: &GpuTensor, size: usize) -> (GpuTensor, GpuIndex) {
        rows::max_groups(self, x, size)
    }

    fn index_to_vec(&self, index: &GpuIndex) -> Vec<u32> {
        tensor::index_to_vec(self, index)
    }

    fn max_groups_backward(&self, dy: &GpuTensor, argmax: &GpuIndex, rows: usize) -> GpuTensor {
        rows::max_groups_backward(self, dy, argmax, rows)
    }

    fn sparse_rows(&self, s: &SparseRows, x: &GpuTensor) -> GpuTensor {
        rows::sparse_rows(self, s, x)
    }

    fn sparse_rows_backward(&self, s: &SparseRows, dy: &GpuTensor, x_rows: usize) -> GpuTensor {
        rows::sparse_rows_backward(self, s, dy, x_rows)
    }

    fn cross_entropy(
        &self,
        logits: &GpuTensor,
        targets: &[u32],
        ignore: u32,
        mask: Option<&[bool]>,
    ) -> (f64, GpuTensor, usize) {
        loss::cross_entropy(self, logits, targets, ignore, mask)
    }

    fn log_softmax(&self, logits: &GpuTensor) -> GpuTensor {
        loss::log_softmax(self, logits)
    }

    fn sgd_step(&self, param: &mut GpuTensor, grad: &GpuTensor, lr: f64) {
        elementwise::sgd_step(self, param, grad, lr)
    }

    fn adam_step(
        &self,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        h: &AdamStep,
    ) {
        elementwise::adam_step(self, param, grad, m, v, h)
    }
}
