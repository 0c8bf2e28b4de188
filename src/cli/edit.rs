//! `karel mutate` (sampled mutants, or with `--radius` the whole neighbourhood) and `karel edits`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::data::edits::{self, EditOp, LevEdit};
use crate::data::mutate::{mutate_n, neighbourhood, MutatorConfig, MAX_NEIGHBOURS};
use crate::lang::{self, Token};

#[derive(Debug, Args)]
pub(crate) struct MutateArgs {
    /// Program file (`-` for standard input).
    program: PathBuf,
    /// Mutations per mutant (a chain of n mutations, never repeating a program), 1 to 100.
    #[arg(short, long, default_value_t = 1, value_parser = mutation_count)]
    n: usize,
    /// Number of mutants, 1 to 1000000.
    #[arg(long, default_value_t = 1, value_parser = mutant_count)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reproduce the original mutator's quirks: ADD only at body positions 0–3, REPLACE_COND on a
    /// repeat does nothing, a single mutation may leave the program unchanged.
    #[arg(long)]
    compat_original: bool,
    /// Print each step of the chain with its operator (with --radius: each program's distance).
    #[arg(long)]
    verbose: bool,
    /// List every program within this many rewrites instead of sampling mutants (1 to 3): each
    /// once, by distance, every site of every operator with every choice.
    #[arg(long, value_parser = radius, conflicts_with_all = ["n", "count", "seed"])]
    radius: Option<usize>,
    /// With --radius: the most programs listed, 1 to 2000000.
    #[arg(long, default_value_t = 1_000_000, value_parser = neighbour_limit, requires = "radius")]
    limit: usize,
}

fn radius(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, 3)
}

fn neighbour_limit(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, MAX_NEIGHBOURS)
}

fn mutation_count(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, 100)
}

fn mutant_count(text: &str) -> Result<usize, String> {
    super::values::bounded(text, 1, 1_000_000)
}

pub(crate) fn mutate(args: MutateArgs) -> Result<ExitCode> {
    let (_, parsed) = super::load_program(&args.program, &lang::ParseOptions::default())?;
    let config = MutatorConfig {
        compat_original: args.compat_original,
    };
    if let Some(radius) = args.radius {
        let near = neighbourhood(&parsed.program, radius, &config, args.limit);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (program, distance) in &near.programs {
            if args.verbose {
                writeln!(out, "{distance} {program}")?;
            } else {
                writeln!(out, "{program}")?;
            }
        }
        out.flush()?;
        eprintln!(
            "{} program(s) within {radius} rewrite(s){}",
            near.programs.len(),
            if near.complete {
                String::new()
            } else {
                format!(" (stopped at --limit {}: there are more)", args.limit)
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    for _ in 0..args.count {
        let chain = mutate_n(&parsed.program, args.n, &mut rng, &config)?;
        if args.verbose {
            for (op, program) in &chain {
                println!("{op:<16} {program}");
            }
            println!();
        } else if let Some((_, mutant)) = chain.last() {
            println!("{mutant}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The long help of `karel edits` (`--help`), set on its command in [`super::Command`].
pub(crate) const LONG_ABOUT: &str = "Edit ops from a program to another: python-Levenshtein's editops (the alignment SED \
uses, exactly) and the debugger's op stream (KEEP, DELETE, INSERT[t], REPLACE[t]).\n\n\
SRC and TGT are files or token text (`-` for standard input). With --apply, TGT is an op stream \
(`KEEP DELETE INSERT[move] ...`) applied to SRC. With --jsonl, lines {\"source\": \"...\", \"target\": \"...\"} \
are read and lines {\"editops\": [[op, src_pos, dst_pos], ...], \"ops\": [...]} written.";

#[derive(Debug, Args)]
pub(crate) struct EditsArgs {
    /// Source program (the buggy one).
    #[arg(required_unless_present = "jsonl")]
    source: Option<String>,
    /// Target program, or with --apply the op stream.
    #[arg(required_unless_present = "jsonl")]
    target: Option<String>,
    /// Apply an op stream to the source and print the result.
    #[arg(long)]
    apply: bool,
    /// Batch mode over JSON lines from FILE or standard input.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-", conflicts_with_all = ["source", "target", "apply"])]
    jsonl: Option<PathBuf>,
}

/// Token text from an argument: a file if one exists at that path, else the text itself.
fn text_of(arg: &str) -> Result<String> {
    if arg == "-" {
        return super::read_input(Path::new("-"));
    }
    let path = Path::new(arg);
    if path.is_file() {
        return super::read_text(path);
    }
    Ok(arg.to_string())
}

/// Tokens of a text (need not be a valid program).
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    text.split_whitespace()
        .map(|w| Token::from_text(w).ok_or_else(|| format!("unknown token `{w}`")))
        .collect()
}

fn editops_json(edits: &[LevEdit]) -> serde_json::Value {
    json!(edits
        .iter()
        .map(|e| json!([e.op.name(), e.src, e.dst]))
        .collect::<Vec<_>>())
}

pub(crate) fn edits(args: EditsArgs) -> Result<ExitCode> {
    if let Some(path) = &args.jsonl {
        return jsonl(path);
    }
    let (source, target) = (
        args.source.unwrap_or_default(),
        args.target.unwrap_or_default(),
    );
    let src = tokens(&text_of(&source)?).map_err(anyhow::Error::msg)?;
    if args.apply {
        let ops = text_of(&target)?
            .split_whitespace()
            .map(|w| EditOp::parse(w).with_context(|| format!("`{w}` is not an edit op")))
            .collect::<Result<Vec<_>>>()?;
        // The stream must be one the debugger could decode: no op consumes a token past the
        // end of the source.
        let mut pointer = 0;
        for (i, op) in ops.iter().enumerate() {
            if *op == EditOp::End {
                break;
            }
            if !edits::allowed(*op, pointer, src.len()) {
                anyhow::bail!(
                    "op {} `{op}` needs a source token, but the {} source token(s) are all used",
                    i + 1,
                    src.len()
                );
            }
            pointer += usize::from(op.advances_pointer());
        }
        let out = edits::apply(&src, ops);
        if out.is_empty() {
            anyhow::bail!("the ops leave no token: the result is empty");
        }
        println!("{}", lang::token::tokens_to_string(&out));
        if let Err(error) = lang::parse_tokens(&out, &lang::ParseOptions::default()) {
            anyhow::bail!("the result is not a program: {error}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let tgt = tokens(&text_of(&target)?).map_err(anyhow::Error::msg)?;
    let stream = edits::op_stream(&src, &tgt);
    println!("distance: {}", edits::distance(&src, &tgt));
    println!("editops: {}", editops_json(&edits::editops(&src, &tgt)));
    println!("ops:");
    for step in &stream {
        let at = src
            .get(step.position)
            .map_or("</S>".to_string(), |t| t.to_string());
        println!("  {:>4}  {:<14} {}", step.position, at, step.op);
    }
    println!("  {:>4}  {:<14} {}", src.len(), "</S>", EditOp::End);
    Ok(ExitCode::SUCCESS)
}

fn jsonl(path: &Path) -> Result<ExitCode> {
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", super::display_name(path)))?;
        let answer = (|| -> Result<serde_json::Value, String> {
            let line = std::str::from_utf8(&line).map_err(|e| {
                format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1)
            })?;
            let record: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let field = |k: &str| record.get(k).and_then(|v| v.as_str()).ok_or(format!("no string `{k}`"));
            let (src, tgt) = (tokens(field("source")?)?, tokens(field("target")?)?);
            Ok(json!({
                "editops": editops_json(&edits::editops(&src, &tgt)),
                "ops": edits::op_stream(&src, &tgt).iter().map(|s| s.op.to_string()).collect::<Vec<_>>(),
            }))
        })()
        .unwrap_or_else(|e| json!({"error": format!("line {}: {e}", i + 1)}));
        writeln!(out, "{answer}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
