//! REPLACE_ACTION: replace an action by one of the four others.
//!
//! ```text
//! DEF run m( move m)   →   DEF run m( pickMarker m)
//! ```
//!
//! Sites: every action.

use rand::{Rng, RngExt};

use super::{nth_statement_mut, statements_where};
use crate::lang::{Action, Program, Stmt};

fn is_action(_: &[Stmt], stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::Action(_))
}

pub(super) fn sites(program: &Program) -> u64 {
    statements_where(program, is_action).len() as u64
}

pub(super) fn apply<R: Rng + ?Sized>(program: &mut Program, site: u64, rng: &mut R) {
    if let Some((body, index)) = nth_statement_mut(program, site, is_action) {
        if let Stmt::Action(action) = &mut body[index] {
            let others: Vec<Action> = Action::ALL.into_iter().filter(|a| a != action).collect();
            *action = others[rng.random_range(0..others.len())];
        }
    }
}
