//! Training the LGRL synthesizer: batches of tasks (the 5 given pairs and the program, teacher
//! forced) and validation on a held-out split.

use std::sync::Arc;

use super::{BatchOrder, BatchSource, StepStats, Trainee};
use crate::data::task::{Tally, Task};
use crate::model::grids::grid_tensor;
use crate::model::synthesizer::{Synthesizer, SynthesizerBatch};
use crate::nn::Backend;
use crate::search::synthesis::{decode_tasks, SynthesisConfig};

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
    /// Which tasks each step draws (over `tasks`).
    pub order: BatchOrder,
    pub pairs: usize,
}

impl<B: Backend> BatchSource<B> for SynthesizerSource {
    type Batch = SynthesizerBatch<B>;

    fn batch(&self, backend: &B, step: u64) -> SynthesizerBatch<B> {
        let indices = self.order.indices(step);
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
    let refs: Vec<&Task> = tasks.iter().collect();
    let greedy = SynthesisConfig {
        beam: 1,
        max_len: MAX_PROGRAM_TOKENS,
        grammar: false,
    };
    let decoded = decode_tasks(backend, model, &refs, &greedy, batch, |_| {});
    let mut tally = Tally::default();
    for (task, candidates) in tasks.iter().zip(&decoded) {
        tally.add(task, &candidates[0]);
    }
    vec![
        ("loss".into(), loss / tokens.max(1) as f64),
        ("accuracy".into(), correct as f64 / tokens.max(1) as f64),
        ("exact_match".into(), tally.exact_rate()),
        ("generalization".into(), tally.general_rate()),
    ]
}
