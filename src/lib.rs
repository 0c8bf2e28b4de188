//! karel-sed: a toolchain for the Karel program-synthesis benchmark and the SED
//! ("Synthesize, Execute and Debug") pipeline.
//!
//! - [`lang`]: vocabulary, lexer, LALRPOP parser, AST, printers, diagnostics.
//! - [`world`]: Karel worlds and their encodings (sparse indices, dense tensor, dataset strings
//!   and JSON objects, ASCII maps, SVG pictures).
//! - [`vm`]: bytecode compiler, VM with the reference interpreter's exact semantics, execution
//!   traces and the token ↔ trace-step links of TraceEmbed, and an AST-walking oracle.
//! - [`data`]: tasks and dataset formats, the task generator, the mutator, edit sequences.
//! - [`nn`]: the neural engine: backend trait, CPU backend, layers, optimisers, checkpoints.
//! - [`model`]: SED's networks: the LGRL synthesizer and the debugger with TraceEmbed; presets.
//! - [`search`]: beam search of both models, SED's best-first and greedy search, eval reports.
//! - [`train`]: training runs (checkpoints, exact resumption, validation, metrics, plots).
//! - [`exec`]: the JSON-lines batch execution protocol behind `karel exec`.
//! - [`fsutil`]: atomic file writes.
//! - [`plot`]: line charts as SVG (training and evaluation curves).
//! - [`fuzzing`]: the oracles of the fuzz targets, shared with the regression tests.
//! - [`cli`]: the `karel` command line.

pub mod cli;
pub mod data;
pub mod exec;
pub mod fsutil;
pub mod fuzzing;
pub mod lang;
pub mod model;
pub mod nn;
pub mod plot;
pub mod search;
pub mod train;
pub mod vm;
pub mod world;
