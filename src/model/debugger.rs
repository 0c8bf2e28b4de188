//! The SED debugger (`LGRLRefineKarel`): given a buggy program, the IO examples and the program's
//! execution traces, it predicts the edit ops (§6 of the reference) that repair the program.
//!
//! ```text
//! pairs ──IoEncoder──▶ io [N·5, 512]
//! trace states ──TraceEmbed──▶ [S, 256] ──token ↔ state sum──▶ trace feature per token [·, 256]
//! tokens + </S> ──Embedding(43, 256)──▶ [trace ‖ token] ──2-layer biLSTM(256)──▶ memory [·, 512]
//! step k: [op_emb(prev op) 256 ‖ memory[pointer] 512 ‖ tok_emb(last token) 256] ‖ io
//!        ──2-layer LSTM(1536 → 256), one stream per pair──max over pairs──Linear(256 → 90)──▶ op
//! ```
//!
//! TraceEmbed can be switched off (`trace: None`, the paper's "No TraceEmbed" rows): the program
//! encoder then sees token embeddings only. [`DebuggerConfig::paper`] has 21,990,016 parameters
//! with TraceEmbed and 15,908,736 without. Training is teacher-forced
//! ([`crate::data::edits::TeacherForcing`]); the loss is the mean cross-entropy over all ops of
//! the batch. Decoding applies the pointer masks of §6 (`<s>` never; once the pointer is past the
//! source, only `</s>` and insertions).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::grids::grid_tensor;
use super::io_encoder::{IoEncoder, IoEncoderCache, IoEncoderConfig};
use super::pooled::{self, count_correct, PooledCache};
use super::trace_embed::{TraceEmbed, TraceEmbedCache, TraceEmbedConfig};
use crate::data::edits::{TeacherForcing, NUM_OPS};
use crate::data::task::Example;
use crate::lang::{Token, VOCAB_SIZE};
use crate::nn::layers::{Embedding, Linear, Lstm, LstmCache};
use crate::nn::param::{join, Module, Param};
use crate::nn::{Backend, SparseRows};
use crate::vm::{TokenStateLinks, Trace};

/// Sizes of the debugger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebuggerConfig {
    pub io: IoEncoderConfig,
    /// Token and op embedding size.
    pub embedding: usize,
    /// Hidden size of the program encoder (per direction) and of the edit decoder.
    pub hidden: usize,
    pub layers: usize,
    /// IO pairs per task.
    pub pairs: usize,
    /// TraceEmbed's sizes, or `None` without TraceEmbed.
    pub trace: Option<TraceEmbedConfig>,
}

impl DebuggerConfig {
    /// SED's sizes, with or without TraceEmbed.
    pub fn paper(trace: bool) -> DebuggerConfig {
        DebuggerConfig {
            io: IoEncoderConfig::paper(),
            embedding: 256,
            hidden: 256,
            layers: 2,
            pairs: 5,
            trace: trace.then(TraceEmbedConfig::paper),
        }
    }

    /// A small debugger that trains in minutes on two CPU cores.
    pub fn tiny(trace: bool) -> DebuggerConfig {
        DebuggerConfig {
            io: IoEncoderConfig {
                conv_channels: 8,
                output: 64,
                ..IoEncoderConfig::paper()
            },
            embedding: 32,
            hidden: 64,
            layers: 2,
            pairs: 5,
            // One block instead of three: the trace CNN runs on every state of every trace, and
            // is most of a step's cost on a CPU.
            trace: trace.then_some(TraceEmbedConfig {
                channels: 8,
                blocks: 1,
                output: 32,
            }),
        }
    }

    fn trace_width(&self) -> usize {
        self.trace.map_or(0, |t| t.output)
    }
}

/// One program to repair with its task's given examples and, with TraceEmbed, its traces on
/// their inputs (one per example).
#[derive(Clone, Copy, Debug)]
pub struct DebugItem<'a> {
    pub source: &'a [Token],
    pub examples: &'a [Example],
    pub traces: &'a [Trace],
}

/// The trace part of a batch.
#[derive(Clone, Debug)]
pub struct TraceBatch<B: Backend> {
    /// `[S, grid channels, H, W]`: every state of every trace.
    pub states: B::Tensor,
    /// The IO pair (row of the batch's grids) of each state.
    pub pair_of_state: Vec<u32>,
    /// Token ↔ state sum: row `t · N + b` is token `t` of program `b`.
    pub links: SparseRows,
}

/// A batch of `N` programs to repair.
#[derive(Clone, Debug)]
pub struct DebuggerBatch<B: Backend> {
    /// `[N · pairs, channels, H, W]`, task-major.
    pub inputs: B::Tensor,
    pub outputs: B::Tensor,
    pub sources: Vec<Vec<Token>>,
    pub trace: Option<TraceBatch<B>>,
}

impl<B: Backend> DebuggerBatch<B> {
    /// Builds a batch; the traces are used when `with_trace`.
    pub fn new(backend: &B, items: &[DebugItem], pairs: usize, with_trace: bool) -> Self {
        let n = items.len();
        let examples = || items.iter().flat_map(|i| i.examples[..pairs].iter());
        let inputs = grid_tensor(backend, examples().map(|e| &e.input));
        let outputs = grid_tensor(backend, examples().map(|e| &e.output));
        let trace = with_trace.then(|| {
            let mut states = Vec::new();
            let mut pair_of_state = Vec::new();
            let mut triples = Vec::new();
            let steps = items.iter().map(|i| i.source.len() + 1).max().unwrap_or(1);
            for (b, item) in items.iter().enumerate() {
                let traces = &item.traces[..pairs];
                let mut first_state = Vec::with_capacity(pairs);
                for (j, trace) in traces.iter().enumerate() {
                    first_state.push(states.len());
                    for state in trace.states() {
                        states.push(state);
                        pair_of_state.push((b * pairs + j) as u32);
                    }
                }
                let links = TokenStateLinks::new(traces, item.source.len());
                for t in 0..links.token_count() {
                    for link in links.of_token(t) {
                        let trace = link.trace as usize;
                        if (link.state as usize) < traces[trace].state_count() {
                            let col = first_state[trace] + link.state as usize;
                            triples.push(((t * n + b) as u32, col as u32, link.weight));
                        }
                    }
                }
            }
            TraceBatch {
                states: grid_tensor(backend, states.iter()),
                pair_of_state,
                links: SparseRows::from_triples(steps * n, &triples),
            }
        });
        DebuggerBatch {
            inputs,
            outputs,
            sources: items.iter().map(|i| i.source.to_vec()).collect(),
            trace,
        }
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Encoder steps: the longest source plus `</S>`.
    fn encoder_steps(&self) -> usize {
        self.sources.iter().map(|s| s.len() + 1).max().unwrap_or(1)
    }

    /// Token ids at encoder step `t` (`</S>` at each source's end, padding past it).
    fn source_ids(&self, t: usize) -> Vec<u32> {
        self.sources
            .iter()
            .map(|s| s.get(t).copied().unwrap_or(Token::End).id() as u32)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct Debugger<B: Backend> {
    pub config: DebuggerConfig,
    pub io_encoder: IoEncoder<B>,
    pub trace_embed: Option<TraceEmbed<B>>,
    pub code_embedding: Embedding<B>,
    pub encoder: Lstm<B>,
    pub op_embedding: Embedding<B>,
    pub token_embedding: Embedding<B>,
    pub decoder: Lstm<B>,
    pub output: Linear<B>,
}

/// The result of a training step's forward pass.
pub struct DebuggerForward<B: Backend> {
    pub loss: f64,
    /// Ops counted in the loss, and how many the model ranked first.
    pub tokens: usize,
    pub correct: usize,
    cache: Cache<B>,
}

struct Cache<B: Backend> {
    io: IoEncoderCache<B>,
    trace: Option<(TraceEmbedCache<B>, usize)>,
    source_ids: Vec<Vec<u32>>,
    encoder: LstmCache<B>,
    memory_rows: usize,
    prev_ids: Vec<Vec<u32>>,
    last_ids: Vec<Vec<u32>>,
    pointer_rows: Vec<u32>,
    head: PooledCache<B>,
    d_logits: B::Tensor,
}

/// The rows of each task's streams: `b` repeated `pairs` times, for every `b`.
fn stream_rows(tasks: usize, pairs: usize) -> Vec<u32> {
    (0..tasks as u32)
        .flat_map(|b| std::iter::repeat_n(b, pairs))
        .collect()
}

impl<B: Backend> Debugger<B> {
    pub fn new<R: Rng + ?Sized>(backend: &B, config: DebuggerConfig, rng: &mut R) -> Debugger<B> {
        let io_encoder = IoEncoder::new(backend, config.io, rng);
        let trace_embed = config.trace.map(|t| {
            TraceEmbed::new(
                backend,
                t,
                config.io.grid_channels,
                config.io.height,
                config.io.width,
                rng,
            )
        });
        let e = config.embedding;
        let h = config.hidden;
        let code_embedding = Embedding::new(backend, VOCAB_SIZE, e, rng);
        let encoder = Lstm::new(
            backend,
            config.trace_width() + e,
            h,
            config.layers,
            true,
            rng,
        );
        let op_embedding = Embedding::new(backend, NUM_OPS, e, rng);
        let token_embedding = Embedding::new(backend, VOCAB_SIZE, e, rng);
        let decoder = Lstm::new(
            backend,
            e + 2 * h + e + config.io.output,
            h,
            config.layers,
            false,
            rng,
        );
        let output = Linear::new(backend, h, NUM_OPS, false, rng);
        Debugger {
            config,
            io_encoder,
            trace_embed,
            code_embedding,
            encoder,
            op_embedding,
            token_embedding,
            decoder,
            output,
        }
    }

    /// The program encoder's input at each step, from the per-token trace features (`[T·N, ·]`).
    fn encoder_inputs(
        &self,
        backend: &B,
        batch: &DebuggerBatch<B>,
        trace_features: Option<&B::Tensor>,
    ) -> (Vec<Vec<u32>>, Vec<B::Tensor>) {
        let n = batch.len();
        let steps = batch.encoder_steps();
        let ids: Vec<Vec<u32>> = (0..steps).map(|t| batch.source_ids(t)).collect();
        let inputs = ids
            .iter()
            .enumerate()
            .map(|(t, ids)| {
                let embedded = self.code_embedding.forward(backend, ids);
                match trace_features {
                    Some(f) => backend.concat(&[&backend.slice(f, 0, t * n, n), &embedded], 1),
                    None => embedded,
                }
            })
            .collect();
        (ids, inputs)
    }

    /// Decoder input of one step for `N` programs (or hypotheses): `[N, ·]`.
    pub(crate) fn decoder_input(
        &self,
        backend: &B,
        memory: &B::Tensor,
        prev_ops: &[u32],
        pointer_rows: &[u32],
        last_tokens: &[u32],
    ) -> B::Tensor {
        backend.concat(
            &[
                &self.op_embedding.forward(backend, prev_ops),
                &backend.gather_rows(memory, pointer_rows),
                &self.token_embedding.forward(backend, last_tokens),
            ],
            1,
        )
    }

    /// Forward pass of a training step with teacher forcing (`targets[b]` for `batch.sources[b]`);
    /// keeps what backward needs. Batch normalisation runs in training mode.
    pub fn forward_train(
        &mut self,
        backend: &B,
        batch: &DebuggerBatch<B>,
        targets: &[TeacherForcing],
    ) -> DebuggerForward<B> {
        assert_eq!(targets.len(), batch.len(), "one target per program");
        let n = batch.len();
        let pairs = self.config.pairs;
        let (io_embedding, io) = self
            .io_encoder
            .forward(backend, &batch.inputs, &batch.outputs);
        // TraceEmbed and the token ↔ state sum.
        let trace = match (&mut self.trace_embed, &batch.trace) {
            (Some(embed), Some(tb)) => {
                let io_grids = backend.concat(&[&batch.inputs, &batch.outputs], 1);
                let (states, cache) =
                    embed.forward_train(backend, &io_grids, &tb.states, &tb.pair_of_state);
                let rows = backend.shape(&states)[0];
                Some((backend.sparse_rows(&tb.links, &states), cache, rows))
            }
            (Some(_), None) => panic!("a debugger with TraceEmbed needs traces in its batch"),
            _ => None,
        };
        let (source_ids, enc_inputs) =
            self.encoder_inputs(backend, batch, trace.as_ref().map(|t| &t.0));
        let enc_lengths: Vec<usize> = batch.sources.iter().map(|s| s.len() + 1).collect();
        let (enc_out, encoder) = self.encoder.forward(backend, &enc_inputs, &enc_lengths);
        let memory = backend.concat(&enc_out.outputs.iter().collect::<Vec<_>>(), 0);
        let memory_rows = backend.shape(&memory)[0];
        // Decoder, teacher-forced.
        let steps = targets.iter().map(|t| t.len()).max().unwrap_or(1);
        let at = |b: usize, k: usize| k.min(targets[b].len().saturating_sub(1));
        let mut prev_ids = Vec::with_capacity(steps);
        let mut last_ids = Vec::with_capacity(steps);
        let mut pointer_rows = Vec::with_capacity(steps * n);
        let mut dec_inputs = Vec::with_capacity(steps);
        for k in 0..steps {
            let prev: Vec<u32> = (0..n)
                .map(|b| targets[b].prev_ops[at(b, k)].id() as u32)
                .collect();
            let last: Vec<u32> = (0..n)
                .map(|b| targets[b].last_tokens[at(b, k)].id() as u32)
                .collect();
            let rows: Vec<u32> = (0..n)
                .map(|b| (targets[b].positions[at(b, k)] * n + b) as u32)
                .collect();
            let x = self.decoder_input(backend, &memory, &prev, &rows, &last);
            dec_inputs.push(backend.gather_rows(&x, &stream_rows(n, pairs)));
            prev_ids.push(prev);
            last_ids.push(last);
            pointer_rows.extend(rows);
        }
        let stream_lengths: Vec<usize> = targets
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.len(), pairs))
            .collect();
        let (logits, head) = pooled::forward(
            backend,
            &self.decoder,
            &self.output,
            &dec_inputs,
            &io_embedding,
            &stream_lengths,
            pairs,
        );
        const IGNORE: u32 = u32::MAX;
        let target_ids: Vec<u32> = (0..steps)
            .flat_map(|k| {
                targets.iter().map(move |t| match t.targets.get(k) {
                    Some(op) => op.id() as u32,
                    None => IGNORE,
                })
            })
            .collect();
        let (loss, d_logits, tokens) = backend.cross_entropy(&logits, &target_ids, IGNORE, None);
        let correct = count_correct(&backend.to_f32(&logits), &target_ids, NUM_OPS, IGNORE);
        DebuggerForward {
            loss,
            tokens,
            correct,
            cache: Cache {
                io,
                trace: trace.map(|(_, cache, rows)| (cache, rows)),
                source_ids,
                encoder,
                memory_rows,
                prev_ids,
                last_ids,
                pointer_rows,
                head,
                d_logits,
            },
        }
    }

    /// Backward pass of a training step: accumulates every parameter gradient.
    pub fn backward(&mut self, backend: &B, forward: DebuggerForward<B>, batch: &DebuggerBatch<B>) {
        let cache = forward.cache;
        let n = batch.len();
        let pairs = self.config.pairs;
        let (e, h) = (self.config.embedding, self.config.hidden);
        let (d_inputs, d_io) = pooled::backward(
            backend,
            &mut self.decoder,
            &mut self.output,
            &cache.head,
            &cache.d_logits,
        );
        let streams = stream_rows(n, pairs);
        let mut d_memory_parts = Vec::with_capacity(d_inputs.len());
        for (k, d) in d_inputs.iter().enumerate() {
            let d_task = backend.scatter_add_rows(d, &streams, n);
            self.op_embedding.backward(
                backend,
                &cache.prev_ids[k],
                &backend.slice(&d_task, 1, 0, e),
            );
            d_memory_parts.push(backend.slice(&d_task, 1, e, 2 * h));
            self.token_embedding.backward(
                backend,
                &cache.last_ids[k],
                &backend.slice(&d_task, 1, e + 2 * h, e),
            );
        }
        let d_memory_parts = backend.concat(&d_memory_parts.iter().collect::<Vec<_>>(), 0);
        let d_memory =
            backend.scatter_add_rows(&d_memory_parts, &cache.pointer_rows, cache.memory_rows);
        let enc_steps = cache.source_ids.len();
        let d_enc_out: Vec<B::Tensor> = (0..enc_steps)
            .map(|t| backend.slice(&d_memory, 0, t * n, n))
            .collect();
        let d_enc_in = self
            .encoder
            .backward(backend, &cache.encoder, &d_enc_out, None, None, true);
        let trace_width = self.config.trace_width();
        let mut d_trace_parts = Vec::with_capacity(enc_steps);
        for (ids, d) in cache.source_ids.iter().zip(&d_enc_in) {
            if trace_width > 0 {
                d_trace_parts.push(backend.slice(d, 1, 0, trace_width));
            }
            self.code_embedding
                .backward(backend, ids, &backend.slice(d, 1, trace_width, e));
        }
        if let (Some(embed), Some((trace_cache, rows)), Some(tb)) =
            (&mut self.trace_embed, &cache.trace, &batch.trace)
        {
            let d_features = backend.concat(&d_trace_parts.iter().collect::<Vec<_>>(), 0);
            let d_states = backend.sparse_rows_backward(&tb.links, &d_features, *rows);
            let io_grids = backend.concat(&[&batch.inputs, &batch.outputs], 1);
            embed.backward(
                backend,
                trace_cache,
                &io_grids,
                &tb.states,
                &tb.pair_of_state,
                &d_states,
            );
        }
        self.io_encoder.backward(backend, &cache.io, &d_io);
    }

    /// The program memory `[T·N, 2H]` and the IO embedding `[N·pairs, ·]`, in evaluation mode.
    pub(crate) fn encode(&self, backend: &B, batch: &DebuggerBatch<B>) -> (B::Tensor, B::Tensor) {
        let (io_embedding, _) = self
            .io_encoder
            .forward(backend, &batch.inputs, &batch.outputs);
        (self.encode_program(backend, batch), io_embedding)
    }

    /// The program encoder's memory `[T · N, 2 · hidden]` for `batch` (evaluation mode): what
    /// [`Debugger::encode`] computes besides the IO embedding, which depends on the task alone.
    pub fn encode_program(&self, backend: &B, batch: &DebuggerBatch<B>) -> B::Tensor {
        let features = match (&self.trace_embed, &batch.trace) {
            (Some(embed), Some(tb)) => {
                let io_grids = backend.concat(&[&batch.inputs, &batch.outputs], 1);
                let states = embed.forward_eval(backend, &io_grids, &tb.states, &tb.pair_of_state);
                Some(backend.sparse_rows(&tb.links, &states))
            }
            (Some(_), None) => panic!("a debugger with TraceEmbed needs traces in its batch"),
            _ => None,
        };
        let (_, inputs) = self.encoder_inputs(backend, batch, features.as_ref());
        let lengths: Vec<usize> = batch.sources.iter().map(|s| s.len() + 1).collect();
        let (out, _) = self.encoder.forward(backend, &inputs, &lengths);
        backend.concat(&out.outputs.iter().collect::<Vec<_>>(), 0)
    }
}

impl<B: Backend> Module<B> for Debugger<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        self.io_encoder.visit_params(&join(prefix, "io_encoder"), f);
        if let Some(t) = &mut self.trace_embed {
            t.visit_params(&join(prefix, "trace_embed"), f);
        }
        self.code_embedding
            .visit_params(&join(prefix, "encoder.embedding"), f);
        self.encoder.visit_params(&join(prefix, "encoder.lstm"), f);
        self.op_embedding
            .visit_params(&join(prefix, "decoder.op_embedding"), f);
        self.token_embedding
            .visit_params(&join(prefix, "decoder.token_embedding"), f);
        self.decoder.visit_params(&join(prefix, "decoder.lstm"), f);
        self.output.visit_params(&join(prefix, "decoder.out"), f);
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::Tensor)) {
        if let Some(t) = &mut self.trace_embed {
            t.visit_buffers(&join(prefix, "trace_embed"), f);
        }
    }
}
