//! The mutation benchmark (the paper's Figure 3): each task's gold program mutated exactly k
//! times (deterministically, from the task's guid: [`bench_item`]) and repaired by one debugger
//! call; how often the repair passes all 6 examples and how often it is the gold program again.

use rayon::prelude::*;
use serde::Serialize;

use crate::data::repair::{bench_item, given_traces, RepairConfig};
use crate::data::task::{Tally, Task};
use crate::lang::{parse_tokens, Token};
use crate::model::debugger::{DebugItem, Debugger};
use crate::nn::Backend;
use crate::search::repair::{repair_programs, RepairDecoding};
use crate::vm::Trace;

/// One row of the mutation benchmark: items with `k` mutations, how many the repair made pass
/// all 6 examples, and how many it turned back into the gold program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchRow {
    pub k: usize,
    pub items: usize,
    pub repaired: usize,
    pub exact: usize,
}

impl BenchRow {
    /// The share of items whose repair fails some example.
    pub fn generalization_error(&self) -> f64 {
        1.0 - self.repaired as f64 / self.items.max(1) as f64
    }

    /// The share of items not repaired to the gold program.
    pub fn exact_error(&self) -> f64 {
        1.0 - self.exact as f64 / self.items.max(1) as f64
    }
}

/// The benchmark for k = 1..=`max_k`, each mutant repaired by one call decoded as `decoding`
/// says ([`repair_programs`]). Tasks whose program cannot be mutated k times are left out of
/// row k.
pub fn mutation_bench<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    tasks: &[Task],
    max_k: usize,
    config: &RepairConfig,
    decoding: RepairDecoding,
) -> Vec<BenchRow> {
    (1..=max_k)
        .map(|k| {
            let items: Vec<(&Task, Vec<Token>, Vec<Trace>)> = tasks
                .par_iter()
                .filter_map(|task| {
                    let source = bench_item(task, k, &config.mutator).ok()?.mutant.tokens();
                    // What the debugger reads is the token form, as for any other program.
                    let program = parse_tokens(&source, &Default::default()).ok()?;
                    let traces = given_traces(&program, task, config.trace_steps);
                    Some((task, source, traces))
                })
                .collect();
            let views: Vec<DebugItem> = items
                .iter()
                .map(|(task, source, traces)| DebugItem {
                    source,
                    examples: task.given(),
                    traces,
                })
                .collect();
            let repaired = repair_programs(backend, model, &views, decoding);
            let mut tally = Tally::default();
            for ((task, _, _), program) in items.iter().zip(&repaired) {
                tally.add(task, program);
            }
            BenchRow {
                k,
                items: tally.tasks,
                repaired: tally.general,
                exact: tally.exact,
            }
        })
        .collect()
}
