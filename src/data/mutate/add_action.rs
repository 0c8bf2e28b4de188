//! ADD_ACTION: insert a random action into a body.
//!
//! ```text
//! DEF run m( move m)   →   DEF run m( move turnLeft m)
//! ```
//!
//! Sites: every insertion point `0..=n` of every body of `n` statements. The original's sites
//! are positions 0–3 of every body whatever its length (a position past the end appends).

use rand::Rng;

use super::{bodies, body_of, body_of_mut, random_action, MutatorConfig};
use crate::lang::{Program, Stmt};

/// Insertion points of a body of `len` statements.
fn points(len: usize, config: &MutatorConfig) -> usize {
    if config.compat_original {
        4
    } else {
        len + 1
    }
}

pub(super) fn sites(program: &Program, config: &MutatorConfig) -> u64 {
    bodies(program)
        .iter()
        .map(|path| points(body_of(program, path).len(), config) as u64)
        .sum()
}

pub(super) fn apply<R: Rng + ?Sized>(
    program: &mut Program,
    site: u64,
    rng: &mut R,
    config: &MutatorConfig,
) {
    let mut site = site as usize;
    for path in bodies(program) {
        let len = body_of(program, &path).len();
        let count = points(len, config);
        if site < count {
            let action = random_action(rng);
            body_of_mut(program, &path).insert(site.min(len), Stmt::Action(action));
            return;
        }
        site -= count;
    }
}
