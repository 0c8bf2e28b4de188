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

/// Keeps freed memory mapped and lets mimalloc use large pages, for binaries that train or
/// evaluate with mimalloc as their allocator. Tensors of tens of megabytes are freed and allocated
/// again at every training step; returning their pages to the system and faulting them back in
/// cost up to a fifth of a step (80,000 page faults in four IO-encoder steps, 800 with this).
/// mimalloc reads its environment when the process starts, before `main`, so the options are set
/// through its API; an option given in the environment (`MIMALLOC_PURGE_DELAY`,
/// `MIMALLOC_ALLOW_LARGE_OS_PAGES`) is left as it is.
pub fn tune_allocator() {
    for (key, option, value) in [
        ("MIMALLOC_PURGE_DELAY", MI_OPTION_PURGE_DELAY, -1),
        (
            "MIMALLOC_ALLOW_LARGE_OS_PAGES",
            libmimalloc_sys::mi_option_large_os_pages,
            1,
        ),
    ] {
        if std::env::var_os(key).is_none() {
            // SAFETY: setting an option is a plain store into mimalloc's option table, valid at
            // any time and from any thread.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

/// `mi_option_purge_delay` of mimalloc.h (the same number in its v2 and v3), which the
/// `libmimalloc-sys` bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod tests {
    #[test]
    fn allocator_keeps_freed_memory() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            super::tune_allocator();
            // SAFETY: reading an option is a plain load from mimalloc's option table.
            let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(delay, -1);
        }
    }
}
