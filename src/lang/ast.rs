//! The abstract syntax tree of Karel programs.
//!
//! **The AST holds no spans.** Programs made by the synthesizer, the mutator or the debugger have
//! no source text; positions live beside the tree: token positions are a pure function of the
//! tree ([`super::layout::Layout`]) because every token of a program is represented in it, and the
//! bytes of a parsed source are in the parser's [`super::SourceMap`].
//!
//! Statement nodes are identified by [`NodeId`], their index in a pre-order walk of the program
//! (the first statement of the run body is node 0). All types derive `Ord` and `Hash` so that
//! search can deduplicate and sort programs.

use std::fmt;

use super::token::Token;

pub use crate::world::{Action, Atom};

/// The language's names of the robot's primitives: each is one token.
impl Action {
    pub const fn token(self) -> Token {
        match self {
            Action::Move => Token::Move,
            Action::TurnLeft => Token::TurnLeft,
            Action::TurnRight => Token::TurnRight,
            Action::PickMarker => Token::PickMarker,
            Action::PutMarker => Token::PutMarker,
        }
    }

    pub fn from_token(token: Token) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.token() == token)
    }
}

impl Atom {
    pub const fn token(self) -> Token {
        match self {
            Atom::FrontIsClear => Token::FrontIsClear,
            Atom::LeftIsClear => Token::LeftIsClear,
            Atom::RightIsClear => Token::RightIsClear,
            Atom::MarkersPresent => Token::MarkersPresent,
            Atom::NoMarkersPresent => Token::NoMarkersPresent,
        }
    }
}

/// A condition: an atom, possibly negated (`not c( atom c)`). The grammar allows no other shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, arbitrary::Arbitrary)]
pub struct Cond {
    pub atom: Atom,
    pub negated: bool,
}

impl Cond {
    pub const fn atom(atom: Atom) -> Cond {
        Cond {
            atom,
            negated: false,
        }
    }

    pub const fn not(atom: Atom) -> Cond {
        Cond {
            atom,
            negated: true,
        }
    }

    /// Number of tokens of the condition (1 for an atom, 4 for `not c( atom c)`).
    pub const fn token_len(self) -> usize {
        if self.negated {
            4
        } else {
            1
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            write!(f, "not c( {} c)", self.atom.name())
        } else {
            f.write_str(self.atom.name())
        }
    }
}

/// The iteration count of a `REPEAT`, one of the vocabulary's `R=2` … `R=10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepeatCount(u8);

impl RepeatCount {
    pub const MIN: u8 = 2;
    pub const MAX: u8 = 10;

    /// The count `n`, if `R=n` is in the vocabulary.
    pub const fn new(n: u8) -> Option<RepeatCount> {
        if n >= Self::MIN && n <= Self::MAX {
            Some(RepeatCount(n))
        } else {
            None
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    pub const fn token(self) -> Token {
        match self.0 {
            2 => Token::R2,
            3 => Token::R3,
            4 => Token::R4,
            5 => Token::R5,
            6 => Token::R6,
            7 => Token::R7,
            8 => Token::R8,
            9 => Token::R9,
            _ => Token::R10,
        }
    }

    /// Every count, in increasing order.
    pub fn all() -> impl Iterator<Item = RepeatCount> {
        (Self::MIN..=Self::MAX).map(RepeatCount)
    }
}

impl<'a> arbitrary::Arbitrary<'a> for RepeatCount {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(RepeatCount(u.int_in_range(Self::MIN..=Self::MAX)?))
    }
}

/// The kind of a compound statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockKind {
    If,
    IfElse,
    While,
    Repeat,
}

impl BlockKind {
    /// The name the reference gives to the events of this block (`if`, `ifElse`, `while`, `repeat`).
    pub const fn event_name(self) -> &'static str {
        match self {
            BlockKind::If => "if",
            BlockKind::IfElse => "ifElse",
            BlockKind::While => "while",
            BlockKind::Repeat => "repeat",
        }
    }
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, arbitrary::Arbitrary)]
pub enum Stmt {
    Action(Action),
    If {
        cond: Cond,
        body: Vec<Stmt>,
    },
    IfElse {
        cond: Cond,
        then_body: Vec<Stmt>,
        else_body: Vec<Stmt>,
    },
    While {
        cond: Cond,
        body: Vec<Stmt>,
    },
    Repeat {
        count: RepeatCount,
        body: Vec<Stmt>,
    },
}

impl Stmt {
    /// The block kind of a compound statement, `None` for an action.
    pub fn block_kind(&self) -> Option<BlockKind> {
        match self {
            Stmt::Action(_) => None,
            Stmt::If { .. } => Some(BlockKind::If),
            Stmt::IfElse { .. } => Some(BlockKind::IfElse),
            Stmt::While { .. } => Some(BlockKind::While),
            Stmt::Repeat { .. } => Some(BlockKind::Repeat),
        }
    }

    /// The condition of an `IF`, `IFELSE` or `WHILE`.
    pub fn cond(&self) -> Option<Cond> {
        match self {
            Stmt::If { cond, .. } | Stmt::IfElse { cond, .. } | Stmt::While { cond, .. } => {
                Some(*cond)
            }
            Stmt::Action(_) | Stmt::Repeat { .. } => None,
        }
    }

    /// The statement lists directly inside this statement (two for `IFELSE`).
    pub fn bodies(&self) -> impl Iterator<Item = &Vec<Stmt>> {
        let (first, second) = match self {
            Stmt::Action(_) => (None, None),
            Stmt::If { body, .. } | Stmt::While { body, .. } | Stmt::Repeat { body, .. } => {
                (Some(body), None)
            }
            Stmt::IfElse {
                then_body,
                else_body,
                ..
            } => (Some(then_body), Some(else_body)),
        };
        first.into_iter().chain(second)
    }

    /// Number of tokens this statement prints to.
    pub fn token_len(&self) -> usize {
        let bodies: usize = self.bodies().flatten().map(Stmt::token_len).sum();
        match self {
            Stmt::Action(_) => 1,
            // IF c( cond c) i( body i)
            Stmt::If { cond, .. } | Stmt::While { cond, .. } => 5 + cond.token_len() + bodies,
            // IFELSE c( cond c) i( then i) ELSE e( else e)
            Stmt::IfElse { cond, .. } => 8 + cond.token_len() + bodies,
            // REPEAT R=n r( body r)
            Stmt::Repeat { .. } => 4 + bodies,
        }
    }
}

/// A whole program: `DEF run m( body m)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, arbitrary::Arbitrary)]
pub struct Program {
    pub body: Vec<Stmt>,
}

impl Program {
    pub fn new(body: Vec<Stmt>) -> Program {
        Program { body }
    }

    /// Number of tokens of the program, `DEF run m( … m)` included.
    pub fn token_len(&self) -> usize {
        4 + self.body.iter().map(Stmt::token_len).sum::<usize>()
    }

    /// Number of statement nodes (the size of the [`NodeId`] space).
    pub fn node_count(&self) -> usize {
        fn count(body: &[Stmt]) -> usize {
            body.iter()
                .map(|s| 1 + s.bodies().map(|b| count(b)).sum::<usize>())
                .sum()
        }
        count(&self.body)
    }

    /// Block nesting depth: 1 for the run body, plus one per enclosing compound statement.
    pub fn depth(&self) -> usize {
        fn depth(body: &[Stmt]) -> usize {
            1 + body
                .iter()
                .flat_map(|s| s.bodies())
                .map(|b| depth(b))
                .max()
                .unwrap_or(0)
        }
        depth(&self.body)
    }

    /// Statements in pre-order, each with its [`NodeId`] (the position in this walk).
    pub fn statements(&self) -> Vec<&Stmt> {
        fn walk<'a>(body: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
            for stmt in body {
                out.push(stmt);
                for inner in stmt.bodies() {
                    walk(inner, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.body, &mut out);
        out
    }
}

/// Index of a statement in the pre-order walk of its program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
