//! `karel train`, `karel model`, `karel plot`: training runs, model summaries, metric curves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{values, DeviceChoice};
use crate::data::dataset::read_all;
use crate::data::edits::FirstToken;
use crate::data::mutate::MutatorConfig;
use crate::data::repair::RepairConfig;
use crate::data::task::Task;
use crate::model::debugger::{Debugger, DebuggerConfig};
use crate::model::load::{
    check_examples, checkpoint_config, load_debugger, load_synthesizer, model_metadata,
    ModelSource, CONFIG_KEY, KIND_KEY,
};
use crate::model::preset::{preset_summary, ParamSummary, Preset};
use crate::model::synthesizer::{Synthesizer, SynthesizerConfig};
use crate::nn::checkpoint::{self, Metadata};
use crate::nn::optim::{Optimizer, OptimizerConfig, StepDecay};
use crate::nn::Backend;
use crate::nn::Cpu;
use crate::train::debugger::{read_records, validation_items, DebuggerSource, RepairData};
use crate::train::synthesizer::SynthesizerSource;
use crate::train::{
    checkpoint_step, read_metadata, train, BatchOrder, Monitor, Outcome, Run, RunDir, TrainSettings,
};

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    #[command(subcommand)]
    model: TrainModel,
}

#[derive(Debug, Subcommand)]
enum TrainModel {
    /// Train the LGRL synthesizer on a task split.
    Synthesizer {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Train the debugger: mutation pre-training, or fine-tuning on a synthesizer's wrong programs.
    Debugger {
        #[command(flatten)]
        common: CommonArgs,
        /// `pretrain`: fresh mutants of the training programs (--data is a task split);
        /// `finetune`: wrong programs written by `karel synthesize --wrong-out` (--data and --val
        /// are such files).
        /// [default: pretrain; with --resume, the run's own]
        #[arg(long, value_enum)]
        stage: Option<Stage>,
        /// Leave out TraceEmbed (the paper's "No TraceEmbed" debugger).
        #[arg(long)]
        no_trace_embed: bool,
        /// Start from this checkpoint's weights and optimizer state, with the step counter at 0
        /// (SED's `--pretrained entire-model::…` for fine-tuning).
        #[arg(long, value_name = "CKPT", conflicts_with = "resume")]
        init: Option<PathBuf>,
        /// Relative weights of 1, 2, 3, … mutations per pre-training example (at most 16
        /// weights) [default: 1,1,1].
        #[arg(long, value_name = "W1,W2,...")]
        mutations: Option<String>,
        /// Step limit of the traces given to the debugger (SED's loaders cut at 250), 1 to
        /// 10000 [default: 250].
        #[arg(long, value_parser = values::trace_step_limit)]
        trace_steps: Option<u32>,
        /// Reproduce the original mutator's quirks (see `karel mutate --help`).
        #[arg(long)]
        compat_original: bool,
        /// Feed `<UNK>` as the first "last token", as SED's training code does by mistake.
        #[arg(long)]
        compat_first_token: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stage {
    Pretrain,
    Finetune,
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Pretrain => "pretrain",
        Stage::Finetune => "finetune",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Training data.
    #[arg(long)]
    data: PathBuf,
    /// Validation data.
    #[arg(long)]
    val: PathBuf,
    /// Use only the first N validation items (validation decodes every item) [default: 500].
    #[arg(long, value_parser = values::positive_count)]
    val_size: Option<usize>,
    /// Run directory: settings.json, checkpoint.safetensors, metrics.jsonl.
    #[arg(long, short)]
    out: PathBuf,
    /// Model sizes [default: tiny].
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Total optimizer steps [default: 10000; with --resume, the run's own].
    #[arg(long, value_parser = values::positive_steps)]
    steps: Option<u64>,
    /// Tasks (or programs to repair) per step, 1 to 4096 [default: 64].
    #[arg(long, value_parser = batch_size)]
    batch: Option<usize>,
    /// Optimizer (default: SGD for the paper preset, as SED; Adam for tiny, which trains faster).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate, a positive number (default: 1 for SGD, 0.001 for Adam).
    #[arg(long, value_parser = values::positive_number, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Multiply the learning rate by --decay-rate every this many steps [default: 100000].
    #[arg(long, value_parser = values::positive_steps)]
    decay_every: Option<u64>,
    /// Learning-rate decay factor, a positive number [default: 0.5].
    #[arg(long, value_parser = values::positive_number, allow_negative_numbers = true)]
    decay_rate: Option<f64>,
    /// Clip the global gradient norm to this (0: no clipping) [default: 1].
    #[arg(long, value_parser = values::non_negative_number, allow_negative_numbers = true)]
    clip: Option<f64>,
    /// Seed of the initial weights, the data order and the mutations [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Go through the data in file order instead of a fresh permutation per epoch (as SED).
    #[arg(long)]
    no_shuffle: bool,
    /// Write the checkpoint every N steps (also at the end and on Ctrl-C) [default: 1000].
    #[arg(long, value_parser = values::positive_steps)]
    checkpoint_every: Option<u64>,
    /// Validate every N steps (and at the end) [default: 1000].
    #[arg(long, value_parser = values::positive_steps)]
    validate_every: Option<u64>,
    /// Log the mean training loss and accuracy every N steps [default: 50].
    #[arg(long, value_parser = values::positive_steps)]
    log_every: Option<u64>,
    /// Continue the run in --out from its checkpoint. Its settings, data and model
    /// configuration are kept: an option given with another value than the run's is refused,
    /// except --steps, which may change the run's length.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Where the networks run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// With --device cuda: matrix products and convolutions on the tensor cores in TF32 (f32
    /// accumulation; about 3 significant digits per product) instead of f32.
    #[arg(long)]
    tf32: bool,
}

/// Largest batch `karel train` accepts.
const MAX_BATCH: usize = 4096;

fn batch_size(text: &str) -> Result<usize, String> {
    values::bounded(text, 1, MAX_BATCH)
}

impl CommonArgs {
    /// The order a run with `settings` draws its `len` examples in.
    fn batch_order(&self, settings: &TrainSettings, len: usize) -> BatchOrder {
        BatchOrder::new(settings.seed, settings.batch, len, !self.no_shuffle)
    }

    fn preset(&self) -> Preset {
        self.preset.unwrap_or(Preset::Tiny)
    }

    fn settings(&self) -> TrainSettings {
        let kind = self.optimizer.unwrap_or(match self.preset() {
            Preset::Paper => OptimizerKind::Sgd,
            Preset::Tiny => OptimizerKind::Adam,
        });
        let (optimizer, lr) = match kind {
            OptimizerKind::Sgd => (OptimizerConfig::Sgd, 1.0),
            OptimizerKind::Adam => (OptimizerConfig::adam(), 1e-3),
        };
        TrainSettings {
            steps: self.steps.unwrap_or(10_000),
            batch: self.batch.unwrap_or(64),
            optimizer,
            schedule: StepDecay {
                lr: self.lr.unwrap_or(lr),
                every: self.decay_every.unwrap_or(100_000),
                rate: self.decay_rate.unwrap_or(0.5),
            },
            clip: self.clip.unwrap_or(1.0),
            seed: self.seed.unwrap_or(0),
            checkpoint_every: self.checkpoint_every.unwrap_or(1000),
            validate_every: self.validate_every.unwrap_or(1000),
            log_every: self.log_every.unwrap_or(50),
        }
    }

    /// The data of this command line, and the given ones of `extra`, as `settings.json` holds
    /// them: what a resumed run must match.
    fn given(&self, extra: &[(&str, Option<serde_json::Value>)]) -> serde_json::Value {
        let mut given = serde_json::Map::new();
        given.insert("data".into(), serde_json::json!(self.data));
        given.insert("val".into(), serde_json::json!(self.val));
        if let Some(val_size) = self.val_size {
            given.insert("val_size".into(), serde_json::json!(val_size));
        }
        for (key, value) in extra {
            if let Some(value) = value {
                given.insert(key.to_string(), value.clone());
            }
        }
        serde_json::Value::Object(given)
    }

    /// The options given on this command line that differ from a resumed run's settings.
    fn differences(&self, run: &TrainSettings) -> Vec<String> {
        let text = |v: &dyn ToString| v.to_string();
        let optimizer = match run.optimizer {
            OptimizerConfig::Sgd => OptimizerKind::Sgd,
            _ => OptimizerKind::Adam,
        };
        let given_and_saved: [(&str, Option<String>, String); 10] = [
            ("--batch", self.batch.map(|v| text(&v)), text(&run.batch)),
            ("--lr", self.lr.map(|v| text(&v)), text(&run.schedule.lr)),
            (
                "--decay-every",
                self.decay_every.map(|v| text(&v)),
                text(&run.schedule.every),
            ),
            (
                "--decay-rate",
                self.decay_rate.map(|v| text(&v)),
                text(&run.schedule.rate),
            ),
            ("--clip", self.clip.map(|v| text(&v)), text(&run.clip)),
            ("--seed", self.seed.map(|v| text(&v)), text(&run.seed)),
            (
                "--checkpoint-every",
                self.checkpoint_every.map(|v| text(&v)),
                text(&run.checkpoint_every),
            ),
            (
                "--validate-every",
                self.validate_every.map(|v| text(&v)),
                text(&run.validate_every),
            ),
            (
                "--log-every",
                self.log_every.map(|v| text(&v)),
                text(&run.log_every),
            ),
            (
                "--optimizer",
                self.optimizer.map(|k| format!("{k:?}")),
                format!("{optimizer:?}"),
            ),
        ];
        given_and_saved
            .into_iter()
            .filter_map(|(option, given, saved)| {
                given
                    .filter(|given| *given != saved)
                    .map(|given| format!("{option} {given} (the run's: {saved})"))
            })
            .collect()
    }
}

/// Refuses to resume a run with other data or settings than it was started with: `given` are
/// the values of this command line, compared with those of the run's `settings.json`.
fn check_resumed_run(
    dir: &Path,
    given: &serde_json::Value,
    mut differences: Vec<String>,
) -> Result<serde_json::Value> {
    let path = RunDir::new(dir).settings();
    let text = crate::fsutil::read_text(&path)
        .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
    let saved: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("cannot resume: {} is not a run's settings", path.display()))?;
    let same_path = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => {
            a == b
                || matches!(
                    (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                    (Ok(a), Ok(b)) if a == b
                )
        }
        _ => a == b,
    };
    if let Some(given) = given.as_object() {
        for (key, value) in given {
            let saved = saved.get(key).unwrap_or(&serde_json::Value::Null);
            let same = if matches!(key.as_str(), "data" | "val" | "init") {
                same_path(value, saved)
            } else {
                value == saved
            };
            if !same {
                differences.push(format!("{key} {value} (the run's: {saved})"));
            }
        }
    }
    if !differences.is_empty() {
        super::usage!(
            "cannot resume {} with other settings than it was started with: {}; leave these \
             options out to keep the run's own",
            dir.display(),
            differences.join(", ")
        );
    }
    Ok(saved)
}

/// A run's starting point: fresh, resumed, or initialised from another checkpoint.
struct Start<C> {
    config: C,
    settings: TrainSettings,
    step: u64,
    /// Checkpoint to load weights (and optimizer state) from.
    load: Option<PathBuf>,
    /// A resumed run's `settings.json`.
    saved: Option<serde_json::Value>,
}

impl<C> Start<C> {
    /// An option's value: the one given, else a resumed run's own, else the default.
    fn value<T: serde::de::DeserializeOwned>(&self, given: Option<T>, key: &str, default: T) -> T {
        given
            .or_else(|| {
                let saved = self.saved.as_ref()?.get(key)?;
                serde_json::from_value(saved.clone()).ok()
            })
            .unwrap_or(default)
    }
}

fn start<C>(
    common: &CommonArgs,
    kind: &str,
    fresh: C,
    init: Option<&Path>,
    extra: &[(&str, String)],
    given: serde_json::Value,
) -> Result<Start<C>>
where
    C: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let dir = RunDir::new(&common.out);
    let checkpoint = dir.checkpoint();
    if common.resume {
        let metadata = read_metadata(&checkpoint)
            .with_context(|| format!("cannot resume from {}", checkpoint.display()))?;
        let config: C = checkpoint_config(&checkpoint.display().to_string(), &metadata, kind)?;
        for (key, value) in extra {
            if metadata.get(key) != Some(value.as_str()) {
                bail!(
                    "{} was trained with {key} = {}, not {value}",
                    checkpoint.display(),
                    metadata.get(key).unwrap_or("(unset)")
                );
            }
        }
        let mut settings: TrainSettings = serde_json::from_str(
            metadata
                .get("settings")
                .context("the checkpoint has no training settings")?,
        )?;
        let mut differences = common.differences(&settings);
        if common.preset.is_some() && fresh != config {
            differences.push("--preset (the run's model is configured otherwise)".to_string());
        }
        let saved = check_resumed_run(&common.out, &given, differences)?;
        if let Some(steps) = common.steps {
            settings.steps = steps;
        }
        let step = checkpoint_step(&metadata)?;
        if step >= settings.steps {
            super::usage!(
                "the run in {} is at step {step}: --steps {} leaves nothing to train",
                common.out.display(),
                settings.steps
            );
        }
        return Ok(Start {
            config,
            settings,
            step,
            load: Some(checkpoint),
            saved: Some(saved),
        });
    }
    if checkpoint.exists() {
        bail!(
            "{} already holds a run; continue it with --resume, or choose another --out",
            common.out.display()
        );
    }
    let config = match init {
        Some(path) => {
            let metadata = read_metadata(path)?;
            let config: C = checkpoint_config(&path.display().to_string(), &metadata, kind)?;
            config
        }
        None => fresh,
    };
    Ok(Start {
        config,
        settings: common.settings(),
        step: 0,
        load: init.map(Path::to_path_buf),
        saved: None,
    })
}

fn load_tasks(path: &Path) -> Result<Vec<Task>> {
    let (tasks, _) = read_all(path, None, false)?;
    if tasks.is_empty() {
        bail!("{} holds no tasks", path.display());
    }
    check_examples(&tasks, path)?;
    Ok(tasks)
}

fn report(outcome: Outcome, dir: &Path) -> ExitCode {
    match outcome {
        Outcome::Finished => {
            eprintln!(
                "done: {} (metrics in {})",
                RunDir::new(dir).checkpoint().display(),
                RunDir::new(dir).metrics().display()
            );
            ExitCode::SUCCESS
        }
        Outcome::Interrupted(step) => {
            eprintln!(
                "interrupted: checkpoint of step {step} saved in {}; continue with --resume",
                RunDir::new(dir).checkpoint().display()
            );
            ExitCode::from(130)
        }
    }
}

fn write_settings(dir: &Path, value: serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = RunDir::new(dir).settings();
    crate::fsutil::write_atomic(&path, serde_json::to_string_pretty(&value)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) fn train_command(args: TrainArgs) -> Result<ExitCode> {
    let (device, tf32) = match &args.model {
        TrainModel::Synthesizer { common } | TrainModel::Debugger { common, .. } => {
            (common.device, common.tf32)
        }
    };
    super::check_tf32(device, tf32)?;
    match device {
        DeviceChoice::Cpu => train_on(&Cpu::new(), args),
        DeviceChoice::Cuda => train_on(&super::cuda_backend(tf32)?, args),
    }
}

fn train_on<B: Backend>(backend: &B, args: TrainArgs) -> Result<ExitCode> {
    match args.model {
        TrainModel::Synthesizer { common } => {
            let start = start::<SynthesizerConfig>(
                &common,
                "synthesizer",
                common.preset().synthesizer(),
                None,
                &[],
                common.given(&[]),
            )?;
            let val_size = start.value(common.val_size, "val_size", 500);
            let tasks = Arc::new(load_tasks(&common.data)?);
            let mut val = load_tasks(&common.val)?;
            val.truncate(val_size);
            let mut model = Synthesizer::new(
                backend,
                start.config,
                &mut ChaCha8Rng::seed_from_u64(start.settings.seed),
            );
            let mut optimizer = Optimizer::new(start.settings.optimizer);
            if let Some(path) = &start.load {
                checkpoint::load(path, backend, &mut model, Some(&mut optimizer))?;
            }
            write_settings(
                &common.out,
                serde_json::json!({
                    "model": "synthesizer", "config": start.config, "settings": start.settings,
                    "data": common.data, "val": common.val, "val_size": val_size,
                    "val_items": val.len(),
                }),
            )?;
            let source = Arc::new(SynthesizerSource {
                order: common.batch_order(&start.settings, tasks.len()),
                tasks,
                pairs: start.config.pairs,
            });
            let batch = start.settings.batch;
            let run = Run {
                dir: RunDir::new(&common.out),
                settings: start.settings,
                metadata: model_metadata("synthesizer", &start.config),
                start: start.step,
                validate: Box::new(move |b, m: &mut Synthesizer<B>| {
                    crate::train::synthesizer::validate(b, m, &val, batch)
                }),
                monitor: monitor(common.quiet),
            };
            let outcome = train(backend, &mut model, &mut optimizer, source, run)?;
            Ok(report(outcome, &common.out))
        }
        TrainModel::Debugger {
            common,
            stage,
            no_trace_embed,
            init,
            mutations,
            trace_steps,
            compat_original,
            compat_first_token,
        } => {
            let given_weights = mutations
                .as_deref()
                .map(values::mutation_weights)
                .transpose()
                .map_err(|e| super::UsageError(format!("--mutations {e}")))?;
            let saved_stage = if common.resume {
                crate::fsutil::read_text(&RunDir::new(&common.out).settings())
                    .ok()
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                    .and_then(|saved| saved.get("stage")?.as_str().map(str::to_string))
            } else {
                None
            };
            let stage = match (stage, saved_stage.as_deref()) {
                (Some(stage), _) => stage,
                (None, Some("finetune")) => Stage::Finetune,
                (None, _) => Stage::Pretrain,
            };
            let given = common.given(&[
                ("stage", Some(serde_json::json!(stage_name(stage)))),
                (
                    "mutations",
                    given_weights.as_ref().map(|w| serde_json::json!(w)),
                ),
                ("trace_steps", trace_steps.map(|t| serde_json::json!(t))),
                (
                    "compat_original",
                    compat_original.then_some(serde_json::Value::Bool(true)),
                ),
                (
                    "compat_first_token",
                    compat_first_token.then_some(serde_json::Value::Bool(true)),
                ),
            ]);
            let stage_name = stage_name(stage);
            let start = start::<DebuggerConfig>(
                &common,
                "debugger",
                common.preset().debugger(!no_trace_embed),
                init.as_deref(),
                &[("stage", stage_name.to_string())],
                given,
            )?;
            let n_dist: Vec<f64> = start.value(given_weights, "mutations", vec![1.0, 1.0, 1.0]);
            let trace_steps: u32 = start.value(trace_steps, "trace_steps", 250);
            let compat_original = compat_original || start.value(None, "compat_original", false);
            let compat_first_token =
                compat_first_token || start.value(None, "compat_first_token", false);
            let val_size = start.value(common.val_size, "val_size", 500);
            let repair = RepairConfig {
                n_dist,
                mutator: MutatorConfig { compat_original },
                trace_steps,
                first_token: if compat_first_token {
                    FirstToken::CompatUnknown
                } else {
                    FirstToken::Start
                },
            };
            let (data, val_data) = match stage {
                Stage::Pretrain => (
                    RepairData::Mutations(Arc::new(load_tasks(&common.data)?)),
                    RepairData::Mutations(Arc::new({
                        let mut v = load_tasks(&common.val)?;
                        v.truncate(val_size);
                        v
                    })),
                ),
                Stage::Finetune => (
                    RepairData::Records(Arc::new(read_records(&common.data)?)),
                    RepairData::Records(Arc::new({
                        let mut v = read_records(&common.val)?;
                        v.truncate(val_size);
                        v
                    })),
                ),
            };
            if data.is_empty() {
                bail!("{} holds no training items", common.data.display());
            }
            let val = validation_items(&val_data, &repair);
            let config = start.config;
            let mut model = Debugger::new(
                backend,
                config,
                &mut ChaCha8Rng::seed_from_u64(start.settings.seed),
            );
            let mut optimizer = Optimizer::new(start.settings.optimizer);
            if let Some(path) = &start.load {
                checkpoint::load(path, backend, &mut model, Some(&mut optimizer))?;
                if !common.resume {
                    // Fine-tuning from a pre-trained model: the step counter restarts at 0.
                    optimizer.step = 0;
                    optimizer.config = start.settings.optimizer;
                    if !matches!(optimizer.config, OptimizerConfig::Adam { .. }) {
                        optimizer.moments.clear();
                    }
                }
            }
            write_settings(
                &common.out,
                serde_json::json!({
                    "model": "debugger", "stage": stage_name, "config": config,
                    "settings": start.settings, "data": common.data, "val": common.val,
                    "val_size": val_size, "val_items": val.len(), "mutations": repair.n_dist,
                    "trace_steps": trace_steps,
                    "compat_original": compat_original, "compat_first_token": compat_first_token,
                    "init": init,
                }),
            )?;
            let source = Arc::new(DebuggerSource {
                order: common.batch_order(&start.settings, data.len()),
                data,
                config: repair,
                pairs: config.pairs,
                trace: config.trace.is_some(),
            });
            let mut metadata = model_metadata("debugger", &config);
            metadata.set("stage", stage_name);
            let batch = start.settings.batch;
            let run = Run {
                dir: RunDir::new(&common.out),
                settings: start.settings,
                metadata,
                start: start.step,
                validate: Box::new(move |b, m: &mut Debugger<B>| {
                    crate::train::debugger::validate(b, m, &val, batch)
                }),
                monitor: monitor(common.quiet),
            };
            let outcome = train(backend, &mut model, &mut optimizer, source, run)?;
            Ok(report(outcome, &common.out))
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Parameter counts of a preset's synthesizer, debugger and debugger without TraceEmbed, per
    /// component.
    Summary {
        #[arg(long, value_enum, default_value_t = Preset::Paper)]
        preset: Preset,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a checkpoint's model without its optimizer state (a third of the size): what
    /// inference needs, e.g. the built-in default models.
    Export {
        /// A training checkpoint (`RUN/checkpoint.safetensors`).
        checkpoint: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
    },
}

pub(crate) fn model_command(args: ModelArgs) -> Result<ExitCode> {
    match args.command {
        ModelCommand::Summary { preset, json } => {
            let summary = preset_summary(preset);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                let print = |name: &str, s: &ParamSummary| {
                    println!("{name}: {} parameters", group(s.total));
                    for (component, count) in &s.components {
                        println!("  {component:<26} {:>12}", group(*count));
                    }
                };
                println!("preset {}", preset.name());
                print("synthesizer", &summary.synthesizer);
                print("debugger", &summary.debugger);
                print(
                    "debugger without TraceEmbed",
                    &summary.debugger_no_trace_embed,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Export { checkpoint, out } => {
            let backend = Cpu::new();
            let metadata = read_metadata(&checkpoint)?;
            let source = ModelSource::File(&checkpoint);
            // Keep what describes the model and its training; drop the trainer's RNG state.
            let mut kept = Metadata::default();
            for key in [KIND_KEY, CONFIG_KEY, "step", "settings", "stage"] {
                if let Some(value) = metadata.get(key) {
                    kept.set(key, value);
                }
            }
            match metadata.get(KIND_KEY) {
                Some("synthesizer") => {
                    let mut model = load_synthesizer(&backend, source)?;
                    checkpoint::save(&out, &backend, &mut model, None, &kept)?;
                }
                Some("debugger") => {
                    let mut model = load_debugger(&backend, source)?;
                    checkpoint::save(&out, &backend, &mut model, None, &kept)?;
                }
                _ => bail!("{} holds no model this version knows", checkpoint.display()),
            }
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            eprintln!("wrote {} ({} bytes)", out.display(), group(size as usize));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `12446592` as `12,446,592`.
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// Metrics logs (`metrics.jsonl` of run directories, or run directories).
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// Metrics to draw, one panel each.
    #[arg(long, value_delimiter = ',', default_value = "loss,accuracy")]
    metrics: Vec<String>,
    /// Output picture (SVG).
    #[arg(long, short)]
    out: PathBuf,
}

pub(crate) fn plot_command(args: PlotArgs) -> Result<ExitCode> {
    super::check_output_path(&args.out, "-o")?;
    let logs: Vec<PathBuf> = args
        .logs
        .iter()
        .map(|p| {
            if p.is_dir() {
                RunDir::new(p).metrics()
            } else {
                p.clone()
            }
        })
        .collect();
    crate::train::metrics::plot(&logs, &args.metrics, &args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Set by Ctrl-C: a training run checkpoints and stops at the end of the current step.
fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        // Without a handler (e.g. one is already installed) Ctrl-C simply ends the process; the
        // last periodic checkpoint is intact either way.
        let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
        flag
    })
}

/// A training run's progress bar (validation lines printed above it), stopping on Ctrl-C.
struct Progress {
    bar: ProgressBar,
    interrupted: &'static AtomicBool,
}

impl Monitor for Progress {
    fn started(&mut self, start: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(start);
        self.bar.reset_eta();
    }

    fn stepped(&mut self, done: u64, summary: Option<(f64, f64)>) {
        self.bar.set_position(done);
        if let Some((loss, accuracy)) = summary {
            self.bar
                .set_message(format!("loss {loss:.4} acc {accuracy:.3}"));
        }
    }

    fn validated(&mut self, done: u64, values: &[(String, f64)]) {
        let summary: Vec<String> = values.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        self.bar
            .println(format!("step {done}: validation {}", summary.join(", ")));
    }

    fn should_stop(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn finished(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The monitor of `karel train`: a progress bar unless `quiet`; Ctrl-C stops the run after
/// checkpointing either way.
fn monitor(quiet: bool) -> Box<dyn Monitor> {
    let interrupted = interrupt_flag();
    interrupted.store(false, Ordering::SeqCst);
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Box::new(Progress { bar, interrupted })
}
