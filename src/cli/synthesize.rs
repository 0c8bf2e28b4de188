//! `karel synthesize`: SED's main job (synthesize, execute, debug) on one task, printed step by
//! step with `--explain`; or, with `--data`, the synthesizer alone on a whole split, writing its
//! wrong programs as fine-tuning data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use serde_json::json;

use super::infer::{check_outputs, progress, Decode, ModelArgs, SearchChoice};
use super::{values, DeviceChoice, EXIT_PROGRAM_FAILED};
use crate::data::dataset::read_all;
use crate::data::edits::describe_edits;
use crate::data::repair::RepairRecord;
use crate::data::task::{Tally, Task};
use crate::lang::parse_tokens;
use crate::lang::token::tokens_to_string;
use crate::model::load::check_examples;
use crate::nn::Backend;
use crate::nn::Cpu;
use crate::search::eval::{record, Decoding};
use crate::search::sed::{Ending, SearchResult};
use crate::search::synthesis::decode_tasks;
use crate::search::{run_searches, LikelihoodRanker, Networks, NeuralRepairer};

/// The long help of `karel synthesize` (`--help`), set on its command in [`super::Command`].
pub(crate) const LONG_ABOUT: &str =
    "Synthesize a program for a task from its 5 given input/output examples, execute \
it, and debug it until it passes them (SED). By default the synthesizer decodes with a beam of \
--beam programs, which start the search in order, and the search is best-first with the rewrite \
stage: before the debugger is called on a candidate, every program within --rewrite-radius AST \
rewrites of it is run on the VM, and the passing ones are ranked by the synthesizer's likelihood; \
the answer is then simplified (--simplify): the shortest passing program within a few removed \
actions or unwrapped blocks of it replaces it. Prints the program and whether it passes the given \
and the held-out examples; --explain shows every edit step. Without checkpoints the built-in tiny \
models are used. Exit status 3 when no program passing the given examples was found.\n\n\
With --data instead of a task: decode a whole split greedily and report exact match and \
generalization; --wrong-out writes the programs that parse but fail a given example, as \
fine-tuning data for `karel train debugger --stage finetune` (SED's filter).";

#[derive(Debug, Args)]
#[command(
    // --data decodes greedily with the synthesizer alone: the beam and the debugger's options
    // do not apply (usage errors rather than options silently ignored).
    group(
        ArgGroup::new("search_options")
            .args([
                "debugger",
                "beam",
                "debugger_beam",
                "max_ops",
                "trace_steps",
                "merge",
                "rewrite_radius",
                "rewrite_limit",
                "rewrite_budget",
                "rank",
                "simplify",
            ])
            .multiple(true)
            .conflicts_with("data")
    )
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
    /// Synthesizer decoding (beam: --beam programs start the search; greedy: one).
    #[arg(long, value_enum, default_value_t = Decode::Beam, conflicts_with = "data")]
    decode: Decode,
    /// The search after the synthesizer.
    #[arg(long, value_enum, default_value_t = SearchChoice::DEFAULT, conflicts_with = "data")]
    search: SearchChoice,
    /// Debugger calls allowed (K), 0 to 100000.
    #[arg(long, default_value_t = 100, value_parser = values::call_budget, conflicts_with = "data")]
    steps: usize,
    /// Print each edit step: the program, its edits and the examples it passes.
    #[arg(long, conflicts_with = "data")]
    explain: bool,
    /// Write the result as JSON here.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    json: Option<PathBuf>,
    /// Decode every task of this split (greedy, with the synthesizer alone: no search, so
    /// neither --beam nor any debugger or rewrite-stage option) instead of one task.
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
        bail!("synthesize runs one configuration: choose --decode greedy|beam and one --search method (e.g. best-first+rewrite) or none");
    }
    let started = Instant::now();
    let synthesizer = args.models.load_synthesizer(backend)?;
    let beam = if args.decode == Decode::Beam {
        args.models.beam
    } else {
        1
    };
    let decoding = Decoding::of_width(beam);
    let config = args.models.synthesis(beam);
    let candidates = decode_tasks(backend, &synthesizer, &[task], &config, 1, |_| {}).remove(0);
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
    let (program, search) = match args.search.methods().first() {
        None => (decoding.answer(task, &candidates), None),
        Some(&method) => {
            let debugger = match method.uses_debugger() {
                true => Some(args.models.load_debugger(backend)?),
                false => None,
            };
            let config = args.models.search(method, args.steps);
            let repairer = debugger
                .as_ref()
                .map(|d| NeuralRepairer::new(backend, d, &config, 1));
            let ranker = LikelihoodRanker {
                backend,
                synthesizer: &synthesizer,
                batch: 64,
            };
            let networks = Networks {
                repairer: repairer.as_ref().map(|r| r as _),
                ranker: Some(&ranker),
            };
            let (mut results, _) = run_searches(
                networks,
                &[task],
                std::slice::from_ref(&candidates),
                &config,
                1,
                |_| {},
            );
            let result = results.remove(0);
            let mut extras = Vec::new();
            if args.models.merge {
                extras.push(format!("{} merged", result.merged));
            }
            if method.rewrite {
                extras.push(format!("{} by the rewrite stage", result.rewritten));
            }
            println!(
                "search ({}, K = {}): {} after {} debugger call(s), {} programs executed{}",
                method.name(),
                config.steps,
                match result.ending {
                    Ending::Solved => "solved",
                    Ending::StepLimit => "budget spent",
                    Ending::Exhausted => "nothing left to try",
                },
                result.calls,
                result.executed + result.rewritten,
                if extras.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", extras.join(", "))
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
                    json!({"program": tokens_to_string(&c.tokens), "passed": c.passed, "call": c.call, "rewrites": c.rewrites, "simplified": c.simplified})
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
                if c.simplified {
                    println!(
                        "step {n}: simplified, {} shrinking rewrite(s); passes {}/{given}",
                        c.rewrites, c.passed
                    );
                } else if c.rewrites > 0 {
                    println!(
                        "step {n}: rewrite stage, {} rewrite(s) after {} debugger call(s); passes {}/{given}",
                        c.rewrites, c.call, c.passed
                    );
                } else {
                    println!(
                        "step {n}: debugger call {}; passes {}/{given}",
                        c.call, c.passed
                    );
                }
                let source = &result.candidates[parent].tokens;
                let edits = describe_edits(source, &c.tokens);
                println!("  edits: {}", edits.join(", "));
            }
        }
        println!("  {}", tokens_to_string(&c.tokens));
    }
}

/// `synthesize --data`: greedy programs for a whole split.
fn synthesize_split<B: Backend>(
    backend: &B,
    args: &SynthesizeArgs,
    data: &Path,
) -> Result<ExitCode> {
    let model = args.models.load_synthesizer(backend)?;
    let (tasks, _) = read_all(data, None, false)?;
    if tasks.is_empty() {
        bail!("{} holds no tasks", data.display());
    }
    check_examples(&tasks, data)?;
    let started = Instant::now();
    let refs: Vec<&Task> = tasks.iter().collect();
    let bar = progress(tasks.len(), "tasks");
    let config = args.models.synthesis(1);
    let batch = args.models.batch.max(64);
    let programs = decode_tasks(backend, &model, &refs, &config, batch, |n| {
        bar.inc(n as u64)
    });
    bar.finish_and_clear();
    let (mut tally, mut wrong) = (Tally::default(), Vec::new());
    for (task, mut candidates) in tasks.iter().zip(programs) {
        let program = candidates.remove(0);
        if let Some((given, false)) = tally.add(task, &program) {
            if given < task.given().len() {
                wrong.push(RepairRecord {
                    task: task.clone(),
                    source: program,
                });
            }
        }
    }
    eprintln!(
        "{} tasks in {:.1} s: exact match {:.2} %, generalization {:.2} %, {} wrong programs that parse",
        tasks.len(),
        started.elapsed().as_secs_f64(),
        100.0 * tally.exact_rate(),
        100.0 * tally.general_rate(),
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
