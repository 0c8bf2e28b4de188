//! The synthesizer's beam search, batched across tasks: every live hypothesis of every task is
//! one row group (one LSTM stream per IO pair) of a single decoder step.
//!
//! Optionally grammar-constrained: tokens after which no program can be completed within the
//! length limit get probability zero ([`ProgramPda::allowed`]). The scores stay the model's own
//! log-probabilities (the mask is not renormalised), so constrained and plain beams compare.
//!
//! [`decode_tasks`] decodes a list of tasks in network batches, greedily or by beam search.

use super::beam::{log_softmax, Beam, Scored};
use crate::data::task::Task;
use crate::lang::{ProgramPda, Token, VOCAB_SIZE};
use crate::model::grids::grid_tensor;
use crate::model::pooled;
use crate::model::synthesizer::Synthesizer;
use crate::nn::Backend;

/// How the synthesizer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthesisConfig {
    /// Beam width (1: greedy).
    pub beam: usize,
    /// Most program tokens (without `<S>` and `</S>`).
    pub max_len: usize,
    /// Mask tokens that cannot continue a program.
    pub grammar: bool,
}

impl Default for SynthesisConfig {
    /// The reference's "LGRL" setting: beam 32, 100 tokens, no grammar mask.
    fn default() -> Self {
        SynthesisConfig {
            beam: 32,
            max_len: 100,
            grammar: false,
        }
    }
}

/// A partial program.
#[derive(Clone, Debug)]
struct Partial {
    tokens: Vec<Token>,
    pda: Option<ProgramPda>,
}

impl Partial {
    /// The log-probabilities of the next token (masked ones `-inf`).
    fn mask(&self, log_probs: &mut [f32], max_len: usize) {
        match &self.pda {
            Some(pda) => {
                let allowed = pda.allowed(Some(max_len));
                for (id, lp) in log_probs.iter_mut().enumerate() {
                    if !allowed.contains(Token::ALL[id]) {
                        *lp = f32::NEG_INFINITY;
                    }
                }
            }
            None if self.tokens.len() >= max_len => {
                for (id, lp) in log_probs.iter_mut().enumerate() {
                    if id != Token::End.id() as usize {
                        *lp = f32::NEG_INFINITY;
                    }
                }
            }
            None => {}
        }
    }
}

/// Beam search for `N` tasks (`[N · pairs, …]` grids). Returns each task's hypotheses, best
/// first by the rules of [`super::beam`], each with its program tokens.
pub fn beam_search<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    inputs: &B::Tensor,
    outputs: &B::Tensor,
    config: &SynthesisConfig,
) -> Vec<Vec<Scored<Vec<Token>>>> {
    let pairs = model.config.pairs;
    let n = backend.shape(inputs)[0] / pairs;
    let (io_embedding, _) = model.encoder.forward(backend, inputs, outputs);
    let base_stepper = model.decoder.stepper(backend, Some(&io_embedding));
    let mut stepper = base_stepper.clone();
    let mut state = model.decoder.zero_state(backend, n * pairs);
    let start = Partial {
        tokens: Vec::new(),
        pda: config.grammar.then(ProgramPda::default),
    };
    let mut beams: Vec<Beam<Partial>> = (0..n)
        .map(|_| Beam::new(config.beam, start.clone()))
        .collect();
    // The tasks whose live hypotheses are the state's rows, in order.
    let mut active: Vec<usize> = (0..n).collect();
    for _ in 0..=config.max_len {
        active.retain(|&b| !beams[b].is_done());
        if active.is_empty() {
            break;
        }
        let ids: Vec<u32> = active
            .iter()
            .flat_map(|&b| beams[b].live())
            .map(|h| {
                let last = h.hypothesis.tokens.last().copied().unwrap_or(Token::Start);
                last.id() as u32
            })
            .collect();
        let x = model.embedding.forward(backend, &ids);
        let (logits, next) = pooled::step(
            backend,
            &model.decoder,
            &model.output,
            &stepper,
            &state,
            &x,
            pairs,
        );
        let mut row = 0;
        let mut state_rows = Vec::new();
        let mut stepper_rows = Vec::new();
        for &b in &active {
            let beam = &mut beams[b];
            let live = beam.live().len();
            let mut log_probs = Vec::with_capacity(live * VOCAB_SIZE);
            for (i, h) in beam.live().iter().enumerate() {
                let r = row + i;
                let mut lp = log_softmax(&logits[r * VOCAB_SIZE..(r + 1) * VOCAB_SIZE]);
                h.hypothesis.mask(&mut lp, config.max_len);
                log_probs.extend(lp);
            }
            let mut finished = Vec::new();
            let mut kept = Vec::new();
            for e in beam.top_expansions(&log_probs, VOCAB_SIZE) {
                let parent = &beam.live()[e.parent].hypothesis;
                let token = Token::ALL[e.symbol];
                let mut child = parent.clone();
                if token == Token::End {
                    finished.push(Scored {
                        hypothesis: child,
                        log_prob: e.log_prob,
                        finished: true,
                    });
                    continue;
                }
                child.tokens.push(token);
                if let Some(pda) = &mut child.pda {
                    pda.push(token);
                }
                kept.push(Scored {
                    hypothesis: child,
                    log_prob: e.log_prob,
                    finished: false,
                });
                let parent_row = row + e.parent;
                for j in 0..pairs {
                    state_rows.push((parent_row * pairs + j) as u32);
                    stepper_rows.push((b * pairs + j) as u32);
                }
            }
            row += live;
            beam.advance(finished, kept);
            if beam.is_done() {
                // Its rows were added above only for live hypotheses; drop them again.
                let keep = beam.live().len() * pairs;
                let drop_from = state_rows.len() - keep;
                state_rows.truncate(drop_from);
                stepper_rows.truncate(drop_from);
            }
        }
        if state_rows.is_empty() {
            break;
        }
        state = next.select(backend, &state_rows);
        stepper = base_stepper.select(backend, &stepper_rows);
    }
    beams
        .into_iter()
        .map(|beam| {
            beam.into_results()
                .into_iter()
                .map(|h| Scored {
                    hypothesis: h.hypothesis.tokens,
                    log_prob: h.log_prob,
                    finished: h.finished,
                })
                .collect()
        })
        .collect()
}

/// Decodes `tasks` with the synthesizer in batches of `batch` tasks: each task's candidates,
/// best first (one with greedy decoding, width 1 without the grammar mask). `progress` is called
/// with the tasks of each batch decoded.
pub fn decode_tasks<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    tasks: &[&Task],
    config: &SynthesisConfig,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Vec<Vec<Vec<Token>>> {
    let pairs = model.config.pairs;
    let mut out = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(batch.max(1)) {
        let given = || chunk.iter().flat_map(|t| t.given()[..pairs].iter());
        let inputs = grid_tensor(backend, given().map(|e| &e.input));
        let outputs = grid_tensor(backend, given().map(|e| &e.output));
        if config.beam <= 1 && !config.grammar {
            let programs = model.decode_greedy(backend, &inputs, &outputs, config.max_len);
            out.extend(programs.into_iter().map(|p| vec![p]));
        } else {
            let beams = beam_search(backend, model, &inputs, &outputs, config);
            out.extend(
                beams
                    .into_iter()
                    .map(|b| b.into_iter().map(|h| h.hypothesis).collect()),
            );
        }
        progress(chunk.len());
    }
    out
}
