//! In-process VM throughput on a run corpus, best of many passes, for the side-by-side table of
//! BENCHMARKS.md (`scripts/bench.sh` runs it right after the reference's timing).
//!
//! ```sh
//! cargo run --release --example corpus_throughput -- tests/data/reference-runs.jsonl.gz [PASSES]
//! ```
//!
//! Every program is compiled once and every input world built once; a pass runs all of them in
//! strict mode with the 1000-step limit, copying each input world first (as the reference copies
//! its input array). Prints JSON: steps per pass, the best pass's time, steps/s and ns/step.

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use karel::vm::{self, RunConfig, Vm};
use karel::world::World;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "tests/data/reference-runs.jsonl.gz".to_string());
    let passes: usize = args.next().map_or(Ok(200), |p| p.parse())?;
    let file = std::fs::File::open(&path)?;
    let reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut chunks = Vec::new();
    let mut worlds = Vec::new();
    for line in BufReader::new(reader).lines() {
        let record: serde_json::Value = serde_json::from_str(&line?)?;
        let program = karel::lang::parse(record["program"].as_str().unwrap_or_default())?;
        chunks.push(vm::compile(&program));
        let indices: Vec<u64> = serde_json::from_value(record["input"].clone())?;
        worlds.push(World::from_indices(indices)?);
    }
    let config = RunConfig::default();
    let mut machine = Vm::new();
    let (mut best, mut steps) = (f64::INFINITY, 0u64);
    for _ in 0..passes {
        let start = Instant::now();
        steps = 0;
        for (chunk, input) in chunks.iter().zip(&worlds) {
            let mut world = input.clone();
            steps += machine.run(chunk, &mut world, &config).steps as u64;
            std::hint::black_box(&world);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "runs": chunks.len(),
            "steps": steps,
            "passes": passes,
            "seconds": best,
            "steps_per_s": steps as f64 / best,
            "ns_per_step": best / steps as f64 * 1e9,
        })
    );
    Ok(())
}
