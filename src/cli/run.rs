//! `karel run` and `karel render`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

use crate::vm::{self, Outcome, DEFAULT_MAX_STEPS, MAX_TRACE_EVENTS};

use super::program::ParseFlags;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Program file (`-` for standard input).
    program: PathBuf,
    /// World file: an ASCII map, a JSON array of tensor indices, a dataset grid object
    /// (`inpgrid_json`) or a dataset tensor string; the format is recognised.
    world: PathBuf,
    /// Print every execution event (the reference's trace: failed actions are recorded and the
    /// trace is cut at the first one) with the change it made to the world. A trace keeps at
    /// most 1,048,576 events; a longer one is an error.
    #[arg(long)]
    trace: bool,
    /// Step limit: every action, condition evaluation and repeat tick is a step, and the step
    /// that reaches the limit times out.
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS, value_name = "N")]
    max_steps: u32,
    /// Also draw the final world as SVG into this file.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    #[command(flatten)]
    parse: ParseFlags,
}

/// `karel run`: exit 0 when the program finishes, 3 when it crashes or times out.
pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    if args.program.as_os_str() == "-" && args.world.as_os_str() == "-" {
        super::usage!("only one of the program and the world can be `-` (standard input)");
    }
    if let Some(path) = &args.svg {
        super::check_output_path(path, "--svg")?;
    }
    let (source, parsed) = super::load_program(&args.program, &args.parse.options())?;
    let input = super::load_world(&args.world)?;
    let chunk = vm::compile(&parsed.program);
    let (execution, output) = vm::run(&chunk, &input, args.max_steps);

    if args.trace {
        let traced = vm::run_with_trace_limited(&chunk, &input, args.max_steps, MAX_TRACE_EVENTS)
            .map_err(|too_long| {
            anyhow::anyhow!("--trace: {too_long}; lower --max-steps or leave out --trace")
        })?;
        println!(
            "trace ({} events, {} states):\n{:>5}  {:>8}  {:<11} value or change",
            traced.trace.events().len(),
            traced.trace.state_count(),
            "event",
            "tokens",
            "type"
        );
        print!("{}", traced.trace);
        println!();
    }

    let name = super::display_name(&args.program);
    let code = match execution.outcome() {
        Outcome::Ok => {
            println!("outcome: ok ({} steps)", execution.steps);
            ExitCode::SUCCESS
        }
        Outcome::Crash(failure) => {
            println!(
                "outcome: crash: `{}` failed at token {} after {} steps",
                failure.action.name(),
                failure.at.span.first,
                execution.steps
            );
            let file = SimpleFile::new(name.as_str(), source.as_str());
            let bytes = parsed.source_map.span_bytes(failure.at.span);
            let diagnostic = Diagnostic::error()
                .with_message("the robot crashed")
                .with_labels(vec![Label::primary((), bytes)
                    .with_message(format!("`{}` failed here", failure.action.name()))]);
            let mut rendered = String::new();
            if term::emit_to_string(&mut rendered, &term::Config::default(), &file, &diagnostic)
                .is_ok()
            {
                print!("{rendered}");
            }
            ExitCode::from(super::EXIT_PROGRAM_FAILED)
        }
        Outcome::Timeout => {
            println!(
                "outcome: timeout: the step limit of {} was reached",
                args.max_steps
            );
            ExitCode::from(super::EXIT_PROGRAM_FAILED)
        }
    };
    println!("world:");
    print!("{}", output.to_ascii());
    if let Some(path) = &args.svg {
        crate::fsutil::write_atomic(path, output.to_svg().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(code)
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// World file in any supported format (see `karel run --help`).
    world: PathBuf,
    /// Write an SVG picture to this file instead of printing the ASCII map.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// Print the world in another format: ascii, indices, tensor or json.
    #[arg(long, value_name = "FORMAT", default_value = "ascii")]
    to: WorldFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum WorldFormat {
    /// The ASCII map.
    Ascii,
    /// A JSON array of tensor indices.
    Indices,
    /// The dataset's tensor string (`idx:1.0 …`).
    Tensor,
    /// The dataset's grid object (`inpgrid_json`).
    Json,
}

/// `karel render`.
pub(crate) fn render(args: RenderArgs) -> Result<ExitCode> {
    let world = super::load_world(&args.world)?;
    if let Some(path) = &args.svg {
        crate::fsutil::write_atomic(path, world.to_svg().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    match args.to {
        WorldFormat::Ascii => print!("{}", world.to_ascii()),
        WorldFormat::Indices => println!("{}", serde_json::to_string(&world.to_indices())?),
        WorldFormat::Tensor => println!("{}", world.to_tensor_string()),
        WorldFormat::Json => println!("{}", serde_json::to_string(&world.to_grid_json())?),
    }
    Ok(ExitCode::SUCCESS)
}
