//! The `karel` command line: argument parsing (clap) and one function per command.
//!
//! Exit codes: 0 success; 1 bad input (syntax error, invalid world, unreadable file); 2 usage
//! error; 3 the program ran but crashed or timed out (`karel run`).

mod batch;
mod choices;
mod data;
mod edit;
mod eval;
mod gen;
mod infer;
mod program;
mod run;
mod synthesize;
mod train;
mod values;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::lang::{diag, ParseOptions, Parsed};
use crate::world::World;

/// Compile, run, check and format Karel programs; run batches of programs for other tools.
#[derive(Debug, Parser)]
#[command(name = "karel", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that a program parses; report syntax errors with their location.
    Check(program::CheckArgs),
    /// Print a program in canonical form (indented by default, or one line of tokens).
    Fmt(program::FmtArgs),
    /// Print the bytecode a program compiles to.
    Disasm(program::DisasmArgs),
    /// Run a program on a world; print the outcome, the final world and optionally the trace.
    Run(run::RunArgs),
    /// Draw a world as an ASCII map, or as an SVG picture.
    Render(run::RenderArgs),
    /// Run JSON-lines requests (program + world) in parallel, one JSON line out per line in.
    #[command(long_about = batch::LONG_ABOUT)]
    Exec(batch::ExecArgs),
    /// Generate synthesis tasks (random programs with 6 IO pairs), in splits and shards.
    #[command(long_about = gen::LONG_ABOUT)]
    Gen(gen::GenArgs),
    /// Convert, inspect and derive datasets (formats, statistics, mutation benchmark).
    Data(data::DataArgs),
    /// Mutate a program with the mutation operators of SED's first training stage.
    Mutate(edit::MutateArgs),
    /// Edit ops between two programs (python-Levenshtein's alignment and the debugger's ops).
    #[command(long_about = edit::LONG_ABOUT)]
    Edits(edit::EditsArgs),
    /// Train the synthesizer or the debugger (checkpoints, --resume, validation, metrics log).
    Train(train::TrainArgs),
    /// Inspect model presets (parameter counts per component).
    Model(train::ModelArgs),
    /// Draw the loss and accuracy curves of training runs (SVG).
    Plot(train::PlotArgs),
    /// Synthesize a program for a task (SED: synthesize, execute, debug), or decode a split.
    #[command(long_about = synthesize::LONG_ABOUT)]
    Synthesize(synthesize::SynthesizeArgs),
    /// Evaluate trained models on a split, or on the mutation benchmark.
    #[command(long_about = eval::LONG_ABOUT)]
    Eval(eval::EvalArgs),
}

/// Exit status of a command that completed but whose subject failed (e.g. a crash).
pub(crate) const EXIT_PROGRAM_FAILED: u8 = 3;

/// Where the neural networks run (`--device`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeviceChoice {
    /// The CPU backend (all cores).
    #[default]
    Cpu,
    /// The first CUDA GPU: the project's kernels, compiled with NVRTC at start.
    Cuda,
}

/// The CUDA backend (matrix products in TF32 with `tf32`), or a clear error when there is no
/// usable GPU.
pub(crate) fn cuda_backend(tf32: bool) -> Result<crate::nn::gpu::GpuBackend> {
    #[cfg(feature = "cuda")]
    {
        crate::nn::gpu::GpuBackend::cuda(0)
            .map(|b| b.with_tf32(tf32))
            .map_err(|e| anyhow::anyhow!("--device cuda: {e}"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = tf32;
        anyhow::bail!("--device cuda: this karel was built without the `cuda` feature")
    }
}

/// `--tf32` needs the GPU.
pub(crate) fn check_tf32(device: DeviceChoice, tf32: bool) -> Result<()> {
    if tf32 && device != DeviceChoice::Cuda {
        anyhow::bail!("--tf32 applies to --device cuda only");
    }
    Ok(())
}

/// Entry point of the `karel` binary.
pub fn main() -> ExitCode {
    // Output piped into a command that stops reading (`karel … | head`) ends the process quietly,
    // as for other command-line tools, instead of failing a write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => program::check(args),
        Command::Fmt(args) => program::fmt(args),
        Command::Disasm(args) => program::disasm(args),
        Command::Run(args) => run::run(args),
        Command::Render(args) => run::render(args),
        Command::Exec(args) => batch::exec(args),
        Command::Gen(args) => gen::gen(args),
        Command::Data(args) => data::data(args),
        Command::Mutate(args) => edit::mutate(args),
        Command::Edits(args) => edit::edits(args),
        Command::Train(args) => train::train_command(args),
        Command::Model(args) => train::model_command(args),
        Command::Plot(args) => train::plot_command(args),
        Command::Synthesize(args) => synthesize::synthesize(args),
        Command::Eval(args) => eval::eval(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if error.downcast_ref::<AlreadyReported>().is_none() {
                eprintln!("error: {error:#}");
            }
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// A usage error found after argument parsing (options that conflict, values out of range):
/// exit status 2, as for clap's own.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a [`UsageError`] from the enclosing function.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::cli::UsageError(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

/// A pool of `threads` workers (all cores by default).
pub(crate) fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        builder = builder.num_threads(threads);
    }
    builder.build().context("cannot start the worker threads")
}

/// Checks before any work that `path` can be written: its folder exists and is a folder, and
/// the path is not a folder itself. `-` (standard output) always can.
pub(crate) fn check_output_path(path: &Path, option: &str) -> Result<()> {
    if path == Path::new("-") {
        return Ok(());
    }
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        usage!(
            "{option} {}: the folder {} does not exist",
            path.display(),
            folder.display()
        );
    }
    if path.is_dir() {
        usage!("{option} {}: that is a folder, not a file", path.display());
    }
    Ok(())
}

/// An error whose diagnostics were already printed.
#[derive(Debug)]
pub(crate) struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("errors were reported")
    }
}

impl std::error::Error for AlreadyReported {}

/// Reads a text file, or standard input for `-` (a leading byte-order mark dropped; a byte that
/// is not UTF-8 named by its line).
pub(crate) fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .and_then(|_| crate::fsutil::decode_text(bytes))
            .context("cannot read standard input")
    } else {
        read_text(path)
    }
}

/// Reads a text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    crate::fsutil::read_text(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A display name for a path (`<stdin>` for `-`).
pub(crate) fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads and parses a program file, printing diagnostics on failure.
pub(crate) fn load_program(path: &Path, options: &ParseOptions) -> Result<(String, Parsed)> {
    let source = read_input(path)?;
    match crate::lang::parse_with(&source, options) {
        Ok(parsed) => Ok((source, parsed)),
        Err(error) => {
            diag::emit_to_stderr(&display_name(path), &source, &error);
            Err(AlreadyReported.into())
        }
    }
}

/// Reads a world file in any supported format.
pub(crate) fn load_world(path: &Path) -> Result<World> {
    let text = read_input(path)?;
    World::from_text(&text).with_context(|| format!("{} is not a valid world", display_name(path)))
}
