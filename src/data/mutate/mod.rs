//! The AST mutator of SED's first training stage (paper Appendix D, `mutation.py`).
//!
//! Eight operators, one module each, every one an AST rewrite. An operator's weight is its base
//! weight times its number of sites, and sampling is uniform over the weighted (operator, site)
//! pairs: an operator is drawn in proportion to its weight, then one of its sites uniformly.
//!
//! | operator | base | sites |
//! |---|---|---|
//! | [`add_action`] | 1 | insertion points of every body |
//! | [`remove_action`] | 1 | actions in a body of more than one statement |
//! | [`replace_action`] | 1 | every action |
//! | [`unwrap_block`] | 1 | every block |
//! | [`wrap_block`] | 0.25 | Σ over bodies of n(n+1)/2 non-empty spans |
//! | [`wrap_ifelse`] | 0.75 | Σ over bodies of C(n+1, 3) pairs of adjacent non-empty spans |
//! | [`replace_cond`] | 1 | every `IF`, `IFELSE`, `WHILE` and `REPEAT` |
//! | [`switch_if_while`] | 1 | every `IF` and `WHILE` |
//!
//! The original has quirks, fixed by default and reproduced with
//! [`MutatorConfig::compat_original`]: ADD only inserts at body positions 0–3 (so a body has four
//! insertion points whatever its length, later positions never receive one, and positions past
//! the end append); REPLACE_COND on a `REPEAT` leaves it unchanged (the fixed version draws another
//! count); and a single mutation is not checked for change. Both versions accept the conditions
//! the original does not know (`not c( markersPresent c)`, `not c( noMarkersPresent c)`): they are
//! replaced by one of the eight conditions.
//!
//! An operator draws its other choices (an action, a condition, a count, a block kind) through
//! [`Choose`]: from the random stream when mutating, and every sequence of them in turn when
//! [`Operator::rewrites`] lists all its outcomes at a site, which is what [`neighbourhood`]
//! enumerates.

mod add_action;
mod neighbourhood;
mod remove_action;
mod replace_action;
mod replace_cond;
mod switch_if_while;
mod unwrap_block;
mod wrap_block;
mod wrap_ifelse;

pub use neighbourhood::{neighbourhood, single_rewrites, Neighbourhood, MAX_NEIGHBOURS};

use std::fmt;

use rand::{Rng, RngExt};
use thiserror::Error;

use crate::lang::{Action, Atom, Cond, Program, Stmt};

/// A mutation operator: one AST rewrite, where it applies, and how often it is drawn. Each
/// operator is a unit type in its own module, registered once in [`OPERATORS`].
pub trait MutationOperator: Sync {
    /// The original's name (`ADD_ACTION`, …).
    fn name(&self) -> &'static str;

    /// The operator is drawn in proportion to its base weight times its number of sites.
    fn base_weight(&self) -> f64 {
        1.0
    }

    /// Whether every outcome of the operator, at every site, has fewer tokens than the program
    /// it rewrites (the search's simplification of an answer enumerates these alone).
    fn shrinks(&self) -> bool {
        false
    }

    /// Number of sites of the operator in `program`.
    fn sites(&self, program: &Program, config: &MutatorConfig) -> u64;

    /// Rewrites `program` at `site` (in `0..sites`), taking the operator's other choices (an
    /// action, a condition, a count) from `choose`, and nothing else.
    fn rewrite(
        &self,
        program: &mut Program,
        site: u64,
        choose: &mut dyn Choose,
        config: &MutatorConfig,
    );
}

/// Where an operator's choices come from.
pub trait Choose {
    /// One of `0..n` (`n` ≥ 1).
    fn pick(&mut self, n: usize) -> usize;
}

/// Choices drawn from a random stream, uniformly.
struct Random<'a, R: Rng + ?Sized>(&'a mut R);

impl<R: Rng + ?Sized> Choose for Random<'_, R> {
    fn pick(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

/// Choices replayed from `prefix`, then the first option of every further choice; records each
/// choice made and how many options it had.
struct Replay<'a> {
    prefix: &'a [usize],
    made: Vec<(usize, usize)>,
}

impl Choose for Replay<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let choice = self
            .prefix
            .get(self.made.len())
            .map_or(0, |&c| c.min(n - 1));
        self.made.push((choice, n));
        choice
    }
}

/// Every outcome of `op` at `site`: one per sequence of its choices, in lexicographic order of
/// the sequences (an operator without choices has one outcome).
fn rewrites_of(
    op: &dyn MutationOperator,
    program: &Program,
    site: u64,
    config: &MutatorConfig,
) -> Vec<Program> {
    let mut outcomes = Vec::new();
    let mut prefix: Vec<usize> = Vec::new();
    loop {
        let mut replay = Replay {
            prefix: &prefix,
            made: Vec::new(),
        };
        let mut mutant = program.clone();
        op.rewrite(&mut mutant, site, &mut replay, config);
        outcomes.push(mutant);
        // The next sequence: the last choice that has an option left, taken one further.
        let mut made = replay.made;
        loop {
            match made.pop() {
                None => return outcomes,
                Some((choice, options)) if choice + 1 < options => {
                    made.push((choice + 1, options));
                    break;
                }
                Some(_) => {}
            }
        }
        prefix = made.into_iter().map(|(choice, _)| choice).collect();
    }
}

/// Every operator, in the original's order (the order of the weighted draw). Adding an operator
/// is a new module with its `MutationOperator` and one line here.
const OPERATORS: [&dyn MutationOperator; 8] = [
    &add_action::AddAction,
    &remove_action::RemoveAction,
    &replace_action::ReplaceAction,
    &unwrap_block::UnwrapBlock,
    &wrap_block::WrapBlock,
    &wrap_ifelse::WrapIfElse,
    &replace_cond::ReplaceCond,
    &switch_if_while::SwitchIfWhile,
];

/// An operator of the table: a cheap handle, compared by name.
#[derive(Clone, Copy)]
pub struct Operator(&'static dyn MutationOperator);

impl Operator {
    /// Every operator, in the table's order.
    pub fn all() -> impl Iterator<Item = Operator> {
        OPERATORS.iter().map(|&op| Operator(op))
    }

    /// The operator with this name (`ADD_ACTION`, …).
    pub fn named(name: &str) -> Option<Operator> {
        Operator::all().find(|op| op.name() == name)
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn base_weight(self) -> f64 {
        self.0.base_weight()
    }

    /// Whether every outcome is shorter than the program rewritten (REMOVE_ACTION,
    /// UNWRAP_BLOCK).
    pub fn shrinks(self) -> bool {
        self.0.shrinks()
    }

    /// Number of sites of this operator in `program`.
    pub fn sites(self, program: &Program, config: &MutatorConfig) -> u64 {
        self.0.sites(program, config)
    }

    /// Applies the operator at site `site` (in `0..sites`), drawing its other choices from `rng`.
    pub fn apply<R: Rng + ?Sized>(
        self,
        program: &Program,
        site: u64,
        rng: &mut R,
        config: &MutatorConfig,
    ) -> Program {
        let mut mutant = program.clone();
        self.0.rewrite(&mut mutant, site, &mut Random(rng), config);
        mutant
    }

    /// Every program the operator makes at `site` (in `0..sites`), with each of its choices:
    /// every action, condition, count and block kind it could draw there.
    pub fn rewrites(self, program: &Program, site: u64, config: &MutatorConfig) -> Vec<Program> {
        rewrites_of(self.0, program, site, config)
    }
}

impl PartialEq for Operator {
    fn eq(&self, other: &Operator) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Operator {}

impl std::hash::Hash for Operator {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Mutator settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MutatorConfig {
    /// Reproduce the original's quirks (see the module documentation).
    pub compat_original: bool,
}

/// Why mutation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MutateError {
    #[error("the program has no mutation site")]
    NoSite,
    #[error("rejection sampling failed: no new program after {0} tries")]
    RejectionFailed(usize),
}

/// Tries per mutation before giving up, as in the original.
pub const MAX_TRIES: usize = 1000;

/// One mutation of `program`: the operator and the mutant.
pub fn mutate_once<R: Rng + ?Sized>(
    program: &Program,
    rng: &mut R,
    config: &MutatorConfig,
) -> Result<(Operator, Program), MutateError> {
    let weights: Vec<(Operator, u64, f64)> = Operator::all()
        .map(|op| {
            let sites = op.sites(program, config);
            (op, sites, op.base_weight() * sites as f64)
        })
        .collect();
    let total: f64 = weights.iter().map(|w| w.2).sum();
    if total <= 0.0 {
        return Err(MutateError::NoSite);
    }
    let mut pick = rng.random::<f64>() * total;
    let (op, sites, _) = *weights
        .iter()
        .filter(|w| w.1 > 0)
        .find(|w| {
            pick -= w.2;
            pick < 0.0
        })
        .or_else(|| weights.iter().rev().find(|w| w.1 > 0))
        .ok_or(MutateError::NoSite)?;
    let site = rng.random_range(0..sites);
    Ok((op, op.apply(program, site, rng, config)))
}

/// A chain of `n` mutations: `n` programs, each a mutation of the previous one (the first of
/// `program`), every one different from all earlier ones and from `program`; each step retries up
/// to [`MAX_TRIES`] times. With `compat_original`, a single mutation (`n == 1`) is not checked.
pub fn mutate_n<R: Rng + ?Sized>(
    program: &Program,
    n: usize,
    rng: &mut R,
    config: &MutatorConfig,
) -> Result<Vec<(Operator, Program)>, MutateError> {
    let check = !(config.compat_original && n == 1);
    let mut seen = vec![program.clone()];
    let mut chain: Vec<(Operator, Program)> = Vec::with_capacity(n);
    for _ in 0..n {
        let current = seen.last().cloned().unwrap_or_default();
        let mut tries = 0;
        loop {
            tries += 1;
            let (op, mutant) = mutate_once(&current, rng, config)?;
            if !check || !seen.contains(&mutant) {
                seen.push(mutant.clone());
                chain.push((op, mutant));
                break;
            }
            if tries >= MAX_TRIES {
                return Err(MutateError::RejectionFailed(MAX_TRIES));
            }
        }
    }
    Ok(chain)
}

/// The eight conditions the mutator draws from: the five atoms and `not` of the three `*IsClear`.
pub const CONDITIONS: [Cond; 8] = [
    Cond::atom(Atom::FrontIsClear),
    Cond::atom(Atom::LeftIsClear),
    Cond::atom(Atom::RightIsClear),
    Cond::atom(Atom::MarkersPresent),
    Cond::atom(Atom::NoMarkersPresent),
    Cond::not(Atom::FrontIsClear),
    Cond::not(Atom::LeftIsClear),
    Cond::not(Atom::RightIsClear),
];

/// A condition among the eight (uniformly, when drawn).
fn random_cond(choose: &mut dyn Choose) -> Cond {
    CONDITIONS[choose.pick(CONDITIONS.len())]
}

/// An action (uniformly, when drawn).
fn random_action(choose: &mut dyn Choose) -> Action {
    Action::ALL[choose.pick(Action::ALL.len())]
}

/// The path to a statement list: the (statement index, body index) steps from the run body.
type BodyPath = Vec<(usize, usize)>;

/// Every statement list of the program in pre-order, the run body first.
fn bodies(program: &Program) -> Vec<BodyPath> {
    fn walk(body: &[Stmt], path: &mut BodyPath, out: &mut Vec<BodyPath>) {
        out.push(path.clone());
        for (index, stmt) in body.iter().enumerate() {
            for (which, inner) in stmt.bodies().enumerate() {
                path.push((index, which));
                walk(inner, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(&program.body, &mut Vec::new(), &mut out);
    out
}

fn body_of<'a>(program: &'a Program, path: &[(usize, usize)]) -> &'a Vec<Stmt> {
    let mut body = &program.body;
    for &(index, which) in path {
        body = body[index]
            .bodies()
            .nth(which)
            .expect("a body path always leads to a body");
    }
    body
}

fn body_of_mut<'a>(program: &'a mut Program, path: &[(usize, usize)]) -> &'a mut Vec<Stmt> {
    let mut body = &mut program.body;
    for &(index, which) in path {
        body = match (&mut body[index], which) {
            (Stmt::If { body, .. }, 0)
            | (Stmt::While { body, .. }, 0)
            | (Stmt::Repeat { body, .. }, 0)
            | (
                Stmt::IfElse {
                    then_body: body, ..
                },
                0,
            )
            | (
                Stmt::IfElse {
                    else_body: body, ..
                },
                1,
            ) => body,
            _ => unreachable!("a body path always leads to a body"),
        };
    }
    body
}

/// Every statement that satisfies `keep`, as (body path, index), in pre-order.
fn statements_where(
    program: &Program,
    keep: impl Fn(&[Stmt], &Stmt) -> bool,
) -> Vec<(BodyPath, usize)> {
    bodies(program)
        .into_iter()
        .flat_map(|path| {
            let body = body_of(program, &path);
            body.iter()
                .enumerate()
                .filter(|(_, stmt)| keep(body, stmt))
                .map(|(index, _)| (path.clone(), index))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The statement at pre-order site `site` among those satisfying `keep`.
fn nth_statement_mut(
    program: &mut Program,
    site: u64,
    keep: impl Fn(&[Stmt], &Stmt) -> bool,
) -> Option<(&mut Vec<Stmt>, usize)> {
    let (path, index) = statements_where(program, keep)
        .into_iter()
        .nth(site as usize)?;
    Some((body_of_mut(program, &path), index))
}

/// Helpers of the operators' tests.
#[cfg(test)]
mod testing {
    use super::{rewrites_of, MutationOperator, MutatorConfig};
    use crate::lang::{parse, Program};

    fn program(text: &str) -> Program {
        parse(text).unwrap()
    }

    /// Sites of `op` in the program `text` (default settings).
    pub fn sites_of(op: &dyn MutationOperator, text: &str) -> u64 {
        op.sites(&program(text), &MutatorConfig::default())
    }

    /// Whether `op` turns `before` into `after` at some site with some choices (default
    /// settings); every outcome must parse back to itself.
    pub fn outcomes_include(op: &dyn MutationOperator, before: &str, after: &str) -> bool {
        let (before, after) = (program(before), program(after));
        let config = MutatorConfig::default();
        let mut found = false;
        for site in 0..op.sites(&before, &config) {
            for mutant in rewrites_of(op, &before, site, &config) {
                assert_eq!(parse(&mutant.to_string()).as_ref(), Ok(&mutant));
                found |= mutant == after;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn program(text: &str) -> Program {
        crate::lang::parse(text).unwrap()
    }

    /// A program with every construct, on which every operator has sites.
    fn every_construct() -> Program {
        program(
            "DEF run m( move IF c( frontIsClear c) i( turnLeft putMarker i) \
             IFELSE c( markersPresent c) i( pickMarker i) ELSE e( move e) \
             WHILE c( not c( leftIsClear c) c) w( turnRight w) REPEAT R=3 r( move move r) m)",
        )
    }

    /// Every site of every operator on a program with every construct gives a valid program,
    /// different from the original (in the fixed version).
    #[test]
    fn every_site_of_every_operator_changes_the_program() {
        let p = every_construct();
        let config = MutatorConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for op in Operator::all() {
            let sites = op.sites(&p, &config);
            assert!(sites > 0, "{op}");
            for site in 0..sites {
                let mutant = op.apply(&p, site, &mut rng, &config);
                assert_ne!(mutant, p, "{op} at site {site}");
                assert_eq!(
                    crate::lang::parse(&mutant.to_string()).as_ref(),
                    Ok(&mutant)
                );
            }
        }
    }

    /// The operators marked as shrinking make only shorter programs, on every site with every
    /// choice; each unmarked one makes a program at least as long somewhere.
    #[test]
    fn shrinking_operators_only_shorten() {
        let p = every_construct();
        let config = MutatorConfig::default();
        let shrinking: Vec<&str> = Operator::all()
            .filter(|op| op.shrinks())
            .map(Operator::name)
            .collect();
        assert_eq!(shrinking, ["REMOVE_ACTION", "UNWRAP_BLOCK"]);
        for op in Operator::all() {
            let lengths: Vec<usize> = (0..op.sites(&p, &config))
                .flat_map(|site| op.rewrites(&p, site, &config))
                .map(|q| q.token_len())
                .collect();
            assert!(!lengths.is_empty(), "{op}");
            let shorter = lengths.iter().all(|&n| n < p.token_len());
            assert_eq!(shorter, op.shrinks(), "{op}");
        }
    }

    #[test]
    fn site_counts() {
        let p = program("DEF run m( move turnLeft IF c( frontIsClear c) i( move i) m)");
        let fixed = MutatorConfig::default();
        let compat = MutatorConfig {
            compat_original: true,
        };
        // Bodies: run (3 statements), if (1).
        let op = |name| Operator::named(name).unwrap();
        assert_eq!(op("ADD_ACTION").sites(&p, &fixed), 4 + 2);
        assert_eq!(op("ADD_ACTION").sites(&p, &compat), 8);
        assert_eq!(op("REMOVE_ACTION").sites(&p, &fixed), 2);
        assert_eq!(op("REPLACE_ACTION").sites(&p, &fixed), 3);
        assert_eq!(op("UNWRAP_BLOCK").sites(&p, &fixed), 1);
        assert_eq!(op("WRAP_BLOCK").sites(&p, &fixed), 6 + 1);
        assert_eq!(op("WRAP_IFELSE").sites(&p, &fixed), 4);
        assert_eq!(op("REPLACE_COND").sites(&p, &fixed), 1);
        assert_eq!(op("SWITCH_IF_WHILE").sites(&p, &fixed), 1);
    }

    #[test]
    fn compat_quirks() {
        let p = program("DEF run m( REPEAT R=3 r( move r) m)");
        let compat = MutatorConfig {
            compat_original: true,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let replace_cond = Operator::named("REPLACE_COND").unwrap();
        assert_eq!(replace_cond.apply(&p, 0, &mut rng, &compat), p);
        let fixed = replace_cond.apply(&p, 0, &mut rng, &MutatorConfig::default());
        assert!(matches!(&fixed.body[0], Stmt::Repeat { count, .. } if count.get() != 3));
        // ADD at compat site 3 of a 1-statement body appends.
        let q = program("DEF run m( move m)");
        let added = Operator::named("ADD_ACTION")
            .unwrap()
            .apply(&q, 3, &mut rng, &compat);
        assert_eq!(added.body.len(), 2);
        assert_eq!(added.body[0], Stmt::Action(Action::Move));
    }

    #[test]
    fn chains_never_repeat_a_program() {
        let p = program("DEF run m( move m)");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in 1..=5 {
            let chain = mutate_n(&p, n, &mut rng, &MutatorConfig::default()).unwrap();
            assert_eq!(chain.len(), n);
            let mut seen = vec![p.clone()];
            for (_, mutant) in chain {
                assert!(!seen.contains(&mutant));
                seen.push(mutant);
            }
        }
        assert_eq!(
            mutate_once(&Program::default(), &mut rng, &MutatorConfig::default()).map(|m| m.0),
            Operator::named("ADD_ACTION").ok_or(MutateError::NoSite)
        );
    }
}
