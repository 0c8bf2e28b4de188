//! UNWRAP_BLOCK: replace a block by its body (an `IFELSE` by its then-branch followed by its
//! else-branch).
//!
//! ```text
//! DEF run m( WHILE c( frontIsClear c) w( move w) turnLeft m)   →   DEF run m( move turnLeft m)
//! ```
//!
//! Sites: every `IF`, `IFELSE`, `WHILE` and `REPEAT`.

use super::{nth_statement_mut, statements_where};
use crate::lang::{Program, Stmt};

fn is_block(_: &[Stmt], stmt: &Stmt) -> bool {
    stmt.block_kind().is_some()
}

pub(super) fn sites(program: &Program) -> u64 {
    statements_where(program, is_block).len() as u64
}

pub(super) fn apply(program: &mut Program, site: u64) {
    if let Some((body, index)) = nth_statement_mut(program, site, is_block) {
        let block = body.remove(index);
        let inner: Vec<Stmt> = block.bodies().flatten().cloned().collect();
        body.splice(index..index, inner);
    }
}
