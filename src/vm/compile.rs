//! The bytecode compiler: AST to [`Chunk`].
//!
//! ```text
//! action            act A
//! IF c b            branch.if c else END; b; END:
//! IFELSE c t e      branch.ifElse c else ELSE; t; jump END; ELSE: e; END:
//! WHILE c b         branch.while c else END; BODY: b; loop.while c to BODY; END:
//! REPEAT n b        repeat.enter S n; BODY: b; repeat.loop S to BODY
//! program           body; halt
//! ```
//!
//! Repeat counters are slots indexed by the nesting depth of `REPEAT`s, so the VM needs no stack.

use crate::lang::{Layout, NodeId, Program, Stmt, TokenSpan};

use super::instr::{Chunk, Instr, Label, Origin};

/// Node id given to the final `halt`, which belongs to no statement.
pub const HALT_NODE: NodeId = NodeId(u32::MAX);

/// Compiles a program.
pub fn compile(program: &Program) -> Chunk {
    let layout = Layout::of(program);
    let mut compiler = Compiler {
        layout: &layout,
        code: Vec::with_capacity(layout.nodes().len() + 8),
        origins: Vec::with_capacity(layout.nodes().len() + 8),
        next_node: 0,
        repeat_depth: 0,
        repeat_slots: 0,
    };
    compiler.body(&program.body);
    compiler.emit(
        Instr::Halt,
        Origin {
            node: HALT_NODE,
            span: TokenSpan::single(layout.token_len() - 1),
        },
    );
    Chunk {
        code: compiler.code,
        origins: compiler.origins,
        repeat_slots: compiler.repeat_slots,
    }
}

struct Compiler<'a> {
    layout: &'a Layout,
    code: Vec<Instr>,
    origins: Vec<Origin>,
    /// Pre-order id of the next statement, in step with the layout.
    next_node: u32,
    repeat_depth: usize,
    repeat_slots: usize,
}

impl Compiler<'_> {
    fn here(&self) -> Label {
        self.code.len() as Label
    }

    fn emit(&mut self, instr: Instr, origin: Origin) -> Label {
        let at = self.here();
        self.code.push(instr);
        self.origins.push(origin);
        at
    }

    /// Points the jump of the instruction at `at` to the current position.
    fn patch(&mut self, at: Label) {
        let target = self.here();
        match &mut self.code[at as usize] {
            Instr::Branch { else_target, .. } => *else_target = target,
            Instr::Jump(to) => *to = target,
            Instr::Move
            | Instr::TurnLeft
            | Instr::TurnRight
            | Instr::PickMarker
            | Instr::PutMarker
            | Instr::LoopWhile { .. }
            | Instr::RepeatEnter { .. }
            | Instr::RepeatLoop { .. }
            | Instr::Halt => {
                unreachable!("only jumps are patched")
            }
        }
    }

    fn body(&mut self, body: &[Stmt]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        let node = NodeId(self.next_node);
        self.next_node += 1;
        let origin = Origin {
            node,
            span: self.layout.node(node).span,
        };
        match stmt {
            Stmt::Action(action) => {
                self.emit(Instr::act(*action), origin);
            }
            Stmt::If { cond, body } => {
                let branch = self.emit(
                    Instr::Branch {
                        cond: *cond,
                        kind: crate::lang::BlockKind::If,
                        else_target: 0,
                    },
                    origin,
                );
                self.body(body);
                self.patch(branch);
            }
            Stmt::IfElse {
                cond,
                then_body,
                else_body,
            } => {
                let branch = self.emit(
                    Instr::Branch {
                        cond: *cond,
                        kind: crate::lang::BlockKind::IfElse,
                        else_target: 0,
                    },
                    origin,
                );
                self.body(then_body);
                let jump = self.emit(Instr::Jump(0), origin);
                self.patch(branch);
                self.body(else_body);
                self.patch(jump);
            }
            Stmt::While { cond, body } => {
                let entry = self.emit(
                    Instr::Branch {
                        cond: *cond,
                        kind: crate::lang::BlockKind::While,
                        else_target: 0,
                    },
                    origin,
                );
                let start = self.here();
                self.body(body);
                self.emit(
                    Instr::LoopWhile {
                        cond: *cond,
                        body: start,
                    },
                    origin,
                );
                self.patch(entry);
            }
            Stmt::Repeat { count, body } => {
                let slot = self.repeat_depth as u16;
                self.repeat_depth += 1;
                self.repeat_slots = self.repeat_slots.max(self.repeat_depth);
                self.emit(
                    Instr::RepeatEnter {
                        slot,
                        count: count.get(),
                    },
                    origin,
                );
                let start = self.here();
                self.body(body);
                self.emit(Instr::RepeatLoop { slot, body: start }, origin);
                self.repeat_depth -= 1;
            }
        }
    }
}
