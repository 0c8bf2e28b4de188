//! ADD_ACTION: insert a random action into a body.
//!
//! ```text
//! DEF run m( move m)   →   DEF run m( move turnLeft m)
//! ```
//!
//! Sites: every insertion point `0..=n` of every body of `n` statements. The original's sites
//! are positions 0–3 of every body whatever its length (a position past the end appends).

use super::{bodies, body_of, body_of_mut, random_action, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, Stmt};

/// Insertion points of a body of `len` statements.
fn points(len: usize, config: &MutatorConfig) -> usize {
    if config.compat_original {
        4
    } else {
        len + 1
    }
}

/// The ADD_ACTION operator.
pub(super) struct AddAction;

impl MutationOperator for AddAction {
    fn name(&self) -> &'static str {
        "ADD_ACTION"
    }

    fn sites(&self, program: &Program, config: &MutatorConfig) -> u64 {
        bodies(program)
            .iter()
            .map(|path| points(body_of(program, path).len(), config) as u64)
            .sum()
    }

    fn rewrite(
        &self,
        program: &mut Program,
        site: u64,
        choose: &mut dyn Choose,
        config: &MutatorConfig,
    ) {
        let mut site = site as usize;
        for path in bodies(program) {
            let len = body_of(program, &path).len();
            let count = points(len, config);
            if site < count {
                let action = random_action(choose);
                body_of_mut(program, &path).insert(site.min(len), Stmt::Action(action));
                return;
            }
            site -= count;
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
            &AddAction,
            "DEF run m( move m)",
            "DEF run m( move turnLeft m)"
        ));
    }

    /// ADD_ACTION applies to every program: the empty one has one insertion point.
    #[test]
    fn applies_everywhere() {
        assert_eq!(sites_of(&AddAction, "DEF run m( m)"), 1);
    }
}
