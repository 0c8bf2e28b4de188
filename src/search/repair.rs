//! The debugger's beam search over edit ops, batched across programs: each live hypothesis keeps
//! its own source pointer, previous op and last emitted token, and the pointer masks of the
//! reference's §6 apply (`<s>` never; past the source only `</s>` and insertions). Hypotheses are
//! turned into programs by applying their ops to the source. [`repair_programs`] repairs a list
//! of programs in network batches ([`network_batches`]: bounded in programs and, with
//! TraceEmbed, in trace states), keeping one answer each.

use super::beam::{self, BeamProblem, PooledDecoder, Scored};
use crate::data::edits::{allowed, apply, EditOp, NUM_OPS};
use crate::data::task::Task;
use crate::lang::{parse_tokens, Token};
use crate::model::debugger::{DebugItem, Debugger, DebuggerBatch};
use crate::nn::Backend;

/// Longest op sequence a repair produces (the reference's debugger beam search stops at 100).
pub const MAX_EDIT_OPS: usize = 100;

/// The most trace states a network batch of the debugger with TraceEmbed embeds at once (each a
/// grid of about 19 KB, and about 10 KB per layer's activation): a batch of long traces (up to
/// `--trace-steps` + 1 states on each of the five inputs) is cut to fewer programs, so that the
/// memory of a call does not grow with the batch times the trace length. A program with more
/// states than this is a batch of its own. Evaluation mode normalises with the running
/// statistics, so how programs are grouped does not change their repairs.
pub const MAX_BATCH_STATES: usize = 16_384;

/// The network batches of `items` (consecutive ranges, in order): at most `batch` programs each
/// and, with TraceEmbed (`with_trace`), at most [`MAX_BATCH_STATES`] states of the traces of
/// their first `pairs` examples, unless one program alone has more.
pub fn network_batches(
    items: &[DebugItem],
    pairs: usize,
    batch: usize,
    with_trace: bool,
) -> Vec<std::ops::Range<usize>> {
    let batch = batch.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut states = 0;
    for (i, item) in items.iter().enumerate() {
        let item_states = if with_trace {
            item.traces[..pairs].iter().map(|t| t.state_count()).sum()
        } else {
            0
        };
        if i > start && (i - start == batch || states + item_states > MAX_BATCH_STATES) {
            ranges.push(start..i);
            start = i;
            states = 0;
        }
        states += item_states;
    }
    if start < items.len() {
        ranges.push(start..items.len());
    }
    ranges
}

/// Ops of a hypothesis and the decoder's inputs for its next step.
#[derive(Clone, Debug)]
struct Edits {
    ops: Vec<EditOp>,
    pointer: usize,
    prev: EditOp,
    last: Token,
}

/// The debugger's side of the beam search: hypotheses are op sequences over each program's
/// source, read through the encoder's memory.
struct Repairs<'a, B: Backend> {
    model: &'a Debugger<B>,
    batch: &'a DebuggerBatch<B>,
    /// The encoder's memory `[T·N, 2H]`: row `t · N + b` is program `b`'s source position `t`.
    memory: B::Tensor,
    max_ops: usize,
}

impl<B: Backend> BeamProblem<B> for Repairs<'_, B> {
    type Hypothesis = Edits;

    fn classes(&self) -> usize {
        NUM_OPS
    }

    fn end(&self) -> usize {
        EditOp::End.id() as usize
    }

    fn input(&self, backend: &B, live: &[(usize, &Edits)]) -> B::Tensor {
        let n = self.batch.len();
        let prev: Vec<u32> = live.iter().map(|(_, e)| e.prev.id() as u32).collect();
        let pointer_rows: Vec<u32> = live
            .iter()
            .map(|&(b, e)| (e.pointer * n + b) as u32)
            .collect();
        let last: Vec<u32> = live.iter().map(|(_, e)| e.last.id() as u32).collect();
        self.model
            .decoder_input(backend, &self.memory, &prev, &pointer_rows, &last)
    }

    /// The §6 pointer masks, and only the end once `max_ops` ops are written.
    fn mask(&self, item: usize, edits: &Edits, log_probs: &mut [f32]) {
        let source_len = self.batch.sources[item].len();
        for (id, value) in log_probs.iter_mut().enumerate() {
            let ok = EditOp::from_id(id as u8).is_some_and(|op| {
                allowed(op, edits.pointer, source_len)
                    && (edits.ops.len() < self.max_ops || op == EditOp::End)
            });
            if !ok {
                *value = f32::NEG_INFINITY;
            }
        }
    }

    fn extend(&self, item: usize, edits: &Edits, class: usize) -> Edits {
        let op = EditOp::from_id(class as u8).expect("unmasked ops are valid");
        let source = &self.batch.sources[item];
        let mut child = edits.clone();
        child.last = op
            .emitted(source.get(edits.pointer).copied())
            .unwrap_or(Token::Unknown);
        child.prev = op;
        if op.advances_pointer() {
            child.pointer += 1;
        }
        child.ops.push(op);
        child
    }
}

/// Beam search over the edit ops of every program of `batch` (evaluation mode): `width`
/// hypotheses, at most `max_ops` ops each. Returns each program's candidate repairs, best first.
pub fn beam_search<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    batch: &DebuggerBatch<B>,
    width: usize,
    max_ops: usize,
) -> Vec<Vec<Scored<Vec<Token>>>> {
    if batch.is_empty() {
        return Vec::new();
    }
    let (memory, io_embedding) = model.encode(backend, batch);
    beam_search_encoded(backend, model, batch, memory, &io_embedding, width, max_ops)
}

/// [`beam_search`] from the program encoder's memory ([`Debugger::encode_program`]) and the IO
/// embedding `[N · pairs, ·]` of the batch's tasks, computed beforehand (once per task).
pub fn beam_search_encoded<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    batch: &DebuggerBatch<B>,
    memory: B::Tensor,
    io_embedding: &B::Tensor,
    width: usize,
    max_ops: usize,
) -> Vec<Vec<Scored<Vec<Token>>>> {
    let n = batch.len();
    if n == 0 {
        return Vec::new();
    }
    let decoder = PooledDecoder {
        lstm: &model.decoder,
        output: &model.output,
        stepper: model.decoder.stepper(backend, Some(io_embedding)),
        pairs: model.config.pairs,
    };
    let problem = Repairs {
        model,
        batch,
        memory,
        max_ops,
    };
    let start = Edits {
        ops: Vec::new(),
        pointer: 0,
        prev: EditOp::Start,
        last: Token::Start,
    };
    beam::beam_search(backend, &decoder, &problem, n, width, max_ops, start)
        .into_iter()
        .zip(&batch.sources)
        .map(|(beam, source)| {
            beam.into_iter()
                .map(|h| h.map(|e| apply(source, e.ops)))
                .collect()
        })
        .collect()
}

/// Greedy repair of every program of `batch`: the beam of width 1 (at each step the most likely
/// allowed op; on a tie the smallest op id), at most `max_ops` ops each.
pub fn greedy<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    batch: &DebuggerBatch<B>,
    max_ops: usize,
) -> Vec<Vec<Token>> {
    beam::best_of(beam_search(backend, model, batch, 1, max_ops))
}

/// How [`repair_programs`] decodes: `batch` programs per network batch, `beam` candidates per
/// program (greedy, the beam of width 1, with `beam` ≤ 1), at most `max_ops` edit ops each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairDecoding {
    pub batch: usize,
    pub beam: usize,
    pub max_ops: usize,
}

impl RepairDecoding {
    /// Greedy repairs, `batch` programs per network batch, at most [`MAX_EDIT_OPS`] ops each.
    pub fn greedy(batch: usize) -> RepairDecoding {
        RepairDecoding {
            batch,
            beam: 1,
            max_ops: MAX_EDIT_OPS,
        }
    }
}

/// One repair of each of `items`, decoded as `decoding` says: greedy with a beam ≤ 1, else the
/// first of the beam's candidates that passes the item's given examples (the top one if none
/// does), as the reference's mutation benchmark decodes.
pub fn repair_programs<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    items: &[DebugItem],
    decoding: RepairDecoding,
) -> Vec<Vec<Token>> {
    let RepairDecoding {
        batch,
        beam,
        max_ops,
    } = decoding;
    let trace = model.trace_embed.is_some();
    let pairs = model.config.pairs;
    let mut out = Vec::with_capacity(items.len());
    for range in network_batches(items, pairs, batch, trace) {
        let chunk = &items[range];
        let programs = DebuggerBatch::new(backend, chunk, pairs, trace);
        if beam <= 1 {
            out.extend(greedy(backend, model, &programs, max_ops));
            continue;
        }
        let beams = beam_search(backend, model, &programs, beam, max_ops);
        out.extend(beams.into_iter().zip(chunk).map(|(hyps, item)| {
            let passes = |tokens: &[Token]| {
                parse_tokens(tokens, &Default::default())
                    .is_ok_and(|p| Task::passes(&p, item.examples).iter().all(|&ok| ok))
            };
            let first = hyps.iter().position(|h| passes(&h.hypothesis)).unwrap_or(0);
            hyps.into_iter()
                .nth(first)
                .map(|h| h.hypothesis)
                .unwrap_or_default()
        }));
    }
    out
}
