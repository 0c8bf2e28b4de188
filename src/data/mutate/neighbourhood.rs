//! The programs within `r` rewrites of a program, enumerated exhaustively rather than sampled:
//! every site of every operator with every choice it could draw there ([`Operator::rewrites`]),
//! then the same from each of those, up to the radius.
//!
//! Breadth first, so a program is listed at its distance (the fewest rewrites that reach it),
//! once, and never the starting program itself. The order is deterministic: by distance, then by
//! the order of [`Operator::all`], sites and choice sequences. The size grows quickly (a
//! ten-statement program has a few hundred neighbours at radius 1 and about 10⁵ at radius 2), so
//! the enumeration stops at a limit and says whether it did.

use std::collections::HashSet;

use super::{MutatorConfig, Operator};
use crate::lang::Program;

/// The most programs a neighbourhood lists (each held twice: in the list and the seen set).
pub const MAX_NEIGHBOURS: usize = 2_000_000;

/// The programs near a program.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbourhood {
    /// Each program with its distance (1..=radius), by distance.
    pub programs: Vec<(Program, usize)>,
    /// Every program within the radius is listed (the limit was not reached).
    pub complete: bool,
}

/// Every outcome of one rewrite of `program`, in the order of [`Operator::all`], sites and
/// choice sequences: repeats (and the program itself) included.
pub fn single_rewrites<'a>(
    program: &'a Program,
    config: &'a MutatorConfig,
) -> impl Iterator<Item = Program> + 'a {
    Operator::all().flat_map(move |op| {
        (0..op.sites(program, config)).flat_map(move |site| op.rewrites(program, site, config))
    })
}

/// The programs within `radius` rewrites of `program`, at most `limit` of them (and never more
/// than [`MAX_NEIGHBOURS`]).
pub fn neighbourhood(
    program: &Program,
    radius: usize,
    config: &MutatorConfig,
    limit: usize,
) -> Neighbourhood {
    let limit = limit.min(MAX_NEIGHBOURS);
    let mut seen: HashSet<Program> = HashSet::from([program.clone()]);
    let mut programs: Vec<(Program, usize)> = Vec::new();
    // The programs of the last distance reached: positions in `programs` (the start: none).
    let mut frontier = 0..0;
    for distance in 1..=radius {
        let starts: Vec<&Program> = if distance == 1 {
            vec![program]
        } else {
            programs[frontier.clone()].iter().map(|(p, _)| p).collect()
        };
        let mut found = Vec::new();
        let mut complete = true;
        'starts: for start in starts {
            for mutant in single_rewrites(start, config) {
                if seen.contains(&mutant) {
                    continue;
                }
                if programs.len() + found.len() >= limit {
                    complete = false;
                    break 'starts;
                }
                seen.insert(mutant.clone());
                found.push(mutant);
            }
        }
        let first = programs.len();
        programs.extend(found.into_iter().map(|p| (p, distance)));
        if !complete {
            return Neighbourhood { programs, complete };
        }
        frontier = first..programs.len();
    }
    Neighbourhood {
        programs,
        complete: true,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::mutate::mutate_once;
    use crate::lang::{parse, parse_tokens};

    const PROGRAMS: [&str; 4] = [
        "DEF run m( move m)",
        "DEF run m( WHILE c( frontIsClear c) w( putMarker move w) turnLeft m)",
        "DEF run m( IFELSE c( not c( leftIsClear c) c) i( turnRight i) ELSE e( REPEAT R=3 r( \
         pickMarker r) e) m)",
        "DEF run m( IF c( markersPresent c) i( pickMarker i) move move turnLeft m)",
    ];

    /// Every sampled single mutation is at distance 1; no program is listed twice or is the
    /// start; every listed program parses back to itself.
    #[test]
    fn radius_one_holds_every_single_mutation() {
        for compat_original in [false, true] {
            let config = MutatorConfig { compat_original };
            for text in PROGRAMS {
                let program = parse(text).unwrap();
                let near = neighbourhood(&program, 1, &config, usize::MAX);
                assert!(near.complete);
                let listed: HashSet<&Program> = near.programs.iter().map(|(p, _)| p).collect();
                assert_eq!(listed.len(), near.programs.len(), "{text}: a repeat");
                assert!(!listed.contains(&program));
                for (p, distance) in &near.programs {
                    assert_eq!(*distance, 1);
                    assert_eq!(
                        parse_tokens(&p.tokens(), &Default::default()).as_ref(),
                        Ok(p)
                    );
                }
                let mut rng = ChaCha8Rng::seed_from_u64(9);
                for _ in 0..2_000 {
                    let (op, mutant) = mutate_once(&program, &mut rng, &config).unwrap();
                    if mutant != program {
                        assert!(listed.contains(&mutant), "{text}: {op} made {mutant}");
                    }
                }
            }
        }
    }

    /// The outcomes of an operator at a site are the product of its choices: REPLACE_ACTION has
    /// four other actions, WRAP_BLOCK 8 + 8 + 9 blocks around a span (`IF`, `WHILE` with each
    /// condition, `REPEAT` with each count), ADD_ACTION five actions.
    #[test]
    fn outcomes_count_every_choice() {
        let program = parse("DEF run m( move turnLeft m)").unwrap();
        let config = MutatorConfig::default();
        let count = |name: &str, site: u64| {
            Operator::named(name)
                .unwrap()
                .rewrites(&program, site, &config)
                .len()
        };
        assert_eq!(count("REPLACE_ACTION", 1), 4);
        assert_eq!(count("ADD_ACTION", 0), 5);
        assert_eq!(count("WRAP_BLOCK", 0), 8 + 8 + 9);
        assert_eq!(count("REMOVE_ACTION", 0), 1);
    }

    /// Radius 2 holds radius 1 and the mutants of mutants, each at its fewest rewrites; the limit
    /// stops the enumeration and says so.
    #[test]
    fn radius_two_and_the_limit() {
        let program = parse(PROGRAMS[1]).unwrap();
        let config = MutatorConfig::default();
        let one = neighbourhood(&program, 1, &config, usize::MAX);
        let two = neighbourhood(&program, 2, &config, usize::MAX);
        assert!(two.complete);
        assert_eq!(&two.programs[..one.programs.len()], &one.programs[..]);
        assert!(two.programs[one.programs.len()..]
            .iter()
            .all(|(_, d)| *d == 2));
        let listed: HashSet<&Program> = two.programs.iter().map(|(p, _)| p).collect();
        assert_eq!(listed.len(), two.programs.len());
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..300 {
            let (_, a) = mutate_once(&program, &mut rng, &config).unwrap();
            let (_, b) = mutate_once(&a, &mut rng, &config).unwrap();
            if b != program {
                assert!(listed.contains(&b), "{b}");
            }
        }
        let cut = neighbourhood(&program, 2, &config, 100);
        assert!(!cut.complete);
        assert_eq!(cut.programs.len(), 100);
        assert_eq!(&cut.programs[..], &two.programs[..100]);
    }
}
