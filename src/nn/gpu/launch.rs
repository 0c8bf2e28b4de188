//! Launches: the grid shapes of the kernels (grid-stride loops, one block per item, output
//! tiles of the matrix products) and the conversion of sizes to the kernels' 32-bit integers.
//! Every launch names its entry point by a [`Kernel`] of the table in [`super::kernels`].

use super::device::{Arg, LaunchShape};
use super::kernels::Kernel;
use super::GpuBackend;

/// Threads per block of the kernels (`KAREL_THREADS` in `kernels/common.cuh`).
pub(super) const THREADS: u32 = 256;
/// Output tile of the matrix-product kernels (`TILE_M`, `TILE_N`).
pub(super) const TILE: usize = 64;

/// `n` as a kernel's `int` argument; panics, naming `what`, beyond its range.
pub(super) fn int(n: usize, what: &str) -> i32 {
    i32::try_from(n).unwrap_or_else(|_| panic!("{what} = {n} exceeds the kernels' 32-bit range"))
}

impl GpuBackend {
    /// The kernels' `tf32` flag: products on the tensor cores in TF32, or in f32.
    pub(super) fn tf32_arg(&self) -> Arg {
        Arg::I32(self.tf32 as i32)
    }

    /// A grid-stride launch over `n` elements.
    pub(super) fn launch_1d(&self, kernel: Kernel, n: usize, args: &[Arg]) {
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

    /// `blocks` blocks of `THREADS` threads: one block per item (channel reductions), or a
    /// fixed number of block partials.
    pub(super) fn launch_blocks(&self, kernel: Kernel, blocks: usize, args: &[Arg]) {
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
    pub(super) fn launch_tiles(
        &self,
        kernel: Kernel,
        m: usize,
        n: usize,
        splits: usize,
        args: &[Arg],
    ) {
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
}
