//! The instruction set, compiled chunks and their disassembly.
//!
//! Seven kinds of instruction cover Karel (eleven variants: `act` is one per action, so that the
//! VM dispatches every instruction through one jump table). Each one that counts a step in the reference interpreter
//! (an action, a condition evaluation, a repeat tick) is exactly one instruction, so the VM's step
//! counting and event order are the reference's by construction. Loops test their condition at
//! the bottom, so a loop iteration dispatches no jump:
//!
//! | instruction | effect | steps |
//! |---|---|---|
//! | `act A` | perform action A; a failure is a crash | 1 |
//! | `branch.K C else L` | evaluate C, emit a K event (`if`, `ifElse`, `while`); jump to L when false | 1 |
//! | `loop.while C to L` | evaluate C, emit a `while` event; jump back to L when true | 1 |
//! | `repeat.enter S N` | emit a `repeat` event with N; set counter S to N − 1 (N ≥ 2, so the body runs) | 1 |
//! | `repeat.loop S to L` | emit a `repeat` event with counter S; if it is not 0, decrement it and jump back to L | 1 |
//! | `jump L` | continue at L | 0 |
//! | `halt` | the program finished | 0 |
//!
//! Every instruction carries its [`Origin`]: the statement it was compiled from and the token span
//! the reference reports for its event.

use std::fmt;

use crate::lang::{Action, BlockKind, Cond, NodeId, TokenSpan};

/// An instruction index inside a chunk.
pub type Label = u32;

/// One VM instruction (8 bytes). The five actions are separate variants so that the VM
/// dispatches every instruction through a single jump table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    Move,
    TurnLeft,
    TurnRight,
    PickMarker,
    PutMarker,
    Branch {
        cond: Cond,
        kind: BlockKind,
        else_target: Label,
    },
    LoopWhile {
        cond: Cond,
        body: Label,
    },
    RepeatEnter {
        slot: u16,
        count: u8,
    },
    RepeatLoop {
        slot: u16,
        body: Label,
    },
    Jump(Label),
    Halt,
}

const _: () = assert!(std::mem::size_of::<Instr>() <= 8);

impl Instr {
    /// The instruction performing `action`.
    pub const fn act(action: Action) -> Instr {
        match action {
            Action::Move => Instr::Move,
            Action::TurnLeft => Instr::TurnLeft,
            Action::TurnRight => Instr::TurnRight,
            Action::PickMarker => Instr::PickMarker,
            Action::PutMarker => Instr::PutMarker,
        }
    }

    /// The action this instruction performs, if it is an action.
    pub const fn action(self) -> Option<Action> {
        match self {
            Instr::Move => Some(Action::Move),
            Instr::TurnLeft => Some(Action::TurnLeft),
            Instr::TurnRight => Some(Action::TurnRight),
            Instr::PickMarker => Some(Action::PickMarker),
            Instr::PutMarker => Some(Action::PutMarker),
            _ => None,
        }
    }
}

/// Where an instruction comes from: its statement and the tokens its event reports (an action's
/// own token, or a block from its keyword to its closing bracket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub node: NodeId,
    pub span: TokenSpan,
}

/// A compiled program: instructions, their origins, and the number of repeat counters it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub(crate) code: Vec<Instr>,
    pub(crate) origins: Vec<Origin>,
    pub(crate) repeat_slots: usize,
}

impl Chunk {
    pub fn code(&self) -> &[Instr] {
        &self.code
    }

    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// The origin of the instruction at `pc`.
    pub fn origin(&self, pc: usize) -> Origin {
        self.origins[pc]
    }

    /// How many repeat counters the VM needs (the deepest nesting of `REPEAT`s).
    pub fn repeat_slots(&self) -> usize {
        self.repeat_slots
    }

    pub fn len(&self) -> usize {
        self.code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(action) = self.action() {
            return write!(f, "{:<14}{}", "act", action.name());
        }
        match *self {
            Instr::Move
            | Instr::TurnLeft
            | Instr::TurnRight
            | Instr::PickMarker
            | Instr::PutMarker => Ok(()),
            Instr::Branch {
                cond,
                kind,
                else_target,
            } => write!(
                f,
                "{:<14}{cond} else {else_target}",
                format!("branch.{}", kind.event_name())
            ),
            Instr::LoopWhile { cond, body } => write!(f, "{:<14}{cond} to {body}", "loop.while"),
            Instr::RepeatEnter { slot, count } => {
                write!(f, "{:<14}r{slot} {count}", "repeat.enter")
            }
            Instr::RepeatLoop { slot, body } => write!(f, "{:<14}r{slot} to {body}", "repeat.loop"),
            Instr::Jump(target) => write!(f, "{:<14}{target}", "jump"),
            Instr::Halt => f.write_str("halt"),
        }
    }
}

/// The disassembly: one line per instruction with its index, its text and its origin.
impl fmt::Display for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, (instr, origin)) in self.code.iter().zip(&self.origins).enumerate() {
            let text = instr.to_string();
            if matches!(instr, Instr::Halt) {
                writeln!(f, "{pc:>4}  {text}")?;
            } else {
                let tokens = if origin.span.first == origin.span.last {
                    "token"
                } else {
                    "tokens"
                };
                writeln!(
                    f,
                    "{pc:>4}  {text:<40} ; {} {tokens} {}",
                    origin.node, origin.span
                )?;
            }
        }
        Ok(())
    }
}
