//! Training the SED debugger.
//!
//! - **Pre-training** (stage 1): every time a task is drawn, its gold program is mutated afresh
//!   (1–3 mutations by default, [`RepairConfig::n_dist`]); the source is the mutant, with its
//!   traces on the 5 given inputs (cut at [`RepairConfig::trace_steps`], 250 as in SED), and the
//!   target is the gold program.
//! - **Fine-tuning** (stage 2): fixed records of a task and a wrong program the synthesizer
//!   wrote for it (`karel synthesize --data … --wrong-out …`: the program parses and fails at least
//!   one given example).
//!
//! Validation measures the teacher-forced loss and op accuracy, and the share of validation
//! items whose greedy repair passes all 6 examples.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::Value;

use super::{stream_rng, BatchOrder, BatchSource, StepStats, Trainee};
use crate::data::edits::{FirstToken, TeacherForcing};
use crate::data::jsonl::parse_task;
use crate::data::repair::{given_traces, repair_example, task_rng, RepairConfig, RepairRecord};
use crate::data::task::{Example, Tally, Task};
use crate::lang::{parse_tokens, Token};
use crate::model::debugger::{DebugItem, Debugger, DebuggerBatch};
use crate::nn::Backend;
use crate::search::repair::{repair_programs, RepairDecoding};
use crate::vm::Trace;

/// A program to repair, ready for the debugger.
#[derive(Clone, Debug)]
pub struct RepairItem {
    pub source: Vec<Token>,
    /// The task's given examples.
    pub examples: Vec<Example>,
    pub traces: Vec<Trace>,
    pub teacher: TeacherForcing,
}

impl RepairItem {
    /// The item that repairs `source` (which must parse) into `task`'s program.
    pub fn new(
        task: &Task,
        source: Vec<Token>,
        trace_steps: u32,
        first: FirstToken,
    ) -> Option<Self> {
        let program = parse_tokens(&source, &Default::default()).ok()?;
        Some(RepairItem {
            traces: given_traces(&program, task, trace_steps),
            teacher: TeacherForcing::new(&source, &task.program.tokens(), first),
            examples: task.given().to_vec(),
            source,
        })
    }
}

impl RepairItem {
    /// The item as the debugger's input.
    pub fn view(&self) -> DebugItem<'_> {
        DebugItem {
            source: &self.source,
            examples: &self.examples,
            traces: &self.traces,
        }
    }
}

/// A training batch: the debugger's inputs and the teacher-forced targets.
pub struct RepairBatch<B: Backend> {
    pub batch: DebuggerBatch<B>,
    pub targets: Vec<TeacherForcing>,
}

/// Builds the batch of `items`.
pub fn repair_batch<B: Backend>(
    backend: &B,
    items: &[RepairItem],
    pairs: usize,
    trace: bool,
) -> RepairBatch<B> {
    let views: Vec<DebugItem> = items.iter().map(RepairItem::view).collect();
    RepairBatch {
        batch: DebuggerBatch::new(backend, &views, pairs, trace),
        targets: items.iter().map(|i| i.teacher.clone()).collect(),
    }
}

/// Reads fine-tuning records (standard dataset lines with `source_tokens`).
pub fn read_records(path: &Path) -> Result<Vec<RepairRecord>> {
    let text = crate::fsutil::read_text(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), number + 1);
        let task =
            parse_task(line, &Default::default()).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let value: Value = serde_json::from_str(line).with_context(at)?;
        let Some(tokens) = value["source_tokens"].as_array() else {
            bail!("{}: no `source_tokens` (is this a fine-tuning file written by `karel synthesize --wrong-out`?)", at());
        };
        let source = tokens
            .iter()
            .map(|t| t.as_str().and_then(Token::from_text))
            .collect::<Option<Vec<Token>>>()
            .with_context(|| {
                format!(
                    "{}: `source_tokens` holds something that is not a token",
                    at()
                )
            })?;
        if parse_tokens(&source, &Default::default()).is_err() {
            bail!("{}: `source_tokens` is not a program that parses", at());
        }
        crate::model::load::check_examples([&task], path).with_context(at)?;
        records.push(RepairRecord { task, source });
    }
    Ok(records)
}

/// Where the debugger's training programs come from.
pub enum RepairData {
    /// Fresh mutants of the gold programs (pre-training).
    Mutations(Arc<Vec<Task>>),
    /// Fixed wrong programs (fine-tuning).
    Records(Arc<Vec<RepairRecord>>),
}

impl RepairData {
    pub fn len(&self) -> usize {
        match self {
            RepairData::Mutations(t) => t.len(),
            RepairData::Records(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Training batches of the debugger.
pub struct DebuggerSource {
    pub data: RepairData,
    pub config: RepairConfig,
    /// Which items each step draws (over `data`); its seed also seeds the mutations.
    pub order: BatchOrder,
    pub pairs: usize,
    pub trace: bool,
}

impl DebuggerSource {
    /// The item of slot `slot` of step `step`, for data index `index` (`None` if the program
    /// cannot be mutated, or a record's program does not parse).
    fn item(&self, step: u64, slot: usize, index: usize) -> Option<RepairItem> {
        match &self.data {
            RepairData::Mutations(tasks) => {
                let task = &tasks[index];
                let mut rng = stream_rng(self.order.seed(), step, slot as u64);
                let example = repair_example(task, None, &self.config, &mut rng).ok()?;
                Some(RepairItem {
                    source: example.mutant.tokens(),
                    examples: task.given().to_vec(),
                    traces: example.traces,
                    teacher: example.teacher,
                })
            }
            RepairData::Records(records) => {
                let r = &records[index];
                RepairItem::new(
                    &r.task,
                    r.source.clone(),
                    self.config.trace_steps,
                    self.config.first_token,
                )
            }
        }
    }
}

impl<B: Backend> BatchSource<B> for DebuggerSource {
    type Batch = RepairBatch<B>;

    fn batch(&self, backend: &B, step: u64) -> RepairBatch<B> {
        let indices = self.order.indices(step);
        let items: Vec<RepairItem> = indices
            .par_iter()
            .enumerate()
            .filter_map(|(slot, &index)| self.item(step, slot, index))
            .collect();
        repair_batch(backend, &items, self.pairs, self.trace)
    }
}

impl<B: Backend> Trainee<B> for Debugger<B> {
    type Batch = RepairBatch<B>;

    fn train_step(&mut self, backend: &B, batch: &RepairBatch<B>) -> StepStats {
        if batch.targets.is_empty() {
            // No program of the batch could be mutated: nothing to learn from this step.
            return StepStats::default();
        }
        let forward = self.forward_train(backend, &batch.batch, &batch.targets);
        let stats = StepStats {
            loss: forward.loss,
            tokens: forward.tokens,
            correct: forward.correct,
        };
        self.backward(backend, forward, &batch.batch);
        stats
    }
}

/// Fixed validation items: one mutant per task drawn from the task's own random stream (seeded
/// by its guid, like SED's validation mutations), or the records' programs.
pub fn validation_items(data: &RepairData, config: &RepairConfig) -> Vec<(Task, RepairItem)> {
    match data {
        RepairData::Mutations(tasks) => tasks
            .par_iter()
            .filter_map(|task| {
                let example = repair_example(task, None, config, &mut task_rng(&task.guid)).ok()?;
                Some((
                    task.clone(),
                    RepairItem {
                        source: example.mutant.tokens(),
                        examples: task.given().to_vec(),
                        traces: example.traces,
                        teacher: example.teacher,
                    },
                ))
            })
            .collect(),
        RepairData::Records(records) => records
            .par_iter()
            .filter_map(|r| {
                let item = RepairItem::new(
                    &r.task,
                    r.source.clone(),
                    config.trace_steps,
                    config.first_token,
                )?;
                Some((r.task.clone(), item))
            })
            .collect(),
    }
}

/// Validation metrics: teacher-forced loss and op accuracy (batch statistics, on a copy of the
/// model so that the running statistics are not touched), the share of items whose greedy repair
/// passes all 6 examples, and the share repaired to exactly the gold program.
pub fn validate<B: Backend>(
    backend: &B,
    model: &Debugger<B>,
    items: &[(Task, RepairItem)],
    batch: usize,
) -> Vec<(String, f64)> {
    let pairs = model.config.pairs;
    let trace = model.trace_embed.is_some();
    let plain: Vec<RepairItem> = items.iter().map(|(_, i)| i.clone()).collect();
    let mut scratch = model.clone();
    let (mut loss, mut tokens, mut correct) = (0.0, 0usize, 0usize);
    for chunk in plain.chunks(batch.max(1)) {
        let b = repair_batch(backend, chunk, pairs, trace);
        let forward = scratch.forward_train(backend, &b.batch, &b.targets);
        loss += forward.loss * forward.tokens as f64;
        tokens += forward.tokens;
        correct += forward.correct;
    }
    let views: Vec<DebugItem> = plain.iter().map(RepairItem::view).collect();
    let repaired = repair_programs(backend, model, &views, RepairDecoding::greedy(batch));
    let mut tally = Tally::default();
    for ((task, _), program) in items.iter().zip(&repaired) {
        tally.add(task, program);
    }
    vec![
        ("loss".into(), loss / tokens.max(1) as f64),
        ("accuracy".into(), correct as f64 / tokens.max(1) as f64),
        ("repaired".into(), tally.general_rate()),
        ("exact_match".into(), tally.exact_rate()),
    ]
}
