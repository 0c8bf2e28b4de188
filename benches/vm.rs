//! Criterion benchmarks of the language and the VM on the conformance corpus
//! (`tests/data/reference-runs.jsonl.gz`, 5,000 programs with their input worlds).
//!
//! - `vm/corpus`: every program compiled once and every world built once; one iteration runs all
//!   5,000 in strict mode (1000-step limit), copying each input world first. Throughput is in
//!   steps (actions, condition evaluations and repeat ticks), as counted by the VM.
//! - `vm/corpus_traced`: the same in the reference's trace mode, recording the compact trace.
//! - `interp/corpus`: the AST-walking oracle on the same runs, for comparison.
//! - `parse/corpus`: lexing and parsing the 5,000 programs (throughput in programs).
//!
//! `cargo bench --bench vm`; the numbers and the reference's are in BENCHMARKS.md.

use std::io::{BufRead, BufReader};

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::read::GzDecoder;
use karel::lang::{self, Program};
use karel::vm::{self, Chunk, NoTrace, RunConfig, Vm};
use karel::world::World;

struct Corpus {
    sources: Vec<String>,
    programs: Vec<Program>,
    chunks: Vec<Chunk>,
    worlds: Vec<World>,
}

fn corpus() -> Corpus {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/reference-runs.jsonl.gz"
    );
    let file = std::fs::File::open(path).expect("the corpus is in tests/data");
    let mut corpus = Corpus {
        sources: Vec::new(),
        programs: Vec::new(),
        chunks: Vec::new(),
        worlds: Vec::new(),
    };
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let record: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let source = record["program"].as_str().unwrap().to_string();
        let program = lang::parse(&source).unwrap();
        let indices: Vec<u64> = serde_json::from_value(record["input"].clone()).unwrap();
        corpus.worlds.push(World::from_indices(indices).unwrap());
        corpus.chunks.push(vm::compile(&program));
        corpus.programs.push(program);
        corpus.sources.push(source);
    }
    corpus
}

fn benchmarks(c: &mut Criterion) {
    let corpus = corpus();
    let config = RunConfig::default();
    let mut machine = Vm::new();
    let steps: u64 = corpus
        .chunks
        .iter()
        .zip(&corpus.worlds)
        .map(|(chunk, world)| machine.run(chunk, &mut world.clone(), &config).steps as u64)
        .sum();

    let mut group = c.benchmark_group("vm");
    group.throughput(Throughput::Elements(steps));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for (chunk, input) in corpus.chunks.iter().zip(&corpus.worlds) {
                let mut world = input.clone();
                total += machine.run(chunk, &mut world, &config).steps;
                black_box(&world);
            }
            total
        })
    });
    group.bench_function("corpus_traced", |b| {
        b.iter(|| {
            for (chunk, input) in corpus.chunks.iter().zip(&corpus.worlds) {
                black_box(vm::run_with_trace(chunk, input, config.max_steps));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("interp");
    group.throughput(Throughput::Elements(steps));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for (program, input) in corpus.programs.iter().zip(&corpus.worlds) {
                let mut world = input.clone();
                black_box(vm::interpret(program, &mut world, &config, &mut NoTrace));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(corpus.sources.len() as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for source in &corpus.sources {
                black_box(lang::parse(source).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
