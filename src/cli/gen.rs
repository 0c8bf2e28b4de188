//! `karel gen`: generate synthesis tasks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::dataset::{partial_path, Format, TaskWriter};
use crate::data::generate::{
    accepts_any, GenConfig, Generator, Shard, PROBE_CANDIDATES, STALL_CANDIDATES,
};

use super::usage;

/// The long help of `karel gen` (`--help`), set on its command in [`super::Command`].
pub(crate) const LONG_ABOUT: &str = "Generate synthesis tasks: random programs (6 IO pairs each, the first 5 given, \
the 6th held out) on random worlds. Programs that crash or time out on their inputs are redrawn, tasks \
whose outputs all equal their inputs are dropped, and no program appears twice, in one split or across \
splits. The output depends only on the seed and the settings, not on the number of threads.\n\n\
Progress is checkpointed; an interrupted run continues with --resume.";

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// Number of tasks, written to the file given by -o.
    #[arg(long, conflicts_with = "splits")]
    count: Option<usize>,
    /// Several splits in one run, e.g. `train=1116854,val=2500,test=2500`, written as
    /// `<name>.<ext>` into the directory given by -o.
    #[arg(long, value_name = "NAME=N,...")]
    splits: Option<String>,
    /// Output file (with --count; `-` for standard output) or directory (with --splits).
    #[arg(short, long)]
    output: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output format (default: from the extension; `binary` for directories).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Make shard i of n: the tasks whose program hash is i mod n (shards never share programs).
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,
    /// Generator settings as JSON (see `docs/generator.md`); missing fields keep their defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the settings in use as JSON and exit.
    #[arg(long)]
    print_config: bool,
    /// Continue an interrupted run with the same arguments.
    #[arg(long)]
    resume: bool,
    /// Stop after writing this many more tasks, keeping the checkpoint, so that a later run with
    /// --resume continues (to spread a long generation over several sessions).
    #[arg(long, value_name = "N")]
    stop_after: Option<usize>,
    /// Start over, discarding the checkpoint of an interrupted run of the same output.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Worker threads, 1 to 256 (default: all cores).
    #[arg(long, short = 'j', value_parser = super::values::thread_count)]
    threads: Option<usize>,
}

/// What a checkpoint records.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    seed: u64,
    shard: (u64, u64),
    config: GenConfig,
    splits: Vec<(String, usize)>,
    written: Vec<usize>,
    next_index: u64,
}

fn parse_splits(text: &str) -> Result<Vec<(String, usize)>> {
    text.split(',')
        .map(|part| {
            let (name, n) = part
                .split_once('=')
                .with_context(|| format!("`{part}` is not NAME=COUNT"))?;
            let n: usize = n
                .trim()
                .parse()
                .with_context(|| format!("`{n}` is not a count"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bail!("`{name}` is not a split name: use letters, digits, `_` and `-`");
            }
            Ok((name.to_string(), n))
        })
        .collect::<Result<Vec<_>>>()
        .and_then(|splits| {
            for (i, (name, _)) in splits.iter().enumerate() {
                if splits[..i].iter().any(|(other, _)| other == name) {
                    bail!("the split `{name}` is named twice");
                }
            }
            Ok(splits)
        })
}

fn state_path(first_output: &Path) -> PathBuf {
    PathBuf::from(format!("{}.state", partial_path(first_output).display()))
}

/// The split of the task accepted just before candidate `next_index`: drawn in proportion to the
/// tasks each split still lacks, from a stream fixed by the seed and the index. Splits therefore
/// fill up together and share one distribution (accepting programs in order while rejecting
/// repeats makes later programs longer, so filling the splits one after the other would not).
fn choose_split(
    seed: u64,
    next_index: u64,
    splits: &[(String, usize)],
    written: &[usize],
) -> usize {
    let missing: Vec<usize> = splits
        .iter()
        .zip(written)
        .map(|((_, n), w)| n - w)
        .collect();
    let total: usize = missing.iter().sum();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5917);
    rng.set_stream(next_index);
    let mut pick = rng.random_range(0..total.max(1));
    for (i, m) in missing.iter().enumerate() {
        if pick < *m {
            return i;
        }
        pick -= m;
    }
    missing.iter().rposition(|&m| m > 0).unwrap_or(0)
}

pub(crate) fn gen(args: GenArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = super::read_text(path)?;
            let config = serde_json::from_str::<GenConfig>(&text)
                .with_context(|| format!("{} is not a generator config", path.display()))?;
            config
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            config
        }
        None => GenConfig::new(),
    };
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(ExitCode::SUCCESS);
    }
    let shard = match &args.shard {
        Some(text) => Shard::parse(text).map_err(anyhow::Error::msg)?,
        None => Shard::WHOLE,
    };
    let (splits, outputs, format): (Vec<(String, usize)>, Vec<PathBuf>, Format) =
        match (&args.count, &args.splits) {
            (Some(n), None) => {
                let format = args.format.unwrap_or_else(|| Format::of_path(&args.output));
                (
                    vec![("tasks".into(), *n)],
                    vec![args.output.clone()],
                    format,
                )
            }
            (None, Some(text)) => {
                let splits = parse_splits(text)
                    .map_err(|e| super::UsageError(format!("--splits: {e:#}")))?;
                let format = args.format.unwrap_or(Format::Binary);
                std::fs::create_dir_all(&args.output)
                    .with_context(|| format!("cannot create {}", args.output.display()))?;
                let outputs = splits
                    .iter()
                    .map(|(name, _)| args.output.join(format!("{name}.{}", format.extension())))
                    .collect();
                (splits, outputs, format)
            }
            _ => usage!("give either --count N or --splits NAME=N,..."),
        };
    if format == Format::Pickle {
        usage!("tasks can be written in the standard or the binary format");
    }
    if (args.resume || args.stop_after.is_some()) && outputs.iter().any(|p| p == Path::new("-")) {
        usage!("--resume and --stop-after need an output file");
    }
    for path in &outputs {
        super::check_output_path(path, "-o")?;
    }
    let pool = super::thread_pool(args.threads)?;
    let state_file = state_path(&outputs[0]);
    if !args.resume && state_file.exists() {
        if args.force {
            for path in &outputs {
                let _ = std::fs::remove_file(partial_path(path));
            }
            let _ = std::fs::remove_file(&state_file);
        } else {
            usage!(
                "{} holds the checkpoint of an interrupted run of {}: continue it with --resume, \
                 or start over with --force",
                state_file.display(),
                outputs[0].display()
            );
        }
    }
    if !args.resume {
        // Settings that reject every candidate would make the run go on for ever.
        if !pool.install(|| accepts_any(&config, args.seed)) {
            bail!(
                "the generator settings rejected all of the first {PROBE_CANDIDATES} candidates \
                 (every program crashed or timed out on its inputs, or changed none of them)"
            );
        }
    }

    let mut generator = Generator::new(config.clone(), args.seed, shard);
    let mut checkpoint = Checkpoint {
        seed: args.seed,
        shard: (shard.index, shard.count),
        config: config.clone(),
        splits: splits.clone(),
        written: vec![0; splits.len()],
        next_index: 0,
    };
    let mut writers = Vec::with_capacity(outputs.len());
    if args.resume {
        let text = crate::fsutil::read_text(&state_file)
            .with_context(|| format!("nothing to resume: cannot read {}", state_file.display()))?;
        let saved: Checkpoint = serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupted", state_file.display()))?;
        if (saved.seed, saved.shard, &saved.config, &saved.splits)
            != (
                checkpoint.seed,
                checkpoint.shard,
                &checkpoint.config,
                &checkpoint.splits,
            )
        {
            bail!("the interrupted run used other arguments (seed, shard, settings or splits): resume it with the same ones");
        }
        for (path, &keep) in outputs.iter().zip(&saved.written) {
            let (writer, kept) = TaskWriter::resume(path, format, keep)?;
            for task in kept {
                generator.mark_seen(task.program);
            }
            writers.push(writer);
        }
        generator.next_index = saved.next_index;
        checkpoint = saved;
        eprintln!(
            "resuming after {} tasks (candidate {})",
            checkpoint.written.iter().sum::<usize>(),
            checkpoint.next_index
        );
    } else {
        for path in &outputs {
            writers.push(TaskWriter::create(path, format)?);
        }
    }

    let total: usize = splits.iter().map(|(_, n)| n).sum();
    let progress = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} tasks {per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress.set_position(checkpoint.written.iter().sum::<usize>() as u64);
    let start = Instant::now();
    let mut budget = args.stop_after.unwrap_or(usize::MAX);
    let stall_limit = STALL_CANDIDATES.saturating_mul(shard.count);
    let mut last_accepted = checkpoint.next_index;
    loop {
        let missing: usize = splits
            .iter()
            .zip(&checkpoint.written)
            .map(|((_, n), w)| n - w)
            .sum();
        if missing == 0 {
            break;
        }
        if budget == 0 {
            progress.finish_and_clear();
            eprintln!(
                "stopped after {} tasks; continue with the same arguments and --resume",
                checkpoint.written.iter().sum::<usize>()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let round = pool.install(|| generator.next_round(missing.min(budget)));
        budget -= round.len();
        match round.last() {
            Some((_, next_index)) => last_accepted = *next_index,
            None if generator.next_index - last_accepted >= stall_limit => {
                progress.finish_and_clear();
                bail!(
                    "no task was accepted in the last {} candidates: the settings (or the shard) \
                     reject almost every program, or no new program is left to find; {} tasks \
                     are kept with the checkpoint",
                    generator.next_index - last_accepted,
                    checkpoint.written.iter().sum::<usize>()
                );
            }
            None => {}
        }
        for (task, next_index) in round {
            let split = choose_split(args.seed, next_index, &splits, &checkpoint.written);
            writers[split].write(&task)?;
            checkpoint.written[split] += 1;
            checkpoint.next_index = next_index;
            progress.inc(1);
        }
        checkpoint.next_index = checkpoint.next_index.max(generator.next_index);
        if outputs[0] != Path::new("-") {
            for writer in &mut writers {
                writer.flush()?;
            }
            crate::fsutil::write_atomic(
                &state_file,
                serde_json::to_string(&checkpoint)?.as_bytes(),
            )
            .with_context(|| format!("cannot write {}", state_file.display()))?;
        }
    }
    for writer in writers {
        writer.finish()?;
    }
    let _ = std::fs::remove_file(&state_file);
    progress.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let made: usize = splits.iter().map(|(_, n)| n).sum();
    eprintln!(
        "{made} tasks from {} candidates in {seconds:.1} s ({:.0} tasks/s)",
        checkpoint.next_index,
        made as f64 / seconds.max(1e-9)
    );
    for ((name, n), path) in splits.iter().zip(&outputs) {
        if path != Path::new("-") {
            eprintln!("  {name}: {n} tasks in {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
