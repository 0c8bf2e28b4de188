//! `karel data`: convert, inspect and derive datasets.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

use crate::data::dataset::{self, Format, TaskWriter};
use crate::data::edits::FirstToken;
use crate::data::mutate::MutatorConfig;
use crate::data::repair::{self, RepairConfig};
use crate::data::stats::{comparison_svg, comparison_table, ProgramStats, TaskStats};
use crate::data::Task;

#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Convert a task file between formats (standard JSON lines, binary; SED's pickles as input).
    Convert(ConvertArgs),
    /// Statistics of a task file (programs and worlds), optionally compared with a program list.
    Stats(StatsArgs),
    /// Print tasks as programs and ASCII maps.
    Show(ShowArgs),
    /// The mutation benchmark: for every task and k = 1..=K, a mutant with exactly k mutations.
    MutationBench(BenchArgs),
    /// Debugger training examples made ahead of time: mutant, mutations and target edit ops.
    RepairExamples(RepairArgs),
}

/// Where tasks come from.
#[derive(Debug, Args)]
struct Input {
    /// Task file: `.jsonl` (standard), `.kds` (binary) or `.pkl` (SED, with its `.pkl.index`).
    input: PathBuf,
    /// Input format, when the extension does not say.
    #[arg(long, value_enum)]
    from: Option<Format>,
    /// Leave out malformed records (counted and reported) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
}

impl Input {
    fn read(&self) -> Result<Vec<Task>> {
        let (tasks, skipped) = dataset::read_all(&self.input, self.from, self.skip_invalid)?;
        if skipped > 0 {
            eprintln!(
                "skipped {skipped} malformed records of {}",
                self.input.display()
            );
        }
        if tasks.is_empty() {
            bail!("{} holds no tasks", self.input.display());
        }
        Ok(tasks)
    }
}

#[derive(Debug, Args)]
struct ConvertArgs {
    #[command(flatten)]
    input: Input,
    /// Output file (`-`: standard JSON lines on standard output).
    output: PathBuf,
    /// Output format (default: from the extension).
    #[arg(long, value_enum)]
    to: Option<Format>,
}

#[derive(Debug, Args)]
struct StatsArgs {
    #[command(flatten)]
    input: Input,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Compare the programs with those of this file (one program per line, as tokens).
    #[arg(long, value_name = "PROGRAMS")]
    compare: Option<PathBuf>,
    /// With --compare: only programs of at most this many tokens, on both sides.
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// With --compare: draw the comparison into this SVG file.
    #[arg(long, value_name = "SVG")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    input: Input,
    /// First task to show.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Number of tasks to show.
    #[arg(long, default_value_t = 1)]
    limit: usize,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    input: Input,
    /// Output: standard JSON lines with `k`, `mutant_tokens` and `mutations` added.
    #[arg(short, long)]
    output: PathBuf,
    /// Largest number of mutations, 1 to 16.
    #[arg(long, default_value_t = 5, value_parser = super::values::mutation_count)]
    max_k: usize,
    /// Reproduce the original mutator's quirks.
    #[arg(long)]
    compat_original: bool,
}

#[derive(Debug, Args)]
struct RepairArgs {
    #[command(flatten)]
    input: Input,
    /// Output: JSON lines `{guid, mutant_tokens, target_tokens, mutations, ops}`.
    #[arg(short, long)]
    output: PathBuf,
    /// Relative weights of 1, 2, … mutations.
    #[arg(long, default_value = "1,1,1", value_name = "W1,W2,...")]
    n_dist: String,
    /// Examples per task, 1 to 1000.
    #[arg(long, default_value_t = 1, value_parser = per_task)]
    per_task: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reproduce the original mutator's quirks.
    #[arg(long)]
    compat_original: bool,
}

fn per_task(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, 1000)
}

pub(crate) fn data(args: DataArgs) -> Result<ExitCode> {
    match args.command {
        DataCommand::Convert(a) => convert(a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Show(a) => show(a),
        DataCommand::MutationBench(a) => mutation_bench(a),
        DataCommand::RepairExamples(a) => repair_examples(a),
    }
}

fn progress(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

fn convert(args: ConvertArgs) -> Result<ExitCode> {
    super::check_output_path(&args.output, "OUTPUT")?;
    let format = args.to.unwrap_or_else(|| Format::of_path(&args.output));
    let start = Instant::now();
    let tasks = dataset::open(&args.input.input, args.input.from)?;
    let mut writer = TaskWriter::create(&args.output, format)?;
    let mut skipped = 0;
    let copied = (|| -> Result<()> {
        for task in tasks {
            match task {
                Ok(task) => writer.write(&task)?,
                Err(crate::data::DataError::Record { .. }) if args.input.skip_invalid => {
                    skipped += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    })();
    if let Err(error) = copied {
        writer.discard();
        return Err(error);
    }
    let count = writer.count();
    writer.finish()?;
    eprintln!(
        "{count} tasks written to {} in {:.1} s{}",
        args.output.display(),
        start.elapsed().as_secs_f64(),
        if skipped > 0 {
            format!(" ({skipped} malformed records skipped)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn read_program_list(path: &std::path::Path) -> Result<Vec<crate::lang::Program>> {
    let text = super::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            crate::lang::parse(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

fn stats(args: StatsArgs) -> Result<ExitCode> {
    if let Some(plot) = &args.plot {
        super::check_output_path(plot, "--plot")?;
    }
    let tasks = args.input.read()?;
    let stats = TaskStats::of(&tasks);
    if let Some(other) = &args.compare {
        let limit = args.max_tokens.unwrap_or(usize::MAX);
        let reference = read_program_list(other)?;
        let ours = ProgramStats::of(
            tasks
                .iter()
                .map(|t| &t.program)
                .filter(|p| p.token_len() <= limit),
        );
        let theirs = ProgramStats::of(reference.iter().filter(|p| p.token_len() <= limit));
        let (name_a, name_b) = (
            args.input.input.display().to_string(),
            other.display().to_string(),
        );
        if args.json {
            println!("{}", json!({"ours": ours, "reference": theirs}));
        } else {
            print!("{}", comparison_table((&name_a, &ours), (&name_b, &theirs)));
        }
        if let Some(svg) = &args.plot {
            let max_len = if limit == usize::MAX { 60 } else { limit };
            comparison_svg(svg, (&name_a, &ours), (&name_b, &theirs), max_len)
                .map_err(anyhow::Error::msg)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(ExitCode::SUCCESS);
    }
    let p = &stats.programs;
    println!("tasks: {}  examples: {}", p.programs, stats.examples);
    println!(
        "program length: mean {:.2} tokens, min {}, max {}",
        p.mean_length(),
        p.lengths.keys().next().unwrap_or(&0),
        p.lengths.keys().last().unwrap_or(&0)
    );
    println!("nesting depth: {:?}", p.depths);
    println!("statements: {:?}", stats.statements);
    println!("worlds: mean {:.1}×{:.1}, walls {:.1}% of cells, markers on {:.1}% of free cells (mean {:.2}), unchanged outputs {:.1}%",
        stats.mean_rows, stats.mean_cols, 100.0 * stats.wall_share, 100.0 * stats.marked_share, stats.mean_markers, 100.0 * stats.unchanged_share);
    Ok(ExitCode::SUCCESS)
}

fn show(args: ShowArgs) -> Result<ExitCode> {
    let mut shown = 0;
    for (i, task) in dataset::open(&args.input.input, args.input.from)?
        .enumerate()
        .skip(args.index)
    {
        if shown == args.limit {
            break;
        }
        let task = task?;
        println!("# {}[{i}]", args.input.input.display());
        print!("{task}");
        shown += 1;
    }
    if shown == 0 {
        bail!(
            "{} has no task at index {}",
            args.input.input.display(),
            args.index
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes lines atomically to a file, or to standard output for `-`.
fn write_lines(path: &std::path::Path, lines: &[String]) -> Result<()> {
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    if path.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        Ok(())
    } else {
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn mutation_bench(args: BenchArgs) -> Result<ExitCode> {
    super::check_output_path(&args.output, "-o")?;
    let tasks = args.input.read()?;
    let mutator = MutatorConfig {
        compat_original: args.compat_original,
    };
    let bar = progress(tasks.len() * args.max_k, "mutants");
    let lines: Vec<String> = (1..=args.max_k)
        .flat_map(|k| tasks.iter().map(move |t| (k, t)))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|(k, task)| {
            bar.inc(1);
            repair::bench_item(task, *k, &mutator)
                .map(|item| item.to_line())
                .with_context(|| format!("task {} with k = {k}", task.guid))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    write_lines(&args.output, &lines)?;
    eprintln!(
        "{} mutants ({} tasks × k = 1..={}) written to {}",
        lines.len(),
        tasks.len(),
        args.max_k,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn repair_examples(args: RepairArgs) -> Result<ExitCode> {
    super::check_output_path(&args.output, "-o")?;
    let n_dist = super::values::mutation_weights(&args.n_dist)
        .map_err(|e| super::UsageError(format!("--n-dist {e}")))?;
    let tasks = args.input.read()?;
    let config = RepairConfig {
        n_dist,
        mutator: MutatorConfig {
            compat_original: args.compat_original,
        },
        first_token: FirstToken::Start,
        ..RepairConfig::default()
    };
    let jobs: Vec<(usize, &Task)> = tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| (0..args.per_task).map(move |j| (i * args.per_task + j, t)))
        .collect();
    let bar = progress(jobs.len(), "examples");
    let start = Instant::now();
    let lines: Vec<String> = jobs
        .par_iter()
        .map(|&(n, task)| {
            bar.inc(1);
            let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
            rng.set_stream(n as u64);
            let example = repair::repair_example(task, None, &config, &mut rng)
                .with_context(|| format!("task {}", task.guid))?;
            Ok(json!({
                "guid": example.guid,
                "mutant_tokens": example.mutant.tokens().iter().map(|t| t.text()).collect::<Vec<_>>(),
                "target_tokens": example.target.tokens().iter().map(|t| t.text()).collect::<Vec<_>>(),
                "mutations": example.operators.iter().map(|o| o.name()).collect::<Vec<_>>(),
                "ops": example.teacher.targets.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            })
            .to_string())
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    write_lines(&args.output, &lines)?;
    eprintln!(
        "{} examples in {:.1} s",
        lines.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
