//! WRAP_IFELSE: turn two adjacent non-empty spans of a body into the branches of a new `IFELSE`.
//!
//! ```text
//! DEF run m( move turnLeft m)   →   DEF run m( IFELSE c( markersPresent c) i( move i) ELSE e( turnLeft e) m)
//! ```
//!
//! Sites: every `left < mid < right` of every body, C(n+1, 3) per body of n statements; the
//! then-branch is `left..mid`, the else-branch `mid..right`, the condition uniform over the eight
//! of [`super::CONDITIONS`].

use super::{bodies, body_of, body_of_mut, random_cond, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, Stmt};

fn splits(len: usize) -> u64 {
    let n = len as u64 + 1;
    if n < 3 {
        0
    } else {
        n * (n - 1) * (n - 2) / 6
    }
}

/// The `index`-th triple `(left, mid, right)` with `left < mid < right <= len`.
fn split(len: usize, mut index: u64) -> (usize, usize, usize) {
    for left in 0..=len {
        for mid in left + 1..=len {
            let count = (len - mid) as u64;
            if index < count {
                return (left, mid, mid + 1 + index as usize);
            }
            index -= count;
        }
    }
    (0, 1, len)
}

/// The WRAP_IFELSE operator.
pub(super) struct WrapIfElse;

impl MutationOperator for WrapIfElse {
    fn name(&self) -> &'static str {
        "WRAP_IFELSE"
    }

    fn base_weight(&self) -> f64 {
        0.75
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        bodies(program)
            .iter()
            .map(|path| splits(body_of(program, path).len()))
            .sum()
    }

    fn rewrite(
        &self,
        program: &mut Program,
        site: u64,
        choose: &mut dyn Choose,
        _: &MutatorConfig,
    ) {
        let mut site = site;
        for path in bodies(program) {
            let len = body_of(program, &path).len();
            let count = splits(len);
            if site < count {
                let (left, mid, right) = split(len, site);
                let body = body_of_mut(program, &path);
                let mut taken: Vec<Stmt> = body.drain(left..right).collect();
                let else_body = taken.split_off(mid - left);
                body.insert(
                    left,
                    Stmt::IfElse {
                        cond: random_cond(choose),
                        then_body: taken,
                        else_body,
                    },
                );
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
            &WrapIfElse,
            "DEF run m( move turnLeft m)",
            "DEF run m( IFELSE c( markersPresent c) i( move i) ELSE e( turnLeft e) m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&WrapIfElse, "DEF run m( move m)"), 0);
        assert_eq!(sites_of(&WrapIfElse, "DEF run m( m)"), 0);
    }

    #[test]
    fn splits_are_enumerated_once_each() {
        for len in 0..7 {
            let all: Vec<_> = (0..super::splits(len))
                .map(|i| super::split(len, i))
                .collect();
            let mut unique = all.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), all.len());
            assert!(all.iter().all(|&(l, m, r)| l < m && m < r && r <= len));
        }
    }
}
