//! The LGRL synthesizer (SED's `LGRLSeqDecoder` with its task encoder).
//!
//! ```text
//! pairs ──IoEncoder──▶ io [N·5, 512]
//! token t ──Embedding(43, 256)──▶ [N·5, 256] ‖ io ──▶ 2-layer LSTM(768 → 256), one stream per pair
//!        ──max over the 5 pairs──▶ [N, 256] ──Linear(256 → 43, no bias)──▶ logits of token t + 1
//! ```
//!
//! Trained with cross-entropy on `<S> tokens </S>` (the input is `<S> t₁ … tₙ`, the target
//! `t₁ … tₙ </S>`). The streams of a task's 5 pairs are consecutive rows (task-major), so the max
//! is over groups of 5 rows. [`SynthesizerConfig::paper`] has 12,446,592 parameters.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::io_encoder::{IoEncoder, IoEncoderCache, IoEncoderConfig};
use super::pooled::{self, count_correct, PooledCache};
use crate::lang::{Token, VOCAB_SIZE};
use crate::nn::layers::{Embedding, Linear, Lstm};
use crate::nn::param::{join, Module, Param};
use crate::nn::Backend;

/// Sizes of the synthesizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthesizerConfig {
    pub io: IoEncoderConfig,
    /// Token embedding size.
    pub embedding: usize,
    /// LSTM hidden size and layers.
    pub hidden: usize,
    pub layers: usize,
    /// IO pairs per task given to the model.
    pub pairs: usize,
}

impl SynthesizerConfig {
    /// SED's sizes.
    pub fn paper() -> SynthesizerConfig {
        SynthesizerConfig {
            io: IoEncoderConfig::paper(),
            embedding: 256,
            hidden: 256,
            layers: 2,
            pairs: 5,
        }
    }

    /// A small model that trains in minutes on two CPU cores.
    pub fn tiny() -> SynthesizerConfig {
        SynthesizerConfig {
            io: IoEncoderConfig {
                conv_channels: 8,
                output: 64,
                ..IoEncoderConfig::paper()
            },
            embedding: 32,
            hidden: 64,
            layers: 2,
            pairs: 5,
        }
    }
}

/// A training or decoding batch: `N` tasks.
#[derive(Clone, Debug)]
pub struct SynthesizerBatch<B: Backend> {
    /// `[N · pairs, channels, H, W]`: the input grids, task-major.
    pub inputs: B::Tensor,
    /// The output grids, same layout.
    pub outputs: B::Tensor,
    /// Each task's program tokens (without `<S>` and `</S>`).
    pub programs: Vec<Vec<Token>>,
}

#[derive(Clone, Debug)]
pub struct Synthesizer<B: Backend> {
    pub config: SynthesizerConfig,
    pub encoder: IoEncoder<B>,
    pub embedding: Embedding<B>,
    pub decoder: Lstm<B>,
    pub output: Linear<B>,
}

/// The result of a training step's forward pass.
pub struct TrainForward<B: Backend> {
    pub loss: f64,
    /// Tokens predicted and counted in the loss, and how many were right (greedy).
    pub tokens: usize,
    pub correct: usize,
    cache: Cache<B>,
}

/// A teacher-forced decoder pass ([`Synthesizer::teacher_forced`]).
struct TeacherForced<B: Backend> {
    /// `[T · N, classes]`, step-major.
    logits: B::Tensor,
    targets: Vec<u32>,
    step_ids: Vec<Vec<u32>>,
    head: PooledCache<B>,
}

/// The target of the steps past a program's end.
const IGNORE: u32 = u32::MAX;

struct Cache<B: Backend> {
    io: IoEncoderCache<B>,
    /// Per step: the token of every stream.
    step_ids: Vec<Vec<u32>>,
    head: PooledCache<B>,
    d_logits: B::Tensor,
}

impl<B: Backend> Synthesizer<B> {
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        config: SynthesizerConfig,
        rng: &mut R,
    ) -> Synthesizer<B> {
        let encoder = IoEncoder::new(backend, config.io, rng);
        let embedding = Embedding::new(backend, VOCAB_SIZE, config.embedding, rng);
        let decoder = Lstm::new(
            backend,
            config.embedding + config.io.output,
            config.hidden,
            config.layers,
            false,
            rng,
        );
        let output = Linear::new(backend, config.hidden, VOCAB_SIZE, false, rng);
        Synthesizer {
            config,
            encoder,
            embedding,
            decoder,
            output,
        }
    }

    /// Forward pass of a training step with teacher forcing; keeps what backward needs.
    pub fn forward_train(&self, backend: &B, batch: &SynthesizerBatch<B>) -> TrainForward<B> {
        let (io_embedding, io) = self.encoder.forward(backend, &batch.inputs, &batch.outputs);
        let forced = self.teacher_forced(backend, &io_embedding, &batch.programs);
        let (loss, d_logits, tokens) =
            backend.cross_entropy(&forced.logits, &forced.targets, IGNORE, None);
        let correct = count_correct(
            &backend.to_f32(&forced.logits),
            &forced.targets,
            VOCAB_SIZE,
            IGNORE,
        );
        TrainForward {
            loss,
            tokens,
            correct,
            cache: Cache {
                io,
                step_ids: forced.step_ids,
                head: forced.head,
                d_logits,
            },
        }
    }

    /// The log-likelihood of each program (its tokens and the end) given its task's IO
    /// embedding: `io_embedding` is `[N · pairs, ·]` for `N` programs, each program's pairs in
    /// consecutive rows. The sum of the token log-probabilities, as the beam search scores.
    pub fn log_likelihoods(
        &self,
        backend: &B,
        io_embedding: &B::Tensor,
        programs: &[Vec<Token>],
    ) -> Vec<f64> {
        let forced = self.teacher_forced(backend, io_embedding, programs);
        let log_probs = backend.to_f32(&backend.log_softmax(&forced.logits));
        let n = programs.len();
        let mut sums = vec![0.0f64; n];
        for (row, &target) in forced.targets.iter().enumerate() {
            if target != IGNORE {
                sums[row % n] += f64::from(log_probs[row * VOCAB_SIZE + target as usize]);
            }
        }
        sums
    }

    /// The decoder run with teacher forcing: input `<S> t₁ … tₙ`, target `t₁ … tₙ </S>`
    /// (n + 1 steps per program; [`IGNORE`] past a program's end), logits step-major.
    fn teacher_forced(
        &self,
        backend: &B,
        io_embedding: &B::Tensor,
        programs: &[Vec<Token>],
    ) -> TeacherForced<B> {
        let pairs = self.config.pairs;
        let lengths: Vec<usize> = programs.iter().map(|p| p.len() + 1).collect();
        let steps = lengths.iter().copied().max().unwrap_or(1);
        let token_at = |p: &Vec<Token>, t: usize| -> Option<Token> {
            match t {
                0 => Some(Token::Start),
                _ => p.get(t - 1).copied(),
            }
        };
        let step_ids: Vec<Vec<u32>> = (0..steps)
            .map(|t| {
                programs
                    .iter()
                    .flat_map(|p| {
                        let id = token_at(p, t).unwrap_or(Token::End).id() as u32;
                        std::iter::repeat_n(id, pairs)
                    })
                    .collect()
            })
            .collect();
        // The IO embedding is the same at every step: the decoder projects it once.
        let inputs: Vec<B::Tensor> = step_ids
            .iter()
            .map(|ids| self.embedding.forward(backend, ids))
            .collect();
        let stream_lengths: Vec<usize> = lengths
            .iter()
            .flat_map(|&l| std::iter::repeat_n(l, pairs))
            .collect();
        let (logits, head) = pooled::forward(
            backend,
            &self.decoder,
            &self.output,
            &inputs,
            io_embedding,
            &stream_lengths,
            pairs,
        );
        let targets: Vec<u32> = (0..steps)
            .flat_map(|t| {
                programs.iter().map(move |p| match t.cmp(&p.len()) {
                    std::cmp::Ordering::Less => p[t].id() as u32,
                    std::cmp::Ordering::Equal => Token::End.id() as u32,
                    std::cmp::Ordering::Greater => IGNORE,
                })
            })
            .collect();
        TeacherForced {
            logits,
            targets,
            step_ids,
            head,
        }
    }

    /// Backward pass of a training step: accumulates every parameter gradient.
    pub fn backward(&mut self, backend: &B, forward: TrainForward<B>) {
        let cache = forward.cache;
        let (d_inputs, d_io) = pooled::backward(
            backend,
            &mut self.decoder,
            &mut self.output,
            &cache.head,
            &cache.d_logits,
        );
        for (ids, d) in cache.step_ids.iter().zip(&d_inputs) {
            self.embedding.backward(backend, ids, d);
        }
        self.encoder.backward(backend, &cache.io, &d_io);
    }
}

impl<B: Backend> Module<B> for Synthesizer<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        self.encoder.visit_params(&join(prefix, "encoder"), f);
        self.embedding
            .visit_params(&join(prefix, "decoder.embedding"), f);
        self.decoder
            .visit_params(&join(prefix, "decoder.decoder"), f);
        self.output.visit_params(&join(prefix, "decoder.out"), f);
    }
}
