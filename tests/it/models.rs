//! SED's models: parameter counts of the paper sizes, the debugger's backward pass against finite
//! differences, step-by-step decoding against the full forward pass.

use karel::data::edits::TeacherForcing;
use karel::data::generate::{candidate, GenConfig};
use karel::data::repair::{repair_example, RepairConfig};
use karel::data::task::Task;
use karel::lang::Token;
use karel::model::debugger::{DebugItem, Debugger, DebuggerBatch, DebuggerConfig};
use karel::model::io_encoder::IoEncoderConfig;
use karel::model::preset::{preset_summary, Preset};
use karel::model::trace_embed::TraceEmbedConfig;
use karel::nn::layers::Lstm;
use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
use karel::nn::param::{count_params, zero_grads};
use karel::nn::{Backend, CpuBackend};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn paper_debugger_parameter_counts() {
    let b = CpuBackend::<f32>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut with = Debugger::new(&b, DebuggerConfig::paper(true), &mut rng);
    assert_eq!(count_params(&b, &mut with), 21_990_016);
    let mut without = Debugger::new(&b, DebuggerConfig::paper(false), &mut rng);
    assert_eq!(count_params(&b, &mut without), 15_908_736);
}

#[test]
fn preset_summaries_add_up() {
    let summary = preset_summary(Preset::Paper);
    assert_eq!(summary.synthesizer.total, 12_446_592);
    assert_eq!(summary.debugger.total, 21_990_016);
    assert_eq!(summary.debugger_no_trace_embed.total, 15_908_736);
    for s in [
        &summary.synthesizer,
        &summary.debugger,
        &summary.debugger_no_trace_embed,
    ] {
        assert_eq!(s.components.iter().map(|c| c.1).sum::<usize>(), s.total);
    }
    let components: Vec<&str> = summary
        .debugger
        .components
        .iter()
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(
        components,
        [
            "io_encoder",
            "trace_embed",
            "encoder.embedding",
            "encoder.lstm",
            "decoder.op_embedding",
            "decoder.token_embedding",
            "decoder.lstm",
            "decoder.out"
        ]
    );
    let io = summary.debugger.components[0].1;
    assert_eq!(io, 10_847_616);
    let tiny = preset_summary(Preset::Tiny);
    assert!(tiny.debugger.total < 1_000_000, "{}", tiny.debugger.total);
}

/// Generated tasks (deterministic).
fn tasks(count: usize) -> Vec<Task> {
    let config = GenConfig::new();
    (0..)
        .filter_map(|i| candidate(&config, 7, i))
        .take(count)
        .collect()
}

fn small(trace: bool) -> DebuggerConfig {
    DebuggerConfig {
        io: IoEncoderConfig {
            grid_channels: 15,
            conv_channels: 1,
            height: 18,
            width: 18,
            output: 3,
        },
        embedding: 3,
        hidden: 2,
        layers: 2,
        pairs: 5,
        trace: trace.then_some(TraceEmbedConfig {
            channels: 2,
            blocks: 1,
            output: 3,
        }),
    }
}

/// The debugger's backward pass (IO encoder, TraceEmbed with batch normalisation, token ↔ state
/// sum, bidirectional encoder, pointer gathers, decoder) against finite differences (f64).
#[test]
fn debugger_gradients() {
    let b = CpuBackend::<f64>::new();
    let tasks = tasks(3);
    let config = RepairConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let examples: Vec<_> = tasks
        .iter()
        .map(|t| repair_example(t, None, &config, &mut rng).expect("mutable"))
        .collect();
    let sources: Vec<Vec<Token>> = examples.iter().map(|e| e.mutant.tokens()).collect();
    let items: Vec<DebugItem> = examples
        .iter()
        .zip(&tasks)
        .zip(&sources)
        .map(|((e, t), s)| DebugItem {
            source: s,
            examples: t.given(),
            traces: &e.traces,
        })
        .collect();
    let targets: Vec<TeacherForcing> = examples.iter().map(|e| e.teacher.clone()).collect();
    for trace in [true, false] {
        let mut model = Debugger::new(&b, small(trace), &mut rng);
        let batch = DebuggerBatch::new(&b, &items, 5, trace);
        let forward = model.forward_train(&b, &batch, &targets);
        let expected: usize = targets.iter().map(|t| t.len()).sum();
        assert_eq!(forward.tokens, expected);
        model.backward(&b, forward, &batch);
        crate::common::check_model_gradients(&mut model, 2, &format!("trace {trace}, "), |m| {
            m.forward_train(&b, &batch, &targets).loss
        });
    }
}

/// Step-by-step decoding equals the full forward pass, with a static input.
#[test]
fn lstm_stepping_equals_forward() {
    let b = CpuBackend::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (batch, dynamic, fixed, hidden, steps) = (3, 2, 3, 4, 5);
    let lstm = Lstm::new(&b, dynamic + fixed, hidden, 2, false, &mut rng);
    let random = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f64> {
        (0..n).map(|_| rng.random::<f64>() - 0.5).collect()
    };
    let xs: Vec<_> = (0..steps)
        .map(|_| b.tensor_f64(&[batch, dynamic], &random(batch * dynamic, &mut rng)))
        .collect();
    let s = b.tensor_f64(&[batch, fixed], &random(batch * fixed, &mut rng));
    let (full, _) = lstm.forward_with_static(&b, &xs, Some(&s), &[steps; 3]);
    let stepper = lstm.stepper(&b, Some(&s));
    let mut state = lstm.zero_state(&b, batch);
    for (t, x) in xs.iter().enumerate() {
        let (y, next) = lstm.step(&b, &stepper, &state, x);
        state = next;
        let (a, c) = (b.to_f64(&y), b.to_f64(&full.outputs[t]));
        assert!(
            a.iter().zip(&c).all(|(p, q)| (p - q).abs() < 1e-12),
            "step {t}"
        );
    }
}

/// A grouped step (rows of a group share their dynamic input) equals a plain step on the input
/// with each row repeated, the static input differing per row.
#[test]
fn lstm_grouped_step_equals_repeated_rows() {
    let b = CpuBackend::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (groups, group, dynamic, fixed, hidden) = (3, 4, 2, 3, 5);
    let rows = groups * group;
    let lstm = Lstm::new(&b, dynamic + fixed, hidden, 2, false, &mut rng);
    let random = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f64> {
        (0..n).map(|_| rng.random::<f64>() - 0.5).collect()
    };
    let s = b.tensor_f64(&[rows, fixed], &random(rows * fixed, &mut rng));
    let stepper = lstm.stepper(&b, Some(&s));
    let (mut grouped, mut plain) = (lstm.zero_state(&b, rows), lstm.zero_state(&b, rows));
    for t in 0..3 {
        let shared = random(groups * dynamic, &mut rng);
        let repeated: Vec<f64> = shared
            .chunks(dynamic)
            .flat_map(|row| std::iter::repeat_n(row, group).flatten().copied())
            .collect();
        let x = b.tensor_f64(&[groups, dynamic], &shared);
        let xr = b.tensor_f64(&[rows, dynamic], &repeated);
        let (y, next) = lstm.step_grouped(&b, &stepper, &grouped, &x, group);
        let (yr, next_plain) = lstm.step(&b, &stepper, &plain, &xr);
        let (a, c) = (b.to_f64(&y), b.to_f64(&yr));
        assert_eq!(a.len(), rows * hidden);
        assert!(
            a.iter().zip(&c).all(|(p, q)| (p - q).abs() < 1e-12),
            "step {t}"
        );
        (grouped, plain) = (next, next_plain);
    }
}

/// A few training steps on a fixed tiny batch: the loss goes down, and greedy decoding (with the
/// running statistics of batch normalisation) then repairs every program of the batch.
#[test]
fn debugger_overfits_a_tiny_batch() {
    let b = CpuBackend::<f32>::new();
    let tasks = tasks(4);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut config = small(true);
    config.embedding = 16;
    config.hidden = 24;
    config.io.output = 8;
    let mut model = Debugger::new(&b, config, &mut rng);
    let repair = RepairConfig::default();
    let examples: Vec<_> = tasks
        .iter()
        .map(|t| repair_example(t, Some(1), &repair, &mut rng).expect("mutable"))
        .collect();
    let sources: Vec<Vec<Token>> = examples.iter().map(|e| e.mutant.tokens()).collect();
    let items: Vec<DebugItem> = (0..tasks.len())
        .map(|i| DebugItem {
            source: &sources[i],
            examples: tasks[i].given(),
            traces: &examples[i].traces,
        })
        .collect();
    let targets: Vec<TeacherForcing> = examples.iter().map(|e| e.teacher.clone()).collect();
    let batch = DebuggerBatch::new(&b, &items, 5, true);
    let mut opt = Optimizer::new(OptimizerConfig::adam());
    let mut losses = Vec::new();
    for _ in 0..250 {
        zero_grads(&b, &mut model);
        let forward = model.forward_train(&b, &batch, &targets);
        losses.push(forward.loss);
        model.backward(&b, forward, &batch);
        clip_grad_norm(&b, &mut model, 1.0);
        opt.update(&b, &mut model, 0.02);
    }
    assert!(losses[249] < losses[0] * 0.02, "{losses:?}");
    let repaired = karel::search::repair::greedy(&b, &model, &batch, 100);
    for (got, example) in repaired.iter().zip(&examples) {
        assert_eq!(got, &example.target.tokens());
    }
}

/// Greedy decoding (the beam of width 1) agrees with the teacher-forced pass: fed its own output,
/// the synthesizer ranks every decoded token first at every step.
#[test]
fn synthesizer_greedy_decoding_matches_teacher_forcing() {
    use karel::model::synthesizer::{Synthesizer, SynthesizerBatch, SynthesizerConfig};
    let b = CpuBackend::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut config = SynthesizerConfig::tiny();
    config.io.conv_channels = 2;
    config.io.output = 8;
    config.embedding = 8;
    config.hidden = 8;
    let model = Synthesizer::new(&b, config, &mut rng);
    let tasks = tasks(6);
    let given = || tasks.iter().flat_map(|t| t.given().iter());
    let inputs = karel::model::grids::grid_tensor(&b, given().map(|e| &e.input));
    let outputs = karel::model::grids::grid_tensor(&b, given().map(|e| &e.output));
    let max_len = 12;
    let decoded = karel::search::synthesis::greedy(&b, &model, &inputs, &outputs, max_len);
    let batch = SynthesizerBatch {
        inputs,
        outputs,
        programs: decoded.clone(),
    };
    let forward = model.forward_train(&b, &batch);
    // Programs cut at the maximum length end without `</S>`, whose prediction then differs.
    let cut = decoded.iter().filter(|p| p.len() == max_len).count();
    assert_eq!(forward.correct + cut, forward.tokens, "{decoded:?}");
}
