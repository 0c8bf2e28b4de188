//! Achieved FLOP/s of the matrix-product and convolution kernels, against a peak when one is
//! given: the number `scripts/gpu_check.sh` reports for the CUDA kernels beside the GPU's peak.
//!
//! ```sh
//! cargo run --release --example kernel_throughput -- --device cuda [--tf32] [--peak TFLOPS]
//! ```
//!
//! Options: `--device cpu|cuda|emulated`, `--tf32` (CUDA: products and convolutions on the
//! tensor cores), `--size N` (square products N×N×N, default 4096), `--images N` (convolution
//! batch, default 320: the IO encoder's 64 × 5 pairs), `--reps N` (timed runs, default 10),
//! `--peak TFLOPS` (the device's peak for the precision used, to print the fraction reached).
//! A Markdown table goes to standard output, one JSON line per kernel to standard error.

use std::time::Instant;

use karel::nn::gpu::GpuBackend;
use karel::nn::{Backend, CpuBackend};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

struct Options {
    device: String,
    tf32: bool,
    size: usize,
    images: usize,
    reps: usize,
    peak: Option<f64>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        device: "cpu".into(),
        tf32: false,
        size: 4096,
        images: 320,
        reps: 10,
        peak: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--tf32" {
            o.tf32 = true;
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        let number = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{} {v}: expected a positive whole number", args[i]))
        };
        match args[i].as_str() {
            "--device" => o.device = value.clone(),
            "--size" => o.size = number(value)?,
            "--images" => o.images = number(value)?,
            "--reps" => o.reps = number(value)?,
            "--peak" => {
                o.peak = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite() && *p > 0.0)
                        .ok_or_else(|| format!("--peak {value}: expected TFLOP/s"))?,
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    Ok(o)
}

/// Median seconds of `reps` calls after one untimed call, the backend synchronised after each.
fn timed<B: Backend>(b: &B, reps: usize, mut call: impl FnMut()) -> f64 {
    call();
    b.synchronize();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            call();
            b.synchronize();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn random<B: Backend>(b: &B, shape: &[usize], rng: &mut ChaCha8Rng) -> B::Tensor {
    let count = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| rng.random::<f32>() - 0.5).collect();
    b.tensor_f32(shape, &values)
}

fn measure<B: Backend>(b: &B, o: &Options) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = o.size;
    let (x, y) = (random(b, &[n, n], &mut rng), random(b, &[n, n], &mut rng));
    let (images, channels, side) = (o.images, 64, 18);
    let input = random(b, &[images, channels, side, side], &mut rng);
    let weight = random(b, &[channels, channels, 3, 3], &mut rng);
    let bias = random(b, &[channels], &mut rng);
    let dy = random(b, &[images, channels, side, side], &mut rng);
    let conv_flop = 2.0 * (images * channels * channels * 9 * side * side) as f64;
    let rows: Vec<(String, f64, f64)> = vec![
        (
            format!("matmul {n}×{n}×{n}"),
            2.0 * (n * n * n) as f64,
            timed(b, o.reps, || {
                std::hint::black_box(b.matmul(&x, &y, false, false));
            }),
        ),
        (
            format!("matmul {n}×{n}×{n}, b transposed"),
            2.0 * (n * n * n) as f64,
            timed(b, o.reps, || {
                std::hint::black_box(b.matmul(&x, &y, false, true));
            }),
        ),
        (
            format!("conv3x3 forward, {images}×{channels}×{side}×{side}, {channels} out"),
            conv_flop,
            timed(b, o.reps, || {
                std::hint::black_box(b.conv3x3(&input, &weight, &bias));
            }),
        ),
        (
            format!("conv3x3 backward (input and weight gradients), {images} images"),
            2.0 * conv_flop,
            timed(b, o.reps, || {
                std::hint::black_box(b.conv3x3_backward(&input, &weight, &dy, true));
            }),
        ),
    ];
    let precision = if o.tf32 { "tf32" } else { "f32" };
    println!(
        "| kernel ({}, {precision}) | ms | TFLOP/s | of peak |",
        o.device
    );
    println!("|---|---:|---:|---:|");
    for (name, flop, seconds) in rows {
        let tflops = flop / seconds / 1e12;
        let share = o.peak.map(|peak| tflops / peak);
        println!(
            "| {name} | {:.3} | {tflops:.2} | {} |",
            seconds * 1e3,
            share.map_or("–".to_string(), |s| format!("{:.1} %", 100.0 * s))
        );
        eprintln!(
            "{}",
            json!({
                "kernel": name, "device": o.device, "precision": precision, "seconds": seconds,
                "tflops": tflops, "peak_tflops": o.peak, "share_of_peak": share,
            })
        );
    }
}

fn main() -> std::process::ExitCode {
    karel::nn::tune_allocator();
    let o = match options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let backend = match o.device.as_str() {
        "cpu" if !o.tf32 => {
            measure(&CpuBackend::<f32>::new(), &o);
            return std::process::ExitCode::SUCCESS;
        }
        "cpu" => Err("--tf32 needs --device cuda".to_string()),
        "emulated" => GpuBackend::emulated(),
        #[cfg(feature = "cuda")]
        "cuda" => GpuBackend::cuda(0).map(|b| b.with_tf32(o.tf32)),
        other => Err(format!("unknown or unavailable device `{other}`")),
    };
    match backend {
        Ok(backend) => {
            measure(&backend, &o);
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(1)
        }
    }
}
