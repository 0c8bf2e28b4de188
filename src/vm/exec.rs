//! The VM: runs a [`Chunk`] on a [`World`] with the reference interpreter's semantics.
//!
//! Step counting follows the reference's `Timeout.inc`: every action, every condition evaluation
//! and every repeat tick counts one step, and the step that brings the count to the limit fails
//! (with the default limit of 1000, the 1000th step times out). In the reference's strict mode a
//! failed action raises before it is counted; in its trace mode it is recorded, counted, and
//! execution goes on. [`OnFailure`] selects between the two, and [`Execution::outcome`] gives the
//! strict verdict either way (a failure before the time limit is a crash).
//!
//! Tracing is opt-in through the [`Tracer`] type parameter. [`NoTrace`] sets `ENABLED = false`,
//! which removes every tracing call at compile time: untraced runs pay nothing for it.

use crate::lang::{Action, BlockKind};
use crate::world::{Dir, Pos, World};

use super::instr::{Chunk, Instr, Origin};

/// The reference's step limit (`KarelExecutor(action_limit=1000)`).
pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// What a failed action does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Stop at once: the reference's strict (untraced) mode.
    #[default]
    Stop,
    /// Record the failure and go on: the reference's trace mode.
    Continue,
}

/// Settings of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// The step that brings the count to this value times out.
    pub max_steps: u32,
    pub on_failure: OnFailure,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            max_steps: DEFAULT_MAX_STEPS,
            on_failure: OnFailure::Stop,
        }
    }
}

impl RunConfig {
    pub fn with_max_steps(max_steps: u32) -> RunConfig {
        RunConfig {
            max_steps,
            ..RunConfig::default()
        }
    }
}

/// The value an event reports: a condition's truth, or a repeat's remaining iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventValue {
    Cond(bool),
    Remaining(u8),
}

/// Receives the execution events of a run.
pub trait Tracer {
    /// `false` compiles every call to the tracer away.
    const ENABLED: bool = true;

    /// After every action, with its success and the hero's state after it (unchanged if it
    /// failed).
    fn action(&mut self, at: Origin, action: Action, success: bool, after: AfterAction);

    /// At every condition evaluation and repeat tick.
    fn event(&mut self, at: Origin, kind: BlockKind, value: EventValue);
}

/// Everything an action can change: the hero's position and direction, and the markers of the
/// hero's cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfterAction {
    pub pos: Pos,
    pub dir: Dir,
    pub markers_here: u8,
}

impl AfterAction {
    /// The state of `world`'s hero.
    pub fn of(world: &World) -> AfterAction {
        AfterAction {
            pos: world.hero(),
            dir: world.dir(),
            markers_here: world.markers_here(),
        }
    }
}

/// The tracer of untraced runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrace;

impl Tracer for NoTrace {
    const ENABLED: bool = false;

    #[inline(always)]
    fn action(&mut self, _: Origin, _: Action, _: bool, _: AfterAction) {}

    #[inline(always)]
    fn event(&mut self, _: Origin, _: BlockKind, _: EventValue) {}
}

/// A failed action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub action: Action,
    pub at: Origin,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The program ran to its end.
    Finished,
    /// An action failed and [`OnFailure::Stop`] ended the run.
    Failed,
    /// The step limit was reached.
    TimedOut,
}

/// The strict verdict on a run, as the reference's evaluation sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Crash(Failure),
    Timeout,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// What happened in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execution {
    pub stop: Stop,
    /// The first failed action, also when the run went on after it.
    pub first_failure: Option<Failure>,
    /// Steps counted, the failing or timing-out one included.
    pub steps: u32,
}

impl Execution {
    /// The strict verdict: a crash if an action failed before the time limit, else a timeout or
    /// success.
    pub fn outcome(&self) -> Outcome {
        match (self.first_failure, self.stop) {
            (Some(failure), _) => Outcome::Crash(failure),
            (None, Stop::TimedOut) => Outcome::Timeout,
            (None, _) => Outcome::Ok,
        }
    }
}

/// A VM with its scratch space; reuse one across runs to avoid allocation.
#[derive(Clone, Debug, Default)]
pub struct Vm {
    counters: Vec<u8>,
}

impl Vm {
    pub fn new() -> Vm {
        Vm::default()
    }

    /// Runs `chunk` on `world` (updated in place) without tracing.
    pub fn run(&mut self, chunk: &Chunk, world: &mut World, config: &RunConfig) -> Execution {
        self.run_traced(chunk, world, config, &mut NoTrace)
    }

    /// Runs `chunk` on `world`, reporting every event to `tracer`.
    pub fn run_traced<T: Tracer>(
        &mut self,
        chunk: &Chunk,
        world: &mut World,
        config: &RunConfig,
        tracer: &mut T,
    ) -> Execution {
        // `repeat.enter` writes a counter before any `repeat.loop` reads it: no clearing needed.
        if self.counters.len() < chunk.repeat_slots {
            self.counters.resize(chunk.repeat_slots, 0);
        }
        let counters = &mut self.counters[..];
        let code = &chunk.code[..];
        // Steps left before the time limit; the step that brings it to 0 times out (a limit of 0
        // behaves like 1, as in the reference: its first step already reaches the limit).
        let limit = config.max_steps.max(1);
        let mut left = limit;
        let stop_on_failure = config.on_failure == OnFailure::Stop;
        let mut first_failure: Option<Failure> = None;
        let mut pc = 0usize;

        macro_rules! count_step {
            () => {
                left -= 1;
                if left == 0 {
                    return Execution {
                        stop: Stop::TimedOut,
                        first_failure,
                        steps: limit - left,
                    };
                }
            };
        }

        macro_rules! act {
            ($action:expr) => {{
                let action = $action;
                let success = world.act(action);
                if T::ENABLED {
                    tracer.action(chunk.origins[pc], action, success, AfterAction::of(world));
                }
                if !success {
                    if first_failure.is_none() {
                        first_failure = Some(Failure {
                            action,
                            at: chunk.origins[pc],
                        });
                    }
                    if stop_on_failure {
                        return Execution {
                            stop: Stop::Failed,
                            first_failure,
                            steps: limit - left,
                        };
                    }
                }
                count_step!();
                pc += 1;
            }};
        }

        loop {
            match code[pc] {
                Instr::Move => act!(Action::Move),
                Instr::TurnLeft => act!(Action::TurnLeft),
                Instr::TurnRight => act!(Action::TurnRight),
                Instr::PickMarker => act!(Action::PickMarker),
                Instr::PutMarker => act!(Action::PutMarker),
                Instr::Branch {
                    cond,
                    kind,
                    else_target,
                } => {
                    let value = world.sense(cond.atom, cond.negated);
                    if T::ENABLED {
                        tracer.event(chunk.origins[pc], kind, EventValue::Cond(value));
                    }
                    count_step!();
                    pc = if value { pc + 1 } else { else_target as usize };
                }
                Instr::LoopWhile { cond, body } => {
                    let value = world.sense(cond.atom, cond.negated);
                    if T::ENABLED {
                        tracer.event(chunk.origins[pc], BlockKind::While, EventValue::Cond(value));
                    }
                    count_step!();
                    pc = if value { body as usize } else { pc + 1 };
                }
                Instr::RepeatEnter { slot, count } => {
                    if T::ENABLED {
                        tracer.event(
                            chunk.origins[pc],
                            BlockKind::Repeat,
                            EventValue::Remaining(count),
                        );
                    }
                    count_step!();
                    // Counts are at least 2: the body always runs after the first tick.
                    counters[slot as usize] = count.saturating_sub(1);
                    pc += 1;
                }
                Instr::RepeatLoop { slot, body } => {
                    let remaining = counters[slot as usize];
                    if T::ENABLED {
                        tracer.event(
                            chunk.origins[pc],
                            BlockKind::Repeat,
                            EventValue::Remaining(remaining),
                        );
                    }
                    count_step!();
                    if remaining == 0 {
                        pc += 1;
                    } else {
                        counters[slot as usize] = remaining - 1;
                        pc = body as usize;
                    }
                }
                Instr::Jump(target) => pc = target as usize,
                Instr::Halt => {
                    return Execution {
                        stop: Stop::Finished,
                        first_failure,
                        steps: limit - left,
                    }
                }
            }
        }
    }
}
