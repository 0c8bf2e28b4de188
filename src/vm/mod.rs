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
    TraceTooLong,
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
/// failed actions are recorded and execution goes on, then the trace is truncated. Memory grows
/// with the events kept; for step limits set by users see [`run_with_trace_limited`].
pub fn run_with_trace(chunk: &Chunk, input: &World, max_steps: u32) -> TracedRun {
    match run_with_trace_limited(chunk, input, max_steps, usize::MAX) {
        Ok(run) => run,
        // A recorder without a limit keeps every event.
        Err(_) => unreachable!("an unlimited trace cannot be too long"),
    }
}

/// Most events a trace of [`run_with_trace_limited`] keeps when its caller takes a step limit
/// from a user (`karel run --trace`, `karel exec`): about 30 MB.
pub const MAX_TRACE_EVENTS: usize = 1 << 20;

/// [`run_with_trace`] keeping at most `max_events` events in memory, whatever the step limit:
/// runs cut early by the truncation rules are recorded exactly, and a trace that would hold more
/// events is refused.
pub fn run_with_trace_limited(
    chunk: &Chunk,
    input: &World,
    max_steps: u32,
    max_events: usize,
) -> Result<TracedRun, TraceTooLong> {
    let mut world = input.clone();
    let mut recorder = TraceRecorder::with_event_limit(input, max_events);
    let config = RunConfig {
        max_steps,
        on_failure: OnFailure::Continue,
    };
    let execution = Vm::new().run_traced(chunk, &mut world, &config, &mut recorder);
    let trace = Trace::from_run(recorder, &execution)?;
    Ok(TracedRun {
        execution,
        world,
        trace,
    })
}

/// Compiles and runs a program in strict mode with the default step limit.
pub fn execute(program: &Program, input: &World) -> (Outcome, World) {
    let (execution, world) = run(&compile(program), input, DEFAULT_MAX_STEPS);
    (execution.outcome(), world)
}
