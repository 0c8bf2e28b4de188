//! Program-repair examples: the debugger's training examples and the mutation benchmark.
//!
//! A training example (SED's stage 1, `KarelExampleMutator`) takes a task's correct program,
//! mutates it `n` times (`n` drawn from a distribution, 1–3 uniform by default), runs the mutant on
//! the 5 given inputs in the reference's trace mode (250 steps by default, as SED's loaders do) and
//! computes the edit ops that turn the mutant back into the program.
//!
//! The mutation benchmark (the paper's Figure 3) holds, for each task of a split and each k in
//! 1..=5, a mutant with exactly k mutations. Like SED's validation data it is deterministic: the
//! random stream of a task is seeded with the first 8 hexadecimal digits of its guid.
//!
//! A [`RepairRecord`] is a task with a wrong program for it: the debugger's fine-tuning data
//! (`karel synthesize --data … --wrong-out`).

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::edits::{FirstToken, TeacherForcing};
use super::jsonl::task_to_line;
use super::mutate::{mutate_n, MutateError, MutatorConfig, Operator};
use super::task::Task;
use crate::lang::{Program, Token};
use crate::vm::{self, Trace};

/// Settings of training-example generation.
#[derive(Clone, Debug, PartialEq)]
pub struct RepairConfig {
    /// Relative weights of 1, 2, … mutations (SED's `--karel-mutate-n-dist`, default `1,2,3`
    /// equally).
    pub n_dist: Vec<f64>,
    pub mutator: MutatorConfig,
    /// Step limit of the traces (SED's loaders cut at 250; evaluation uses 1000).
    pub trace_steps: u32,
    pub first_token: FirstToken,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            n_dist: vec![1.0, 1.0, 1.0],
            mutator: MutatorConfig::default(),
            trace_steps: 250,
            first_token: FirstToken::Start,
        }
    }
}

/// A debugger training example.
#[derive(Clone, Debug)]
pub struct RepairExample {
    pub guid: String,
    /// The program to repair.
    pub mutant: Program,
    /// The correct program.
    pub target: Program,
    pub operators: Vec<Operator>,
    /// The mutant's traces on the given inputs.
    pub traces: Vec<Trace>,
    /// Decoder inputs and targets.
    pub teacher: TeacherForcing,
}

/// Draws the number of mutations from `weights` (for 1, 2, …).
fn draw_n<R: Rng + ?Sized>(weights: &[f64], rng: &mut R) -> usize {
    let total: f64 = weights.iter().sum();
    let mut pick = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        pick -= w;
        if pick < 0.0 {
            return i + 1;
        }
    }
    weights.len().max(1)
}

/// Traces of `program` on the task's given inputs.
pub fn given_traces(program: &Program, task: &Task, steps: u32) -> Vec<Trace> {
    let chunk = vm::compile(program);
    task.given()
        .iter()
        .map(|e| vm::run_with_trace(&chunk, &e.input, steps).trace)
        .collect()
}

/// Makes a training example from `task` with `n` mutations (drawn from the config if `None`).
pub fn repair_example<R: Rng + ?Sized>(
    task: &Task,
    n: Option<usize>,
    config: &RepairConfig,
    rng: &mut R,
) -> Result<RepairExample, MutateError> {
    let n = n.unwrap_or_else(|| draw_n(&config.n_dist, rng));
    let chain = mutate_n(&task.program, n, rng, &config.mutator)?;
    let operators = chain.iter().map(|(op, _)| *op).collect();
    let mutant = chain
        .last()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| task.program.clone());
    let teacher = TeacherForcing::new(&mutant.tokens(), &task.program.tokens(), config.first_token);
    Ok(RepairExample {
        guid: task.guid.clone(),
        traces: given_traces(&mutant, task, config.trace_steps),
        mutant,
        target: task.program.clone(),
        operators,
        teacher,
    })
}

/// The deterministic random stream of a task: seeded with the first 8 hexadecimal digits of its
/// guid, as SED seeds its validation mutations (`int(guid[:8], 16)`); guids that are not
/// hexadecimal are hashed instead.
pub fn task_rng(guid: &str) -> ChaCha8Rng {
    let head: String = guid.chars().take(8).collect();
    let seed = u64::from_str_radix(&head, 16).unwrap_or_else(|_| {
        guid.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        })
    });
    ChaCha8Rng::seed_from_u64(seed)
}

/// A mutation-benchmark item: a task and a mutant of its program with exactly `k` mutations.
#[derive(Clone, Debug)]
pub struct BenchItem {
    pub task: Task,
    pub k: usize,
    pub mutant: Program,
    pub operators: Vec<Operator>,
}

/// The benchmark item of `task` for `k` mutations.
pub fn bench_item(
    task: &Task,
    k: usize,
    mutator: &MutatorConfig,
) -> Result<BenchItem, MutateError> {
    let mut rng = task_rng(&task.guid);
    // Distinct streams per k, still determined by the guid.
    rng.set_stream(k as u64);
    let chain = mutate_n(&task.program, k, &mut rng, mutator)?;
    Ok(BenchItem {
        task: task.clone(),
        k,
        operators: chain.iter().map(|(op, _)| *op).collect(),
        mutant: chain
            .last()
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| task.program.clone()),
    })
}

impl BenchItem {
    /// The item as a standard dataset line with three more fields: `k`, `mutant_tokens` and
    /// `mutations` (the operators applied).
    pub fn to_line(&self) -> String {
        let mutant: Vec<&str> = self.mutant.tokens().iter().map(|t| t.text()).collect();
        let mutations: Vec<&str> = self.operators.iter().map(|o| o.name()).collect();
        line_with(
            &self.task,
            [
                ("k", json!(self.k)),
                ("mutant_tokens", json!(mutant)),
                ("mutations", json!(mutations)),
            ],
        )
    }
}

/// A task and a wrong program for it (fine-tuning data).
#[derive(Clone, Debug)]
pub struct RepairRecord {
    pub task: Task,
    pub source: Vec<Token>,
}

impl RepairRecord {
    /// The record as a standard dataset line with a `source_tokens` field.
    pub fn to_line(&self) -> String {
        let tokens: Vec<&str> = self.source.iter().map(|t| t.text()).collect();
        line_with(&self.task, [("source_tokens", json!(tokens))])
    }
}

/// `task` as a standard dataset line with `extra` fields appended.
fn line_with<const N: usize>(task: &Task, extra: [(&str, Value); N]) -> String {
    let mut record: Value = serde_json::from_str(&task_to_line(task)).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut record {
        for (name, value) in extra {
            fields.insert(name.into(), value);
        }
    }
    record.to_string()
}
