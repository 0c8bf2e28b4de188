//! Batches of worlds as dense `[N, 15, 18, 18]` tensors (the reference's channel-major layout).

use crate::nn::Backend;
use crate::world::tensor::{CHANNELS, DENSE_LEN};
use crate::world::{World, CELLS, GRID};

/// Stacks `worlds` into one `[N, 15, 18, 18]` tensor. A cell with 10 markers, which the
/// 15-channel tensor cannot represent, is encoded like one with 9.
pub fn grid_tensor<'a, B: Backend>(
    backend: &B,
    worlds: impl IntoIterator<Item = &'a World>,
) -> B::Tensor {
    let mut data = Vec::new();
    let mut n = 0;
    for world in worlds {
        let start = data.len();
        data.resize(start + DENSE_LEN, 0.0f32);
        for index in world.to_indices() {
            let index = index as usize;
            let index = if index >= DENSE_LEN {
                index - CELLS
            } else {
                index
            };
            data[start + index] = 1.0;
        }
        n += 1;
    }
    backend.tensor_f32(&[n, CHANNELS, GRID, GRID], &data)
}
