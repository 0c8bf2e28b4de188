//! `karel exec`: the JSON-lines batch interface (protocol in [`crate::exec`]).

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

/// The long help of `karel exec` (`--help`), set on its command in [`super::Command`].
pub(crate) const LONG_ABOUT: &str = "Run JSON-lines requests in parallel, one JSON line out per line in, in order.\n\n\
Request: {\"program\": \"DEF run m( ... m)\", \"input\": [indices] | \"<ASCII map>\", \"trace\": bool?, \"max_steps\": int?}\n\
Response: {\"status\": \"ok\"|\"error\"|\"syntax_error\"|\"invalid_input\", \"error\": \"crash\"|\"timeout\", \
\"output\": world (in the input's encoding), \"events\": [[type, first_token, last_token, cond_value, success], ...], \"message\": \"...\"}\n\n\
A bad line gets invalid_input and the stream goes on. Responses to the lines read so far are written as soon as \
the input pauses, so the command can be driven interactively.";

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Requests file (`-` or nothing for standard input).
    #[arg(default_value = "-")]
    input: PathBuf,
    /// Worker threads, 1 to 256 (default: all cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = super::values::thread_count)]
    threads: Option<usize>,
    /// Print the number of lines and the throughput to standard error at the end.
    #[arg(long)]
    stats: bool,
}

/// `karel exec`.
pub(crate) fn exec(args: ExecArgs) -> Result<ExitCode> {
    let pool = super::thread_pool(args.threads)?;
    let start = Instant::now();
    let stdout = io::stdout();
    let mut output = BufWriter::with_capacity(1 << 16, stdout.lock());
    let stats = if args.input.as_os_str() == "-" {
        crate::exec::run_stream(
            BufReader::with_capacity(1 << 16, io::stdin()),
            &mut output,
            &pool,
        )
    } else {
        let file = File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input.display()))?;
        crate::exec::run_stream(BufReader::with_capacity(1 << 16, file), &mut output, &pool)
    }
    .context("cannot answer the requests")?;
    if args.stats {
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "{} lines in {:.3} s ({:.0} lines/s)",
            stats.lines,
            seconds,
            stats.lines as f64 / seconds.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
}
