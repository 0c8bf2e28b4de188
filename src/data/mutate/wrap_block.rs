//! WRAP_BLOCK: wrap a non-empty span of a body in a new `IF`, `WHILE` or `REPEAT`.
//!
//! ```text
//! DEF run m( move turnLeft m)   →   DEF run m( REPEAT R=4 r( move r) turnLeft m)
//! ```
//!
//! Sites: every span `left..right` with `left < right` of every body, n(n+1)/2 per body of n
//! statements. The block kind is uniform over the three; a repeat count is uniform over 2–10 and
//! a condition uniform over the eight of [`super::CONDITIONS`].

use super::{bodies, body_of, body_of_mut, random_cond, Choose, MutationOperator, MutatorConfig};
use crate::lang::{Program, RepeatCount, Stmt};

fn spans(len: usize) -> u64 {
    (len * (len + 1) / 2) as u64
}

/// The `index`-th span `(left, right)` of a body of `len` statements, ordered by `left`.
fn span(len: usize, mut index: u64) -> (usize, usize) {
    for left in 0..len {
        let count = (len - left) as u64;
        if index < count {
            return (left, left + 1 + index as usize);
        }
        index -= count;
    }
    (0, len)
}

/// The WRAP_BLOCK operator.
pub(super) struct WrapBlock;

impl MutationOperator for WrapBlock {
    fn name(&self) -> &'static str {
        "WRAP_BLOCK"
    }

    fn base_weight(&self) -> f64 {
        0.25
    }

    fn sites(&self, program: &Program, _: &MutatorConfig) -> u64 {
        bodies(program)
            .iter()
            .map(|path| spans(body_of(program, path).len()))
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
            let count = spans(len);
            if site < count {
                let (left, right) = span(len, site);
                let body = body_of_mut(program, &path);
                let inner: Vec<Stmt> = body.drain(left..right).collect();
                let block = match choose.pick(3) {
                    0 => Stmt::If {
                        cond: random_cond(choose),
                        body: inner,
                    },
                    1 => Stmt::While {
                        cond: random_cond(choose),
                        body: inner,
                    },
                    _ => {
                        let counts: Vec<RepeatCount> = RepeatCount::all().collect();
                        Stmt::Repeat {
                            count: counts[choose.pick(counts.len())],
                            body: inner,
                        }
                    }
                };
                body.insert(left, block);
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
            &WrapBlock,
            "DEF run m( move turnLeft m)",
            "DEF run m( REPEAT R=4 r( move r) turnLeft m)"
        ));
    }

    /// Programs without a site.
    #[test]
    fn not_applicable() {
        assert_eq!(sites_of(&WrapBlock, "DEF run m( m)"), 0);
    }

    #[test]
    fn spans_are_enumerated_once_each() {
        for len in 0..6 {
            let all: Vec<(usize, usize)> = (0..super::spans(len))
                .map(|i| super::span(len, i))
                .collect();
            let mut unique = all.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), all.len());
            assert!(all.iter().all(|&(l, r)| l < r && r <= len));
        }
    }
}
