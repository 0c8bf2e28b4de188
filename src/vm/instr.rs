//! The instruction set, compiled chunks and their disassembly.
//!
//! Six instructions cover Karel. Each one that counts a step in the reference interpreter
//! (an action, a condition evaluation, a repeat tick) is exactly one instruction, so the VM's step
//! counting and event order are the reference's by construction:
//!
//! | instruction | effect | steps |
//! |---|---|---|
//! | `act A` | perform action A; a failure is a crash | 1 |
//! | `branch.K C else L` | evaluate condition C, emit a K event (`if`, `ifElse`, `while`); jump to L when false | 1 |
//! | `repeat.init S N` | set repeat counter S to N | 0 |
//! | `repeat.tick S exit L` | emit a `repeat` event with counter S's value; if 0 jump to L, else decrement | 1 |
//! | `jump L` | continue at L | 0 |
//! | `halt` | the program finished | 0 |
//!
//! Every instruction carries its [`Origin`]: the statement it was compiled from and the token span
//! the reference reports for its event.

use std::fmt;

use crate::lang::{Action, BlockKind, Cond, NodeId, TokenSpan};

/// An instruction index inside a chunk.
pub type Label = u32;

/// One VM instruction (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    Act(Action),
    Branch {
        cond: Cond,
        kind: BlockKind,
        else_target: Label,
    },
    RepeatInit {
        slot: u16,
        count: u8,
    },
    RepeatTick {
        slot: u16,
        exit: Label,
    },
    Jump(Label),
    Halt,
}

const _: () = assert!(std::mem::size_of::<Instr>() <= 8);

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
        match *self {
            Instr::Act(action) => write!(f, "{:<14}{}", "act", action.name()),
            Instr::Branch {
                cond,
                kind,
                else_target,
            } => write!(
                f,
                "{:<14}{cond} else {else_target}",
                format!("branch.{}", kind.event_name())
            ),
            Instr::RepeatInit { slot, count } => write!(f, "{:<14}r{slot} = {count}", "repeat.init"),
            Instr::RepeatTick { slot, exit } => write!(f, "{:<14}r{slot} exit {exit}", "repeat.tick"),
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
                writeln!(
                    f,
                    "{pc:>4}  {text:<40} ; {} tokens {}",
                    origin.node, origin.span
                )?;
            }
        }
        Ok(())
    }
}
