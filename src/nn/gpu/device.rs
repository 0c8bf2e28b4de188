//! What the GPU backend needs of a device: memory, copies and launches of the kernels of the
//! table ([`Kernel`]).
//!
//! Two devices implement it: [`super::cuda::CudaDevice`] (a real GPU through cudarc's driver API,
//! kernels compiled with NVRTC; the `cuda` feature) and [`super::emulator::EmulatedDevice`] (the
//! same kernel sources compiled by the host C++ compiler and run on CPU threads), so that the
//! backend's launch code and every kernel are tested on machines without a GPU.
//!
//! Device addresses are plain `u64`s; `0` is the null pointer (and the address of every empty
//! allocation). All work is ordered on one stream: a launch or copy sees the results of the
//! calls before it, and [`Device::download`] waits for them.

use std::fmt::Debug;

use super::kernels::Kernel;

/// One kernel argument, in the kernel's parameter order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    /// A device address (any pointer parameter); `Ptr(0)` is a null pointer.
    Ptr(u64),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl Arg {
    /// The parameter-type code of the kernel signatures (`kernels::Signature::codes`).
    pub fn code(&self) -> char {
        match self {
            Arg::Ptr(_) => 'p',
            Arg::I32(_) => 'i',
            Arg::U32(_) => 'u',
            Arg::I64(_) => 'l',
            Arg::F32(_) => 'f',
            Arg::F64(_) => 'd',
        }
    }

    /// The argument's bytes, as the kernel reads them.
    pub fn bytes(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        match *self {
            Arg::Ptr(v) => out.copy_from_slice(&v.to_ne_bytes()),
            Arg::I64(v) => out.copy_from_slice(&v.to_ne_bytes()),
            Arg::F64(v) => out.copy_from_slice(&v.to_ne_bytes()),
            Arg::I32(v) => out[..4].copy_from_slice(&v.to_ne_bytes()),
            Arg::U32(v) => out[..4].copy_from_slice(&v.to_ne_bytes()),
            Arg::F32(v) => out[..4].copy_from_slice(&v.to_ne_bytes()),
        }
        out
    }
}

/// A launch's grid and block sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchShape {
    pub grid: [u32; 3],
    pub block: [u32; 3],
}

/// A device the GPU backend runs on. Its methods take raw device addresses, so the trait stays
/// inside the crate (its module is crate-private and no public function hands out a device):
/// only the backend, which allocates and frees every buffer it passes, calls them. Failures of
/// the device itself (out of memory, a faulting
/// kernel, a lost device) panic with the driver's message: they are not input errors a caller
/// could handle.
pub trait Device: Send + Sync + Debug {
    /// `cuda` or `emulated`.
    fn kind(&self) -> &'static str;
    /// The device in words (name, compute capability).
    fn describe(&self) -> String;
    /// Most blocks worth launching for a one-dimensional grid-stride kernel.
    fn max_blocks(&self) -> u32;
    /// Allocates `bytes` bytes (uninitialised).
    fn alloc(&self, bytes: usize) -> u64;
    fn free(&self, ptr: u64);
    fn upload(&self, dst: u64, data: &[u8]);
    /// Copies device memory to the host, after all earlier work.
    fn download(&self, src: u64, out: &mut [u8]);
    fn copy(&self, dst: u64, src: u64, bytes: usize);
    fn zero(&self, dst: u64, bytes: usize);
    /// Launches `kernel`; panics if the sources have no such entry point or the arguments do not
    /// match its parameters.
    fn launch(&self, kernel: Kernel, shape: LaunchShape, args: &[Arg]);
    /// Waits for all work.
    fn synchronize(&self);
}
