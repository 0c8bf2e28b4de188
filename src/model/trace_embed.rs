//! TraceEmbed's grid encoder (SED's `GridEncoder(num_grids=3)` under `AugmentWithTrace`): one
//! embedding per execution-trace state.
//!
//! ```text
//! [input_j ‖ output_j ‖ state] (3 × 15 channels) ─ Conv(45→64)
//! 3 × [BN ─ ReLU ─ Conv(64→64) ─ BN ─ ReLU ─ Conv(64→64)]     (no residual)
//! flatten (channel-major) ─ Linear(64·18·18 → 256)
//! ```
//!
//! The first convolution is linear in its input, so its input-and-output part is computed once
//! per IO pair and added to the state part of every state of that pair's trace, instead of
//! building and convolving a 45-channel grid per state. Batch normalisation uses the statistics
//! of all states of the batch in training mode and the running statistics in evaluation mode.
//! The token ↔ state sum that turns state embeddings into token features is
//! [`crate::nn::Backend::sparse_rows`], done by the debugger.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::nn::layers::{BatchNorm2d, Conv2d, Linear};
use crate::nn::param::{join, Module, Param};
use crate::nn::{Backend, BatchNormSaved};

/// Sizes of TraceEmbed's grid encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEmbedConfig {
    /// Convolution channels (64).
    pub channels: usize,
    /// Number of [BN, ReLU, Conv, BN, ReLU, Conv] blocks (3).
    pub blocks: usize,
    /// Size of a state embedding (256).
    pub output: usize,
}

impl TraceEmbedConfig {
    pub fn paper() -> TraceEmbedConfig {
        TraceEmbedConfig {
            channels: 64,
            blocks: 3,
            output: 256,
        }
    }
}

/// One block: `conv_b(relu(bn_b(conv_a(relu(bn_a(x))))))`. Names follow a PyTorch
/// `Sequential(BN, ReLU, Conv, BN, ReLU, Conv)`: `0`, `2`, `3`, `5`.
#[derive(Clone, Debug)]
pub struct TraceBlock<B: Backend> {
    pub bn_a: BatchNorm2d<B>,
    pub conv_a: Conv2d<B>,
    pub bn_b: BatchNorm2d<B>,
    pub conv_b: Conv2d<B>,
}

#[derive(Clone, Debug)]
pub struct TraceEmbed<B: Backend> {
    pub config: TraceEmbedConfig,
    /// Input channels of one grid (15).
    pub grid_channels: usize,
    /// `[channels, 3 · grid_channels, 3, 3]`: input, output, state.
    pub initial: Conv2d<B>,
    pub blocks: Vec<TraceBlock<B>>,
    pub fc: Linear<B>,
}

struct BlockCache<B: Backend> {
    x: B::Tensor,
    saved_a: BatchNormSaved<B::Tensor>,
    r1: B::Tensor,
    c1: B::Tensor,
    saved_b: BatchNormSaved<B::Tensor>,
    r2: B::Tensor,
}

/// What the training forward pass keeps for backward (the inputs themselves are given to
/// [`TraceEmbed::backward`] again rather than copied).
pub struct TraceEmbedCache<B: Backend> {
    blocks: Vec<BlockCache<B>>,
    flat: B::Tensor,
}

impl<B: Backend> TraceEmbed<B> {
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        config: TraceEmbedConfig,
        grid_channels: usize,
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> TraceEmbed<B> {
        let c = config.channels;
        let initial = Conv2d::new(backend, 3 * grid_channels, c, rng);
        let blocks = (0..config.blocks)
            .map(|_| TraceBlock {
                bn_a: BatchNorm2d::new(backend, c),
                conv_a: Conv2d::new(backend, c, c, rng),
                bn_b: BatchNorm2d::new(backend, c),
                conv_b: Conv2d::new(backend, c, c, rng),
            })
            .collect();
        let fc = Linear::new(backend, c * height * width, config.output, true, rng);
        TraceEmbed {
            config,
            grid_channels,
            initial,
            blocks,
            fc,
        }
    }

    /// The first convolution: `io_grids [P, 2·g, H, W]` (input ‖ output of each pair), `states
    /// [S, g, H, W]`, `pair_of_state[s]` the pair of state `s`.
    fn initial_forward(
        &self,
        backend: &B,
        io_grids: &B::Tensor,
        states: &B::Tensor,
        pair_of_state: &[u32],
    ) -> B::Tensor {
        let g = self.grid_channels;
        let weight = &self.initial.weight.value;
        let io_weight = backend.slice(weight, 1, 0, 2 * g);
        let state_weight = backend.slice(weight, 1, 2 * g, g);
        let zero_bias = backend.zeros(&[self.config.channels]);
        let io_part = backend.conv3x3(io_grids, &io_weight, &zero_bias);
        let mut y = backend.conv3x3(states, &state_weight, &self.initial.bias.value);
        backend.add_assign(&mut y, &backend.gather_rows(&io_part, pair_of_state));
        y
    }

    /// Embeds the states in training mode (batch statistics; updates the running statistics):
    /// `[S, output]`.
    pub fn forward_train(
        &mut self,
        backend: &B,
        io_grids: &B::Tensor,
        states: &B::Tensor,
        pair_of_state: &[u32],
    ) -> (B::Tensor, TraceEmbedCache<B>) {
        let mut x = self.initial_forward(backend, io_grids, states, pair_of_state);
        let mut caches = Vec::with_capacity(self.blocks.len());
        for block in &mut self.blocks {
            let (a, saved_a) = block.bn_a.forward_train(backend, &x);
            let r1 = backend.relu(&a);
            let c1 = block.conv_a.forward(backend, &r1);
            let (b, saved_b) = block.bn_b.forward_train(backend, &c1);
            let r2 = backend.relu(&b);
            let next = block.conv_b.forward(backend, &r2);
            caches.push(BlockCache {
                x: std::mem::replace(&mut x, next),
                saved_a,
                r1,
                c1,
                saved_b,
                r2,
            });
        }
        let flat = flatten(backend, &x);
        let embedding = self.fc.forward(backend, &flat);
        let cache = TraceEmbedCache {
            blocks: caches,
            flat,
        };
        (embedding, cache)
    }

    /// Embeds the states in evaluation mode (running statistics).
    pub fn forward_eval(
        &self,
        backend: &B,
        io_grids: &B::Tensor,
        states: &B::Tensor,
        pair_of_state: &[u32],
    ) -> B::Tensor {
        let mut x = self.initial_forward(backend, io_grids, states, pair_of_state);
        for block in &self.blocks {
            let r1 = backend.relu(&block.bn_a.forward_eval(backend, &x));
            let c1 = block.conv_a.forward(backend, &r1);
            let r2 = backend.relu(&block.bn_b.forward_eval(backend, &c1));
            x = block.conv_b.forward(backend, &r2);
        }
        self.fc.forward(backend, &flatten(backend, &x))
    }

    /// Accumulates every parameter gradient from the embeddings' gradient `[S, output]`; the
    /// inputs are those of [`TraceEmbed::forward_train`].
    pub fn backward(
        &mut self,
        backend: &B,
        cache: &TraceEmbedCache<B>,
        io_grids: &B::Tensor,
        states: &B::Tensor,
        pair_of_state: &[u32],
        d_embedding: &B::Tensor,
    ) {
        let d_flat = self
            .fc
            .backward(backend, &cache.flat, d_embedding, true)
            .expect("input gradient requested");
        let shape = backend.shape(states);
        let (s, h, w) = (shape[0], shape[2], shape[3]);
        let mut dx = backend.reshape(&d_flat, &[s, self.config.channels, h, w]);
        for (block, c) in self.blocks.iter_mut().zip(&cache.blocks).rev() {
            let d_r2 = block
                .conv_b
                .backward(backend, &c.r2, &dx, true)
                .expect("dx");
            let d_b = backend.relu_backward(&c.r2, &d_r2);
            let d_c1 = block.bn_b.backward(backend, &c.c1, &c.saved_b, &d_b);
            let d_r1 = block
                .conv_a
                .backward(backend, &c.r1, &d_c1, true)
                .expect("dx");
            let d_a = backend.relu_backward(&c.r1, &d_r1);
            dx = block.bn_a.backward(backend, &c.x, &c.saved_a, &d_a);
        }
        // The first convolution: the state part directly, the IO part through the sum of the
        // gradients of each pair's states.
        let g = self.grid_channels;
        let weight = &self.initial.weight.value;
        let io_weight = backend.slice(weight, 1, 0, 2 * g);
        let state_weight = backend.slice(weight, 1, 2 * g, g);
        let (_, dw_state, db) = backend.conv3x3_backward(states, &state_weight, &dx, false);
        let pairs = backend.shape(io_grids)[0];
        let d_io = backend.scatter_add_rows(&dx, pair_of_state, pairs);
        let (_, dw_io, _) = backend.conv3x3_backward(io_grids, &io_weight, &d_io, false);
        backend.add_assign(
            &mut self.initial.weight.grad,
            &backend.concat(&[&dw_io, &dw_state], 1),
        );
        backend.add_assign(&mut self.initial.bias.grad, &db);
    }
}

fn flatten<B: Backend>(backend: &B, x: &B::Tensor) -> B::Tensor {
    let shape = backend.shape(x);
    backend.reshape(x, &[shape[0], shape[1..].iter().product()])
}

impl<B: Backend> Module<B> for TraceEmbed<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        self.initial.visit_params(&join(prefix, "initial_conv"), f);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let p = join(prefix, &format!("blocks.{i}"));
            block.bn_a.visit_params(&join(&p, "0"), f);
            block.conv_a.visit_params(&join(&p, "2"), f);
            block.bn_b.visit_params(&join(&p, "3"), f);
            block.conv_b.visit_params(&join(&p, "5"), f);
        }
        self.fc.visit_params(&join(prefix, "fc"), f);
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::Tensor)) {
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let p = join(prefix, &format!("blocks.{i}"));
            block.bn_a.visit_buffers(&join(&p, "0"), f);
            block.bn_b.visit_buffers(&join(&p, "3"), f);
        }
    }
}
