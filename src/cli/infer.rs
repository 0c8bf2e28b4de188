//! `karel synthesize --data` and `karel eval`: run trained models over a split (greedy decoding).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::data::dataset::read_all;
use crate::data::edits::FirstToken;
use crate::data::mutate::MutatorConfig;
use crate::data::repair::RepairConfig;
use crate::data::task::Task;
use crate::lang::Token;
use crate::train::debugger::{mutation_bench, repair_items, RepairItem, RepairRecord};
use crate::train::synthesizer::decode_tasks;
use crate::train::{check_examples, load_debugger, load_synthesizer, Cpu};

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}, {{per_sec}}, eta {{eta}}"
        ))
        .expect("valid template"),
    );
    bar
}

/// Greedy programs of `tasks`, in chunks, with a progress bar.
fn decode_all(
    backend: &Cpu,
    model: &crate::model::synthesizer::Synthesizer<Cpu>,
    tasks: &[Task],
    batch: usize,
) -> Vec<Vec<Token>> {
    let bar = progress(tasks.len(), "tasks");
    let mut out = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(batch * 8) {
        out.extend(decode_tasks(backend, model, chunk, batch));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    out
}

#[derive(Debug, Args)]
#[command(
    long_about = "Synthesize programs for every task of a split with a trained synthesizer \
(greedy decoding) and report exact match and generalization. With --wrong-out, write the tasks \
whose program parses but fails at least one given example, with that program, as fine-tuning data \
for `karel train debugger --stage finetune` (SED's filter)."
)]
pub(crate) struct SynthesizeArgs {
    /// Task split (any dataset format).
    #[arg(long)]
    data: PathBuf,
    /// Synthesizer checkpoint.
    #[arg(long)]
    synthesizer: PathBuf,
    /// Write the synthesizer's wrong programs here (JSON lines).
    #[arg(long, value_name = "FILE")]
    wrong_out: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

pub(crate) fn synthesize(args: SynthesizeArgs) -> Result<ExitCode> {
    let backend = Cpu::new();
    let model = load_synthesizer(&backend, &args.synthesizer)?;
    let (tasks, _) = read_all(&args.data, None, false)?;
    check_examples(&tasks, &args.data)?;
    let started = Instant::now();
    let programs = decode_all(&backend, &model, &tasks, args.batch);
    let (mut exact, mut general, mut wrong) = (0, 0, Vec::new());
    for (task, program) in tasks.iter().zip(programs) {
        exact += (program == task.program.tokens()) as usize;
        match task.score(&program) {
            Some((_, true)) => general += 1,
            Some((given, false)) if given < task.given().len() => wrong.push(RepairRecord {
                task: task.clone(),
                source: program,
            }),
            _ => {}
        }
    }
    let n = tasks.len().max(1) as f64;
    eprintln!(
        "{} tasks in {:.1} s: exact match {:.2} %, generalization {:.2} %, {} wrong programs that parse",
        tasks.len(),
        started.elapsed().as_secs_f64(),
        100.0 * exact as f64 / n,
        100.0 * general as f64 / n,
        wrong.len()
    );
    if let Some(path) = &args.wrong_out {
        let mut text = String::new();
        for record in &wrong {
            text.push_str(&record.to_line());
            text.push('\n');
        }
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} records to {}", wrong.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[command(
    long_about = "Evaluate trained models on a split with greedy decoding. With --synthesizer: exact \
match and generalization (all 6 examples) of the synthesizer, and with --debugger also after one \
greedy repair of each program that fails a given example. With --mutation-bench and --debugger: the \
mutation benchmark (the paper's Figure 3): for k = 1..max-k, each task's program mutated k times \
(seeded by its guid) and repaired once."
)]
pub(crate) struct EvalArgs {
    /// Task split (any dataset format).
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    synthesizer: Option<PathBuf>,
    #[arg(long)]
    debugger: Option<PathBuf>,
    /// Run the mutation benchmark (needs --debugger).
    #[arg(long)]
    mutation_bench: bool,
    #[arg(long, default_value_t = 5)]
    max_k: usize,
    /// Step limit of the traces given to the debugger.
    #[arg(long, default_value_t = 250)]
    trace_steps: u32,
    /// Use only the first N tasks.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Write the numbers as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn eval(args: EvalArgs) -> Result<ExitCode> {
    let backend = Cpu::new();
    let (mut tasks, _) = read_all(&args.data, None, false)?;
    if let Some(limit) = args.limit {
        tasks.truncate(limit);
    }
    check_examples(&tasks, &args.data)?;
    let repair = RepairConfig {
        trace_steps: args.trace_steps,
        first_token: FirstToken::Start,
        mutator: MutatorConfig::default(),
        ..RepairConfig::default()
    };
    let debugger = args
        .debugger
        .as_ref()
        .map(|p| load_debugger(&backend, p))
        .transpose()?;
    let started = Instant::now();
    let mut report = serde_json::Map::new();
    report.insert("data".into(), json!(args.data));
    report.insert("tasks".into(), json!(tasks.len()));
    if args.mutation_bench {
        let Some(debugger) = &debugger else {
            bail!("--mutation-bench needs --debugger");
        };
        let rows = mutation_bench(&backend, debugger, &tasks, args.max_k, &repair, args.batch);
        println!("| k | items | repaired (all 6 pass) | exact match |");
        println!("|---|---|---|---|");
        for row in &rows {
            let n = row.items.max(1) as f64;
            println!(
                "| {} | {} | {:.1} % | {:.1} % |",
                row.k,
                row.items,
                100.0 * row.repaired as f64 / n,
                100.0 * row.exact as f64 / n
            );
        }
        report.insert("mutation_bench".into(), json!(rows));
    } else {
        let Some(path) = &args.synthesizer else {
            bail!("give --synthesizer (or --mutation-bench with --debugger)");
        };
        let synthesizer = load_synthesizer(&backend, path)?;
        let programs = decode_all(&backend, &synthesizer, &tasks, args.batch);
        let n = tasks.len().max(1) as f64;
        let scores: Vec<Option<(usize, bool)>> = tasks
            .iter()
            .zip(&programs)
            .map(|(t, p)| t.score(p))
            .collect();
        let exact = tasks
            .iter()
            .zip(&programs)
            .filter(|(t, p)| **p == t.program.tokens())
            .count();
        let general = scores
            .iter()
            .filter(|s| matches!(s, Some((_, true))))
            .count();
        println!(
            "synthesizer (greedy): exact match {:.2} %, generalization {:.2} %",
            100.0 * exact as f64 / n,
            100.0 * general as f64 / n
        );
        report.insert("exact_match".into(), json!(exact as f64 / n));
        report.insert("generalization".into(), json!(general as f64 / n));
        if let Some(debugger) = &debugger {
            // One greedy repair of every program that parses and fails a given example.
            let failing: Vec<usize> = (0..tasks.len())
                .filter(|&i| matches!(scores[i], Some((g, _)) if g < tasks[i].given().len()))
                .collect();
            let items: Vec<(usize, RepairItem)> = failing
                .iter()
                .filter_map(|&i| {
                    RepairItem::new(
                        &tasks[i],
                        programs[i].clone(),
                        args.trace_steps,
                        FirstToken::Start,
                    )
                    .map(|item| (i, item))
                })
                .collect();
            let plain: Vec<RepairItem> = items.iter().map(|(_, it)| it.clone()).collect();
            let repaired = repair_items(&backend, debugger, &plain, args.batch);
            let mut fixed = 0;
            for ((i, _), program) in items.iter().zip(&repaired) {
                if let Some((given, all)) = tasks[*i].score(program) {
                    fixed += (given == tasks[*i].given().len() && all) as usize;
                }
            }
            println!(
                "with one greedy repair: generalization {:.2} % ({} of {} failing programs fixed)",
                100.0 * (general + fixed) as f64 / n,
                fixed,
                items.len()
            );
            report.insert(
                "generalization_with_debugger".into(),
                json!((general + fixed) as f64 / n),
            );
            report.insert("debugger_fixed".into(), json!(fixed));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{} tasks in {seconds:.1} s", tasks.len());
    report.insert("seconds".into(), json!(seconds));
    if let Some(path) = &args.json {
        crate::fsutil::write_atomic(
            path,
            serde_json::to_string_pretty(&serde_json::Value::Object(report))?.as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
