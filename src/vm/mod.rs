//! Execution: the bytecode compiler, the VM, traces, and the AST-walking oracle.
//!
//! - [`compile()`] turns a [`Program`] into a [`Chunk`] (see [`instr`] for the instruction set);
//! - [`Vm`] runs a chunk on a [`World`] with the reference interpreter's exact semantics: failing
//!   actions, step counting, event order;
//! - [`TraceRecorder`] and [`Trace`] record a run as the reference's `record_trace=True` mode does,
//!   compactly, with the token ↔ state links of TraceEmbed;
//! - [`interpret`] walks the AST directly and is the oracle the VM is checked against.
//!
//! [`run`] and [`run_with_trace`] are the one-call entry points.

pub mod compile;
pub mod exec;
pub mod instr;
pub mod interp;
pub mod trace;

pub use compile::compile;
pub use exec::{
    AfterAction, EventValue, Execution, Failure, NoTrace, OnFailure, Outcome, RunConfig, Stop,
    Tracer, Vm, DEFAULT_MAX_STEPS,
};
pub use instr::{Chunk, Instr, Origin};
pub use interp::interpret;
pub use trace::{
    Delta, Event, EventKind, LinkEntry, TokenLink, TokenStateLinks, Trace, TraceEnd, TraceRecorder,
};

use crate::lang::Program;
use crate::world::World;

/// Runs `chunk` on a copy of `input` in strict mode; returns the run and the final world.
pub fn run(chunk: &Chunk, input: &World, max_steps: u32) -> (Execution, World) {
    let mut world = input.clone();
    let execution = Vm::new().run(chunk, &mut world, &RunConfig::with_max_steps(max_steps));
    (execution, world)
}

/// A run in the reference's trace mode.
#[derive(Clone, Debug)]
pub struct TracedRun {
    /// The traced run itself (failures do not stop it). [`Execution::outcome`] is still the
    /// strict verdict.
    pub execution: Execution,
    /// The world when the run stopped.
    pub world: World,
    /// The truncated trace.
    pub trace: Trace,
}

/// Runs `chunk` on a copy of `input` as the reference's `execute(..., record_trace=True)` does:
/// failed actions are recorded and execution goes on, then the trace is truncated.
pub fn run_with_trace(chunk: &Chunk, input: &World, max_steps: u32) -> TracedRun {
    let mut world = input.clone();
    let mut recorder = TraceRecorder::new(input);
    let config = RunConfig {
        max_steps,
        on_failure: OnFailure::Continue,
    };
    let execution = Vm::new().run_traced(chunk, &mut world, &config, &mut recorder);
    let trace = Trace::from_run(recorder, &execution);
    TracedRun {
        execution,
        world,
        trace,
    }
}

/// Compiles and runs a program in strict mode with the default step limit.
pub fn execute(program: &Program, input: &World) -> (Outcome, World) {
    let (execution, world) = run(&compile(program), input, DEFAULT_MAX_STEPS);
    (execution.outcome(), world)
}
