//! The decoder head shared by the synthesizer and the debugger: an LSTM that runs one stream per
//! IO pair (the pairs of a task in consecutive rows, the IO embedding as a static input), the
//! element-wise max over each task's streams, and a linear layer to the logits.

use crate::nn::layers::{Linear, Lstm, LstmCache, LstmState, LstmStepper};
use crate::nn::Backend;

/// What [`forward`] keeps for [`backward`].
pub struct PooledCache<B: Backend> {
    lstm: LstmCache<B>,
    /// `[T·N, hidden]`: the pooled outputs of all steps, and the winning stream per step.
    pooled: B::Tensor,
    argmax: Vec<B::Index>,
    tasks: usize,
    pairs: usize,
}

/// Teacher-forced pass: `inputs` one `[N·pairs, ·]` tensor per step, `io` `[N·pairs, ·]`, each
/// stream of `stream_lengths` steps. Returns the logits `[T·N, classes]`, step-major.
pub fn forward<B: Backend>(
    backend: &B,
    decoder: &Lstm<B>,
    output: &Linear<B>,
    inputs: &[B::Tensor],
    io: &B::Tensor,
    stream_lengths: &[usize],
    pairs: usize,
) -> (B::Tensor, PooledCache<B>) {
    let (out, lstm) = decoder.forward_with_static(backend, inputs, Some(io), stream_lengths);
    let mut pooled_steps = Vec::with_capacity(out.outputs.len());
    let mut argmax = Vec::with_capacity(out.outputs.len());
    for y in &out.outputs {
        let (p, a) = backend.max_groups(y, pairs);
        pooled_steps.push(p);
        argmax.push(a);
    }
    let pooled = backend.concat(&pooled_steps.iter().collect::<Vec<_>>(), 0);
    let logits = output.forward(backend, &pooled);
    let cache = PooledCache {
        lstm,
        pooled,
        argmax,
        tasks: stream_lengths.len() / pairs.max(1),
        pairs,
    };
    (logits, cache)
}

/// Backward from the logits' gradient: accumulates the LSTM's and the linear layer's gradients
/// and returns the gradients of the per-step inputs and of the IO embedding.
pub fn backward<B: Backend>(
    backend: &B,
    decoder: &mut Lstm<B>,
    output: &mut Linear<B>,
    cache: &PooledCache<B>,
    d_logits: &B::Tensor,
) -> (Vec<B::Tensor>, B::Tensor) {
    let n = cache.tasks;
    let d_pooled = output
        .backward(backend, &cache.pooled, d_logits, true)
        .expect("input gradient requested");
    let d_outputs: Vec<B::Tensor> = cache
        .argmax
        .iter()
        .enumerate()
        .map(|(t, argmax)| {
            let d = backend.slice(&d_pooled, 0, t * n, n);
            backend.max_groups_backward(&d, argmax, n * cache.pairs)
        })
        .collect();
    let (d_inputs, d_io) =
        decoder.backward_with_static(backend, &cache.lstm, &d_outputs, None, None, true);
    (d_inputs, d_io.expect("the decoder had a static input"))
}

/// One decoding step of `N` sequences: `input` is `[N, ·]`, shared by each sequence's `pairs`
/// streams (rows `n · pairs + j` of the state). Returns the logits `[N, classes]` (on the host)
/// and the new state.
pub fn step<B: Backend>(
    backend: &B,
    decoder: &Lstm<B>,
    output: &Linear<B>,
    stepper: &LstmStepper<B>,
    state: &LstmState<B>,
    input: &B::Tensor,
    pairs: usize,
) -> (Vec<f32>, LstmState<B>) {
    let (y, next) = decoder.step_grouped(backend, stepper, state, input, pairs);
    let (pooled, _) = backend.max_groups(&y, pairs);
    (backend.to_f32(&output.forward(backend, &pooled)), next)
}

/// The index of the largest score (the first one on ties).
pub fn argmax(scores: &[f32]) -> usize {
    (0..scores.len()).fold(0, |best, j| if scores[j] > scores[best] { j } else { best })
}

/// How many rows of `logits` (`classes` wide) have their target (not `ignore`) ranked first.
pub fn count_correct(logits: &[f32], targets: &[u32], classes: usize, ignore: u32) -> usize {
    targets
        .iter()
        .enumerate()
        .filter(|&(row, &t)| {
            t != ignore && argmax(&logits[row * classes..(row + 1) * classes]) as u32 == t
        })
        .count()
}
