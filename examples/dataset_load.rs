//! Times loading a binary dataset (`.kds`) into memory, for BENCHMARKS.md: reading and checking
//! the file (checksum, index), then decoding every task in parallel.
//!
//! ```sh
//! cargo run --release --example dataset_load -- data/train.kds
//! ```

use std::time::Instant;

use karel::data::binary::BinaryDataset;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: dataset_load FILE.kds"))?;
    let start = Instant::now();
    let dataset = BinaryDataset::open(path.as_ref())?;
    let opened = start.elapsed().as_secs_f64();
    let tasks = dataset.load_all()?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "{} tasks: open and check {opened:.2} s, decode {:.2} s, total {total:.2} s ({:.0} tasks/s, {} threads)",
        tasks.len(),
        total - opened,
        tasks.len() as f64 / total,
        rayon::current_num_threads()
    );
    Ok(())
}
