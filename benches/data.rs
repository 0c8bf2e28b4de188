//! Criterion benchmarks of the data layer, on tasks drawn by the generator (seed 0):
//!
//! - `generate/candidates`: drawing and checking generator candidates (program, 6 worlds, runs);
//! - `repair/examples`: debugger training examples as SED's stage-1 loader makes them: 1–3
//!   mutations, the mutant's traces on the 5 given inputs (250 steps), the edit-op targets and
//!   teacher-forcing sequences;
//! - `binary/decode`: decoding tasks from the binary format.
//!
//! One core; `cargo bench --bench data`. Numbers in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use karel::data::binary::{decode_task, encode_task};
use karel::data::generate::{candidate, GenConfig};
use karel::data::repair::{repair_example, RepairConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn benchmarks(c: &mut Criterion) {
    let config = GenConfig::new();
    let tasks: Vec<_> = (0..4000)
        .filter_map(|i| candidate(&config, 0, i))
        .take(500)
        .collect();

    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("candidates", |b| {
        let mut next = 0u64;
        b.iter(|| {
            for _ in 0..1000 {
                black_box(candidate(&config, 1, next));
                next += 1;
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("repair");
    group.throughput(Throughput::Elements(tasks.len() as u64));
    let repair = RepairConfig::default();
    group.bench_function("examples", |b| {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        b.iter(|| {
            for task in &tasks {
                black_box(repair_example(task, None, &repair, &mut rng).unwrap());
            }
        })
    });
    group.finish();

    let encoded: Vec<Vec<u8>> = tasks
        .iter()
        .map(|t| {
            let mut bytes = Vec::new();
            encode_task(t, &mut bytes);
            bytes
        })
        .collect();
    let mut group = c.benchmark_group("binary");
    group.throughput(Throughput::Elements(tasks.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(decode_task(bytes).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
