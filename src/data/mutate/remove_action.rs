//! REMOVE_ACTION: delete an action from a body that keeps at least one statement.
//!
//! ```text
//! DEF run m( move turnLeft m)   →   DEF run m( turnLeft m)
//! ```
//!
//! Sites: every action in a body of more than one statement.

use super::{nth_statement_mut, statements_where, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, Stmt};

fn removable(body: &[Stmt], stmt: &Stmt) -> bool {
    body.len() > 1 && matches!(stmt, Stmt::Action(_))
}

/// The REMOVE_ACTION operator.
pub(super) struct RemoveAction;

impl MutationOperator for RemoveAction {
    fn name(&self) -> &'static str {
        "REMOVE_ACTION"
    }

    fn shrinks(&self) -> bool {
        true
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        statements_where(program, removable).len() as u64
    }

    fn rewrite(&self, program: &mut Program, site: u64, _: &mut dyn Choose, _: &MutatorConfig) {
        if let Some((body, index)) = nth_statement_mut(program, site, removable) {
            body.remove(index);
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
            &RemoveAction,
            "DEF run m( move turnLeft m)",
            "DEF run m( turnLeft m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&RemoveAction, "DEF run m( move m)"), 0);
        assert_eq!(
            sites_of(
                &RemoveAction,
                "DEF run m( IF c( frontIsClear c) i( move i) m)"
            ),
            0
        );
    }
}
