//! REPLACE_ACTION: replace an action by one of the four others.
//!
//! ```text
//! DEF run m( move m)   →   DEF run m( pickMarker m)
//! ```
//!
//! Sites: every action.

use super::{nth_statement_mut, statements_where, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Action, Program, Stmt};

fn is_action(_: &[Stmt], stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::Action(_))
}

/// The REPLACE_ACTION operator.
pub(super) struct ReplaceAction;

impl MutationOperator for ReplaceAction {
    fn name(&self) -> &'static str {
        "REPLACE_ACTION"
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        statements_where(program, is_action).len() as u64
    }

    fn rewrite(
        &self,
        program: &mut Program,
        site: u64,
        choose: &mut dyn Choose,
        _: &MutatorConfig,
    ) {
        if let Some((body, index)) = nth_statement_mut(program, site, is_action) {
            if let Stmt::Action(action) = &mut body[index] {
                let others: Vec<Action> = Action::ALL.into_iter().filter(|a| a != action).collect();
                *action = others[choose.pick(others.len())];
            }
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
            &ReplaceAction,
            "DEF run m( move m)",
            "DEF run m( pickMarker m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&ReplaceAction, "DEF run m( m)"), 0);
        assert_eq!(
            sites_of(
                &ReplaceAction,
                "DEF run m( WHILE c( frontIsClear c) w( w) m)"
            ),
            0
        );
    }
}
