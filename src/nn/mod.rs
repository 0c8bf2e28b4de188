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

/// The CPU backend in single precision: the one models train and run on.
pub type Cpu = CpuBackend<f32>;

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
    /// Minor page faults of the calling thread so far.
    #[cfg(target_os = "linux")]
    fn thread_page_faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` writes one `rusage` into the pointer it is given.
        let usage = unsafe {
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), 0);
            usage.assume_init()
        };
        usage.ru_minflt as i64
    }

    /// A large block freed and allocated again after mimalloc's default purge delay (10 ms)
    /// comes back without page faults: the freed memory stayed mapped.
    #[cfg(target_os = "linux")]
    #[test]
    fn allocator_keeps_freed_memory() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides
        }
        super::tune_allocator();
        const SIZE: usize = 64 << 20;
        let touch = |block: *mut u8| {
            for offset in (0..SIZE).step_by(4096) {
                // SAFETY: `block` points to `SIZE` bytes allocated just before.
                unsafe { block.add(offset).write_volatile(1) };
            }
        };
        // SAFETY: blocks from `mi_malloc` are freed once with `mi_free`, touched only in between.
        let faults = unsafe {
            let first = libmimalloc_sys::mi_malloc(SIZE).cast::<u8>();
            assert!(!first.is_null());
            touch(first);
            libmimalloc_sys::mi_free(first.cast());
            std::thread::sleep(std::time::Duration::from_millis(50));
            libmimalloc_sys::mi_collect(false);
            let before = thread_page_faults();
            let second = libmimalloc_sys::mi_malloc(SIZE).cast::<u8>();
            assert!(!second.is_null());
            touch(second);
            let faults = thread_page_faults() - before;
            libmimalloc_sys::mi_free(second.cast());
            faults
        };
        // Faulting 64 MiB back in takes 16,384 faults of 4 KiB pages (32 of 2 MiB pages).
        assert!(faults < 16, "{faults} page faults touching a reused block");
    }
}
