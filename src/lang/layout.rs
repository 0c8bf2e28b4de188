//! Token positions of the nodes of a program.
//!
//! Every token of a Karel program is represented in its AST, so the token positions of every
//! node follow from the tree alone. Positions are 0-based indices into the canonical token list
//! (`DEF` is 0, `run` 1, `m(` 2, the first statement starts at 3), exactly the positions that the
//! reference interpreter reports in its execution events and that the debugger's TraceEmbed uses.

use std::fmt;

use super::ast::{NodeId, Program, Stmt};

/// An inclusive range of token positions, `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenSpan {
    pub first: u32,
    pub last: u32,
}

impl TokenSpan {
    pub const fn new(first: u32, last: u32) -> TokenSpan {
        TokenSpan { first, last }
    }

    pub const fn single(position: u32) -> TokenSpan {
        TokenSpan {
            first: position,
            last: position,
        }
    }

    /// Number of tokens covered.
    pub const fn len(self) -> u32 {
        self.last - self.first + 1
    }

    pub const fn is_empty(self) -> bool {
        false
    }

    pub fn contains(self, position: u32) -> bool {
        self.first <= position && position <= self.last
    }

    pub fn positions(self) -> std::ops::RangeInclusive<u32> {
        self.first..=self.last
    }
}

impl fmt::Display for TokenSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// Where one statement sits in the token list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLayout {
    /// The whole statement: an action's own token, or a block from its keyword to its closing
    /// bracket (`i)`, `e)`, `w)` or `r)`).
    pub span: TokenSpan,
    /// The condition inside `c( … c)` (from `not` to its inner `c)` when negated), or the `R=n`
    /// token of a repeat; `None` for actions.
    pub cond: Option<TokenSpan>,
    /// The node's parent statement, `None` for statements of the run body.
    pub parent: Option<NodeId>,
}

/// Token positions of every statement of a program, indexed by [`NodeId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    nodes: Vec<NodeLayout>,
    token_len: u32,
}

impl Layout {
    /// Lays out `program` in its canonical token form.
    pub fn of(program: &Program) -> Layout {
        let mut builder = Builder {
            nodes: Vec::new(),
            position: 3,
        };
        builder.body(&program.body, None);
        Layout {
            nodes: builder.nodes,
            token_len: builder.position + 1,
        }
    }

    pub fn node(&self, id: NodeId) -> &NodeLayout {
        &self.nodes[id.index()]
    }

    pub fn nodes(&self) -> &[NodeLayout] {
        &self.nodes
    }

    /// Number of tokens of the program.
    pub fn token_len(&self) -> u32 {
        self.token_len
    }

    /// The innermost statement whose span contains `position`, if any (the tokens
    /// `DEF run m(` and the final `m)` belong to no statement).
    pub fn node_at(&self, position: u32) -> Option<NodeId> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.span.contains(position))
            .min_by_key(|(_, n)| n.span.len())
            .map(|(i, _)| NodeId(i as u32))
    }
}

struct Builder {
    nodes: Vec<NodeLayout>,
    position: u32,
}

impl Builder {
    fn body(&mut self, body: &[Stmt], parent: Option<NodeId>) {
        for stmt in body {
            self.stmt(stmt, parent);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, parent: Option<NodeId>) {
        let id = NodeId(self.nodes.len() as u32);
        let first = self.position;
        self.nodes.push(NodeLayout {
            span: TokenSpan::single(first),
            cond: None,
            parent,
        });
        let cond = match stmt {
            Stmt::Action(_) => {
                self.position += 1;
                None
            }
            Stmt::If { cond, body } | Stmt::While { cond, body } => {
                // IF c( cond c) i( body i)
                let cond_span = TokenSpan::new(first + 2, first + 1 + cond.token_len() as u32);
                self.position = cond_span.last + 3;
                self.body(body, Some(id));
                self.position += 1;
                Some(cond_span)
            }
            Stmt::IfElse {
                cond,
                then_body,
                else_body,
            } => {
                // IFELSE c( cond c) i( then i) ELSE e( else e)
                let cond_span = TokenSpan::new(first + 2, first + 1 + cond.token_len() as u32);
                self.position = cond_span.last + 3;
                self.body(then_body, Some(id));
                self.position += 3;
                self.body(else_body, Some(id));
                self.position += 1;
                Some(cond_span)
            }
            Stmt::Repeat { body, .. } => {
                // REPEAT R=n r( body r)
                self.position = first + 3;
                self.body(body, Some(id));
                self.position += 1;
                Some(TokenSpan::single(first + 1))
            }
        };
        let node = &mut self.nodes[id.index()];
        node.span.last = self.position - 1;
        node.cond = cond;
    }
}
