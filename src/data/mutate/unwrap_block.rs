//! UNWRAP_BLOCK: replace a block by its body (an `IFELSE` by its then-branch followed by its
//! else-branch).
//!
//! ```text
//! DEF run m( WHILE c( frontIsClear c) w( move w) turnLeft m)   →   DEF run m( move turnLeft m)
//! ```
//!
//! Sites: every `IF`, `IFELSE`, `WHILE` and `REPEAT`.

use super::{nth_statement_mut, statements_where, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, Stmt};

fn is_block(_: &[Stmt], stmt: &Stmt) -> bool {
    stmt.block_kind().is_some()
}

/// The UNWRAP_BLOCK operator.
pub(super) struct UnwrapBlock;

impl MutationOperator for UnwrapBlock {
    fn name(&self) -> &'static str {
        "UNWRAP_BLOCK"
    }

    fn shrinks(&self) -> bool {
        true
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        statements_where(program, is_block).len() as u64
    }

    fn rewrite(&self, program: &mut Program, site: u64, _: &mut dyn Choose, _: &MutatorConfig) {
        if let Some((body, index)) = nth_statement_mut(program, site, is_block) {
            let block = body.remove(index);
            let inner: Vec<Stmt> = block.bodies().flatten().cloned().collect();
            body.splice(index..index, inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{outcomes_include, sites_of};
    use super::*;

    /// The module's documented example is one of the operator's outcomes.
    #[test]
    fn the_documented_example() {
        assert!(outcomes_include(
            &UnwrapBlock,
            "DEF run m( WHILE c( frontIsClear c) w( move w) turnLeft m)",
            "DEF run m( move turnLeft m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&UnwrapBlock, "DEF run m( move turnLeft m)"), 0);
    }
}
