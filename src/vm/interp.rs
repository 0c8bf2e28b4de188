//! An AST-walking interpreter: the oracle the VM is tested against.
//!
//! It follows the reference's closures (`parser_for_synthesis.py`) statement by statement, with
//! the same step counting and the same events, and shares nothing with the bytecode compiler
//! but the [`Layout`] of token positions. It is slower than the VM and exists to be obviously
//! right.

use crate::lang::{BlockKind, Layout, NodeId, Program, Stmt};
use crate::world::World;

use super::exec::{
    AfterAction, EventValue, Execution, Failure, OnFailure, RunConfig, Stop, Tracer,
};
use super::instr::Origin;

/// Runs `program` on `world` by walking its AST.
pub fn interpret<T: Tracer>(
    program: &Program,
    world: &mut World,
    config: &RunConfig,
    tracer: &mut T,
) -> Execution {
    let layout = Layout::of(program);
    let mut interpreter = Interpreter {
        layout: &layout,
        world,
        config,
        tracer,
        steps: 0,
        first_failure: None,
        next_node: 0,
    };
    let stop = match interpreter.body(&program.body) {
        Ok(()) => Stop::Finished,
        Err(stop) => stop,
    };
    Execution {
        stop,
        first_failure: interpreter.first_failure,
        steps: interpreter.steps,
    }
}

struct Interpreter<'a, T> {
    layout: &'a Layout,
    world: &'a mut World,
    config: &'a RunConfig,
    tracer: &'a mut T,
    steps: u32,
    first_failure: Option<Failure>,
    /// Pre-order id of the statement about to be visited; statements are numbered by walking
    /// the tree once, so ids are computed from the position in the tree, not from execution.
    next_node: u32,
}

impl<T: Tracer> Interpreter<'_, T> {
    fn count_step(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps >= self.config.max_steps {
            Err(Stop::TimedOut)
        } else {
            Ok(())
        }
    }

    fn origin(&self, node: NodeId) -> Origin {
        Origin {
            node,
            span: self.layout.node(node).span,
        }
    }

    /// Number of statements in `body`, nested ones included.
    fn subtree_size(body: &[Stmt]) -> u32 {
        body.iter()
            .map(|s| 1 + s.bodies().map(|b| Self::subtree_size(b)).sum::<u32>())
            .sum()
    }

    fn body(&mut self, body: &[Stmt]) -> Result<(), Stop> {
        for stmt in body {
            self.stmt(stmt)?;
        }
        Ok(())
    }

    /// Runs the body whose first statement has id `first`, restoring the numbering afterwards.
    fn body_at(&mut self, body: &[Stmt], first: u32) -> Result<(), Stop> {
        let saved = self.next_node;
        self.next_node = first;
        let result = self.body(body);
        self.next_node = saved;
        result
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<(), Stop> {
        let node = NodeId(self.next_node);
        // Statements after this one start after its whole subtree.
        self.next_node += 1 + stmt.bodies().map(|b| Self::subtree_size(b)).sum::<u32>();
        let origin = self.origin(node);
        let inner = node.0 + 1;
        match stmt {
            Stmt::Action(action) => {
                let success = self.world.act(*action);
                self.tracer
                    .action(origin, *action, success, AfterAction::of(self.world));
                if !success {
                    if self.first_failure.is_none() {
                        self.first_failure = Some(Failure {
                            action: *action,
                            at: origin,
                        });
                    }
                    if self.config.on_failure == OnFailure::Stop {
                        return Err(Stop::Failed);
                    }
                }
                self.count_step()
            }
            Stmt::If { cond, body } => {
                let value = self.world.sense(cond.atom, cond.negated);
                self.tracer
                    .event(origin, BlockKind::If, EventValue::Cond(value));
                self.count_step()?;
                if value {
                    self.body_at(body, inner)?;
                }
                Ok(())
            }
            Stmt::IfElse {
                cond,
                then_body,
                else_body,
            } => {
                let value = self.world.sense(cond.atom, cond.negated);
                self.tracer
                    .event(origin, BlockKind::IfElse, EventValue::Cond(value));
                self.count_step()?;
                if value {
                    self.body_at(then_body, inner)
                } else {
                    self.body_at(else_body, inner + Self::subtree_size(then_body))
                }
            }
            Stmt::While { cond, body } => loop {
                let value = self.world.sense(cond.atom, cond.negated);
                self.tracer
                    .event(origin, BlockKind::While, EventValue::Cond(value));
                self.count_step()?;
                if !value {
                    return Ok(());
                }
                self.body_at(body, inner)?;
            },
            Stmt::Repeat { count, body } => {
                for remaining in (1..=count.get()).rev() {
                    self.tracer
                        .event(origin, BlockKind::Repeat, EventValue::Remaining(remaining));
                    self.count_step()?;
                    self.body_at(body, inner)?;
                }
                self.tracer
                    .event(origin, BlockKind::Repeat, EventValue::Remaining(0));
                self.count_step()
            }
        }
    }
}
