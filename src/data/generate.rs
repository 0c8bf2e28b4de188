//! The random task generator: programs sampled from the grammar, random worlds, and the
//! rejections that make a task useful.
//!
//! The generator of the standard dataset (Bunel et al.'s) is not public. The default settings
//! here were fitted to what is known of it (`docs/generator.md` compares the two): the 1,000
//! shortest programs of the real validation split for the mix of statements, conditions, actions
//! and repeat counts, and the dataset's worlds for sizes, walls and markers.
//!
//! **Programs.** A body holds `1 + Geometric` statements (no empty bodies, as in the dataset);
//! each statement is a block with a probability that falls with depth (no block below
//! [`ProgramConfig::max_depth`]), its kind drawn from [`ProgramConfig::block_weights`]; conditions
//! are uniform over the five atoms, the three `*IsClear` negated with probability
//! [`ProgramConfig::not_prob`]; programs outside the token range are redrawn.
//!
//! **Worlds.** Height and width uniform in `min_size..=max_size`; a wall ratio and a marker ratio
//! drawn per world (uniform up to their maxima); each interior cell a wall, or markers
//! (`1 + Geometric` of them, at most 9), or empty; the hero on a free cell, facing anywhere.
//!
//! **Rejections.** An input on which the program crashes or times out is redrawn (up to
//! [`GenConfig::input_tries`] times, then the program is dropped); a task whose outputs all equal
//! their inputs is dropped; a program already accepted is dropped, so no program appears twice or
//! in two splits.
//!
//! **Determinism.** Candidate `i` is drawn from its own ChaCha8 stream (`seed`, stream `i`), and
//! candidates are accepted in index order, so the output depends on the seed and the settings only,
//! never on the thread count. Sharding (`shard i of n`) keeps the programs whose hash is `i mod n`:
//! shards made on different machines never share a program and together form one dataset.

use std::collections::HashSet;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::task::{guid_from, Example, Task, EXAMPLES_PER_TASK};
use crate::lang::{Action, Atom, Cond, Program, RepeatCount, Stmt, Token};
use crate::vm::{self, RunConfig, Vm};
use crate::world::{Dir, Pos, World, MAX_SIZE};

/// Knobs of the program sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramConfig {
    /// Deepest block nesting, the run body counting 1.
    pub max_depth: usize,
    /// Shortest and longest programs, in tokens (`DEF run m( … m)` included).
    pub min_tokens: usize,
    pub max_tokens: usize,
    /// Probability that the run body has another statement after each one.
    pub run_continue: f64,
    /// Probability that a block body has another statement after each one.
    pub body_continue: f64,
    /// Probability that a statement of the run body is a block; each level deeper multiplies it
    /// by `block_decay`.
    pub block_prob: f64,
    pub block_decay: f64,
    /// Relative weights of `IF`, `IFELSE`, `WHILE`, `REPEAT`.
    pub block_weights: [f64; 4],
    /// Relative weights of `move`, `turnLeft`, `turnRight`, `pickMarker`, `putMarker`.
    pub action_weights: [f64; 5],
    /// Probability that a `*IsClear` condition is negated.
    pub not_prob: f64,
    /// Relative weights of the counts 2 to 10.
    pub repeat_weights: [f64; 9],
}

impl Default for ProgramConfig {
    fn default() -> Self {
        ProgramConfig {
            max_depth: 4,
            min_tokens: 6,
            max_tokens: 60,
            run_continue: 0.74,
            body_continue: 0.45,
            block_prob: 0.20,
            block_decay: 0.6,
            block_weights: [0.12, 0.08, 0.32, 0.48],
            action_weights: [0.42, 0.07, 0.06, 0.22, 0.15],
            not_prob: 0.1,
            repeat_weights: [36.0, 57.0, 66.0, 83.0, 40.0, 40.0, 18.0, 14.0, 9.0],
        }
    }
}

/// Knobs of the world sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    pub min_size: u8,
    pub max_size: u8,
    /// Each world's wall ratio is uniform in `0..=max_wall_ratio`.
    pub max_wall_ratio: f64,
    /// Each world's marker ratio (of free cells) is uniform in `0..=max_marker_ratio`.
    pub max_marker_ratio: f64,
    /// Probability that a marked cell holds one more marker (up to 9).
    pub marker_continue: f64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            min_size: 2,
            max_size: MAX_SIZE,
            max_wall_ratio: 0.25,
            max_marker_ratio: 0.55,
            marker_continue: 0.55,
        }
    }
}

/// All generator settings. Fields missing from a settings file keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    pub program: ProgramConfig,
    pub world: WorldConfig,
    /// Tries to find an input the program runs on without crashing or timing out.
    pub input_tries: usize,
    /// Step limit of the runs.
    pub max_steps: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            program: ProgramConfig::default(),
            world: WorldConfig::default(),
            input_tries: 10,
            max_steps: vm::DEFAULT_MAX_STEPS,
        }
    }
}

/// Bounds of the settings that size the work of one candidate: at most `6 × MAX_INPUT_TRIES ×
/// MAX_GEN_STEPS` VM steps, and draws of at most about [`MAX_PROGRAM_TOKENS`] statements.
pub const MAX_INPUT_TRIES: usize = 1_000;
/// Longest programs the generator makes, in tokens.
pub const MAX_PROGRAM_TOKENS: usize = 1_000;
/// Deepest nesting the generator makes.
pub const MAX_PROGRAM_DEPTH: usize = 32;
/// Step limit of the generator's runs at most.
pub const MAX_GEN_STEPS: u32 = 100_000;
/// Draws of a program before a candidate gives up on the token range.
const PROGRAM_DRAWS: usize = 1_000;

impl GenConfig {
    pub fn new() -> GenConfig {
        GenConfig::default()
    }

    /// Checks every setting; the error names the first field out of range. Settings that pass
    /// also make programs in the token range often enough for generation to progress (checked
    /// by drawing a sample).
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.program;
        let w = &self.world;
        let probability = |name: &str, value: f64, below_one: bool| -> Result<(), String> {
            let ok =
                value.is_finite() && value >= 0.0 && (value < 1.0 || !below_one && value == 1.0);
            if ok {
                Ok(())
            } else if below_one {
                Err(format!(
                    "{name} is {value}: it must be at least 0 and below 1"
                ))
            } else {
                Err(format!("{name} is {value}: it must be between 0 and 1"))
            }
        };
        let weights = |name: &str, values: &[f64]| -> Result<(), String> {
            if let Some(bad) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(format!(
                    "{name} holds {bad}: weights must be finite and at least 0"
                ));
            }
            if values.iter().sum::<f64>() <= 0.0 {
                return Err(format!("{name}: at least one weight must be positive"));
            }
            Ok(())
        };
        if !(1..=MAX_PROGRAM_DEPTH).contains(&p.max_depth) {
            return Err(format!(
                "program.max_depth is {}: it must be between 1 and {MAX_PROGRAM_DEPTH}",
                p.max_depth
            ));
        }
        // `DEF run m( move m)` is the shortest program without an empty body.
        if p.min_tokens > p.max_tokens || p.max_tokens < 5 || p.max_tokens > MAX_PROGRAM_TOKENS {
            return Err(format!(
                "program.min_tokens is {} and program.max_tokens {}: need min_tokens <= max_tokens, \
                 and max_tokens between 5 and {MAX_PROGRAM_TOKENS}",
                p.min_tokens, p.max_tokens
            ));
        }
        probability("program.run_continue", p.run_continue, false)?;
        probability("program.body_continue", p.body_continue, false)?;
        probability("program.block_prob", p.block_prob, false)?;
        probability("program.block_decay", p.block_decay, false)?;
        probability("program.not_prob", p.not_prob, false)?;
        weights("program.block_weights", &p.block_weights)?;
        weights("program.action_weights", &p.action_weights)?;
        weights("program.repeat_weights", &p.repeat_weights)?;
        if w.min_size < 1 || w.min_size > w.max_size || w.max_size > MAX_SIZE {
            return Err(format!(
                "world.min_size is {} and world.max_size {}: need 1 <= min_size <= max_size <= {MAX_SIZE}",
                w.min_size, w.max_size
            ));
        }
        probability("world.max_wall_ratio", w.max_wall_ratio, false)?;
        probability("world.max_marker_ratio", w.max_marker_ratio, false)?;
        probability("world.marker_continue", w.marker_continue, false)?;
        if !(1..=MAX_INPUT_TRIES).contains(&self.input_tries) {
            return Err(format!(
                "input_tries is {}: it must be between 1 and {MAX_INPUT_TRIES}",
                self.input_tries
            ));
        }
        if !(1..=MAX_GEN_STEPS).contains(&self.max_steps) {
            return Err(format!(
                "max_steps is {}: it must be between 1 and {MAX_GEN_STEPS}",
                self.max_steps
            ));
        }
        // The token range must be reachable: a fixed sample of draws must hit it.
        let mut rng = ChaCha8Rng::seed_from_u64(0x5a3b1e);
        if (0..20).all(|_| sample_program(p, &mut rng).is_none()) {
            return Err(format!(
                "the program settings almost never make programs of {} to {} tokens",
                p.min_tokens, p.max_tokens
            ));
        }
        Ok(())
    }
}

fn weighted<R: Rng + ?Sized>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut pick = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        pick -= w;
        if pick < 0.0 {
            return i;
        }
    }
    weights.len() - 1
}

/// Samples a program, redrawing it until it fits the token range; `None` after a bounded number
/// of draws (settings that rarely hit the range are refused by [`GenConfig::validate`]).
pub fn sample_program<R: Rng + ?Sized>(config: &ProgramConfig, rng: &mut R) -> Option<Program> {
    (0..PROGRAM_DRAWS).find_map(|_| {
        let mut statements = 0;
        let program = Program::new(sample_body(
            config,
            rng,
            1,
            config.run_continue,
            &mut statements,
        ));
        let len = program.token_len();
        (config.min_tokens..=config.max_tokens)
            .contains(&len)
            .then_some(program)
    })
}

/// Statements a draw makes at most: past this many it only closes its open blocks (the program,
/// longer than [`MAX_PROGRAM_TOKENS`], is then redrawn), so that no setting makes a draw's work
/// grow beyond it. Draws that stay below it use the random stream exactly as without the bound.
const DRAW_STATEMENTS: usize = MAX_PROGRAM_TOKENS;

fn sample_body<R: Rng + ?Sized>(
    config: &ProgramConfig,
    rng: &mut R,
    depth: usize,
    continue_prob: f64,
    statements: &mut usize,
) -> Vec<Stmt> {
    let mut body = vec![sample_stmt(config, rng, depth, statements)];
    // Bounded so that a careless setting cannot loop forever.
    while body.len() < 64
        && *statements <= DRAW_STATEMENTS
        && rng.random_bool(continue_prob.clamp(0.0, 0.99))
    {
        body.push(sample_stmt(config, rng, depth, statements));
    }
    body
}

fn sample_cond<R: Rng + ?Sized>(config: &ProgramConfig, rng: &mut R) -> Cond {
    let atom = Atom::ALL[rng.random_range(0..Atom::ALL.len())];
    let clear = matches!(
        atom,
        Atom::FrontIsClear | Atom::LeftIsClear | Atom::RightIsClear
    );
    Cond {
        atom,
        negated: clear && rng.random_bool(config.not_prob.clamp(0.0, 1.0)),
    }
}

fn sample_stmt<R: Rng + ?Sized>(
    config: &ProgramConfig,
    rng: &mut R,
    depth: usize,
    statements: &mut usize,
) -> Stmt {
    *statements += 1;
    let block_prob = config.block_prob * config.block_decay.powi(depth as i32 - 1);
    if depth >= config.max_depth
        || *statements > DRAW_STATEMENTS
        || !rng.random_bool(block_prob.clamp(0.0, 1.0))
    {
        return Stmt::Action(Action::ALL[weighted(rng, &config.action_weights)]);
    }
    let inner = depth + 1;
    match weighted(rng, &config.block_weights) {
        0 => Stmt::If {
            cond: sample_cond(config, rng),
            body: sample_body(config, rng, inner, config.body_continue, statements),
        },
        1 => Stmt::IfElse {
            cond: sample_cond(config, rng),
            then_body: sample_body(config, rng, inner, config.body_continue, statements),
            else_body: sample_body(config, rng, inner, config.body_continue, statements),
        },
        2 => Stmt::While {
            cond: sample_cond(config, rng),
            body: sample_body(config, rng, inner, config.body_continue, statements),
        },
        _ => {
            let counts: Vec<RepeatCount> = RepeatCount::all().collect();
            Stmt::Repeat {
                count: counts[weighted(rng, &config.repeat_weights)],
                body: sample_body(config, rng, inner, config.body_continue, statements),
            }
        }
    }
}

/// Samples a world.
pub fn sample_world<R: Rng + ?Sized>(config: &WorldConfig, rng: &mut R) -> World {
    let (lo, hi) = (
        config.min_size.clamp(1, MAX_SIZE),
        config.max_size.clamp(1, MAX_SIZE),
    );
    let (lo, hi) = (lo.min(hi), hi.max(lo));
    let rows = rng.random_range(lo..=hi);
    let cols = rng.random_range(lo..=hi);
    let wall_ratio = rng.random::<f64>() * config.max_wall_ratio;
    let marker_ratio = rng.random::<f64>() * config.max_marker_ratio;
    let cells = rows as usize * cols as usize;
    let hero_cell = rng.random_range(0..cells);
    let pos_of = |i: usize| Pos::new((i / cols as usize) as u8 + 1, (i % cols as usize) as u8 + 1);
    let dir = Dir::from_index(rng.random_range(0..4));
    let mut world = match World::new(rows, cols, pos_of(hero_cell), dir) {
        Ok(world) => world,
        Err(_) => unreachable!("sizes are clamped to the valid range"),
    };
    for i in 0..cells {
        let pos = pos_of(i);
        if i != hero_cell && rng.random_bool(wall_ratio) {
            let _ = world.set_wall(pos, true);
        } else if rng.random_bool(marker_ratio) {
            let mut count = 1;
            while count < 9 && rng.random_bool(config.marker_continue.clamp(0.0, 1.0)) {
                count += 1;
            }
            let _ = world.set_markers(pos, count);
        }
    }
    world
}

/// SplitMix64's finaliser: spreads the bits of a counter over the whole word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// 64-bit FNV-1a of a program's token ids: a stable hash for sharding and guids.
pub fn program_hash(program: &Program) -> u64 {
    program
        .tokens()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, t: &Token| {
            (h ^ t.id() as u64).wrapping_mul(0x100000001b3)
        })
}

/// Candidate `index` of the stream of `seed`: a task, or `None` if it is rejected.
pub fn candidate(config: &GenConfig, seed: u64, index: u64) -> Option<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let program = sample_program(&config.program, &mut rng)?;
    let chunk = vm::compile(&program);
    let mut machine = Vm::new();
    let run_config = RunConfig::with_max_steps(config.max_steps);
    let mut examples = Vec::with_capacity(EXAMPLES_PER_TASK);
    for _ in 0..EXAMPLES_PER_TASK {
        let example = (0..config.input_tries.max(1)).find_map(|_| {
            let input = sample_world(&config.world, &mut rng);
            let mut output = input.clone();
            let run = machine.run(&chunk, &mut output, &run_config);
            run.outcome().is_ok().then_some(Example { input, output })
        })?;
        examples.push(example);
    }
    if examples.iter().all(|e| e.input == e.output) {
        return None;
    }
    let guid = guid_from(mix(mix(seed) ^ index));
    Some(Task {
        guid,
        program,
        examples,
    })
}

/// Which part of a sharded dataset to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not of the form i/n"))?;
        let (index, count): (u64, u64) = (
            i.trim()
                .parse()
                .map_err(|_| format!("`{i}` is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("`{n}` is not a number"))?,
        );
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }

    /// Whether a program belongs to this shard.
    pub fn owns(&self, program: &Program) -> bool {
        program_hash(program) % self.count == self.index
    }
}

/// Candidates tried before generation starts ([`accepts_any`]), one of which must be accepted.
pub const PROBE_CANDIDATES: u64 = 4096;

/// Candidates in a row without an accepted task, per shard, after which a generation run should
/// stop: its settings (or shard) reject almost every program, or no new program is left to find.
pub const STALL_CANDIDATES: u64 = 1 << 20;

/// Whether any of the first [`PROBE_CANDIDATES`] candidates is accepted (on the current rayon
/// pool): settings that reject every one would make a run go on for ever.
pub fn accepts_any(config: &GenConfig, seed: u64) -> bool {
    (0..PROBE_CANDIDATES)
        .into_par_iter()
        .any(|i| candidate(config, seed, i).is_some())
}

/// Accepts candidates in index order: the sequential half of generation.
pub struct Generator {
    config: GenConfig,
    seed: u64,
    shard: Shard,
    /// Index of the next candidate to draw.
    pub next_index: u64,
    seen: HashSet<Program>,
}

/// Candidates drawn in parallel per round.
const ROUND: u64 = 8192;

impl Generator {
    pub fn new(config: GenConfig, seed: u64, shard: Shard) -> Generator {
        Generator {
            config,
            seed,
            shard,
            next_index: 0,
            seen: HashSet::new(),
        }
    }

    /// Marks a program as already accepted (when resuming from a partial output).
    pub fn mark_seen(&mut self, program: Program) {
        self.seen.insert(program);
    }

    /// Draws the next round of candidates on all cores and returns the accepted tasks, in order,
    /// with the candidate index following each (so a caller can checkpoint after any task).
    pub fn next_round(&mut self, limit: usize) -> Vec<(Task, u64)> {
        let start = self.next_index;
        let end = start + ROUND.min(limit as u64 * 4 + 64);
        let candidates: Vec<Option<Task>> = (start..end)
            .into_par_iter()
            .map(|i| {
                candidate(&self.config, self.seed, i).filter(|task| self.shard.owns(&task.program))
            })
            .collect();
        let mut accepted = Vec::new();
        for (offset, task) in candidates.into_iter().enumerate() {
            let index = start + offset as u64;
            if accepted.len() == limit {
                self.next_index = index;
                return accepted;
            }
            if let Some(task) = task {
                if self.seen.insert(task.program.clone()) {
                    accepted.push((task, index + 1));
                }
            }
        }
        self.next_index = end;
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_valid_tasks() {
        let config = GenConfig::new();
        let mut accepted = 0;
        for i in 0..200 {
            if let Some(task) = candidate(&config, 1, i) {
                accepted += 1;
                assert_eq!(task.examples.len(), EXAMPLES_PER_TASK);
                task.replay().unwrap();
                assert!(task.examples.iter().any(|e| e.input != e.output));
                let len = task.program.token_len();
                assert!((6..=60).contains(&len));
                assert!(task.program.depth() <= 4);
                assert!(crate::lang::parse_with(
                    &task.program.to_string(),
                    &crate::lang::ParseOptions::strict()
                )
                .is_ok());
            }
        }
        assert!(accepted > 50, "{accepted} of 200 accepted");
    }

    #[test]
    fn settings_files_keep_defaults_and_impossible_settings_are_refused() {
        let partial: GenConfig =
            serde_json::from_str(r#"{"program": {"max_tokens": 40}}"#).unwrap();
        assert_eq!(partial.input_tries, 10);
        assert_eq!(partial.max_steps, vm::DEFAULT_MAX_STEPS);
        assert_eq!(partial.program.max_tokens, 40);
        assert_eq!(
            partial.program.min_tokens,
            ProgramConfig::default().min_tokens
        );
        assert_eq!(
            serde_json::from_str::<GenConfig>("{}").unwrap(),
            GenConfig::new()
        );
        assert!(GenConfig::new().validate().is_ok());
        assert!(serde_json::from_str::<GenConfig>(r#"{"max_step": 5}"#).is_err());
        let refused = |edit: fn(&mut GenConfig), field: &str| {
            let mut config = GenConfig::new();
            edit(&mut config);
            let error = config.validate().unwrap_err();
            assert!(error.contains(field), "{error}");
        };
        refused(|c| c.max_steps = 0, "max_steps");
        refused(|c| c.input_tries = 0, "input_tries");
        refused(|c| c.program.min_tokens = 70, "min_tokens");
        refused(|c| c.program.not_prob = -0.1, "not_prob");
        refused(|c| c.program.run_continue = f64::NAN, "run_continue");
        refused(|c| c.program.action_weights = [0.0; 5], "action_weights");
        refused(|c| c.program.block_weights[0] = -1.0, "block_weights");
        refused(|c| c.world.max_size = 40, "max_size");
        refused(|c| c.world.min_size = 0, "min_size");
        refused(|c| c.program.max_depth = 0, "max_depth");
        // A range the sampler (almost) never reaches.
        refused(
            |c| {
                c.program.min_tokens = 900;
                c.program.max_tokens = 1000;
            },
            "almost never",
        );
    }

    #[test]
    fn draws_stay_bounded_whatever_the_settings() {
        // Every statement a block, nested 32 deep, bodies as long as allowed: each draw stops
        // adding statements past its bound, so sampling ends quickly.
        let config = ProgramConfig {
            max_depth: MAX_PROGRAM_DEPTH,
            max_tokens: MAX_PROGRAM_TOKENS,
            block_prob: 1.0,
            block_decay: 1.0,
            body_continue: 1.0,
            run_continue: 1.0,
            ..ProgramConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..3 {
            let mut statements = 0;
            let body = sample_body(&config, &mut rng, 1, config.run_continue, &mut statements);
            // Past the bound, each open block gets one more statement at most.
            assert!(
                statements <= DRAW_STATEMENTS + MAX_PROGRAM_DEPTH,
                "{statements}"
            );
            assert_eq!(Program::new(body).node_count(), statements);
            if let Some(program) = sample_program(&config, &mut rng) {
                assert!(program.token_len() <= MAX_PROGRAM_TOKENS);
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_sharded() {
        let config = GenConfig::new();
        let mut a = Generator::new(config.clone(), 9, Shard::WHOLE);
        let mut b = Generator::new(config.clone(), 9, Shard::WHOLE);
        let (ta, tb) = (a.next_round(100), b.next_round(100));
        assert_eq!(ta.len(), 100);
        assert_eq!(ta, tb);
        let mut half = Generator::new(config, 9, Shard::parse("1/2").unwrap());
        let th = half.next_round(20);
        assert!(th.iter().all(|(t, _)| program_hash(&t.program) % 2 == 1));
        assert!(Shard::parse("2/2").is_err() && Shard::parse("x").is_err());
    }
}
