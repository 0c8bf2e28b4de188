//! Training runs: the loop shared by the synthesizer and the debugger, with checkpoints, exact
//! resumption, validation, a JSON-lines metrics log, and progress reported to a [`Monitor`].
//!
//! - [`synthesizer`]: LGRL training batches and validation (loss, token accuracy, greedy exact
//!   match and generalization);
//! - [`debugger`]: mutation pre-training and fine-tuning batches, validation (loss, op accuracy,
//!   share of validation mutants repaired);
//! - [`metrics`]: the metrics log and `karel plot` (drawn by [`crate::plot`]).
//!
//! **A run directory** holds `settings.json` (what the run was started with), `checkpoint.safetensors`
//! (the latest checkpoint: model, optimizer, and in its metadata the model configuration, the
//! settings and the step) and `metrics.jsonl`. **Resumption is exact**: the batch of step `s` is
//! a pure function of the run's seed, `s` and the data (an epoch's order is a permutation seeded
//! by the epoch; an example's mutations by its step and slot), so the data position and every
//! random stream are restored from the step alone; the model and optimizer come from the
//! checkpoint. A run resumed from step `s` therefore computes exactly what the uninterrupted run
//! computes after step `s`. Checkpoints are written atomically every `checkpoint_every` steps,
//! at the end, and when the monitor asks the run to stop (Ctrl-C in `karel train`); a non-finite
//! loss or gradient stops it with an error and leaves the last good checkpoint in place.

pub mod debugger;
pub mod metrics;
pub mod synthesizer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::nn::checkpoint::{self, Metadata};
use crate::nn::optim::{clip_grad_norm, grad_norm, Optimizer, OptimizerConfig, StepDecay};
use crate::nn::param::{zero_grads, Module};
use crate::nn::Backend;

/// Hyper-parameters and bookkeeping intervals of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Total optimizer steps.
    pub steps: u64,
    pub batch: usize,
    pub optimizer: OptimizerConfig,
    /// Learning rate `lr · rate^⌊step / every⌋`.
    pub schedule: StepDecay,
    /// Global gradient-norm clip (0: none).
    pub clip: f64,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub validate_every: u64,
    pub log_every: u64,
}

impl TrainSettings {
    /// SED's recipe: SGD, lr 1, clip 1, batch 64, lr halved every 100k steps.
    pub fn paper(steps: u64) -> TrainSettings {
        TrainSettings {
            steps,
            batch: 64,
            optimizer: OptimizerConfig::Sgd,
            schedule: StepDecay {
                lr: 1.0,
                every: 100_000,
                rate: 0.5,
            },
            clip: 1.0,
            seed: 0,
            checkpoint_every: 1000,
            validate_every: 1000,
            log_every: 50,
        }
    }
}

/// What one training step measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    pub loss: f64,
    /// Predictions counted in the loss, and how many were ranked first.
    pub tokens: usize,
    pub correct: usize,
}

/// A model that the loop can train on backend `B`: forward and backward of one batch.
pub trait Trainee<B: Backend>: Module<B> {
    type Batch: Send + 'static;
    /// Runs forward and backward on `batch`, accumulating gradients.
    fn train_step(&mut self, backend: &B, batch: &Self::Batch) -> StepStats;
}

/// Where the batches come from: the batch of step `s` must depend on `s` only.
pub trait BatchSource<B: Backend>: Send + Sync + 'static {
    type Batch: Send + 'static;
    fn batch(&self, backend: &B, step: u64) -> Self::Batch;
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by Ctrl-C after checkpointing this step.
    Interrupted(u64),
}

/// The paths of a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
        }
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.safetensors")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn settings(&self) -> PathBuf {
        self.root.join("settings.json")
    }
}

/// What a run reports as it goes, and whether it is asked to stop. The command line shows a
/// progress bar and stops on Ctrl-C; every method has a default that does nothing.
pub trait Monitor {
    /// The run goes from step `start` to `total`.
    fn started(&mut self, _start: u64, _total: u64) {}
    /// Step `done` (counted from 1) finished; at logging steps `summary` holds the window's
    /// mean loss and accuracy.
    fn stepped(&mut self, _done: u64, _summary: Option<(f64, f64)>) {}
    /// Validation after step `done`.
    fn validated(&mut self, _done: u64, _values: &[(String, f64)]) {}
    /// Asked after every step: `true` makes the run checkpoint and stop
    /// ([`Outcome::Interrupted`]).
    fn should_stop(&self) -> bool {
        false
    }
    /// The run ended, finished or interrupted (a run that fails drops its monitor instead).
    fn finished(&mut self) {}
}

/// A deterministic random stream for `(seed, a, b)`.
pub fn stream_rng(seed: u64, a: u64, b: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(b);
    rng
}

/// The order a run draws its examples in: step `s`'s batch is the examples at positions
/// `s·batch ..` of a sequence of epochs, each a permutation of the `len` examples seeded by the
/// run's seed and the epoch number (the file's order when `shuffle` is off). A batch depends on
/// its step alone. Each epoch's permutation is made once and kept while its steps are drawn:
/// shuffling a million indices for every step took a twentieth of a tiny synthesizer's step.
pub struct BatchOrder {
    seed: u64,
    batch: usize,
    len: usize,
    shuffle: bool,
    /// The permutations of the epochs drawn last, at most two (a batch can straddle an epoch's
    /// end).
    recent: Mutex<Vec<(u64, Arc<Vec<usize>>)>>,
}

impl BatchOrder {
    pub fn new(seed: u64, batch: usize, len: usize, shuffle: bool) -> BatchOrder {
        BatchOrder {
            seed,
            batch,
            len: len.max(1),
            shuffle,
            recent: Mutex::new(Vec::new()),
        }
    }

    /// The run's seed (also the seed of its other random streams).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The example indices of step `step`'s batch.
    pub fn indices(&self, step: u64) -> Vec<usize> {
        let len = self.len as u64;
        let first = step * self.batch as u64;
        let mut current: Option<(u64, Arc<Vec<usize>>)> = None;
        (first..first + self.batch as u64)
            .map(|global| {
                let (epoch, position) = (global / len, (global % len) as usize);
                if !self.shuffle {
                    return position;
                }
                if current.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    current = Some((epoch, self.permutation(epoch)));
                }
                current.as_ref().expect("just set").1[position]
            })
            .collect()
    }

    /// Epoch `epoch`'s permutation, kept or made.
    fn permutation(&self, epoch: u64) -> Arc<Vec<usize>> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, order)) = recent.iter().find(|(e, _)| *e == epoch) {
            return Arc::clone(order);
        }
        let order = Arc::new(epoch_permutation(self.seed, epoch, self.len));
        if recent.len() == 2 {
            recent.remove(0);
        }
        recent.push((epoch, Arc::clone(&order)));
        order
    }
}

/// The permutation of `len` examples that epoch `epoch` of a run seeded `seed` goes through.
fn epoch_permutation(seed: u64, epoch: u64, len: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut stream_rng(seed, epoch, u64::MAX));
    order
}

/// A validation callback: named metrics of the model.
pub type Validate<'a, B, M> = Box<dyn FnMut(&B, &mut M) -> Vec<(String, f64)> + 'a>;

/// Everything a run needs besides the model.
pub struct Run<'a, B, M> {
    pub dir: RunDir,
    pub settings: TrainSettings,
    /// Entries saved in every checkpoint's metadata (model kind and configuration, stage, …).
    pub metadata: Metadata,
    /// First step to run (the checkpoint's step when resuming).
    pub start: u64,
    /// Validation: returns named metrics of the model.
    pub validate: Validate<'a, B, M>,
    /// Progress reports and stop requests.
    pub monitor: Box<dyn Monitor + 'a>,
}

/// Saves a run's checkpoint with its step.
fn save<B: Backend, M: Module<B>>(
    run: &Run<B, M>,
    backend: &B,
    model: &mut M,
    optimizer: &Optimizer<B>,
    step: u64,
) -> Result<()> {
    let mut metadata = run.metadata.clone();
    metadata.set("step", step.to_string());
    metadata.set("settings", serde_json::to_string(&run.settings)?);
    checkpoint::save(
        &run.dir.checkpoint(),
        backend,
        model,
        Some(optimizer),
        &metadata,
    )?;
    Ok(())
}

/// Trains `model` from `run.start` to `run.settings.steps`.
pub fn train<B, M, S>(
    backend: &B,
    model: &mut M,
    optimizer: &mut Optimizer<B>,
    source: Arc<S>,
    mut run: Run<B, M>,
) -> Result<Outcome>
where
    B: Backend,
    M: Trainee<B, Batch = S::Batch> + 'static,
    S: BatchSource<B>,
{
    let settings = run.settings.clone();
    std::fs::create_dir_all(&run.dir.root)
        .with_context(|| format!("cannot create {}", run.dir.root.display()))?;
    let mut log = metrics::MetricsLog::open(&run.dir.metrics(), run.start)?;
    // Batches are made on another thread while the model computes.
    let (sender, receiver) = sync_channel::<S::Batch>(2);
    let loader_backend = backend.clone();
    let (start, total) = (run.start, settings.steps);
    let loader = std::thread::spawn(move || {
        for step in start..total {
            if sender.send(source.batch(&loader_backend, step)).is_err() {
                break;
            }
        }
    });
    run.monitor.started(start, total);
    let started = Instant::now();
    let (mut loss_sum, mut tokens, mut correct, mut norm_sum, mut window) = (0.0, 0, 0, 0.0, 0);
    let mut window_start = Instant::now();
    let mut outcome = Outcome::Finished;
    for step in start..total {
        let batch = receiver
            .recv()
            .context("the data loader stopped unexpectedly")?;
        zero_grads(backend, model);
        let stats = model.train_step(backend, &batch);
        let norm = if settings.clip > 0.0 {
            clip_grad_norm(backend, model, settings.clip)
        } else {
            grad_norm(backend, model)
        };
        if !stats.loss.is_finite() || !norm.is_finite() {
            drop(receiver);
            let _ = loader.join();
            let checkpoint = run.dir.checkpoint();
            if checkpoint.exists() {
                bail!(
                    "training diverged at step {step}: loss {}, gradient norm {norm}; the last \
                     good checkpoint is kept in {} (lower the learning rate or the clip and \
                     resume)",
                    stats.loss,
                    checkpoint.display()
                );
            }
            bail!(
                "training diverged at step {step}: loss {}, gradient norm {norm}, before any \
                 checkpoint was written (lower the learning rate or the clip and start again)",
                stats.loss
            );
        }
        let lr = settings.schedule.at(step);
        optimizer.update(backend, model, lr);
        let done = step + 1;
        loss_sum += stats.loss;
        norm_sum += norm;
        tokens += stats.tokens;
        correct += stats.correct;
        window += 1;
        let mut summary = None;
        if done % settings.log_every.max(1) == 0 || done == total {
            let seconds = window_start.elapsed().as_secs_f64();
            let mean_loss = loss_sum / window as f64;
            log.write(json!({
                "step": done,
                "split": "train",
                "loss": mean_loss,
                "accuracy": correct as f64 / tokens.max(1) as f64,
                "grad_norm": norm_sum / window as f64,
                "lr": lr,
                "steps_per_s": window as f64 / seconds.max(1e-9),
                "elapsed_s": started.elapsed().as_secs_f64(),
            }))?;
            summary = Some((mean_loss, correct as f64 / tokens.max(1) as f64));
            (loss_sum, tokens, correct, norm_sum, window) = (0.0, 0, 0, 0.0, 0);
            window_start = Instant::now();
        }
        run.monitor.stepped(done, summary);
        if done % settings.validate_every.max(1) == 0 || done == total {
            let values = (run.validate)(backend, model);
            let mut record = serde_json::Map::new();
            record.insert("step".into(), json!(done));
            record.insert("split".into(), json!("val"));
            for (name, value) in &values {
                record.insert(name.clone(), json!(value));
            }
            log.write(serde_json::Value::Object(record))?;
            run.monitor.validated(done, &values);
        }
        let stop = run.monitor.should_stop();
        if done % settings.checkpoint_every.max(1) == 0 || done == total || stop {
            save(&run, backend, model, optimizer, done)?;
        }
        if stop {
            outcome = Outcome::Interrupted(done);
            break;
        }
    }
    run.monitor.finished();
    drop(receiver);
    let _ = loader.join();
    Ok(outcome)
}

/// Reads a checkpoint's metadata without loading a model.
pub fn read_metadata(path: &Path) -> Result<Metadata> {
    Ok(checkpoint::read_metadata(path)?)
}

/// The step a checkpoint was saved at.
pub fn checkpoint_step(metadata: &Metadata) -> Result<u64> {
    metadata
        .get("step")
        .context("the checkpoint has no step")?
        .parse()
        .context("the checkpoint's step is not a number")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every epoch visits every example once, in an order that depends on the epoch; without
    /// shuffling the order is the file's.
    #[test]
    fn batches_cover_each_epoch_once() {
        let (len, batch) = (10, 4);
        let order = BatchOrder::new(7, batch, len, true);
        let epochs: Vec<Vec<usize>> = (0..2)
            .map(|epoch| {
                let all: Vec<usize> = (0..5u64).flat_map(|step| order.indices(step)).collect();
                all[epoch * len..(epoch + 1) * len].to_vec()
            })
            .collect();
        for epoch in &epochs {
            let mut sorted = epoch.clone();
            sorted.sort();
            assert_eq!(sorted, (0..len).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_eq!(
            order.indices(3),
            BatchOrder::new(7, batch, len, true).indices(3)
        );
        assert_ne!(
            BatchOrder::new(7, batch, len, true).indices(0),
            BatchOrder::new(8, batch, len, true).indices(0)
        );
        assert_eq!(
            BatchOrder::new(7, batch, len, false).indices(2),
            vec![8, 9, 0, 1]
        );
    }

    /// The kept permutations give what each position's epoch permutation says, whatever order
    /// the steps are drawn in (forwards across epoch ends, backwards, jumps, repeats).
    #[test]
    fn kept_permutations_equal_fresh_ones() {
        let (len, batch, seed) = (10, 4, 3);
        let order = BatchOrder::new(seed, batch, len, true);
        for step in [0u64, 1, 2, 3, 4, 5, 9, 2, 7, 7, 0, 40, 1] {
            let expected: Vec<usize> = (0..batch as u64)
                .map(|slot| {
                    let global = step * batch as u64 + slot;
                    let epoch = global / len as u64;
                    epoch_permutation(seed, epoch, len)[(global % len as u64) as usize]
                })
                .collect();
            assert_eq!(order.indices(step), expected, "step {step}");
            assert!(order.recent.lock().unwrap().len() <= 2);
        }
        // A batch larger than the data spans three epochs.
        let wide = BatchOrder::new(seed, 25, len, true);
        let drawn = wide.indices(1);
        assert_eq!(drawn[..5], epoch_permutation(seed, 2, len)[5..]);
        assert_eq!(drawn[5..15], epoch_permutation(seed, 3, len)[..]);
        assert_eq!(drawn[15..], epoch_permutation(seed, 4, len)[..]);
    }
}
