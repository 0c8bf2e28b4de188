//! The debugger's beam search over edit ops, batched across programs: each live hypothesis keeps
//! its own source pointer, previous op and last emitted token, and the pointer masks of the
//! reference's §6 apply (`<s>` never; past the source only `</s>` and insertions). Hypotheses are
//! turned into programs by applying their ops to the source. [`repair_programs`] repairs a list
//! of programs in network batches, keeping one answer each.

use super::beam::{log_softmax, Beam, Scored};
use crate::data::edits::{allowed, apply, EditOp, NUM_OPS};
use crate::data::task::Task;
use crate::lang::{parse_tokens, Token};
use crate::model::debugger::{DebugItem, Debugger, DebuggerBatch};
use crate::model::pooled;
use crate::nn::Backend;

/// Longest op sequence a repair produces (the reference's debugger beam search stops at 100).
pub const MAX_EDIT_OPS: usize = 100;

/// Ops of a hypothesis and the decoder's inputs for its next step.
#[derive(Clone, Debug)]
struct Edits {
    ops: Vec<EditOp>,
    pointer: usize,
    prev: EditOp,
    last: Token,
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
    let n = batch.len();
    if n == 0 {
        return Vec::new();
    }
    let pairs = model.config.pairs;
    let (memory, io_embedding) = model.encode(backend, batch);
    let base_stepper = model.decoder.stepper(backend, Some(&io_embedding));
    let mut stepper = base_stepper.clone();
    let mut state = model.decoder.zero_state(backend, n * pairs);
    let start = Edits {
        ops: Vec::new(),
        pointer: 0,
        prev: EditOp::Start,
        last: Token::Start,
    };
    let mut beams: Vec<Beam<Edits>> = (0..n).map(|_| Beam::new(width, start.clone())).collect();
    let mut active: Vec<usize> = (0..n).collect();
    for _ in 0..=max_ops {
        active.retain(|&b| !beams[b].is_done());
        if active.is_empty() {
            break;
        }
        // One decoder row per live hypothesis; its program's memory row is `pointer · N + b`.
        let mut prev = Vec::new();
        let mut pointer_rows = Vec::new();
        let mut last = Vec::new();
        for &b in &active {
            for h in beams[b].live() {
                let e = &h.hypothesis;
                prev.push(e.prev.id() as u32);
                pointer_rows.push((e.pointer * n + b) as u32);
                last.push(e.last.id() as u32);
            }
        }
        let x = model.decoder_input(backend, &memory, &prev, &pointer_rows, &last);
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
            let source = &batch.sources[b];
            let beam = &mut beams[b];
            let live = beam.live().len();
            let mut log_probs = Vec::with_capacity(live * NUM_OPS);
            for (i, h) in beam.live().iter().enumerate() {
                let r = row + i;
                let mut lp = log_softmax(&logits[r * NUM_OPS..(r + 1) * NUM_OPS]);
                let e = &h.hypothesis;
                for (id, value) in lp.iter_mut().enumerate() {
                    let ok = EditOp::from_id(id as u8).is_some_and(|op| {
                        allowed(op, e.pointer, source.len())
                            && (e.ops.len() < max_ops || op == EditOp::End)
                    });
                    if !ok {
                        *value = f32::NEG_INFINITY;
                    }
                }
                log_probs.extend(lp);
            }
            let mut finished = Vec::new();
            let mut kept = Vec::new();
            for choice in beam.top_expansions(&log_probs, NUM_OPS) {
                let parent = &beam.live()[choice.parent].hypothesis;
                let op = EditOp::from_id(choice.symbol as u8).expect("unmasked ops are valid");
                let mut child = parent.clone();
                if op == EditOp::End {
                    finished.push(Scored {
                        hypothesis: child,
                        log_prob: choice.log_prob,
                        finished: true,
                    });
                    continue;
                }
                child.last = op
                    .emitted(source.get(parent.pointer).copied())
                    .unwrap_or(Token::Unknown);
                child.prev = op;
                if op.advances_pointer() {
                    child.pointer += 1;
                }
                child.ops.push(op);
                kept.push(Scored {
                    hypothesis: child,
                    log_prob: choice.log_prob,
                    finished: false,
                });
                let parent_row = row + choice.parent;
                for j in 0..pairs {
                    state_rows.push((parent_row * pairs + j) as u32);
                    stepper_rows.push((b * pairs + j) as u32);
                }
            }
            row += live;
            beam.advance(finished, kept);
            if beam.is_done() {
                let keep = state_rows.len() - beam.live().len() * pairs;
                state_rows.truncate(keep);
                stepper_rows.truncate(keep);
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
        .zip(&batch.sources)
        .map(|(beam, source)| {
            beam.into_results()
                .into_iter()
                .map(|h| Scored {
                    hypothesis: apply(source, h.hypothesis.ops),
                    log_prob: h.log_prob,
                    finished: h.finished,
                })
                .collect()
        })
        .collect()
}

/// One repair of each of `items`, in batches of `batch` programs: greedy with `beam` ≤ 1, else the
/// first of the `beam` candidates of the debugger's beam search that passes the item's given
/// examples (the top one if none does), as the reference's mutation benchmark decodes. At most
/// [`MAX_EDIT_OPS`] ops each.
pub fn repair_programs<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    items: &[DebugItem],
    batch: usize,
    beam: usize,
) -> Vec<Vec<Token>> {
    let trace = model.trace_embed.is_some();
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let programs = DebuggerBatch::new(backend, chunk, model.config.pairs, trace);
        if beam <= 1 {
            out.extend(model.repair_greedy(backend, &programs, MAX_EDIT_OPS));
            continue;
        }
        let beams = beam_search(backend, model, &programs, beam, MAX_EDIT_OPS);
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
