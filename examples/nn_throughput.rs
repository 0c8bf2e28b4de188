//! Throughput of the CPU neural engine on the shapes of BENCHMARKS.md, for comparison with
//! `scripts/torch_bench.py`: forward + backward + SGD update of (a) the IO encoder at batch
//! 64 × 5, (b) a 2-layer LSTM of hidden 256 (input 768) over 20 steps at batch 320, and (c) the
//! whole synthesizer (paper sizes) at batch 64 on programs of 20 tokens.
//!
//! ```sh
//! cargo run --release --example nn_throughput -- [STEPS]
//! ```
//! Threads: rayon's default (all cores), or `RAYON_NUM_THREADS`.

use std::time::Instant;

use karel::lang::Token;
use karel::model::io_encoder::{IoEncoder, IoEncoderConfig};
use karel::model::synthesizer::{Synthesizer, SynthesizerBatch, SynthesizerConfig};
use karel::nn::layers::Lstm;
use karel::nn::optim::{Optimizer, OptimizerConfig};
use karel::nn::param::zero_grads;
use karel::nn::{Backend, CpuBackend};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn timed(steps: usize, mut step: impl FnMut()) -> (f64, f64) {
    step();
    let mut times: Vec<f64> = (0..steps)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

fn main() {
    karel::nn::tune_allocator();
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let b = CpuBackend::<f32>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let threads = rayon::current_num_threads();

    let mut encoder = IoEncoder::new(&b, IoEncoderConfig::paper(), &mut rng);
    let mut opt = Optimizer::new(OptimizerConfig::Sgd);
    let grid = |rng: &mut ChaCha8Rng| {
        let values: Vec<f32> = (0..320 * 15 * 324)
            .map(|_| (rng.random::<f32>() < 0.1) as u8 as f32)
            .collect();
        b.tensor_f32(&[320, 15, 18, 18], &values)
    };
    let (inputs, outputs) = (grid(&mut rng), grid(&mut rng));
    let r: Vec<f32> = (0..320 * 512).map(|_| rng.random::<f32>() - 0.5).collect();
    let r = b.tensor_f32(&[320, 512], &r);
    let (best, median) = timed(steps, || {
        zero_grads(&b, &mut encoder);
        let (_, cache) = encoder.forward(&b, &inputs, &outputs);
        encoder.backward(&b, &cache, &r);
        opt.update(&b, &mut encoder, 0.1);
    });
    // Multiply-adds per example: forward, then weight and input gradients (3×), minus the input
    // gradients of the two first convolutions (their inputs are data).
    let first: u64 = 2 * (15 * 9 * 32 * 324);
    let per: u64 = 3 * (first + 6 * (64 * 9 * 64 * 324) + 64 * 324 * 512) - first;
    let flops = (2 * per * 320) as f64;
    println!("io_encoder batch 320: best {best:.3} s, median {median:.3} s, {:.1} GFLOP/s ({threads} threads)", flops / best / 1e9);

    let mut lstm = Lstm::new(&b, 768, 256, 2, false, &mut rng);
    let mut opt = Optimizer::new(OptimizerConfig::Sgd);
    let xs: Vec<_> = (0..20)
        .map(|_| {
            let v: Vec<f32> = (0..320 * 768).map(|_| rng.random::<f32>() - 0.5).collect();
            b.tensor_f32(&[320, 768], &v)
        })
        .collect();
    let rs: Vec<_> = (0..20)
        .map(|_| {
            let v: Vec<f32> = (0..320 * 256).map(|_| rng.random::<f32>() - 0.5).collect();
            b.tensor_f32(&[320, 256], &v)
        })
        .collect();
    let lengths = vec![20; 320];
    let (best, median) = timed(steps, || {
        zero_grads(&b, &mut lstm);
        let (_, cache) = lstm.forward(&b, &xs, &lengths);
        lstm.backward(&b, &cache, &rs, None, None, false);
        opt.update(&b, &mut lstm, 0.1);
    });
    // Multiply-adds per sequence step: forward, weight gradients and state gradients (3×) of
    // both layers, minus the first layer's input gradient, which is not needed.
    let per_step: u64 = 3 * ((768 * 1024 + 256 * 1024) + (256 * 1024 + 256 * 1024)) - 768 * 1024;
    let flops = (2 * per_step * 320 * 20) as f64;
    println!("lstm 2×256 over 20 steps, batch 320: best {best:.3} s, median {median:.3} s, {:.1} GFLOP/s ({threads} threads)", flops / best / 1e9);

    let mut synthesizer = Synthesizer::new(&b, SynthesizerConfig::paper(), &mut rng);
    let mut opt = Optimizer::new(OptimizerConfig::Sgd);
    let programs: Vec<Vec<Token>> = (0..64)
        .map(|_| {
            (0..20)
                .map(|_| Token::ALL[rng.random_range(4..43)])
                .collect()
        })
        .collect();
    let batch = SynthesizerBatch {
        inputs: inputs.clone(),
        outputs: outputs.clone(),
        programs,
    };
    let (best, median) = timed(steps, || {
        zero_grads(&b, &mut synthesizer);
        let forward = synthesizer.forward_train(&b, &batch);
        synthesizer.backward(&b, forward);
        opt.update(&b, &mut synthesizer, 0.1);
    });
    println!("synthesizer batch 64 (× 5 pairs), 20 tokens: best {best:.3} s, median {median:.3} s ({threads} threads)");
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
