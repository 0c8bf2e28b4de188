//! Synthesis tasks: a program and its input/output examples.
//!
//! A task has 6 examples; the first 5 (in stored order) are the specification the synthesizer
//! sees, the 6th is held out to test generalisation, as in SED's data and evaluation.

use std::fmt;

use thiserror::Error;

use crate::lang::{Action, BlockKind, Program};
use crate::vm::{self, AfterAction, Chunk, EventValue, Origin, Outcome, RunConfig, Tracer, Vm};
use crate::world::World;

/// Examples per task.
pub const EXAMPLES_PER_TASK: usize = 6;
/// Examples given to the synthesizer; the rest are held out.
pub const GIVEN_EXAMPLES: usize = 5;

/// One input/output pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Example {
    pub input: World,
    pub output: World,
}

impl Example {
    /// Whether the compiled program turns the input into the output (strict mode, 1000 steps: a
    /// crash or a timeout fails), run on `machine`.
    pub fn is_solved_by(&self, chunk: &Chunk, machine: &mut Vm) -> bool {
        let mut world = self.input.clone();
        let run = machine.run(chunk, &mut world, &RunConfig::default());
        matches!(run.outcome(), Outcome::Ok) && world == self.output
    }
}

/// A synthesis task.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// Identifier: 16 hexadecimal characters in the standard dataset.
    pub guid: String,
    pub program: Program,
    pub examples: Vec<Example>,
}

/// A task whose examples do not replay under the VM.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReplayError {
    #[error("example {example}: the program {outcome}")]
    Failed { example: usize, outcome: String },
    #[error("example {example}: the program's output differs from the stored output")]
    WrongOutput { example: usize },
}

impl Task {
    /// The examples the synthesizer is given.
    pub fn given(&self) -> &[Example] {
        &self.examples[..self.examples.len().min(GIVEN_EXAMPLES)]
    }

    /// The held-out examples.
    pub fn held_out(&self) -> &[Example] {
        &self.examples[self.examples.len().min(GIVEN_EXAMPLES)..]
    }

    /// Whether `program` turns each example's input into its output (strict mode, 1000 steps: a
    /// crash or a timeout fails the example).
    pub fn passes(program: &Program, examples: &[Example]) -> Vec<bool> {
        let chunk = vm::compile(program);
        let mut machine = Vm::new();
        examples
            .iter()
            .map(|example| example.is_solved_by(&chunk, &mut machine))
            .collect()
    }

    /// Whether the compiled program passes every given example, stopping at the first it fails.
    pub fn solves_given(&self, chunk: &Chunk, machine: &mut Vm) -> bool {
        self.given()
            .iter()
            .all(|example| example.is_solved_by(chunk, machine))
    }

    /// Parses `tokens` and counts the given examples it passes and whether it passes all
    /// examples (given and held out); `None` if the tokens do not parse.
    pub fn score(&self, tokens: &[crate::lang::Token]) -> Option<(usize, bool)> {
        let program = crate::lang::parse_tokens(tokens, &Default::default()).ok()?;
        let passed = Task::passes(&program, &self.examples);
        let given = passed[..self.given().len()].iter().filter(|&&p| p).count();
        Some((given, passed.iter().all(|&p| p)))
    }

    /// Checks that the program turns every input into its output (strict mode, 1000 steps).
    pub fn replay(&self) -> Result<(), ReplayError> {
        let chunk = vm::compile(&self.program);
        let mut machine = Vm::new();
        for (i, example) in self.examples.iter().enumerate() {
            let mut world = example.input.clone();
            let run = machine.run(&chunk, &mut world, &RunConfig::default());
            match run.outcome() {
                Outcome::Ok if world == example.output => {}
                Outcome::Ok => return Err(ReplayError::WrongOutput { example: i }),
                Outcome::Crash(f) => {
                    return Err(ReplayError::Failed {
                        example: i,
                        outcome: format!("crashes (`{}` fails)", f.action.name()),
                    })
                }
                Outcome::Timeout => {
                    return Err(ReplayError::Failed {
                        example: i,
                        outcome: "times out".to_string(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// How many of a set of answers generalize (pass all 6 examples) and how many are the task's own
/// program token for token: the two numbers every evaluation of a model reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub tasks: usize,
    /// Answers that pass every example, the held-out ones included.
    pub general: usize,
    /// Answers equal to the gold program.
    pub exact: usize,
}

impl Tally {
    /// Counts `program` as the answer to `task`; returns its score ([`Task::score`]).
    pub fn add(&mut self, task: &Task, program: &[crate::lang::Token]) -> Option<(usize, bool)> {
        let score = task.score(program);
        self.tasks += 1;
        self.general += matches!(score, Some((_, true))) as usize;
        self.exact += (program == task.program.tokens().as_slice()) as usize;
        score
    }

    /// The share of answers that generalize (0 without answers).
    pub fn general_rate(&self) -> f64 {
        self.general as f64 / self.tasks.max(1) as f64
    }

    /// The share of answers that are the gold program (0 without answers).
    pub fn exact_rate(&self) -> f64 {
        self.exact as f64 / self.tasks.max(1) as f64
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "task {}", self.guid)?;
        write!(f, "{}", self.program.pretty())?;
        for (i, example) in self.examples.iter().enumerate() {
            let role = if i < GIVEN_EXAMPLES {
                "given"
            } else {
                "held out"
            };
            writeln!(f, "example {} ({role}): input", i + 1)?;
            write!(f, "{}", example.input)?;
            writeln!(f, "output")?;
            write!(f, "{}", example.output)?;
        }
        Ok(())
    }
}

/// Collects the actions a run performs (the dataset's `actions` field).
#[derive(Default)]
struct ActionLog(Vec<Action>);

impl Tracer for ActionLog {
    fn action(&mut self, _: Origin, action: Action, _: bool, _: AfterAction) {
        self.0.push(action);
    }

    fn event(&mut self, _: Origin, _: BlockKind, _: EventValue) {}
}

/// The actions `program` performs on `input` (strict mode, 1000 steps).
pub fn actions_of(program: &Program, input: &World) -> Vec<Action> {
    let mut log = ActionLog::default();
    let mut world = input.clone();
    Vm::new().run_traced(
        &vm::compile(program),
        &mut world,
        &RunConfig::default(),
        &mut log,
    );
    log.0
}

/// A guid in the dataset's form: 16 lower-case hexadecimal characters.
pub fn guid_from(value: u64) -> String {
    format!("{value:016x}")
}
