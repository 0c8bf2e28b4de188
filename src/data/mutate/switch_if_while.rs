//! SWITCH_IF_WHILE: turn an `IF` into a `WHILE` with the same condition and body, or back.
//!
//! ```text
//! DEF run m( IF c( frontIsClear c) i( move i) m)   →   DEF run m( WHILE c( frontIsClear c) w( move w) m)
//! ```
//!
//! Sites: every `IF` and `WHILE`.

use super::{nth_statement_mut, statements_where, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, Stmt};

fn is_if_or_while(_: &[Stmt], stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::If { .. } | Stmt::While { .. })
}

/// The SWITCH_IF_WHILE operator.
pub(super) struct SwitchIfWhile;

impl MutationOperator for SwitchIfWhile {
    fn name(&self) -> &'static str {
        "SWITCH_IF_WHILE"
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        statements_where(program, is_if_or_while).len() as u64
    }

    fn rewrite(&self, program: &mut Program, site: u64, _: &mut dyn Choose, _: &MutatorConfig) {
        if let Some((body, index)) = nth_statement_mut(program, site, is_if_or_while) {
            let stmt = &mut body[index];
            *stmt = match std::mem::replace(stmt, Stmt::Action(crate::lang::Action::Move)) {
                Stmt::If { cond, body } => Stmt::While { cond, body },
                Stmt::While { cond, body } => Stmt::If { cond, body },
                other => other,
            };
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
            &SwitchIfWhile,
            "DEF run m( IF c( frontIsClear c) i( move i) m)",
            "DEF run m( WHILE c( frontIsClear c) w( move w) m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        let program = "DEF run m( REPEAT R=3 r( move r) \
                       IFELSE c( markersPresent c) i( move i) ELSE e( move e) m)";
        assert_eq!(sites_of(&SwitchIfWhile, program), 0);
    }
}
