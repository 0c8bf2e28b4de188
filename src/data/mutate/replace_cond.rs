//! REPLACE_COND: give a block another condition (a `REPEAT` another count).
//!
//! ```text
//! DEF run m( WHILE c( frontIsClear c) w( move w) m)   →   DEF run m( WHILE c( not c( leftIsClear c) c) w( move w) m)
//! ```
//!
//! Sites: every `IF`, `IFELSE`, `WHILE` and `REPEAT`. A condition is replaced by one of the other
//! seven of [`super::CONDITIONS`] (by any of the eight if it is not one of them); a count by one of
//! the eight other counts. The original leaves a `REPEAT` unchanged (it tests for the wrong key).

use super::{
    nth_statement_mut, statements_where, Choose, MutationOperator, MutatorConfig, CONDITIONS,
};
use crate::lang::{Program, RepeatCount, Stmt};

fn is_block(_: &[Stmt], stmt: &Stmt) -> bool {
    stmt.block_kind().is_some()
}

/// The REPLACE_COND operator.
pub(super) struct ReplaceCond;

impl MutationOperator for ReplaceCond {
    fn name(&self) -> &'static str {
        "REPLACE_COND"
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        statements_where(program, is_block).len() as u64
    }

    fn rewrite(
        &self,
        program: &mut Program,
        site: u64,
        choose: &mut dyn Choose,
        config: &MutatorConfig,
    ) {
        let Some((body, index)) = nth_statement_mut(program, site, is_block) else {
            return;
        };
        match &mut body[index] {
            Stmt::If { cond, .. } | Stmt::IfElse { cond, .. } | Stmt::While { cond, .. } => {
                let others: Vec<_> = CONDITIONS.iter().filter(|c| *c != cond).copied().collect();
                *cond = others[choose.pick(others.len())];
            }
            Stmt::Repeat { count, .. } if !config.compat_original => {
                let others: Vec<RepeatCount> = RepeatCount::all().filter(|c| c != count).collect();
                *count = others[choose.pick(others.len())];
            }
            Stmt::Repeat { .. } | Stmt::Action(_) => {}
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
            &ReplaceCond,
            "DEF run m( WHILE c( frontIsClear c) w( move w) m)",
            "DEF run m( WHILE c( not c( leftIsClear c) c) w( move w) m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&ReplaceCond, "DEF run m( move turnLeft m)"), 0);
    }
}
