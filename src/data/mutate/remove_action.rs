//! REMOVE_ACTION: delete an action from a body that keeps at least one statement.
//!
//! ```text
//! DEF run m( move turnLeft m)   →   DEF run m( turnLeft m)
//! ```
//!
//! Sites: every action in a body of more than one statement.

use super::{nth_statement_mut, statements_where};
use crate::lang::{Program, Stmt};

fn removable(body: &[Stmt], stmt: &Stmt) -> bool {
    body.len() > 1 && matches!(stmt, Stmt::Action(_))
}

pub(super) fn sites(program: &Program) -> u64 {
    statements_where(program, removable).len() as u64
}

pub(super) fn apply(program: &mut Program, site: u64) {
    if let Some((body, index)) = nth_statement_mut(program, site, removable) {
        body.remove(index);
    }
}
