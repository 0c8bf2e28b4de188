//! Training throughput of SED's models on a backend: optimizer steps per second of the
//! synthesizer and of the debugger (with and without TraceEmbed) at the given batch sizes, on
//! fixed batches of generated tasks and mutants, plus the convolution kernels alone. The
//! PyTorch side is `scripts/torch_gpu_bench.py`, run with the batch shapes this prints.
//!
//! ```sh
//! cargo run --release --example train_throughput -- --device cuda --preset paper --batch 64,128
//! ```
//! Options: `--device cpu|cuda|emulated`, `--preset paper|tiny`, `--batch N,M`, `--steps N`
//! (timed steps, default 20), `--warmup N` (default 3), `--only synthesizer|debugger|conv`,
//! `--tf32` (products on the tensor cores).
//! Prints one JSON line per measurement, then a table.

use std::time::Instant;

use karel::data::generate::{candidate, GenConfig};
use karel::data::repair::{repair_example, RepairConfig};
use karel::data::task::Task;
use karel::model::debugger::Debugger;
use karel::model::preset::Preset;
use karel::model::synthesizer::Synthesizer;
use karel::nn::gpu::GpuBackend;
use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
use karel::nn::{zero_grads, Backend, CpuBackend};
use karel::train::debugger::{repair_batch, RepairItem};
use karel::train::synthesizer::synthesizer_batch;
use karel::train::Trainee;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

struct Options {
    device: String,
    preset: Preset,
    batches: Vec<usize>,
    steps: usize,
    warmup: usize,
    only: Option<String>,
    tf32: bool,
}

fn options() -> Options {
    let mut o = Options {
        device: "cpu".into(),
        preset: Preset::Paper,
        batches: vec![64, 128],
        steps: 20,
        warmup: 3,
        only: None,
        tf32: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--tf32" {
            o.tf32 = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--device" => o.device = value,
            "--preset" => {
                o.preset = match value.as_str() {
                    "tiny" => Preset::Tiny,
                    _ => Preset::Paper,
                }
            }
            "--batch" => o.batches = value.split(',').filter_map(|v| v.parse().ok()).collect(),
            "--steps" => o.steps = value.parse().unwrap_or(o.steps),
            "--warmup" => o.warmup = value.parse().unwrap_or(o.warmup),
            "--only" => o.only = Some(value),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

/// Generated tasks (deterministic).
fn tasks(count: usize) -> Vec<Task> {
    let config = GenConfig::new();
    (0..)
        .filter_map(|i| candidate(&config, 3, i))
        .take(count)
        .collect()
}

/// Median seconds of `steps` timed calls after `warmup` untimed ones, the backend synchronised
/// after each.
fn timed<B: Backend>(b: &B, warmup: usize, steps: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        step();
    }
    b.synchronize();
    let mut times: Vec<f64> = (0..steps)
        .map(|_| {
            let start = Instant::now();
            step();
            b.synchronize();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One optimizer step as training makes it (zero, forward + backward, clip, SGD).
fn train_step<B: Backend, M: Trainee<B>>(
    b: &B,
    model: &mut M,
    optimizer: &mut Optimizer<B>,
    batch: &M::Batch,
) {
    zero_grads(b, model);
    model.train_step(b, batch);
    clip_grad_norm(b, model, 1.0);
    optimizer.update(b, model, 0.1);
}

fn run<B: Backend>(b: &B, o: &Options) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let wants = |what: &str| o.only.as_deref().is_none_or(|only| only == what);
    let most = o.batches.iter().copied().max().unwrap_or(64);
    let tasks = tasks(most);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let repair = RepairConfig::default();
    let items: Vec<RepairItem> = tasks
        .iter()
        .cycle()
        .filter_map(|t| {
            let e = repair_example(t, None, &repair, &mut rng).ok()?;
            Some(RepairItem {
                source: e.mutant.tokens(),
                examples: t.given().to_vec(),
                traces: e.traces,
                teacher: e.teacher,
            })
        })
        .take(most)
        .collect();
    for &batch in &o.batches {
        let refs: Vec<&Task> = tasks.iter().take(batch).collect();
        if wants("synthesizer") {
            let config = o.preset.synthesizer();
            let mut model = Synthesizer::new(b, config, &mut ChaCha8Rng::seed_from_u64(0));
            let mut optimizer = Optimizer::new(OptimizerConfig::Sgd);
            let data = synthesizer_batch(b, &refs, config.pairs);
            let tokens = refs
                .iter()
                .map(|t| t.program.tokens().len() + 1)
                .sum::<usize>() as f64
                / batch as f64;
            let seconds = timed(b, o.warmup, o.steps, || {
                train_step(b, &mut model, &mut optimizer, &data)
            });
            rows.push(json!({
                "model": "synthesizer", "batch": batch, "seconds": seconds,
                "steps_per_s": 1.0 / seconds, "mean_decoder_steps": tokens,
            }));
            eprintln!("{}", rows.last().expect("pushed"));
        }
        if wants("debugger") {
            for trace in [false, true] {
                let config = o.preset.debugger(trace);
                let mut model = Debugger::new(b, config, &mut ChaCha8Rng::seed_from_u64(0));
                let mut optimizer = Optimizer::new(OptimizerConfig::Sgd);
                let chosen = &items[..batch];
                let data = repair_batch(b, chosen, config.pairs, trace);
                let n = batch as f64;
                let source = chosen.iter().map(|i| i.source.len() + 1).sum::<usize>() as f64 / n;
                let ops = chosen.iter().map(|i| i.teacher.len()).sum::<usize>() as f64 / n;
                let states = chosen
                    .iter()
                    .map(|i| {
                        i.traces[..config.pairs]
                            .iter()
                            .map(|t| t.states().count())
                            .sum::<usize>()
                    })
                    .sum::<usize>() as f64
                    / (n * config.pairs as f64);
                let seconds = timed(b, o.warmup, o.steps, || {
                    train_step(b, &mut model, &mut optimizer, &data)
                });
                rows.push(json!({
                    "model": if trace { "debugger" } else { "debugger, no TraceEmbed" },
                    "batch": batch, "seconds": seconds, "steps_per_s": 1.0 / seconds,
                    "mean_source_tokens": source, "mean_edit_ops": ops,
                    "mean_states_per_trace": states,
                }));
                eprintln!("{}", rows.last().expect("pushed"));
            }
        }
        if wants("conv") {
            // The IO encoder's 64 → 64 convolution on batch × 5 grids: forward, and backward
            // with the input gradient.
            let images = batch * 5;
            let mut random =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() - 0.5).collect() };
            let x = b.tensor_f32(&[images, 64, 18, 18], &random(images * 64 * 324));
            let w = b.tensor_f32(&[64, 64, 3, 3], &random(64 * 64 * 9));
            let bias = b.tensor_f32(&[64], &random(64));
            let dy = b.tensor_f32(&[images, 64, 18, 18], &random(images * 64 * 324));
            let flop = 2.0 * (images * 324 * 64 * 64 * 9) as f64;
            let forward = timed(b, o.warmup, o.steps, || {
                let _ = b.conv3x3(&x, &w, &bias);
            });
            let backward = timed(b, o.warmup, o.steps, || {
                let _ = b.conv3x3_backward(&x, &w, &dy, true);
            });
            rows.push(json!({
                "model": "conv3x3 64→64", "batch": batch, "images": images,
                "forward_tflops": flop / forward / 1e12,
                "backward_tflops": 2.0 * flop / backward / 1e12,
            }));
            eprintln!("{}", rows.last().expect("pushed"));
        }
    }
    rows
}

#[cfg(feature = "cuda")]
fn run_cuda(o: &Options) -> Vec<serde_json::Value> {
    let backend = GpuBackend::cuda(0)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_tf32(o.tf32);
    eprintln!("{}", backend.describe_device());
    run(&backend, o)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(_: &Options) -> Vec<serde_json::Value> {
    panic!("built without the `cuda` feature")
}

fn main() {
    karel::nn::tune_allocator();
    let o = options();
    let rows = match o.device.as_str() {
        "cpu" => run(&CpuBackend::<f32>::new(), &o),
        "emulated" => run(
            &GpuBackend::emulated()
                .expect("the GPU emulator")
                .with_tf32(o.tf32),
            &o,
        ),
        "cuda" => run_cuda(&o),
        other => panic!("unknown device {other}"),
    };
    println!("| model | batch | steps/s | shapes |");
    println!("|---|---|---|---|");
    for r in &rows {
        let shapes: Vec<String> = r
            .as_object()
            .expect("an object")
            .iter()
            .filter(|(k, _)| k.starts_with("mean_") || k.ends_with("tflops"))
            .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(0.0)))
            .collect();
        println!(
            "| {} | {} | {} | {} |",
            r["model"].as_str().unwrap_or(""),
            r["batch"],
            r["steps_per_s"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.2}")),
            shapes.join(", ")
        );
    }
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
