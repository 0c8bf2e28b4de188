//! The IO encoder ("IOEmbed", SED's `LGRLTaskEncoder`): one embedding per input/output pair.
//!
//! ```text
//! in  [N, 15, 18, 18] ─ Conv(15→32) ─ ReLU ─┐
//!                                            ├─ concat [N, 64, 18, 18] ─ x
//! out [N, 15, 18, 18] ─ Conv(15→32) ─ ReLU ─┘
//! x += block1(x); x += block2(x)      block = 3 × [Conv(64→64) ─ ReLU]
//! flatten (channel-major) ─ Linear(64·18·18 → 512)
//! ```
//!
//! No final activation, no normalisation, no dropout. The widths are settings so that tests can
//! use small encoders; [`IoEncoderConfig::paper`] gives SED's (10,847,616 parameters).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::nn::layers::{Conv2d, Linear};
use crate::nn::param::{join, Module, Param};
use crate::nn::Backend;

/// Sizes of the IO encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoEncoderConfig {
    /// Channels of a grid (15 for Karel worlds).
    pub grid_channels: usize,
    /// Channels of each grid's first convolution (the trunk has twice as many).
    pub conv_channels: usize,
    /// Grid height and width (18).
    pub height: usize,
    pub width: usize,
    /// Size of the embedding.
    pub output: usize,
}

impl IoEncoderConfig {
    /// SED's sizes.
    pub fn paper() -> IoEncoderConfig {
        IoEncoderConfig {
            grid_channels: 15,
            conv_channels: 32,
            height: 18,
            width: 18,
            output: 512,
        }
    }
}

/// The encoder's parameters. Parameter names follow SED's module
/// (`input_encoder`, `output_encoder`, `block_1.{0,2,4}`, `block_2.{0,2,4}`, `fc`).
#[derive(Clone, Debug)]
pub struct IoEncoder<B: Backend> {
    pub config: IoEncoderConfig,
    pub input_conv: Conv2d<B>,
    pub output_conv: Conv2d<B>,
    pub blocks: [[Conv2d<B>; 3]; 2],
    pub fc: Linear<B>,
}

/// Activations kept for the backward pass.
#[derive(Clone, Debug)]
pub struct IoEncoderCache<B: Backend> {
    inputs: B::Tensor,
    outputs: B::Tensor,
    in_act: B::Tensor,
    out_act: B::Tensor,
    /// Per block: the block's input, and each convolution's ReLU output.
    blocks: Vec<(B::Tensor, [B::Tensor; 3])>,
    trunk: B::Tensor,
}

impl<B: Backend> IoEncoder<B> {
    pub fn new<R: Rng + ?Sized>(backend: &B, config: IoEncoderConfig, rng: &mut R) -> IoEncoder<B> {
        let c = config.conv_channels;
        let block = |rng: &mut R| {
            [
                Conv2d::new(backend, 2 * c, 2 * c, rng),
                Conv2d::new(backend, 2 * c, 2 * c, rng),
                Conv2d::new(backend, 2 * c, 2 * c, rng),
            ]
        };
        let input_conv = Conv2d::new(backend, config.grid_channels, c, rng);
        let output_conv = Conv2d::new(backend, config.grid_channels, c, rng);
        let blocks = [block(rng), block(rng)];
        let fc = Linear::new(
            backend,
            2 * c * config.height * config.width,
            config.output,
            true,
            rng,
        );
        IoEncoder {
            config,
            input_conv,
            output_conv,
            blocks,
            fc,
        }
    }

    /// Embeds `N` pairs of grids (`[N, grid_channels, H, W]` each) into `[N, output]`.
    pub fn forward(
        &self,
        backend: &B,
        inputs: &B::Tensor,
        outputs: &B::Tensor,
    ) -> (B::Tensor, IoEncoderCache<B>) {
        let in_act = self.input_conv.forward_relu(backend, inputs);
        let out_act = self.output_conv.forward_relu(backend, outputs);
        let mut x = backend.concat(&[&in_act, &out_act], 1);
        let mut blocks = Vec::with_capacity(2);
        for block in &self.blocks {
            let a0 = block[0].forward_relu(backend, &x);
            let a1 = block[1].forward_relu(backend, &a0);
            let a2 = block[2].forward_relu(backend, &a1);
            let next = backend.add(&x, &a2);
            blocks.push((std::mem::replace(&mut x, next), [a0, a1, a2]));
        }
        let shape = backend.shape(&x);
        let flat = backend.reshape_owned(x, &[shape[0], shape[1..].iter().product()]);
        let embedding = self.fc.forward(backend, &flat);
        let cache = IoEncoderCache {
            inputs: inputs.clone(),
            outputs: outputs.clone(),
            in_act,
            out_act,
            blocks,
            trunk: flat,
        };
        (embedding, cache)
    }

    /// Accumulates every parameter gradient from the embedding's gradient `[N, output]`.
    pub fn backward(&mut self, backend: &B, cache: &IoEncoderCache<B>, d_embedding: &B::Tensor) {
        let d_flat = self
            .fc
            .backward(backend, &cache.trunk, d_embedding, true)
            .expect("input gradient requested");
        let shape = backend.shape(&cache.in_act);
        let channels = 2 * shape[1];
        let mut dx = backend.reshape_owned(d_flat, &[shape[0], channels, shape[2], shape[3]]);
        for (block, (input, acts)) in self.blocks.iter_mut().zip(&cache.blocks).rev() {
            // x_out = x_in + relu(c2(relu(c1(relu(c0(x_in))))))
            let d_a1 = block[2]
                .backward_relu(backend, &acts[1], &acts[2], &dx, true)
                .expect("dx");
            let d_a0 = block[1]
                .backward_relu(backend, &acts[0], &acts[1], &d_a1, true)
                .expect("dx");
            let d_in = block[0]
                .backward_relu(backend, input, &acts[0], &d_a0, true)
                .expect("dx");
            backend.add_assign(&mut dx, &d_in);
        }
        let half = channels / 2;
        let d_in_act = backend.slice(&dx, 1, 0, half);
        let d_out_act = backend.slice(&dx, 1, half, half);
        self.input_conv
            .backward_relu(backend, &cache.inputs, &cache.in_act, &d_in_act, false);
        self.output_conv
            .backward_relu(backend, &cache.outputs, &cache.out_act, &d_out_act, false);
    }
}

impl<B: Backend> Module<B> for IoEncoder<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        self.input_conv
            .visit_params(&join(prefix, "input_encoder"), f);
        self.output_conv
            .visit_params(&join(prefix, "output_encoder"), f);
        for (b, block) in self.blocks.iter_mut().enumerate() {
            for (i, conv) in block.iter_mut().enumerate() {
                conv.visit_params(&join(prefix, &format!("block_{}.{}", b + 1, 2 * i)), f);
            }
        }
        self.fc.visit_params(&join(prefix, "fc"), f);
    }
}
