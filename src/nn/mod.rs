//! The neural engine: a backend abstraction with hand-written forward and backward passes, the
//! CPU (ndarray) backend that is the numerical reference, layers, optimisers and checkpoints.
//!
//! - [`backend`]: the [`Backend`] trait and its tensor layouts;
//! - [`cpu`]: [`CpuBackend`], generic over `f32` (training) and `f64` (gradient checks);
//! - [`gpu`]: [`gpu::GpuBackend`], the same operations as hand-written CUDA kernels, on a CUDA
//!   device (feature `cuda`) or on the CPU emulation of one that tests use;
//! - [`param`]: parameters, named traversal ([`Module`]), PyTorch's default initialisation;
//! - [`layers`]: convolution, batch normalisation, linear, embedding, LSTM;
//! - [`optim`]: SGD, Adam/AdamW, gradient clipping, the step-decay schedule;
//! - [`checkpoint`]: safetensors checkpoints with model, optimiser and RNG state.

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod gpu;
pub mod layers;
pub mod optim;
pub mod param;

pub use backend::{AdamStep, Backend, BatchNormSaved, SparseRows};
pub use cpu::CpuBackend;
pub use param::{count_params, zero_grads, Module, Param};

/// Keeps freed memory mapped and asks for large pages, for the allocator of binaries that train
/// (mimalloc reads these settings from the environment when it first needs them). Tensors of tens
/// of megabytes are freed and allocated again at every training step; returning their pages to
/// the system and faulting them back in cost up to a fifth of a step. Settings already in the
/// environment are kept. Call at the start of `main`, before any thread starts.
pub fn tune_allocator() {
    for (key, value) in [
        ("MIMALLOC_PURGE_DELAY", "-1"),
        ("MIMALLOC_ALLOW_LARGE_OS_PAGES", "1"),
    ] {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, value);
        }
    }
}
