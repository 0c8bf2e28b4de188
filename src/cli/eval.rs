//! `karel eval`: SED on a whole split under the configurations the options name (the
//! evaluation engine is `search::eval`), printed as the paper's tables; `karel eval merge` joins
//! the reports of shards; `--mutation-bench` runs the mutation benchmark.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::ProgressBar;
use serde_json::json;

use super::infer::{check_outputs, progress, Decode, ModelArgs, SearchChoice};
use super::{values, DeviceChoice};
use crate::data::dataset::read_all;
use crate::data::edits::FirstToken;
use crate::data::mutate::MutatorConfig;
use crate::data::repair::RepairConfig;
use crate::data::task::Task;
use crate::model::load::check_examples;
use crate::nn::Backend;
use crate::nn::Cpu;
use crate::plot::{draw_panels, Curve, Panel};
use crate::search::eval::mutation::mutation_bench;
use crate::search::eval::resume::open_report;
use crate::search::eval::{evaluate, shard_of, Decoding, Models, Monitor, Plan};
use crate::search::repair::RepairDecoding;
use crate::search::report::{ConfigReport, Report};
use crate::search::{SearchMethod, Strategy};

/// The long help of `karel eval` (`--help`), set on its command in [`super::Command`].
pub(crate) const LONG_ABOUT: &str = "Evaluate SED on a split: decode every task with the synthesizer (greedy and/or \
beam search), then search with the debugger (best-first and/or greedy, K debugger calls), with or \
without the rewrite stage (every program within a few AST rewrites of each candidate picked, run \
on the VM before the debugger is called; by default best-first+rewrite), or with the rewrite \
stage alone. Prints \
a Markdown report in the shape of the paper's Table 1 (generalization error, exact-match error in \
parentheses), the error against K, and the programs executed per task; --json writes every \
per-task record, from which all numbers are computed. --shard i/n evaluates every n-th task, and \
`karel eval merge` joins the shards' reports. With --json the report is saved after every chunk \
of tasks, and --resume continues an interrupted evaluation from it. --compare-beam adds plain beam search as wide as \
the mean number of programs each debugger search without the rewrite stage executed (the paper's \
Table 2). With --mutation-bench: \
the mutation benchmark (the paper's Figure 3). Without checkpoints the built-in tiny models are \
used.";

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    // The mutation benchmark repairs mutants with the debugger alone: the synthesizer's, the
    // search's and the evaluation's resumable-report options do not apply (usage errors rather
    // than options silently ignored).
    group(
        ArgGroup::new("search_evaluation")
            .args([
                "synthesizer",
                "beam",
                "max_len",
                "grammar",
                "decode",
                "search",
                "steps",
                "compare_beam",
                "merge",
                "rewrite_radius",
                "rewrite_limit",
                "rewrite_budget",
                "rank",
                "simplify",
                "shard",
                "resume",
                "save_every",
                "plot",
            ])
            .multiple(true)
            .conflicts_with("mutation_bench")
    ),
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
    /// Searches to evaluate after each decoding, a comma-separated list (e.g.
    /// best-first,best-first+rewrite; `+rewrite`: with the rewrite stage; `rewrite`: the rewrite
    /// stage alone, without the debugger; `none`: the synthesizer alone). The synthesizer alone
    /// is always reported too.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "best-first+rewrite"
    )]
    search: Vec<SearchChoice>,
    /// Debugger-call budgets: the search runs with the largest, and the report gives the error
    /// at each (e.g. 1,5,10,25,50,100).
    #[arg(long, value_delimiter = ',', default_value = "100", value_parser = values::call_budget)]
    steps: Vec<usize>,
    /// Add plain beam search with the same number of programs as each debugger search without
    /// the rewrite stage (Table 2; the rewrite stage's programs are not decoded, so it has no
    /// such beam).
    #[arg(long)]
    compare_beam: bool,
    /// Evaluate shard i of n (the tasks whose index is i modulo n), e.g. 0/4.
    #[arg(long, value_parser = values::shard)]
    shard: Option<(usize, usize)>,
    /// Use only the first N tasks of the split (at least 1).
    #[arg(long, value_parser = values::positive_count)]
    limit: Option<usize>,
    /// Write the report (settings, every per-task record, summaries) as JSON. It is saved
    /// after every chunk of tasks (see --save-every), so that an interrupted evaluation loses at
    /// most the chunk in progress. With --mutation-bench: the benchmark's rows and settings,
    /// written at the end.
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
    /// examples; greedy with --debugger-beam 1). It uses --debugger, --debugger-beam,
    /// --max-ops, --trace-steps, --batch, --limit, --json, --markdown and --device; the
    /// synthesizer's and the search's options are refused.
    #[arg(long)]
    mutation_bench: bool,
    /// With --mutation-bench: the most mutations per task, 1 to 16.
    #[arg(long, default_value_t = 5, value_parser = values::mutation_count, requires = "mutation_bench")]
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
    let searches = SearchChoice::all_methods(&args.search);
    if args.compare_beam && !searches.iter().any(|m| m.uses_debugger() && !m.rewrite) {
        super::usage!(
            "--compare-beam compares plain beams with debugger searches without the rewrite \
             stage: add one to --search (e.g. best-first)"
        );
    }
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
    let (shard, shards) = args.shard.unwrap_or((0, 1));
    let selected = shard_of(&tasks, shard, shards);
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
    let widths = match args.decode {
        Decode::Greedy => vec![1],
        Decode::Beam => vec![args.models.beam],
        Decode::Both => vec![1, args.models.beam],
    };
    let searches = SearchChoice::all_methods(&args.search);
    let plan = Plan {
        decodings: widths.into_iter().map(Decoding::of_width).collect(),
        synthesis: args.models.synthesis(1),
        search: args
            .models
            .search(SearchMethod::sed(Strategy::BestFirst), budget),
        rewrite: args.models.rewrite(),
        searches,
        compare_beam: args.compare_beam,
        batch: args.models.batch,
        save_every: args.save_every,
    };
    let started = Instant::now();
    let synthesizer = args.models.load_synthesizer(backend)?;
    let debugger = match plan.searches.iter().any(|m| m.uses_debugger()) {
        true => Some(args.models.load_debugger(backend)?),
        false => None,
    };
    let fresh = Report {
        data: data.display().to_string(),
        split_tasks: tasks.len(),
        shards: vec![[shard, shards]],
        settings: args.models.settings(args.decode, &args.search, budget),
        curve_steps: if plan.searches.is_empty() {
            vec![]
        } else {
            steps
        },
        configs: Vec::new(),
        seconds: 0.0,
        timing: Default::default(),
        complete: false,
        summaries: Vec::new(),
    };
    let (mut report, notes) = open_report(args.json.as_deref(), args.resume, fresh)?;
    for note in notes {
        eprintln!("{note}");
    }
    let mut monitor = Bars {
        bar: None,
        json: args.json.as_deref(),
        earlier_seconds: report.seconds,
        started,
    };
    report.complete = false;
    let models = Models {
        synthesizer: &synthesizer,
        debugger: debugger.as_ref(),
    };
    evaluate(
        backend,
        &models,
        &selected,
        &plan,
        &mut report,
        &mut monitor,
    )?;
    for config in &report.configs {
        eprintln!("{}: {}", config.name, summary_line(config));
    }
    report.complete = true;
    report.seconds = monitor.earlier_seconds + started.elapsed().as_secs_f64();
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

/// The evaluation's progress bars, and its saves to `--json` (with the time spent so far).
struct Bars<'a> {
    bar: Option<ProgressBar>,
    json: Option<&'a Path>,
    earlier_seconds: f64,
    started: Instant,
}

impl Monitor for Bars<'_> {
    fn begin(&mut self, what: &str, units: usize) {
        self.bar = Some(progress(units, what));
    }

    fn advance(&mut self, units: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(units as u64);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn save(&mut self, report: &mut Report) -> Result<()> {
        report.seconds = self.earlier_seconds + self.started.elapsed().as_secs_f64();
        match self.json {
            Some(path) => report.save(path),
            None => Ok(()),
        }
    }
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
    let decoding = RepairDecoding {
        batch: args.models.batch,
        beam: args.models.debugger_beam,
        max_ops: args.models.max_ops,
    };
    let started = Instant::now();
    let rows = mutation_bench(backend, &debugger, tasks, args.max_k, &repair, decoding);
    let mut table = String::from(
        "| k | items | generalization error | exact-match error |\n|---|---|---|---|\n",
    );
    for row in &rows {
        table += &format!(
            "| {} | {} | {:.1} % | {:.1} % |\n",
            row.k,
            row.items,
            100.0 * row.generalization_error(),
            100.0 * row.exact_error()
        );
    }
    print!("{table}");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{} tasks in {seconds:.1} s", tasks.len());
    if let Some(path) = &args.markdown {
        crate::fsutil::write_atomic(path, table.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let debugger = args.models.debugger.as_ref();
        let value = json!({
            "data": args.data,
            "tasks": tasks.len(),
            "debugger": debugger.map_or("built-in".to_string(), |p| p.display().to_string()),
            "debugger_beam": decoding.beam,
            "max_ops": decoding.max_ops,
            "trace_steps": repair.trace_steps,
            "mutation_bench": rows,
            "seconds": seconds,
        });
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
