//! Training the LGRL synthesizer: batches of tasks (the 5 given pairs and the program, teacher
//! forced) and validation on a held-out split.

use std::sync::Arc;

use super::{batch_indices, BatchSource, StepStats, Trainee};
use crate::data::task::Task;
use crate::lang::Token;
use crate::model::grids::grid_tensor;
use crate::model::synthesizer::{Synthesizer, SynthesizerBatch};
use crate::nn::Backend;

/// Longest program greedy decoding produces (the reference's beam search stops at 100 tokens).
pub const MAX_PROGRAM_TOKENS: usize = 100;

/// The batch of `tasks`: their given pairs and programs.
pub fn synthesizer_batch<B: Backend>(
    backend: &B,
    tasks: &[&Task],
    pairs: usize,
) -> SynthesizerBatch<B> {
    let given = || tasks.iter().flat_map(|t| t.given()[..pairs].iter());
    SynthesizerBatch {
        inputs: grid_tensor(backend, given().map(|e| &e.input)),
        outputs: grid_tensor(backend, given().map(|e| &e.output)),
        programs: tasks.iter().map(|t| t.program.tokens()).collect(),
    }
}

/// Training batches over a task list.
pub struct SynthesizerSource {
    pub tasks: Arc<Vec<Task>>,
    pub batch: usize,
    pub pairs: usize,
    pub seed: u64,
    pub shuffle: bool,
}

impl<B: Backend> BatchSource<B> for SynthesizerSource {
    type Batch = SynthesizerBatch<B>;

    fn batch(&self, backend: &B, step: u64) -> SynthesizerBatch<B> {
        let indices = batch_indices(self.seed, step, self.batch, self.tasks.len(), self.shuffle);
        let tasks: Vec<&Task> = indices.iter().map(|&i| &self.tasks[i]).collect();
        synthesizer_batch(backend, &tasks, self.pairs)
    }
}

impl<B: Backend> Trainee<B> for Synthesizer<B> {
    type Batch = SynthesizerBatch<B>;

    fn train_step(&mut self, backend: &B, batch: &Self::Batch) -> StepStats {
        let forward = self.forward_train(backend, batch);
        let stats = StepStats {
            loss: forward.loss,
            tokens: forward.tokens,
            correct: forward.correct,
        };
        self.backward(backend, forward);
        stats
    }
}

/// Greedy-decoded programs of `tasks`, in batches.
pub fn decode_tasks<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    tasks: &[Task],
    batch: usize,
) -> Vec<Vec<Token>> {
    let pairs = model.config.pairs;
    let mut out = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(batch.max(1)) {
        let refs: Vec<&Task> = chunk.iter().collect();
        let b = synthesizer_batch(backend, &refs, pairs);
        out.extend(model.decode_greedy(backend, &b.inputs, &b.outputs, MAX_PROGRAM_TOKENS));
    }
    out
}

/// Validation metrics: teacher-forced loss and token accuracy, and for greedy decoding the exact
/// match rate and the generalization rate (the program passes all 6 examples).
pub fn validate<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    tasks: &[Task],
    batch: usize,
) -> Vec<(String, f64)> {
    let pairs = model.config.pairs;
    let (mut loss, mut tokens, mut correct) = (0.0, 0usize, 0usize);
    for chunk in tasks.chunks(batch.max(1)) {
        let refs: Vec<&Task> = chunk.iter().collect();
        let forward = model.forward_train(backend, &synthesizer_batch(backend, &refs, pairs));
        loss += forward.loss * forward.tokens as f64;
        tokens += forward.tokens;
        correct += forward.correct;
    }
    let decoded = decode_tasks(backend, model, tasks, batch);
    let (mut exact, mut general) = (0usize, 0usize);
    for (task, program) in tasks.iter().zip(&decoded) {
        exact += (*program == task.program.tokens()) as usize;
        general += matches!(task.score(program), Some((_, true))) as usize;
    }
    let n = tasks.len().max(1) as f64;
    vec![
        ("loss".into(), loss / tokens.max(1) as f64),
        ("accuracy".into(), correct as f64 / tokens.max(1) as f64),
        ("exact_match".into(), exact as f64 / n),
        ("generalization".into(), general as f64 / n),
    ]
}
