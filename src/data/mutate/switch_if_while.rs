//! SWITCH_IF_WHILE: turn an `IF` into a `WHILE` with the same condition and body, or back.
//!
//! ```text
//! DEF run m( IF c( frontIsClear c) i( move i) m)   →   DEF run m( WHILE c( frontIsClear c) w( move w) m)
//! ```
//!
//! Sites: every `IF` and `WHILE`.

use super::{nth_statement_mut, statements_where};
use crate::lang::{Program, Stmt};

fn is_if_or_while(_: &[Stmt], stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::If { .. } | Stmt::While { .. })
}

pub(super) fn sites(program: &Program) -> u64 {
    statements_where(program, is_if_or_while).len() as u64
}

pub(super) fn apply(program: &mut Program, site: u64) {
    if let Some((body, index)) = nth_statement_mut(program, site, is_if_or_while) {
        let stmt = &mut body[index];
        *stmt = match std::mem::replace(stmt, Stmt::Action(crate::lang::Action::Move)) {
            Stmt::If { cond, body } => Stmt::While { cond, body },
            Stmt::While { cond, body } => Stmt::If { cond, body },
            other => other,
        };
    }
}
