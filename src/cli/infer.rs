//! `karel synthesize` and `karel eval`: SED's main job (synthesize, execute, debug) on one task or
//! a whole split, with the built-in models or trained checkpoints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{values, DeviceChoice, EXIT_PROGRAM_FAILED};
use crate::data::dataset::read_all;
use crate::data::edits::{op_stream, EditOp, FirstToken};
use crate::data::mutate::MutatorConfig;
use crate::data::repair::RepairConfig;
use crate::data::task::Task;
use crate::lang::token::tokens_to_string;
use crate::lang::{parse_tokens, Token};
use crate::model::debugger::Debugger;
use crate::model::grids::grid_tensor;
use crate::model::load::{check_examples, load_debugger, load_synthesizer, ModelSource};
use crate::model::synthesizer::Synthesizer;
use crate::nn::Backend;
use crate::nn::Cpu;
use crate::plot::{draw_panels, Curve, Panel};
use crate::search::report::{ConfigReport, Report, TaskRecord};
use crate::search::{
    run_searches, synthesis, SearchConfig, SearchResult, Strategy, SynthesisConfig,
};
use crate::train::debugger::{mutation_bench, RepairRecord};

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

/// How the synthesizer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Decode {
    /// One program per task ("LGRL-GD").
    Greedy,
    /// Beam search ("LGRL"); its beams, in order, are the search's start.
    Beam,
    /// Both, as separate configurations (eval only).
    Both,
}

/// Which search follows the synthesizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SearchChoice {
    BestFirst,
    Greedy,
    /// Both, as separate configurations (eval only).
    Both,
    /// The synthesizer alone.
    None,
}

impl SearchChoice {
    fn strategies(self) -> Vec<Strategy> {
        match self {
            SearchChoice::BestFirst => vec![Strategy::BestFirst],
            SearchChoice::Greedy => vec![Strategy::Greedy],
            SearchChoice::Both => vec![Strategy::BestFirst, Strategy::Greedy],
            SearchChoice::None => vec![],
        }
    }
}

/// Options shared by `synthesize` and `eval`: models, decoding and search.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Synthesizer checkpoint [default: the built-in tiny synthesizer].
    #[arg(long, value_name = "CKPT")]
    synthesizer: Option<PathBuf>,
    /// Debugger checkpoint [default: the built-in tiny debugger].
    #[arg(long, value_name = "CKPT")]
    debugger: Option<PathBuf>,
    /// Synthesizer beam width (with beam decoding), 1 to 1024.
    #[arg(long, default_value_t = 32, value_parser = values::width)]
    beam: usize,
    /// Most program tokens the synthesizer writes, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = values::length_limit)]
    max_len: usize,
    /// Mask tokens that cannot continue a program while decoding (not in the original).
    #[arg(long)]
    grammar: bool,
    /// Candidates per debugger call (the debugger's beam width), 1 to 1024.
    #[arg(long, default_value_t = 64, value_parser = values::width)]
    debugger_beam: usize,
    /// Most edit ops per debugger candidate, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = values::length_limit)]
    max_ops: usize,
    /// Step limit of the execution traces given to the debugger, 1 to 10000.
    #[arg(long, default_value_t = 250, value_parser = values::trace_step_limit)]
    trace_steps: u32,
    /// Merge observationally equal failing candidates (same outcomes and final worlds on the
    /// given inputs) so that no debugger call is spent twice on one behaviour (not in the
    /// original).
    #[arg(long)]
    merge: bool,
    /// Programs (tasks) per network batch, 1 to 1024.
    #[arg(long, default_value_t = 16, value_parser = values::width)]
    batch: usize,
    /// Where the networks run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// With --device cuda: matrix products and convolutions on the tensor cores in TF32 (f32
    /// accumulation) instead of f32.
    #[arg(long)]
    tf32: bool,
}

impl ModelArgs {
    fn synthesis(&self, beam: usize) -> SynthesisConfig {
        SynthesisConfig {
            beam,
            max_len: self.max_len,
            grammar: self.grammar,
        }
    }

    fn search(&self, strategy: Strategy, steps: usize) -> SearchConfig {
        SearchConfig {
            strategy,
            steps,
            debugger_beam: self.debugger_beam,
            max_ops: self.max_ops,
            trace_steps: self.trace_steps,
            merge: self.merge,
        }
    }

    fn load_synthesizer<B: Backend>(&self, backend: &B) -> Result<Synthesizer<B>> {
        load_synthesizer(
            backend,
            ModelSource::or_default(self.synthesizer.as_deref()),
        )
    }

    fn load_debugger<B: Backend>(&self, backend: &B) -> Result<Debugger<B>> {
        load_debugger(backend, ModelSource::or_default(self.debugger.as_deref()))
    }

    /// What identifies the models and decoding in a report (shards must agree on it).
    fn settings(&self, decode: Decode, search: SearchChoice, steps: usize) -> serde_json::Value {
        let name = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("built-in".to_string(), |p| p.display().to_string())
        };
        json!({
            "synthesizer": name(&self.synthesizer),
            "debugger": name(&self.debugger),
            "decode": format!("{decode:?}").to_lowercase(),
            "beam": self.beam,
            "max_len": self.max_len,
            "grammar": self.grammar,
            "search": format!("{search:?}").to_lowercase(),
            "steps": steps,
            "debugger_beam": self.debugger_beam,
            "max_ops": self.max_ops,
            "trace_steps": self.trace_steps,
            "merge": self.merge,
        })
    }
}

/// Decodes `tasks` with the synthesizer in batches: each task's candidates, best first (one
/// with greedy decoding).
fn decode_tasks<B: Backend>(
    backend: &B,
    model: &Synthesizer<B>,
    tasks: &[&Task],
    config: &SynthesisConfig,
    batch: usize,
    bar: Option<&ProgressBar>,
) -> Vec<Vec<Vec<Token>>> {
    let pairs = model.config.pairs;
    let mut out = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(batch.max(1)) {
        let given = || chunk.iter().flat_map(|t| t.given()[..pairs].iter());
        let inputs = grid_tensor(backend, given().map(|e| &e.input));
        let outputs = grid_tensor(backend, given().map(|e| &e.output));
        if config.beam <= 1 && !config.grammar {
            let programs = model.decode_greedy(backend, &inputs, &outputs, config.max_len);
            out.extend(programs.into_iter().map(|p| vec![p]));
        } else {
            let beams = synthesis::beam_search(backend, model, &inputs, &outputs, config);
            out.extend(
                beams
                    .into_iter()
                    .map(|b| b.into_iter().map(|h| h.hypothesis).collect()),
            );
        }
        if let Some(bar) = bar {
            bar.inc(chunk.len() as u64);
        }
    }
    out
}

/// The synthesizer's answer from its candidates: the first that passes the given examples,
/// else (greedy) its only program or (beam) nothing.
fn synthesizer_answer(task: &Task, candidates: &[Vec<Token>], beam: bool) -> Vec<Token> {
    let passes = |tokens: &&Vec<Token>| matches!(task.score(tokens), Some((g, _)) if g == task.given().len());
    match candidates.iter().find(passes) {
        Some(found) => found.clone(),
        None if beam => Vec::new(),
        None => candidates.first().cloned().unwrap_or_default(),
    }
}

fn record(index: usize, task: &Task, program: &[Token], exact_of: &[Token]) -> TaskRecord {
    let score = if program.is_empty() {
        None
    } else {
        task.score(program)
    };
    let passes_given = matches!(score, Some((g, _)) if g == task.given().len());
    TaskRecord {
        index,
        guid: task.guid.clone(),
        program: tokens_to_string(program),
        passes_given,
        passes_all: matches!(score, Some((_, true))),
        exact: !exact_of.is_empty() && exact_of == task.program.tokens().as_slice(),
        calls: 0,
        solved_at: passes_given.then_some(0),
        executed: 0,
        merged: 0,
    }
}

fn search_record(index: usize, task: &Task, result: &SearchResult) -> TaskRecord {
    let mut r = record(index, task, &result.program, &result.program);
    r.calls = result.calls;
    r.executed = result.executed;
    r.merged = result.merged;
    r.solved_at = r.passes_given.then_some(result.calls);
    r
}

// ---------------------------------------------------------------------------------------------
// synthesize

#[derive(Debug, Args)]
#[command(
    long_about = "Synthesize a program for a task from its 5 given input/output examples, execute \
it, and debug it until it passes them (SED). Prints the program and whether it passes the given \
and the held-out examples; --explain shows every edit step. Without checkpoints the built-in tiny \
models are used. Exit status 3 when no program passing the given examples was found.\n\n\
With --data instead of a task: decode a whole split greedily and report exact match and \
generalization; --wrong-out writes the programs that parse but fail a given example, as \
fine-tuning data for `karel train debugger --stage finetune` (SED's filter)."
)]
pub(crate) struct SynthesizeArgs {
    /// A file holding the task (any dataset format; see --index).
    #[arg(required_unless_present = "data", conflicts_with = "data")]
    task: Option<PathBuf>,
    /// Which task of the file (0-based).
    #[arg(long, default_value_t = 0, conflicts_with = "data")]
    index: usize,
    #[command(flatten)]
    models: ModelArgs,
    /// Synthesizer decoding.
    #[arg(long, value_enum, default_value_t = Decode::Beam, conflicts_with = "data")]
    decode: Decode,
    /// The search after the synthesizer.
    #[arg(long, value_enum, default_value_t = SearchChoice::BestFirst, conflicts_with = "data")]
    search: SearchChoice,
    /// Debugger calls allowed (K), 0 to 100000.
    #[arg(long, default_value_t = 100, value_parser = call_budget, conflicts_with = "data")]
    steps: usize,
    /// Print each edit step: the program, its edits and the examples it passes.
    #[arg(long, conflicts_with = "data")]
    explain: bool,
    /// Write the result as JSON here.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    json: Option<PathBuf>,
    /// Decode every task of this split (greedy, with the synthesizer alone: no search, so no
    /// debugger options) instead of one task.
    #[arg(long)]
    data: Option<PathBuf>,
    /// With --data: write the synthesizer's wrong programs here (JSON lines).
    #[arg(long, value_name = "FILE", requires = "data")]
    wrong_out: Option<PathBuf>,
}

pub(crate) fn synthesize(args: SynthesizeArgs) -> Result<ExitCode> {
    super::check_tf32(args.models.device, args.models.tf32)?;
    check_outputs(&[
        (args.json.as_deref(), "--json"),
        (args.wrong_out.as_deref(), "--wrong-out"),
    ])?;
    match args.models.device {
        DeviceChoice::Cpu => synthesize_on(&Cpu::new(), args),
        DeviceChoice::Cuda => synthesize_on(&super::cuda_backend(args.models.tf32)?, args),
    }
}

fn synthesize_on<B: Backend>(backend: &B, args: SynthesizeArgs) -> Result<ExitCode> {
    if let Some(data) = &args.data {
        return synthesize_split(backend, &args, data);
    }
    let path = args.task.as_ref().expect("clap requires a task");
    let (tasks, _) = read_all(path, None, false)?;
    let Some(task) = tasks.get(args.index) else {
        bail!(
            "{} holds {} task(s); there is no task {}",
            path.display(),
            tasks.len(),
            args.index
        );
    };
    check_examples([task], path)?;
    if matches!(args.decode, Decode::Both) || matches!(args.search, SearchChoice::Both) {
        bail!("synthesize runs one configuration: choose --decode greedy|beam and --search best-first|greedy|none");
    }
    let started = Instant::now();
    let synthesizer = args.models.load_synthesizer(backend)?;
    let beam = if args.decode == Decode::Beam {
        args.models.beam
    } else {
        1
    };
    let candidates = decode_tasks(
        backend,
        &synthesizer,
        &[task],
        &args.models.synthesis(beam),
        1,
        None,
    )
    .remove(0);
    let given = task.given().len();
    let best_passed = candidates
        .iter()
        .filter_map(|c| task.score(c).map(|s| s.0))
        .max();
    println!(
        "task {}: {} given examples, {} held out",
        task.guid,
        given,
        task.held_out().len()
    );
    println!(
        "synthesizer ({}): {} candidate(s); the best passes {} of {given} given examples",
        if beam > 1 {
            format!("beam {beam}")
        } else {
            "greedy".into()
        },
        candidates.len(),
        best_passed.map_or("none (no candidate parses)".into(), |p| p.to_string()),
    );
    let (program, search) = match args.search.strategies().first() {
        None => (synthesizer_answer(task, &candidates, beam > 1), None),
        Some(&strategy) => {
            let debugger = args.models.load_debugger(backend)?;
            let config = args.models.search(strategy, args.steps);
            let (mut results, _) = run_searches(
                backend,
                &debugger,
                &[task],
                std::slice::from_ref(&candidates),
                &config,
                1,
                |_| {},
            );
            let result = results.remove(0);
            println!(
                "search ({}, K = {}): {} after {} debugger call(s), {} programs executed{}",
                strategy.name(),
                args.steps,
                match result.ending {
                    crate::search::sed::Ending::Solved => "solved",
                    crate::search::sed::Ending::StepLimit => "budget spent",
                    crate::search::sed::Ending::Exhausted => "nothing left to try",
                },
                result.calls,
                result.executed,
                if args.models.merge {
                    format!(", {} merged", result.merged)
                } else {
                    String::new()
                }
            );
            (result.program.clone(), Some(result))
        }
    };
    if args.explain {
        if let Some(result) = &search {
            explain(task, result);
        }
    }
    let rec = record(0, task, &program, &program);
    println!();
    match parse_tokens(&program, &Default::default()) {
        Ok(p) if !program.is_empty() => print!("{}", p.pretty()),
        _ => println!("(no program)"),
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!();
    println!(
        "passes the {given} given examples: {}",
        yes(rec.passes_given)
    );
    println!(
        "passes the held-out example{}: {}",
        if task.held_out().len() == 1 { "" } else { "s" },
        yes(rec.passes_all)
    );
    println!("the task's own program: {}", yes(rec.exact));
    eprintln!("{:.2} s", started.elapsed().as_secs_f64());
    if let Some(out) = &args.json {
        let mut value = serde_json::to_value(&rec)?;
        if let (Some(result), Some(fields)) = (&search, value.as_object_mut()) {
            let steps: Vec<_> = result
                .path
                .iter()
                .map(|&i| {
                    let c = &result.candidates[i];
                    json!({"program": tokens_to_string(&c.tokens), "passed": c.passed, "call": c.call})
                })
                .collect();
            fields.insert("steps".into(), json!(steps));
        }
        crate::fsutil::write_atomic(out, serde_json::to_string_pretty(&value)?.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(if rec.passes_given {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROGRAM_FAILED)
    })
}

/// Prints the path of edits that led to the search's program, like the paper's Figure 1.
fn explain(task: &Task, result: &SearchResult) {
    let given = task.given().len();
    for (n, &id) in result.path.iter().enumerate() {
        let c = &result.candidates[id];
        println!();
        match c.parent {
            None => println!(
                "step {n}: synthesizer candidate; passes {}/{given}",
                c.passed
            ),
            Some(parent) => {
                println!(
                    "step {n}: debugger call {}; passes {}/{given}",
                    c.call, c.passed
                );
                let source = &result.candidates[parent].tokens;
                let edits = describe_edits(source, &c.tokens);
                println!("  edits: {}", edits.join(", "));
            }
        }
        println!("  {}", tokens_to_string(&c.tokens));
    }
}

/// The edits from `source` to `target` in words, runs of neighbouring edits of one kind merged:
/// "delete `IFELSE c(` at 4–5", "insert `move move` at 7", "replace `move` at 3 by `turnLeft`".
fn describe_edits(source: &[Token], target: &[Token]) -> Vec<String> {
    /// Neighbouring edits of one kind.
    struct Run {
        kind: EditKind,
        first: usize,
        last: usize,
        old: Vec<Token>,
        new: Vec<Token>,
    }
    #[derive(PartialEq)]
    enum EditKind {
        Delete,
        Insert,
        Replace,
    }
    let mut runs: Vec<Run> = Vec::new();
    for p in op_stream(source, target) {
        let (kind, old, new) = match p.op {
            EditOp::Delete => (EditKind::Delete, Some(source[p.position]), None),
            EditOp::Insert(t) => (EditKind::Insert, None, Some(t)),
            EditOp::Replace(t) => (EditKind::Replace, Some(source[p.position]), Some(t)),
            _ => continue,
        };
        // Insertions extend a run at the same position, the others at the next one.
        let extends = runs.last().is_some_and(|r| {
            r.kind == kind
                && if kind == EditKind::Insert {
                    r.last == p.position
                } else {
                    r.last + 1 == p.position
                }
        });
        if !extends {
            runs.push(Run {
                kind,
                first: p.position,
                last: p.position,
                old: Vec::new(),
                new: Vec::new(),
            });
        }
        let run = runs.last_mut().expect("pushed");
        run.last = p.position;
        run.old.extend(old);
        run.new.extend(new);
    }
    runs.into_iter()
        .map(|run| {
            let at = if run.first == run.last {
                run.first.to_string()
            } else {
                format!("{}–{}", run.first, run.last)
            };
            let (old, new) = (tokens_to_string(&run.old), tokens_to_string(&run.new));
            match run.kind {
                EditKind::Delete => format!("delete `{old}` at {at}"),
                EditKind::Insert => format!("insert `{new}` at {at}"),
                EditKind::Replace => format!("replace `{old}` at {at} by `{new}`"),
            }
        })
        .collect()
}

/// `synthesize --data`: greedy programs for a whole split.
fn synthesize_split<B: Backend>(
    backend: &B,
    args: &SynthesizeArgs,
    data: &Path,
) -> Result<ExitCode> {
    if args.models.debugger.is_some() {
        super::usage!("--data decodes with the synthesizer alone: --debugger does not apply");
    }
    let model = args.models.load_synthesizer(backend)?;
    let (tasks, _) = read_all(data, None, false)?;
    if tasks.is_empty() {
        bail!("{} holds no tasks", data.display());
    }
    check_examples(&tasks, data)?;
    let started = Instant::now();
    let refs: Vec<&Task> = tasks.iter().collect();
    let bar = progress(tasks.len(), "tasks");
    let programs = decode_tasks(
        backend,
        &model,
        &refs,
        &args.models.synthesis(1),
        args.models.batch.max(64),
        Some(&bar),
    );
    bar.finish_and_clear();
    let (mut exact, mut general, mut wrong) = (0, 0, Vec::new());
    for (task, mut candidates) in tasks.iter().zip(programs) {
        let program = candidates.remove(0);
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

// ---------------------------------------------------------------------------------------------
// eval

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    long_about = "Evaluate SED on a split: decode every task with the synthesizer (greedy and/or \
beam search), then search with the debugger (best-first and/or greedy, K debugger calls). Prints \
a Markdown report in the shape of the paper's Table 1 (generalization error, exact-match error in \
parentheses), the error against K, and the programs executed per task; --json writes every \
per-task record, from which all numbers are computed. --shard i/n evaluates every n-th task, and \
`karel eval merge` joins the shards' reports. With --json the report is saved after every chunk \
of tasks, and --resume continues an interrupted evaluation from it. --compare-beam adds plain beam search as wide as \
the mean number of programs each search executed (the paper's Table 2). With --mutation-bench: \
the mutation benchmark (the paper's Figure 3). Without checkpoints the built-in tiny models are \
used."
)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    /// Task split (any dataset format).
    #[arg(long, required = true)]
    data: Option<PathBuf>,
    #[command(flatten)]
    models: ModelArgs,
    /// Synthesizer decodings to evaluate.
    #[arg(long, value_enum, default_value_t = Decode::Both)]
    decode: Decode,
    /// Searches to evaluate after each decoding.
    #[arg(long, value_enum, default_value_t = SearchChoice::BestFirst)]
    search: SearchChoice,
    /// Debugger-call budgets: the search runs with the largest, and the report gives the error
    /// at each (e.g. 1,5,10,25,50,100).
    #[arg(long, value_delimiter = ',', default_value = "100", value_parser = call_budget)]
    steps: Vec<usize>,
    /// Add plain beam search with the same number of programs as each search (Table 2).
    #[arg(long)]
    compare_beam: bool,
    /// Evaluate shard i of n (the tasks whose index is i modulo n), e.g. 0/4.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Use only the first N tasks of the split (at least 1).
    #[arg(long, value_parser = values::positive_count)]
    limit: Option<usize>,
    /// Write the report (settings, every per-task record, summaries) as JSON. It is saved
    /// after every chunk of tasks (see --save-every), so that an interrupted evaluation loses at
    /// most the chunk in progress.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Continue the unfinished evaluation in --json FILE (same split, shard and settings; another
    /// --limit cuts it to fewer tasks or extends it, if no record is lost).
    #[arg(long, requires = "json")]
    resume: bool,
    /// Tasks per saved chunk (rounded up to whole network batches).
    #[arg(long, default_value_t = 128, value_name = "TASKS", value_parser = values::positive_count)]
    save_every: usize,
    /// Write the Markdown report here (it is printed in any case).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Draw the generalization error against K to this SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Run the mutation benchmark instead: each task's program mutated k = 1..max-k times and
    /// repaired by one debugger call (first of the debugger's beam that passes the given
    /// examples; greedy with --debugger-beam 1).
    #[arg(long)]
    mutation_bench: bool,
    /// With --mutation-bench: the most mutations per task, 1 to 16.
    #[arg(long, default_value_t = 5, value_parser = values::mutation_count)]
    max_k: usize,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Merge the JSON reports of the shards of one evaluation into one report.
    Merge {
        /// Shard reports (`--json` outputs of `karel eval --shard i/n`).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged report as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
}

/// Debugger calls: 0 to 100,000.
fn call_budget(text: &str) -> Result<usize, String> {
    values::bounded(text, 0, 100_000)
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not of the form i/n"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index `{i}`"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count `{n}`"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 ≤ i < n"));
    }
    Ok((i, n))
}

/// Checks the given output paths before any work.
fn check_outputs(paths: &[(Option<&Path>, &str)]) -> Result<()> {
    for (path, option) in paths {
        if let Some(path) = path {
            super::check_output_path(path, option)?;
        }
    }
    Ok(())
}

pub(crate) fn eval(args: EvalArgs) -> Result<ExitCode> {
    if let Some(EvalCommand::Merge {
        reports,
        json,
        markdown,
        plot,
    }) = &args.command
    {
        check_outputs(&[
            (json.as_deref(), "--json"),
            (markdown.as_deref(), "--markdown"),
            (plot.as_deref(), "--plot"),
        ])?;
        let parts = reports
            .iter()
            .map(|p| Ok((p.display().to_string(), Report::load(p)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut merged = Report::merge(parts)?;
        let (covered, whole) = merged.coverage();
        if !whole {
            eprintln!(
                "warning: the reports cover {covered} of the split's {} tasks",
                merged.split_tasks
            );
        }
        return write_report(
            &mut merged,
            json.as_deref(),
            markdown.as_deref(),
            plot.as_deref(),
        );
    }
    super::check_tf32(args.models.device, args.models.tf32)?;
    check_outputs(&[
        (args.json.as_deref().filter(|_| !args.resume), "--json"),
        (args.markdown.as_deref(), "--markdown"),
        (args.plot.as_deref(), "--plot"),
    ])?;
    match args.models.device {
        DeviceChoice::Cpu => eval_on(&Cpu::new(), args),
        DeviceChoice::Cuda => eval_on(&super::cuda_backend(args.models.tf32)?, args),
    }
}

fn eval_on<B: Backend>(backend: &B, args: EvalArgs) -> Result<ExitCode> {
    let data = args.data.as_ref().expect("clap requires --data");
    let (mut tasks, _) = read_all(data, None, false)?;
    if let Some(limit) = args.limit {
        tasks.truncate(limit);
    }
    if tasks.is_empty() {
        bail!("{} holds no tasks to evaluate", data.display());
    }
    check_examples(&tasks, data)?;
    if args.mutation_bench {
        return mutation_benchmark(&args, backend, &tasks);
    }
    let split_tasks = tasks.len();
    let (shard, shards) = args.shard.unwrap_or((0, 1));
    let selected: Vec<(usize, &Task)> = tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % shards == shard)
        .collect();
    if selected.is_empty() {
        bail!(
            "shard {shard}/{shards} of the {} task(s) of {} holds no task",
            tasks.len(),
            data.display()
        );
    }
    let mut steps = args.steps.clone();
    steps.sort_unstable();
    steps.dedup();
    let budget = steps.last().copied().unwrap_or(0);
    let decodings: Vec<usize> = match args.decode {
        Decode::Greedy => vec![1],
        Decode::Beam => vec![args.models.beam],
        Decode::Both => vec![1, args.models.beam],
    };
    let strategies = args.search.strategies();
    let started = Instant::now();
    let synthesizer = args.models.load_synthesizer(backend)?;
    let debugger = if strategies.is_empty() {
        None
    } else {
        Some(args.models.load_debugger(backend)?)
    };
    let fresh = Report {
        data: data.display().to_string(),
        split_tasks,
        shards: vec![[shard, shards]],
        settings: args.models.settings(args.decode, args.search, budget),
        curve_steps: if strategies.is_empty() {
            vec![]
        } else {
            steps.clone()
        },
        configs: Vec::new(),
        seconds: 0.0,
        timing: Default::default(),
        complete: false,
        summaries: Vec::new(),
    };
    let mut report = start_report(&args, fresh)?;
    let earlier_seconds = report.seconds;
    report.complete = false;
    let batch = args.models.batch.max(1);
    // Whole network batches per saved chunk, so that a resumed run batches tasks as an
    // uninterrupted one does.
    let chunk_len = args.save_every.max(1).div_ceil(batch) * batch;
    let chunks: Vec<&[(usize, &Task)]> = selected.chunks(chunk_len).collect();
    let save = |report: &mut Report| -> Result<()> {
        report.seconds = earlier_seconds + started.elapsed().as_secs_f64();
        match &args.json {
            Some(path) => report.save(path),
            None => Ok(()),
        }
    };

    // The synthesizer alone and each search after it, for every decoding, a chunk at a time.
    let plan: Vec<(usize, Vec<usize>)> = decodings
        .iter()
        .map(|&beam| {
            let decoding = decoding_name(beam);
            let mut configs = vec![config_slot(
                &mut report,
                decoding.clone(),
                &decoding,
                "none",
                0,
            )];
            for strategy in &strategies {
                let name = format!("{decoding} + {}", strategy.name());
                configs.push(config_slot(
                    &mut report,
                    name,
                    &decoding,
                    strategy.name(),
                    budget,
                ));
            }
            (beam, configs)
        })
        .collect();
    let units = selected.len() * plan.iter().map(|(_, c)| c.len()).sum::<usize>();
    let bar = progress(units, "task evaluations");
    for (beam, configs) in &plan {
        for chunk in &chunks {
            let indices: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
            if configs.iter().all(|&c| report.configs[c].covers(&indices)) {
                bar.inc((chunk.len() * configs.len()) as u64);
                continue;
            }
            let refs: Vec<&Task> = chunk.iter().map(|(_, t)| *t).collect();
            let t = Instant::now();
            let candidates = decode_tasks(
                backend,
                &synthesizer,
                &refs,
                &args.models.synthesis(*beam),
                batch,
                None,
            );
            add_time(&mut report, "synthesizer", t.elapsed().as_secs_f64());
            let records = chunk
                .iter()
                .zip(&candidates)
                .map(|((i, task), c)| {
                    let answer = synthesizer_answer(task, c, *beam > 1);
                    let beam0 = c.first().cloned().unwrap_or_default();
                    record(*i, task, &answer, &beam0)
                })
                .collect();
            report.configs[configs[0]].put(records);
            bar.inc(chunk.len() as u64);
            for (&strategy, &slot) in strategies.iter().zip(&configs[1..]) {
                let debugger = debugger.as_ref().expect("loaded for searches");
                let (results, timing) = run_searches(
                    backend,
                    debugger,
                    &refs,
                    &candidates,
                    &args.models.search(strategy, budget),
                    batch,
                    |done| bar.inc(done as u64),
                );
                add_time(&mut report, "debugger network", timing.network);
                add_time(&mut report, "execution (VM, traces)", timing.execution);
                let records = chunk
                    .iter()
                    .zip(&results)
                    .map(|((i, task), r)| search_record(*i, task, r))
                    .collect();
                report.configs[slot].put(records);
            }
            save(&mut report)?;
        }
    }
    bar.finish_and_clear();

    // Plain beam search as wide as each search's mean number of programs executed.
    if args.compare_beam {
        let widths: Vec<(String, usize)> = plan
            .iter()
            .flat_map(|(_, configs)| &configs[1..])
            .map(|&slot| {
                let config = &report.configs[slot];
                let mean = config.summary().mean_executed;
                (config.name.clone(), mean.round().max(1.0) as usize)
            })
            .collect();
        let bar = progress(selected.len() * widths.len(), "tasks decoded (plain beams)");
        for (name, width) in widths {
            let slot = config_slot(
                &mut report,
                format!("beam {width} (as many programs as {name})"),
                &format!("beam {width}"),
                "none",
                0,
            );
            for chunk in &chunks {
                let indices: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
                if !report.configs[slot].covers(&indices) {
                    let refs: Vec<&Task> = chunk.iter().map(|(_, t)| *t).collect();
                    let t = Instant::now();
                    let candidates = decode_tasks(
                        backend,
                        &synthesizer,
                        &refs,
                        &args.models.synthesis(width),
                        batch,
                        None,
                    );
                    add_time(&mut report, "synthesizer", t.elapsed().as_secs_f64());
                    let records = chunk
                        .iter()
                        .zip(&candidates)
                        .map(|((i, task), c)| {
                            let answer = synthesizer_answer(task, c, true);
                            let mut r = record(*i, task, &answer, c.first().map_or(&[][..], |b| b));
                            r.executed = c.len();
                            r
                        })
                        .collect();
                    report.configs[slot].put(records);
                    save(&mut report)?;
                }
                bar.inc(chunk.len() as u64);
            }
        }
        bar.finish_and_clear();
    }
    for config in &report.configs {
        eprintln!("{}: {}", config.name, summary_line(config));
    }
    report.complete = true;
    report.seconds = earlier_seconds + started.elapsed().as_secs_f64();
    eprintln!(
        "{} tasks in {:.1} s ({:.2} tasks/s per configuration)",
        selected.len(),
        report.seconds,
        selected.len() as f64 * report.configs.len().max(1) as f64 / report.seconds.max(1e-9)
    );
    write_report(
        &mut report,
        args.json.as_deref(),
        args.markdown.as_deref(),
        args.plot.as_deref(),
    )
}

fn decoding_name(beam: usize) -> String {
    if beam > 1 {
        format!("beam {beam}")
    } else {
        "greedy".to_string()
    }
}

fn add_time(report: &mut Report, key: &str, seconds: f64) {
    *report.timing.entry(key.to_string()).or_default() += seconds;
}

/// The position of the configuration named `name` in the report, added empty if the report
/// does not have it yet.
fn config_slot(
    report: &mut Report,
    name: String,
    decoding: &str,
    search: &str,
    steps: usize,
) -> usize {
    let found = report.configs.iter().position(|c| c.name == name);
    found.unwrap_or_else(|| {
        report.configs.push(ConfigReport {
            name,
            decoding: decoding.to_string(),
            search: search.to_string(),
            steps,
            records: Vec::new(),
        });
        report.configs.len() - 1
    })
}

/// The report an evaluation starts from: `fresh`, or with `--resume` the unfinished report in
/// `--json`, which must have been made with the same split, shard and settings. Without
/// `--resume` an existing `--json` file is not overwritten.
fn start_report(args: &EvalArgs, fresh: Report) -> Result<Report> {
    let Some(path) = &args.json else {
        if args.resume {
            bail!("--resume continues the report in --json FILE: give --json");
        }
        return Ok(fresh);
    };
    if !path.exists() {
        if args.resume {
            eprintln!("{} does not exist: starting afresh", path.display());
        }
        return Ok(fresh);
    }
    if !args.resume {
        bail!(
            "{} exists: continue that evaluation with --resume, or remove the file",
            path.display()
        );
    }
    let mut report = Report::load(path)?;
    if report.data == fresh.data && report.split_tasks != fresh.split_tasks {
        change_limit(path, &mut report, fresh.split_tasks)?;
    }
    if report.data != fresh.data || report.split_tasks != fresh.split_tasks {
        bail!(
            "{} evaluates {} ({} tasks), not {} ({} tasks)",
            path.display(),
            report.data,
            report.split_tasks,
            fresh.data,
            fresh.split_tasks
        );
    }
    if report.shards != fresh.shards {
        bail!(
            "{} is a report of shard(s) {:?}, not {:?}",
            path.display(),
            report.shards,
            fresh.shards
        );
    }
    if report.settings != fresh.settings || report.curve_steps != fresh.curve_steps {
        bail!(
            "{} was made with other settings: {}",
            path.display(),
            report.settings
        );
    }
    let done = report.coverage().0;
    eprintln!(
        "resuming {}: {done} task(s) evaluated in every configuration{}",
        path.display(),
        if report.complete {
            " (the report is complete)"
        } else {
            ""
        }
    );
    Ok(report)
}

/// Resuming with another `--limit`: the unfinished evaluation in `path` is cut to its first
/// `tasks` tasks or extended to them. Refused if it has records beyond them (they would be lost)
/// or has started the plain-beam comparison, whose widths depend on the tasks covered.
fn change_limit(path: &Path, report: &mut Report, tasks: usize) -> Result<()> {
    let last = report
        .configs
        .iter()
        .flat_map(|c| &c.records)
        .map(|r| r.index)
        .max();
    if let Some(last) = last.filter(|&i| i >= tasks) {
        bail!(
            "{} has records of tasks up to #{last}: resume it with --limit {} or more, or without --limit",
            path.display(),
            last + 1
        );
    }
    if report
        .configs
        .iter()
        .any(|c| c.search == "none" && c.name != c.decoding)
    {
        bail!(
            "{} has started its plain-beam comparison, whose beam widths depend on the tasks \
             covered: resume it with its own --limit ({} tasks)",
            path.display(),
            report.split_tasks
        );
    }
    eprintln!(
        "{}: the evaluation now covers {tasks} tasks instead of {}",
        path.display(),
        report.split_tasks
    );
    report.split_tasks = tasks;
    Ok(())
}

fn summary_line(config: &ConfigReport) -> String {
    let s = config.summary();
    format!(
        "generalization error {:.2} %, exact-match error {:.2} %",
        100.0 * s.generalization_error,
        100.0 * s.exact_error
    )
}

fn write_report(
    report: &mut Report,
    json: Option<&Path>,
    markdown: Option<&Path>,
    plot: Option<&Path>,
) -> Result<ExitCode> {
    report.refresh();
    let text = report.markdown();
    print!("{text}");
    if let Some(path) = json {
        report.save(path)?;
    }
    if let Some(path) = markdown {
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = plot {
        let curves = report
            .curves()
            .into_iter()
            .map(|(label, points)| Curve { label, points })
            .collect();
        draw_panels(
            &[Panel {
                title: "generalization error (%)".into(),
                x_label: "debugger calls K".into(),
                curves,
            }],
            path,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn mutation_benchmark<B: Backend>(
    args: &EvalArgs,
    backend: &B,
    tasks: &[Task],
) -> Result<ExitCode> {
    let debugger = args.models.load_debugger(backend)?;
    let repair = RepairConfig {
        trace_steps: args.models.trace_steps,
        first_token: FirstToken::Start,
        mutator: MutatorConfig::default(),
        ..RepairConfig::default()
    };
    let started = Instant::now();
    let rows = mutation_bench(
        backend,
        &debugger,
        tasks,
        args.max_k,
        &repair,
        args.models.batch,
        args.models.debugger_beam,
    );
    println!("| k | items | generalization error | exact-match error |");
    println!("|---|---|---|---|");
    for row in &rows {
        let n = row.items.max(1) as f64;
        println!(
            "| {} | {} | {:.1} % | {:.1} % |",
            row.k,
            row.items,
            100.0 * (1.0 - row.repaired as f64 / n),
            100.0 * (1.0 - row.exact as f64 / n)
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{} tasks in {seconds:.1} s", tasks.len());
    if let Some(path) = &args.json {
        let value = json!({
            "data": args.data,
            "tasks": tasks.len(),
            "debugger_beam": args.models.debugger_beam,
            "mutation_bench": rows,
            "seconds": seconds,
        });
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
