//! Beam bookkeeping with the reference implementation's rules (SED `models/beam_search.py`),
//! shared by the synthesizer's token beams and the debugger's edit-op beams.
//!
//! - Every step keeps the `width` best expansions of the live hypotheses (score: the plain sum
//!   of log-probabilities, no length penalty). An expansion by the end symbol finishes its
//!   hypothesis; the others stay live.
//! - Once at least `width` hypotheses have finished, the finished list is sorted and clipped to
//!   `width`, and the search stops when its worst entry beats the best live hypothesis.
//! - If fewer than `width` finish, the result is the finished ones in completion order, topped up
//!   with the best live (unfinished) hypotheses.
//!
//! [`beam_search`] is the one batched driver both models' searches use: the beams of many items
//! advance together, every live hypothesis one row group (one LSTM stream per IO pair) of a
//! single step of the pooled decoder. What a hypothesis is — the decoder's input for it, the
//! symbols it may take, its extension by a symbol — is a [`BeamProblem`].

use crate::model::pooled;
use crate::nn::layers::{Linear, Lstm, LstmStepper};
use crate::nn::Backend;

/// A hypothesis with its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored<H> {
    pub hypothesis: H,
    /// Sum of the log-probabilities of its symbols.
    pub log_prob: f32,
    /// Whether it ended with the end symbol (false for live hypotheses topping up the result).
    pub finished: bool,
}

impl<H> Scored<H> {
    /// The same score for `f` of the hypothesis.
    pub fn map<T>(self, f: impl FnOnce(H) -> T) -> Scored<T> {
        Scored {
            hypothesis: f(self.hypothesis),
            log_prob: self.log_prob,
            finished: self.finished,
        }
    }
}

/// The best hypothesis of each item's results (the default where an item has none).
pub fn best_of<H: Default>(results: Vec<Vec<Scored<H>>>) -> Vec<H> {
    results
        .into_iter()
        .map(|hyps| {
            hyps.into_iter()
                .next()
                .map(|h| h.hypothesis)
                .unwrap_or_default()
        })
        .collect()
}

/// One expansion chosen by [`Beam::top_expansions`]: live hypothesis `parent` followed by
/// `symbol`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expansion {
    pub parent: usize,
    pub symbol: usize,
    pub log_prob: f32,
}

/// The beam of one search.
#[derive(Clone, Debug)]
pub struct Beam<H> {
    width: usize,
    live: Vec<Scored<H>>,
    finished: Vec<Scored<H>>,
    done: bool,
}

impl<H> Beam<H> {
    /// A beam of `width` (at least 1) holding the start hypothesis.
    pub fn new(width: usize, start: H) -> Beam<H> {
        Beam {
            width: width.max(1),
            live: vec![Scored {
                hypothesis: start,
                log_prob: 0.0,
                finished: false,
            }],
            finished: Vec::new(),
            done: false,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the search has stopped (early stop, or no live hypothesis left).
    pub fn is_done(&self) -> bool {
        self.done || self.live.is_empty()
    }

    /// The live hypotheses, in the order their scores were given to the last step.
    pub fn live(&self) -> &[Scored<H>] {
        &self.live
    }

    /// The `width` best expansions. `log_probs` holds `classes` log-probabilities per live
    /// hypothesis (in [`Beam::live`] order; `-inf` for masked symbols, which are never chosen).
    /// Ties go to the earlier hypothesis, then to the smaller symbol.
    pub fn top_expansions(&self, log_probs: &[f32], classes: usize) -> Vec<Expansion> {
        debug_assert_eq!(log_probs.len(), self.live.len() * classes);
        let mut candidates: Vec<Expansion> = Vec::with_capacity(log_probs.len());
        for (parent, hyp) in self.live.iter().enumerate() {
            for symbol in 0..classes {
                let lp = log_probs[parent * classes + symbol];
                if lp > f32::NEG_INFINITY {
                    candidates.push(Expansion {
                        parent,
                        symbol,
                        log_prob: hyp.log_prob + lp,
                    });
                }
            }
        }
        let better = |a: &Expansion, b: &Expansion| {
            b.log_prob
                .total_cmp(&a.log_prob)
                .then(a.parent.cmp(&b.parent))
                .then(a.symbol.cmp(&b.symbol))
        };
        if candidates.len() > self.width {
            candidates.select_nth_unstable_by(self.width - 1, better);
            candidates.truncate(self.width);
        }
        candidates.sort_by(better);
        candidates
    }

    /// Ends a step: `finished` are the chosen expansions that ended (in selection order), `live`
    /// the others. Applies the early-stop rule.
    pub fn advance(&mut self, finished: Vec<Scored<H>>, live: Vec<Scored<H>>) {
        self.finished.extend(finished);
        self.live = live;
        if self.finished.len() >= self.width {
            self.finished
                .sort_by(|a, b| b.log_prob.total_cmp(&a.log_prob));
            self.finished.truncate(self.width);
            let worst_finished = self.finished[self.width - 1].log_prob;
            let best_live = self
                .live
                .iter()
                .map(|h| h.log_prob)
                .fold(f32::NEG_INFINITY, f32::max);
            if worst_finished > best_live {
                self.done = true;
            }
        }
    }

    /// Stops the search (length limit reached).
    pub fn stop(&mut self) {
        self.done = true;
    }

    /// The result: the finished hypotheses, topped up to `width` with the best live ones.
    pub fn into_results(self) -> Vec<Scored<H>> {
        let mut results = self.finished;
        if results.len() < self.width {
            let mut live = self.live;
            live.sort_by(|a, b| b.log_prob.total_cmp(&a.log_prob));
            let missing = self.width - results.len();
            results.extend(live.into_iter().take(missing).map(|mut h| {
                h.finished = false;
                h
            }));
        }
        results
    }
}

/// The problem-specific side of a batched beam search.
pub trait BeamProblem<B: Backend> {
    /// A partial output with what its next step needs.
    type Hypothesis: Clone;

    /// Output classes per step.
    fn classes(&self) -> usize;
    /// The class that ends a hypothesis.
    fn end(&self) -> usize;
    /// The decoder's input `[rows, ·]`, one row per `(item, hypothesis)` of `live`, in order.
    fn input(&self, backend: &B, live: &[(usize, &Self::Hypothesis)]) -> B::Tensor;
    /// Sets the log-probabilities of the classes `hypothesis` (of `item`) may not take next to
    /// `-inf`.
    fn mask(&self, item: usize, hypothesis: &Self::Hypothesis, log_probs: &mut [f32]);
    /// `hypothesis` (of `item`) followed by `class`, which is not the end class.
    fn extend(&self, item: usize, hypothesis: &Self::Hypothesis, class: usize) -> Self::Hypothesis;
}

/// The pooled decoder a beam search steps ([`pooled::step`]): its LSTM, the stepper holding each
/// item's static input (the IO embedding, `pairs` rows per item), and its output layer.
pub struct PooledDecoder<'a, B: Backend> {
    pub lstm: &'a Lstm<B>,
    pub output: &'a Linear<B>,
    pub stepper: LstmStepper<B>,
    pub pairs: usize,
}

/// Beam search of `width` for `items` items from `start`, at most `max_steps` symbols before the
/// end class (the problem's mask forces the end there). Returns each item's hypotheses, best
/// first by the rules above.
pub fn beam_search<B: Backend, P: BeamProblem<B>>(
    backend: &B,
    decoder: &PooledDecoder<B>,
    problem: &P,
    items: usize,
    width: usize,
    max_steps: usize,
    start: P::Hypothesis,
) -> Vec<Vec<Scored<P::Hypothesis>>> {
    if items == 0 {
        return Vec::new();
    }
    let (pairs, classes, end) = (decoder.pairs, problem.classes(), problem.end());
    let mut stepper = decoder.stepper.clone();
    let mut state = decoder.lstm.zero_state(backend, items * pairs);
    let mut beams: Vec<Beam<P::Hypothesis>> = (0..items)
        .map(|_| Beam::new(width, start.clone()))
        .collect();
    // The items whose live hypotheses are the state's rows, in order.
    let mut active: Vec<usize> = (0..items).collect();
    for _ in 0..=max_steps {
        active.retain(|&b| !beams[b].is_done());
        if active.is_empty() {
            break;
        }
        let live: Vec<(usize, &P::Hypothesis)> = active
            .iter()
            .flat_map(|&b| beams[b].live().iter().map(move |h| (b, &h.hypothesis)))
            .collect();
        let x = problem.input(backend, &live);
        let (logits, next) = pooled::step(
            backend,
            decoder.lstm,
            decoder.output,
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
            let mut log_probs = Vec::with_capacity(live * classes);
            for (i, h) in beam.live().iter().enumerate() {
                let r = row + i;
                let mut lp = log_softmax(&logits[r * classes..(r + 1) * classes]);
                problem.mask(b, &h.hypothesis, &mut lp);
                log_probs.extend(lp);
            }
            let mut finished = Vec::new();
            let mut kept = Vec::new();
            for choice in beam.top_expansions(&log_probs, classes) {
                let parent = &beam.live()[choice.parent].hypothesis;
                if choice.symbol == end {
                    finished.push(Scored {
                        hypothesis: parent.clone(),
                        log_prob: choice.log_prob,
                        finished: true,
                    });
                    continue;
                }
                kept.push(Scored {
                    hypothesis: problem.extend(b, parent, choice.symbol),
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
                // Its rows were added above only for live hypotheses; drop them again.
                let keep = state_rows.len() - beam.live().len() * pairs;
                state_rows.truncate(keep);
                stepper_rows.truncate(keep);
            }
        }
        if state_rows.is_empty() {
            break;
        }
        state = next.select(backend, &state_rows);
        stepper = decoder.stepper.select(backend, &stepper_rows);
    }
    beams.into_iter().map(Beam::into_results).collect()
}

/// `log(softmax(row))`, computed stably.
pub fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = max + sum.ln();
    row.iter().map(|&x| x - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(name: &'static str, log_prob: f32) -> Scored<&'static str> {
        Scored {
            hypothesis: name,
            log_prob,
            finished: true,
        }
    }

    #[test]
    fn top_expansions_are_the_best_with_stable_ties() {
        let beam = Beam::new(3, ());
        let picks = beam.top_expansions(&[-1.0, -0.5, f32::NEG_INFINITY, -0.5], 4);
        let got: Vec<(usize, f32)> = picks.iter().map(|e| (e.symbol, e.log_prob)).collect();
        assert_eq!(got, vec![(1, -0.5), (3, -0.5), (0, -1.0)]);
    }

    #[test]
    fn early_stop_and_top_up() {
        let mut beam = Beam::new(2, "start");
        beam.advance(vec![scored("a", -1.0)], vec![scored("x", -0.5)]);
        assert!(!beam.is_done());
        beam.advance(vec![scored("b", -0.7)], vec![scored("y", -2.0)]);
        // Two finished, sorted; the worst (-1.0) beats the best live (-2.0).
        assert!(beam.is_done());
        let names: Vec<_> = beam.into_results().iter().map(|h| h.hypothesis).collect();
        assert_eq!(names, vec!["b", "a"]);

        // Fewer finished than the width: completion order, then the best live ones.
        let mut beam = Beam::new(3, "start");
        beam.advance(
            vec![scored("a", -3.0)],
            vec![scored("x", -0.5), scored("z", -0.1)],
        );
        beam.advance(
            vec![scored("b", -0.2)],
            vec![scored("y", -2.0), scored("w", -1.0)],
        );
        beam.stop();
        let results = beam.into_results();
        let names: Vec<_> = results.iter().map(|h| h.hypothesis).collect();
        assert_eq!(names, vec!["a", "b", "w"]);
        assert!(!results[2].finished);
    }

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f32 = lp.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(lp[2] > lp[1] && lp[1] > lp[0]);
    }
}
