//! `karel check`, `karel fmt` and `karel disasm`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::lang::ParseOptions;
use crate::vm;

/// Parser options shared by the commands that read programs.
#[derive(Debug, Args)]
pub(crate) struct ParseFlags {
    /// Reject empty bodies such as `w( w)`, as the dataset's parser does (the reference
    /// interpreter accepts them).
    #[arg(long)]
    strict: bool,
    /// Reject programs whose blocks nest deeper than this (1 to 1000).
    #[arg(long, default_value_t = crate::lang::DEFAULT_MAX_DEPTH, value_name = "N",
          value_parser = max_depth)]
    max_depth: usize,
}

fn max_depth(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, crate::lang::MAX_DEPTH_LIMIT)
}

impl ParseFlags {
    pub(crate) fn options(&self) -> ParseOptions {
        ParseOptions {
            allow_empty_bodies: !self.strict,
            max_depth: self.max_depth,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Program file (`-` for standard input).
    file: PathBuf,
    #[command(flatten)]
    parse: ParseFlags,
}

/// `karel check`: exit 0 and a summary if the program parses, diagnostics and exit 1 if not.
pub(crate) fn check(args: CheckArgs) -> Result<ExitCode> {
    let (_, parsed) = super::load_program(&args.file, &args.parse.options())?;
    let program = &parsed.program;
    println!(
        "{}: ok ({} tokens, {} statements, nesting depth {})",
        super::display_name(&args.file),
        program.token_len(),
        program.node_count(),
        program.depth()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct FmtArgs {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Print the canonical one-line token form.
    #[arg(long, conflicts_with = "pretty")]
    tokens: bool,
    /// Print the indented multi-line form (the default).
    #[arg(long)]
    pretty: bool,
    /// Rewrite the file in place (atomically) instead of printing.
    #[arg(long, short)]
    write: bool,
    /// Exit with status 1 if the file is not already formatted, naming it on standard error;
    /// print nothing if it is.
    #[arg(long, conflicts_with = "write")]
    check: bool,
    #[command(flatten)]
    parse: ParseFlags,
}

/// `karel fmt`.
pub(crate) fn fmt(args: FmtArgs) -> Result<ExitCode> {
    let (source, parsed) = super::load_program(&args.file, &args.parse.options())?;
    let formatted = if args.tokens {
        format!("{}\n", parsed.program)
    } else {
        parsed.program.pretty()
    };
    if args.check {
        if source == formatted {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("{} is not formatted", super::display_name(&args.file));
        return Ok(ExitCode::from(1));
    }
    if args.write && args.file.as_os_str() != "-" {
        if source != formatted {
            crate::fsutil::write_atomic(&args.file, formatted.as_bytes())
                .with_context(|| format!("cannot write {}", args.file.display()))?;
        }
    } else {
        print!("{formatted}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct DisasmArgs {
    /// Program file (`-` for standard input).
    file: PathBuf,
    #[command(flatten)]
    parse: ParseFlags,
}

/// `karel disasm`: the program, then its bytecode.
pub(crate) fn disasm(args: DisasmArgs) -> Result<ExitCode> {
    let (_, parsed) = super::load_program(&args.file, &args.parse.options())?;
    println!("; {}", parsed.program);
    print!("{}", vm::compile(&parsed.program));
    Ok(ExitCode::SUCCESS)
}
