//! The synthesizer's beam search, batched across tasks: every live hypothesis of every task is
//! one row group (one LSTM stream per IO pair) of a single decoder step.
//!
//! Optionally grammar-constrained: tokens after which no program can be completed within the
//! length limit get probability zero ([`ProgramPda::allowed`]). The scores stay the model's own
//! log-probabilities (the mask is not renormalised), so constrained and plain beams compare.
//!
//! [`decode_tasks`] decodes a list of tasks in network batches, greedily or by beam search;
//! [`LikelihoodRanker`] scores whole programs for the rewrite stage.

use super::beam::{self, BeamProblem, PooledDecoder, Scored};
use super::sed::{RankRequest, Ranker};
use crate::data::task::Task;
use crate::lang::{ProgramPda, Token, VOCAB_SIZE};
use crate::model::grids::grid_tensor;
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

/// The synthesizer's side of the beam search: hypotheses are partial programs.
struct Programs<'a, B: Backend> {
    model: &'a Synthesizer<B>,
    max_len: usize,
}

impl<B: Backend> BeamProblem<B> for Programs<'_, B> {
    type Hypothesis = Partial;

    fn classes(&self) -> usize {
        VOCAB_SIZE
    }

    fn end(&self) -> usize {
        Token::End.id() as usize
    }

    fn input(&self, backend: &B, live: &[(usize, &Partial)]) -> B::Tensor {
        let ids: Vec<u32> = live
            .iter()
            .map(|(_, h)| h.tokens.last().copied().unwrap_or(Token::Start).id() as u32)
            .collect();
        self.model.embedding.forward(backend, &ids)
    }

    /// Grammar-constrained: the tokens the automaton allows within the length limit; otherwise
    /// only the end once the limit is reached.
    fn mask(&self, _item: usize, partial: &Partial, log_probs: &mut [f32]) {
        match &partial.pda {
            Some(pda) => {
                let allowed = pda.allowed(Some(self.max_len));
                for (id, lp) in log_probs.iter_mut().enumerate() {
                    if !allowed.contains(Token::ALL[id]) {
                        *lp = f32::NEG_INFINITY;
                    }
                }
            }
            None if partial.tokens.len() >= self.max_len => {
                for (id, lp) in log_probs.iter_mut().enumerate() {
                    if id != Token::End.id() as usize {
                        *lp = f32::NEG_INFINITY;
                    }
                }
            }
            None => {}
        }
    }

    fn extend(&self, _item: usize, partial: &Partial, class: usize) -> Partial {
        let token = Token::ALL[class];
        let mut child = partial.clone();
        child.tokens.push(token);
        if let Some(pda) = &mut child.pda {
            pda.push(token);
        }
        child
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
    let decoder = PooledDecoder {
        lstm: &model.decoder,
        output: &model.output,
        stepper: model.decoder.stepper(backend, Some(&io_embedding)),
        pairs,
    };
    let problem = Programs {
        model,
        max_len: config.max_len,
    };
    let start = Partial {
        tokens: Vec::new(),
        pda: config.grammar.then(ProgramPda::default),
    };
    beam::beam_search(
        backend,
        &decoder,
        &problem,
        n,
        config.beam,
        config.max_len,
        start,
    )
    .into_iter()
    .map(|beam| beam.into_iter().map(|h| h.map(|p| p.tokens)).collect())
    .collect()
}

/// Greedy decoding of `N` tasks (`[N · pairs, …]` grids): the beam of width 1 (at each step the
/// most likely token; on a tie the smallest token id), at most `max_len` tokens.
pub fn greedy<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    inputs: &B::Tensor,
    outputs: &B::Tensor,
    max_len: usize,
) -> Vec<Vec<Token>> {
    let config = SynthesisConfig {
        beam: 1,
        max_len,
        grammar: false,
    };
    beam::best_of(beam_search(backend, model, inputs, outputs, &config))
}

/// Decodes `tasks` with the synthesizer in batches of `batch` tasks: each task's candidates,
/// best first (greedy decoding is the beam of width 1: one candidate). `progress` is called with
/// the tasks of each batch decoded.
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
        let beams = beam_search(backend, model, &inputs, &outputs, config);
        out.extend(
            beams
                .into_iter()
                .map(|b| b.into_iter().map(|h| h.hypothesis).collect()),
        );
        progress(chunk.len());
    }
    out
}

/// The rewrite stage's ranking by the synthesizer's log-likelihood of each program given its
/// task's given examples. Each task's IO embedding is computed once, whatever the number of its
/// programs; programs are scored `batch` at a time.
pub struct LikelihoodRanker<'a, B: Backend> {
    pub backend: &'a B,
    pub synthesizer: &'a Synthesizer<B>,
    /// Programs per network batch.
    pub batch: usize,
}

impl<B: Backend> Ranker for LikelihoodRanker<'_, B> {
    fn scores(&self, requests: &[RankRequest]) -> Vec<Vec<f64>> {
        let (backend, model) = (self.backend, self.synthesizer);
        let pairs = model.config.pairs;
        let given = || requests.iter().flat_map(|r| r.task.given()[..pairs].iter());
        let inputs = grid_tensor(backend, given().map(|e| &e.input));
        let outputs = grid_tensor(backend, given().map(|e| &e.output));
        let (io_embedding, _) = model.encoder.forward(backend, &inputs, &outputs);
        // Every program with its task's position.
        let programs: Vec<(usize, Vec<Token>)> = requests
            .iter()
            .enumerate()
            .flat_map(|(r, request)| request.programs.iter().map(move |p| (r, p.to_vec())))
            .collect();
        let mut flat = Vec::with_capacity(programs.len());
        for chunk in programs.chunks(self.batch.max(1)) {
            let rows: Vec<u32> = chunk
                .iter()
                .flat_map(|&(r, _)| (0..pairs).map(move |j| (r * pairs + j) as u32))
                .collect();
            let io = backend.gather_rows(&io_embedding, &rows);
            let tokens: Vec<Vec<Token>> = chunk.iter().map(|(_, p)| p.clone()).collect();
            flat.extend(model.log_likelihoods(backend, &io, &tokens));
        }
        let mut flat = flat.into_iter();
        requests
            .iter()
            .map(|r| flat.by_ref().take(r.programs.len()).collect())
            .collect()
    }
}
