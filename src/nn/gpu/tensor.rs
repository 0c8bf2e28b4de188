//! Tensors and buffers on the device: allocation and freeing, uploads of host values (any
//! [`bytemuck::Pod`] slice) and downloads, the shape checks the operations share, and the
//! [`Backend`] operations that only move or reshape data.

use std::fmt;
use std::sync::Arc;

use super::device::{Arg, Device};
use super::GpuBackend;
use crate::nn::backend::Backend;

/// A device buffer of `len` f32 values, freed on drop.
pub(super) struct Buffer {
    pub(super) ptr: u64,
    pub(super) len: usize,
    device: Arc<dyn Device>,
}

impl Buffer {
    pub(super) fn new(device: &Arc<dyn Device>, len: usize) -> Buffer {
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
    pub(super) shape: Vec<usize>,
}

impl GpuTensor {
    pub(super) fn ptr(&self) -> u64 {
        self.buffer.ptr
    }

    pub(super) fn len(&self) -> usize {
        self.buffer.len
    }

    pub(super) fn arg(&self) -> Arg {
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
pub struct GpuIndex(pub(super) Buffer);

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
pub(super) struct Upload(Buffer);

impl Upload {
    pub(super) fn arg(&self) -> Arg {
        Arg::Ptr(self.0.ptr)
    }
}

/// Plain-old-data values (no padding, every bit pattern valid) viewed as their bytes.
fn bytes_of<T: bytemuck::Pod>(values: &[T]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// Checks that tensors a kernel reads element by element alongside each other have one length
/// (the kernels would read out of bounds where the CPU backend panics).
pub(super) fn same_len(what: &str, tensors: &[&GpuTensor]) {
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

/// Rows and columns of a tensor seen as a matrix `[shape[0], rest]` (as the CPU backend).
pub(super) fn as_matrix(t: &GpuTensor) -> (usize, usize) {
    let rows = t.shape.first().copied().unwrap_or(1);
    (rows, t.len().checked_div(rows).unwrap_or(0))
}

impl GpuBackend {
    /// An uninitialised tensor.
    pub(super) fn empty(&self, shape: &[usize]) -> GpuTensor {
        GpuTensor {
            buffer: Buffer::new(&self.device, shape.iter().product()),
            shape: shape.to_vec(),
        }
    }

    /// Host values uploaded for one call.
    pub(super) fn upload<T: bytemuck::Pod>(&self, values: &[T]) -> Upload {
        let bytes = bytes_of(values);
        let buffer = Buffer {
            ptr: self.device.alloc(bytes.len()),
            len: 0,
            device: self.device.clone(),
        };
        self.device.upload(buffer.ptr, bytes);
        Upload(buffer)
    }

    /// Device memory at `src` copied into `out`, after all earlier work.
    pub(super) fn download<T: bytemuck::Pod>(&self, src: u64, out: &mut [T]) {
        self.device.download(src, bytemuck::cast_slice_mut(out));
    }
}

pub(super) fn zeros(gpu: &GpuBackend, shape: &[usize]) -> GpuTensor {
    let t = gpu.empty(shape);
    gpu.device.zero(t.ptr(), t.len() * 4);
    t
}

pub(super) fn tensor_f32(gpu: &GpuBackend, shape: &[usize], data: &[f32]) -> GpuTensor {
    let t = gpu.empty(shape);
    assert_eq!(
        t.len(),
        data.len(),
        "tensor_f32: {} values for {shape:?}",
        data.len()
    );
    gpu.device.upload(t.ptr(), bytes_of(data));
    t
}

pub(super) fn to_f32(gpu: &GpuBackend, t: &GpuTensor) -> Vec<f32> {
    let mut out = vec![0f32; t.len()];
    gpu.download(t.ptr(), &mut out);
    out
}

pub(super) fn tensor_f64(gpu: &GpuBackend, shape: &[usize], data: &[f64]) -> GpuTensor {
    let values: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    gpu.tensor_f32(shape, &values)
}

pub(super) fn to_f64(gpu: &GpuBackend, t: &GpuTensor) -> Vec<f64> {
    gpu.to_f32(t).into_iter().map(f64::from).collect()
}

pub(super) fn shape(t: &GpuTensor) -> Vec<usize> {
    t.shape.clone()
}

pub(super) fn reshape(t: &GpuTensor, shape: &[usize]) -> GpuTensor {
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

pub(super) fn index_to_vec(gpu: &GpuBackend, index: &GpuIndex) -> Vec<u32> {
    let mut values = vec![0u32; index.0.len];
    gpu.download(index.0.ptr, &mut values);
    values
}
