//! The rewrite stage: every program within a few AST rewrites of a candidate, run on the VM.
//!
//! A debugger call costs milliseconds of network time; the VM runs a short program on the five
//! given inputs in about a microsecond. So before (and after) the debugger is asked, the search
//! can try the whole neighbourhood of a candidate: every site of every mutation operator with
//! every choice it has ([`single_rewrites`]: each action, condition, repeat count and span), then
//! the same from each of those, up to a radius — enumerated, not sampled.
//!
//! - Each program is executed once per task (a 128-bit fingerprint of its tree is kept, so the
//!   set stays small), on all cores, and stopped at the first given example it fails.
//! - The enumeration goes by distance and stops after the first distance at which a program
//!   passes: a nearer rewrite explains the examples with fewer changes.
//! - Failing neighbours are dropped. The programs that pass are all observationally equal on the
//!   given examples, and many of them fail the held-out one, so they are ranked ([`Ranking`]):
//!   by the synthesizer's log-likelihood of the program given the examples, by distance, or by
//!   length.
//! - Work is bounded: each expansion executes at most `limit` programs and a task's expansions
//!   together at most `budget` (at most [`MAX_BUDGET`]); at most [`MAX_LEVEL_NODES`] of a
//!   distance's statements are kept to expand further. The rewrites are generated a few hundred
//!   sites at a time, so memory does not grow with the square of a long candidate's length.
//! - **Simplification** ([`simplify`], not in the original): once a search has a passing
//!   answer, the programs within a few *shrinking* rewrites of it (the operators whose every
//!   outcome is shorter, [`Operator::shrinks`]: REMOVE_ACTION and UNWRAP_BLOCK) are executed,
//!   and the shortest that passes becomes the answer, again and again while one passes. Long
//!   guesses that pass the given examples with a harmless extra loop or a pair of turns that
//!   cancel out overfit: their shorter equivalents on the given inputs generalize better.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::mutate::{MutatorConfig, Operator};
use crate::data::task::Task;
use crate::lang::Program;
use crate::vm::{self, Vm};

/// The largest radius the rewrite stage accepts (radius 3 of a ten-statement program is
/// already about 10⁸ programs).
pub const MAX_RADIUS: usize = 3;
/// The most programs one task's rewrite stage may execute. Its set of executed programs takes
/// about 40 bytes a program until the budget is spent, and an evaluation runs up to four network
/// batches of searches at a time (64 with the default batch of 16): at most about 5 GB.
pub const MAX_BUDGET: usize = 2_000_000;
/// The most statements (AST nodes, about 60 bytes each) of the programs of one distance kept to
/// expand at the next: a bound in bytes, not in programs, since a long program has both more
/// rewrites and larger ones.
pub const MAX_LEVEL_NODES: usize = 8_000_000;
/// The most passing programs one expansion keeps for ranking (the first found, nearest first).
pub const MAX_PASSING: usize = 256;

/// How the programs passing the given examples are ordered; the first is the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ranking {
    /// The synthesizer's log-likelihood of the program given the examples, highest first.
    Likelihood,
    /// Fewest rewrites from the expanded candidate first, then enumeration order.
    Nearest,
    /// Fewest tokens first, then fewest rewrites, then enumeration order.
    Shortest,
}

impl Ranking {
    pub const ALL: &'static [Ranking] = &[Ranking::Likelihood, Ranking::Nearest, Ranking::Shortest];

    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Ranking::Likelihood => "likelihood",
            Ranking::Nearest => "nearest",
            Ranking::Shortest => "shortest",
        }
    }
}

/// Settings of the rewrite stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteConfig {
    /// Rewrites from the expanded candidate (1..=[`MAX_RADIUS`]).
    pub radius: usize,
    /// Most programs one expansion executes.
    pub limit: usize,
    /// Most programs a task's expansions execute together.
    pub budget: usize,
    pub ranking: Ranking,
    /// Shrinking rewrites [`simplify`] looks through from the answer (0: no simplification,
    /// as in the original; at most [`MAX_RADIUS`]). It executes at most `limit` programs.
    pub simplify: usize,
}

impl Default for RewriteConfig {
    fn default() -> Self {
        RewriteConfig {
            radius: 2,
            limit: 200_000,
            budget: MAX_BUDGET,
            ranking: Ranking::Likelihood,
            simplify: 2,
        }
    }
}

/// A program found to pass the given examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Passing {
    pub program: Program,
    /// Rewrites from the expanded candidate.
    pub distance: usize,
}

/// What one expansion found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expansion {
    /// The programs that pass every given example, in enumeration order (nearest first), at
    /// most [`MAX_PASSING`].
    pub passing: Vec<Passing>,
    /// Programs executed.
    pub executed: usize,
}

/// A program's identity in the set of programs a task has executed: two independent 64-bit
/// hashes of its tree.
pub fn fingerprint(program: &Program) -> u128 {
    let mut first = DefaultHasher::new();
    program.hash(&mut first);
    let mut second = DefaultHasher::new();
    0x5eed_u32.hash(&mut second);
    program.hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// Sites (a program of the distance being enumerated, an operator, one of its sites) whose
/// rewrites are generated together, in parallel, then executed. A site has a few dozen rewrites
/// at most, so the programs held at a time stay bounded whatever the size of the programs (a
/// long program has thousands of sites: its rewrites are never all held at once).
const SITES_PER_ROUND: usize = 256;

/// Which rewrites an enumeration makes and where it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Every operator; stop after the first distance at which a program passes.
    Nearest,
    /// The shrinking operators; every distance up to the radius.
    Shrinking,
}

/// Executes the programs within `radius` rewrites of `start` on the given examples of `task`
/// that are not in `executed` (which gains them), at most `limit` of them, and returns those
/// that pass. Stops after the first distance at which one passes.
pub fn expand(
    start: &Program,
    task: &Task,
    radius: usize,
    limit: usize,
    executed: &mut HashSet<u128>,
) -> Expansion {
    enumerate(start, task, radius, limit, executed, Scope::Nearest)
}

/// What [`simplify`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Simplification {
    /// Each shorter passing program taken, in turn, with its shrinking rewrites from the one
    /// before (the first from the answer simplified); empty if none passes.
    pub steps: Vec<Passing>,
    /// Programs executed.
    pub executed: usize,
}

/// Simplifies `answer`, a program that passes the given examples of `task`: takes the
/// shortest program within `radius` shrinking rewrites of it that passes them too (the first
/// in enumeration order among the shortest), then does the same from that one, while one is
/// found and fewer than `limit` programs have been executed.
pub fn simplify(answer: &Program, task: &Task, radius: usize, limit: usize) -> Simplification {
    let mut found = Simplification::default();
    let mut current = answer.clone();
    while found.executed < limit {
        // A set of its own for each round: a program executed in an earlier round is not
        // expanded again from there, and may lead to a shorter one from the new start.
        let expansion = enumerate(
            &current,
            task,
            radius,
            limit - found.executed,
            &mut HashSet::new(),
            Scope::Shrinking,
        );
        found.executed += expansion.executed;
        // `min_by_key` keeps the first of equals: enumeration order.
        let Some(shortest) = expansion
            .passing
            .into_iter()
            .min_by_key(|p| p.program.token_len())
        else {
            break;
        };
        current = shortest.program.clone();
        found.steps.push(shortest);
    }
    found
}

/// The enumeration behind [`expand`] and [`simplify`]: the programs within `radius` rewrites
/// of `start` in `scope`, by distance, those in `executed` skipped.
fn enumerate(
    start: &Program,
    task: &Task,
    radius: usize,
    limit: usize,
    executed: &mut HashSet<u128>,
    scope: Scope,
) -> Expansion {
    let mutator = MutatorConfig::default();
    let operators: Vec<Operator> = Operator::all()
        .filter(|op| scope == Scope::Nearest || op.shrinks())
        .collect();
    let mut found = Expansion::default();
    executed.insert(fingerprint(start));
    let mut level = vec![start.clone()];
    for distance in 1..=radius.min(MAX_RADIUS) {
        let keep_level = distance < radius;
        let mut next = Vec::new();
        let mut next_nodes = 0;
        // Every site of every program of this distance, in enumeration order.
        let operators = &operators;
        let mut sites = level.iter().flat_map(|program| {
            operators.iter().flat_map(move |&op| {
                (0..op.sites(program, &mutator)).map(move |site| (program, op, site))
            })
        });
        while found.executed < limit {
            let round: Vec<(&Program, Operator, u64)> =
                sites.by_ref().take(SITES_PER_ROUND).collect();
            if round.is_empty() {
                break;
            }
            let rewrites: Vec<Vec<(Program, u128)>> = round
                .par_iter()
                .map(|&(program, op, site)| {
                    op.rewrites(program, site, &mutator)
                        .into_iter()
                        .map(|q| {
                            let f = fingerprint(&q);
                            (q, f)
                        })
                        .collect()
                })
                .collect();
            let mut fresh = Vec::new();
            for (program, print) in rewrites.into_iter().flatten() {
                if found.executed + fresh.len() >= limit {
                    break;
                }
                if executed.insert(print) {
                    fresh.push(program);
                }
            }
            let passes: Vec<bool> = fresh
                .par_iter()
                .map_init(Vm::new, |machine, program| {
                    task.solves_given(&vm::compile(program), machine)
                })
                .collect();
            found.executed += fresh.len();
            for (program, passes) in fresh.into_iter().zip(passes) {
                if passes && found.passing.len() < MAX_PASSING {
                    found.passing.push(Passing {
                        program: program.clone(),
                        distance,
                    });
                }
                if keep_level && next_nodes < MAX_LEVEL_NODES {
                    next_nodes += program.node_count();
                    next.push(program);
                }
            }
        }
        let stop_here = scope == Scope::Nearest && !found.passing.is_empty();
        if stop_here || found.executed >= limit {
            break;
        }
        drop(sites);
        level = next;
    }
    found
}

/// The order of `passing` under `ranking` (positions into it, best first), given each
/// program's score for [`Ranking::Likelihood`] (`scores` is ignored otherwise). Ties keep
/// enumeration order, so the order is deterministic.
pub fn rank(passing: &[Passing], ranking: Ranking, scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..passing.len()).collect();
    match ranking {
        Ranking::Likelihood => {
            assert_eq!(scores.len(), passing.len(), "one score per program");
            return by_score(scores);
        }
        Ranking::Nearest => order.sort_by_key(|&i| passing[i].distance),
        Ranking::Shortest => {
            order.sort_by_key(|&i| (passing[i].program.token_len(), passing[i].distance))
        }
    }
    order
}

/// Positions of `scores`, highest first; equal scores keep their order.
pub fn by_score(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate::{sample_world, WorldConfig};
    use crate::data::mutate::neighbourhood;
    use crate::data::task::Example;
    use crate::lang::parse;

    /// A task of six random worlds on which `gold` runs without a crash.
    fn task_of(gold: &str) -> Task {
        let program = parse(gold).unwrap();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        let chunk = vm::compile(&program);
        let mut machine = Vm::new();
        let mut examples = Vec::new();
        while examples.len() < 6 {
            let input = sample_world(&WorldConfig::default(), &mut rng);
            let mut output = input.clone();
            let run = machine.run(&chunk, &mut output, &Default::default());
            if run.outcome().is_ok() {
                examples.push(Example { input, output });
            }
        }
        Task {
            guid: "test".to_string(),
            program,
            examples,
        }
    }

    #[test]
    fn expansion_executes_each_neighbour_once_and_finds_the_repair() {
        let task = task_of("DEF run m( move putMarker turnLeft m)");
        let start = parse("DEF run m( move pickMarker turnLeft m)").unwrap();
        let mut executed = HashSet::new();
        let found = expand(&start, &task, 2, usize::MAX, &mut executed);
        let near = neighbourhood(&start, 1, &MutatorConfig::default(), usize::MAX);
        // Found at distance 1: the level is finished, the next is not started.
        assert_eq!(found.executed, near.programs.len());
        assert!(found.passing.iter().all(|p| p.distance == 1));
        assert!(found.passing.iter().any(|p| p.program == task.program));
        for p in &found.passing {
            assert!(Task::passes(&p.program, task.given()).iter().all(|&ok| ok));
        }
        // Run again: every program has been executed already.
        let again = expand(&start, &task, 2, usize::MAX, &mut executed);
        assert_eq!(again.executed, 0);
        assert!(again.passing.is_empty());
    }

    #[test]
    fn the_limit_bounds_the_programs_executed() {
        let task = task_of("DEF run m( REPEAT R=4 r( move putMarker r) turnLeft m)");
        let start = parse("DEF run m( turnRight turnRight turnRight m)").unwrap();
        let found = expand(&start, &task, 2, 100, &mut HashSet::new());
        assert_eq!(found.executed, 100);
    }

    #[test]
    fn a_long_candidate_executes_its_nearest_rewrites_in_enumeration_order() {
        // Thirty statements: thousands of sites and tens of thousands of rewrites, expanded a
        // round of sites at a time. Nothing within two rewrites passes, so the expansion runs
        // into its limit inside distance 2.
        let task = task_of("DEF run m( REPEAT R=4 r( move putMarker r) turnLeft m)");
        let body = "turnRight pickMarker move ".repeat(10);
        let start = parse(&format!("DEF run m( {body}m)")).unwrap();
        let config = MutatorConfig::default();
        let limit = neighbourhood(&start, 1, &config, usize::MAX).programs.len() + 3_000;
        let mut executed = HashSet::new();
        let found = expand(&start, &task, 2, limit, &mut executed);
        assert_eq!(found.executed, limit);
        assert!(found.passing.is_empty());
        let near = neighbourhood(&start, 2, &config, limit);
        assert!(near.programs.iter().any(|(_, distance)| *distance == 2));
        let expected: HashSet<u128> = near
            .programs
            .iter()
            .map(|(p, _)| fingerprint(p))
            .chain([fingerprint(&start)])
            .collect();
        assert_eq!(executed, expected);
    }

    #[test]
    fn simplification_takes_the_shortest_passing_program_again_and_again() {
        let task = task_of("DEF run m( move putMarker m)");
        // Five shrinking rewrites from the task's program: two pairs of turns that cancel out
        // and a condition the given inputs always meet.
        let answer = parse(
            "DEF run m( turnLeft turnRight IF c( frontIsClear c) i( move i) turnRight turnLeft \
             putMarker m)",
        )
        .unwrap();
        assert!(task.solves_given(&vm::compile(&answer), &mut Vm::new()));
        let found = simplify(&answer, &task, 2, usize::MAX);
        let last = found.steps.last().expect("a shorter program passes");
        assert_eq!(last.program, task.program);
        let mut previous = answer.token_len();
        for step in &found.steps {
            assert!(step.program.token_len() < previous);
            assert!((1..=2).contains(&step.distance));
            assert!(task.solves_given(&vm::compile(&step.program), &mut Vm::new()));
            previous = step.program.token_len();
        }
        // Nothing passes within two shrinking rewrites of the task's program.
        let none = simplify(&task.program, &task, 2, usize::MAX);
        assert!(none.steps.is_empty());
        assert!(none.executed > 0);
        // Radius 0 simplifies nothing; the limit bounds the programs executed.
        assert_eq!(
            simplify(&answer, &task, 0, usize::MAX),
            Simplification::default()
        );
        assert_eq!(simplify(&answer, &task, 2, 3).executed, 3);
    }

    #[test]
    fn rankings_order_deterministically() {
        let passing: Vec<Passing> = [
            ("DEF run m( move move m)", 2),
            ("DEF run m( move m)", 1),
            ("DEF run m( turnLeft m)", 1),
        ]
        .iter()
        .map(|(text, distance)| Passing {
            program: parse(text).unwrap(),
            distance: *distance,
        })
        .collect();
        assert_eq!(rank(&passing, Ranking::Nearest, &[]), vec![1, 2, 0]);
        assert_eq!(rank(&passing, Ranking::Shortest, &[]), vec![1, 2, 0]);
        assert_eq!(
            rank(&passing, Ranking::Likelihood, &[-1.0, -3.0, -1.0]),
            vec![0, 2, 1]
        );
    }
}
