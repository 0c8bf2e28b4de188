//! SED's search (the paper's Algorithms 1 and 2; SED `tools/iterative_search.py`): starting from
//! the synthesizer's candidates, execute, and let the debugger edit the most promising failing
//! program until one passes the given examples or the budget of debugger calls is spent.
//!
//! - The strategy (which candidate the debugger gets next) is a [`Frontier`] of
//!   [`super::strategy`]: best-first or greedy, SED's two.
//! - `steps` (K) counts debugger calls. The first decision, over the initial candidates, is free.
//!   At the limit the program last popped (chosen) is returned.
//! - **Observational merging** (not in the original, off by default): a failing program with the
//!   same outcomes and final worlds on the given inputs as a program already queued (best-first)
//!   or already debugged (greedy) is dropped, so that no debugger call is spent twice on one
//!   behaviour. Programs that pass every given example are never merged.
//! - Each candidate is parsed once; its `Program` is kept for the traces the debugger reads.
//! - **The rewrite stage** (optional, [`super::rewrite`]): every failing candidate picked is
//!   first expanded by the programs within a few AST rewrites of it, executed on the VM; if some
//!   pass, the search ends with the best of them under the configured ranking, without a
//!   debugger call. Once the calls are spent, the strategy's next candidates are expanded the
//!   same way until the stage's budget of programs is spent or nothing is left; if none of them
//!   leads to a passing program, the search returns what it would have returned without the
//!   stage. With a budget of K = 0 calls it is a search without the debugger.
//! - **Simplification** (with the rewrite stage, [`rewrite::simplify`]; `simplify` = 0 turns it
//!   off): once the search has a passing answer and it is ranked, the shortest passing program
//!   within a few shrinking rewrites of it replaces it, again while one is found. Each program
//!   taken is a candidate of its own, so the answer's path shows the steps.
//!
//! A [`TaskSearch`] is a state machine that asks for one debugger call at a time, so that
//! [`run_searches`] can batch the calls of many tasks into full network batches. The debugger is
//! reached through the [`Repairer`] trait ([`NeuralRepairer`]: the SED debugger's beam search),
//! so that tests can script it, and the ranking by the synthesizer's likelihood through the
//! [`Ranker`] trait.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::repair;
use super::rewrite::{self, Passing, Ranking, RewriteConfig};
use super::strategy::{Frontier, Marking, Pool, Strategy};
use crate::data::repair::given_traces;
use crate::data::task::Task;
use crate::lang::{parse_tokens, Program, Token};
use crate::model::debugger::{DebugItem, Debugger, DebuggerBatch};
use crate::model::grids::grid_tensor;
use crate::nn::Backend;
use crate::vm::{self, Outcome, RunConfig, Trace, Vm};

/// Settings of the SED search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    pub strategy: Strategy,
    /// Debugger calls allowed (K).
    pub steps: usize,
    /// Debugger beam width: candidates per call.
    pub debugger_beam: usize,
    /// Most edit ops per candidate.
    pub max_ops: usize,
    /// Step limit of the traces given to the debugger.
    pub trace_steps: u32,
    /// Merge observationally equal failing programs.
    pub merge: bool,
    /// The rewrite stage (`None`: off).
    pub rewrite: Option<RewriteConfig>,
}

impl Default for SearchConfig {
    /// The paper's main setting: best-first, K = 100, debugger beam 64.
    fn default() -> Self {
        SearchConfig {
            strategy: Strategy::BestFirst,
            steps: 100,
            debugger_beam: 64,
            max_ops: 100,
            trace_steps: 250,
            merge: false,
            rewrite: None,
        }
    }
}

/// A search after the synthesizer: a strategy with the debugger, with or without the rewrite
/// stage, or the rewrite stage alone (over the synthesizer's candidates, no debugger calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SearchMethod {
    /// The strategy (`None`: the rewrite stage alone, down best-first's order).
    pub strategy: Option<Strategy>,
    pub rewrite: bool,
}

impl SearchMethod {
    /// SED's search with `strategy`.
    pub const fn sed(strategy: Strategy) -> SearchMethod {
        SearchMethod {
            strategy: Some(strategy),
            rewrite: false,
        }
    }

    /// `strategy` with the rewrite stage.
    pub const fn with_rewrite(strategy: Strategy) -> SearchMethod {
        SearchMethod {
            strategy: Some(strategy),
            rewrite: true,
        }
    }

    /// The rewrite stage alone.
    pub const REWRITE: SearchMethod = SearchMethod {
        strategy: None,
        rewrite: true,
    };

    /// Every method, in the order the command line lists them: each strategy, each with the
    /// rewrite stage, the rewrite stage alone.
    pub fn all() -> &'static [SearchMethod] {
        static ALL: OnceLock<Vec<SearchMethod>> = OnceLock::new();
        ALL.get_or_init(|| {
            let plain = Strategy::ALL.iter().map(|&s| SearchMethod::sed(s));
            let rewriting = Strategy::ALL.iter().map(|&s| SearchMethod::with_rewrite(s));
            plain
                .chain(rewriting)
                .chain([SearchMethod::REWRITE])
                .collect()
        })
    }

    /// Its name in reports and on the command line: `best-first`, `best-first+rewrite`,
    /// `rewrite`.
    pub fn name(self) -> &'static str {
        static NAMES: OnceLock<Vec<(SearchMethod, String)>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            SearchMethod::all()
                .iter()
                .map(|&m| {
                    let name = match (m.strategy, m.rewrite) {
                        (Some(s), false) => s.name().to_string(),
                        (Some(s), true) => format!("{}+rewrite", s.name()),
                        (None, _) => "rewrite".to_string(),
                    };
                    (m, name)
                })
                .collect()
        });
        names
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("rewrite", |(_, n)| n.as_str())
    }

    /// Whether it calls the debugger.
    pub fn uses_debugger(self) -> bool {
        self.strategy.is_some()
    }

    /// The search settings of this method: `base` with its strategy, the budget of calls
    /// (none without the debugger) and `rewrite` if it has the rewrite stage.
    pub fn config(self, base: &SearchConfig, rewrite: RewriteConfig) -> SearchConfig {
        SearchConfig {
            strategy: self.strategy.unwrap_or(Strategy::BestFirst),
            steps: if self.uses_debugger() { base.steps } else { 0 },
            rewrite: self.rewrite.then_some(rewrite),
            ..*base
        }
    }
}

/// A valid program met during a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub tokens: Vec<Token>,
    /// Given examples it passes.
    pub passed: usize,
    /// The candidate the debugger edited to produce it (`None`: from the synthesizer).
    pub parent: Option<usize>,
    /// The debugger call that produced it (0: the synthesizer), or the calls made before the
    /// rewrite stage found it.
    pub call: usize,
    /// Rewrites from its parent when the rewrite stage found it (0: not found by it).
    pub rewrites: usize,
    /// Found by simplifying its parent (its `rewrites` are shrinking ones).
    pub simplified: bool,
}

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// A program passes every given example.
    Solved,
    /// The debugger-call budget is spent.
    StepLimit,
    /// Nothing left to expand.
    Exhausted,
}

/// The result of one task's search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The program returned (empty if there was no valid candidate at all).
    pub program: Vec<Token>,
    pub passes_given: bool,
    pub ending: Ending,
    /// Debugger calls made.
    pub calls: usize,
    /// Distinct valid programs executed on the given examples.
    pub executed: usize,
    /// Candidates dropped as observationally equal to an earlier one.
    pub merged: usize,
    /// Programs the rewrite stage executed (its simplification included).
    pub rewritten: usize,
    /// The returned program's ancestry, from a synthesizer candidate to it (indices into
    /// `candidates`).
    pub path: Vec<usize>,
    pub candidates: Vec<Candidate>,
}

/// The candidates of one task's search and what has been seen of them: the bookkeeping every
/// strategy shares.
struct Candidates<'a> {
    task: &'a Task,
    list: Vec<Candidate>,
    /// Each candidate's parsed program.
    programs: Vec<Program>,
    /// Token lists that count as seen ([`Marking`]).
    seen: HashSet<Vec<Token>>,
    /// Fingerprints of the behaviours queued or expanded ([`Marking`]).
    behaviours: HashSet<u64>,
    fingerprints: Vec<u64>,
}

impl Pool for Candidates<'_> {
    fn candidate(&self, id: usize) -> &Candidate {
        &self.list[id]
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    fn is_seen(&self, tokens: &[Token]) -> bool {
        self.seen.contains(tokens)
    }

    fn given(&self) -> usize {
        self.task.given().len()
    }
}

/// One task's search, driven by [`TaskSearch::next_request`] and [`TaskSearch::receive`].
pub struct TaskSearch<'a> {
    config: SearchConfig,
    frontier: Box<dyn Frontier>,
    pool: Candidates<'a>,
    calls: usize,
    last: Option<usize>,
    pending: Option<usize>,
    ending: Option<Ending>,
    executed: usize,
    merged: usize,
    /// The rewrite stage's state.
    rewriting: Rewriting,
}

/// What the rewrite stage keeps of one task's search.
#[derive(Default)]
struct Rewriting {
    /// Fingerprints of the programs it has executed.
    executed: HashSet<u128>,
    /// Programs executed, against the budget.
    count: usize,
    /// The candidate the search returns if the stage finds nothing once the calls are spent.
    fallback: Option<usize>,
    /// The passing candidates it found, to rank with the likelihood (ids, nearest first).
    to_rank: Vec<usize>,
}

/// Given examples passed by a program and the fingerprint of its behaviour (outcome and final
/// world on each given input).
fn evaluate(program: &Program, task: &Task) -> (usize, u64) {
    let chunk = vm::compile(program);
    let mut machine = Vm::new();
    let mut hasher = DefaultHasher::new();
    let mut passed = 0;
    for example in task.given() {
        let mut world = example.input.clone();
        let run = machine.run(&chunk, &mut world, &RunConfig::default());
        let outcome = run.outcome();
        let ok = matches!(outcome, Outcome::Ok);
        passed += (ok && world == example.output) as usize;
        std::mem::discriminant(&outcome).hash(&mut hasher);
        world.hash(&mut hasher);
    }
    (passed, hasher.finish())
}

impl<'a> TaskSearch<'a> {
    /// Starts a search from `initial` (the synthesizer's beams in order, or its one output).
    pub fn new(task: &'a Task, config: SearchConfig, initial: &[Vec<Token>]) -> TaskSearch<'a> {
        let mut search = TaskSearch {
            config,
            frontier: config.strategy.frontier(),
            pool: Candidates {
                task,
                list: Vec::new(),
                programs: Vec::new(),
                seen: HashSet::new(),
                behaviours: HashSet::new(),
                fingerprints: Vec::new(),
            },
            calls: 0,
            last: None,
            pending: None,
            ending: None,
            executed: 0,
            merged: 0,
            rewriting: Rewriting::default(),
        };
        search.add_all(initial, None);
        search
    }

    /// Executes the valid programs of `programs`, drops those already seen (and, merging,
    /// failing ones of a behaviour already met), records the others and offers them to the
    /// strategy.
    fn add_all(&mut self, programs: &[Vec<Token>], parent: Option<usize>) {
        let task = self.pool.task;
        let given = task.given().len();
        let marking = self.frontier.marking();
        let mut new = Vec::new();
        for tokens in programs {
            if tokens.is_empty() {
                continue;
            }
            if self.pool.seen.contains(tokens) {
                continue;
            }
            let Ok(program) = parse_tokens(tokens, &Default::default()) else {
                continue;
            };
            let (passed, fingerprint) = evaluate(&program, task);
            let pool = &mut self.pool;
            if marking == Marking::WhenMet {
                pool.seen.insert(tokens.clone());
            }
            self.executed += 1;
            if self.config.merge && passed < given {
                let repeated = match marking {
                    Marking::WhenMet => !pool.behaviours.insert(fingerprint),
                    Marking::WhenExpanded => pool.behaviours.contains(&fingerprint),
                };
                if repeated {
                    self.merged += 1;
                    continue;
                }
            }
            pool.list.push(Candidate {
                tokens: tokens.clone(),
                passed,
                parent,
                call: self.calls,
                rewrites: 0,
                simplified: false,
            });
            pool.programs.push(program);
            pool.fingerprints.push(fingerprint);
            new.push(pool.list.len() - 1);
        }
        self.frontier.offer(&self.pool, &new);
    }

    /// Decides the next move: the program to give the debugger, or `None` once the search has
    /// ended.
    pub fn next_request(&mut self) -> Option<&[Token]> {
        if self.ending.is_some() {
            return None;
        }
        debug_assert!(self.pending.is_none(), "a request is already out");
        loop {
            let Some(id) = self.frontier.pick(&self.pool) else {
                return self.end(Ending::Exhausted);
            };
            if self.rewriting.fallback.is_none() || self.pool.list[id].passed == self.pool.given() {
                self.last = Some(id);
            }
            if self.pool.list[id].passed == self.pool.given() {
                self.ending = Some(Ending::Solved);
                return None;
            }
            if self.frontier.marking() == Marking::WhenExpanded {
                self.pool.seen.insert(self.pool.list[id].tokens.clone());
                self.pool.behaviours.insert(self.pool.fingerprints[id]);
            }
            if self.rewrite(id) {
                return None;
            }
            if self.calls < self.config.steps {
                self.pending = Some(id);
                return Some(&self.pool.list[id].tokens);
            }
            // The calls are spent: the rewrite stage goes on down the frontier while it can.
            self.rewriting.fallback.get_or_insert(id);
            if !self.can_rewrite() {
                return self.end(Ending::StepLimit);
            }
        }
    }

    /// Ends the search with nothing passing found: `ending`, or the step limit if the calls
    /// were spent before the rewrite stage went on; the answer is the fallback, if any.
    fn end(&mut self, ending: Ending) -> Option<&[Token]> {
        match self.rewriting.fallback {
            Some(fallback) => {
                self.ending = Some(Ending::StepLimit);
                self.last = Some(fallback);
            }
            None => {
                self.ending = Some(ending);
                if ending == Ending::Exhausted {
                    self.last = self.frontier.exhausted(&self.pool, self.last);
                }
            }
        }
        None
    }

    /// Whether the rewrite stage is on and has budget left.
    fn can_rewrite(&self) -> bool {
        self.config
            .rewrite
            .is_some_and(|r| self.rewriting.count < r.budget)
    }

    /// Expands candidate `id` with the rewrite stage, if it is on and has budget left. If a
    /// program passes, the search ends solved (with the nearest, or best ranked, of them).
    fn rewrite(&mut self, id: usize) -> bool {
        let Some(config) = self.config.rewrite else {
            return false;
        };
        let left = config.budget.saturating_sub(self.rewriting.count);
        if left == 0 {
            return false;
        }
        let task = self.pool.task;
        let found = rewrite::expand(
            &self.pool.programs[id],
            task,
            config.radius,
            config.limit.min(left),
            &mut self.rewriting.executed,
        );
        self.rewriting.count += found.executed;
        if self.rewriting.count >= config.budget {
            // Spent: the set of executed programs is no longer needed.
            self.rewriting.executed = HashSet::new();
        }
        if found.passing.is_empty() {
            return false;
        }
        let best = match config.ranking {
            Ranking::Likelihood => 0,
            ranking => rewrite::rank(&found.passing, ranking, &[])[0],
        };
        let ids: Vec<usize> = found
            .passing
            .into_iter()
            .map(|passing| self.add_passing(passing, id, false))
            .collect();
        self.ending = Some(Ending::Solved);
        self.last = Some(ids[best]);
        if config.ranking == Ranking::Likelihood && ids.len() > 1 {
            self.rewriting.to_rank = ids;
        }
        true
    }

    /// The passing programs the rewrite stage found that wait to be ranked by likelihood.
    pub fn to_rank(&self) -> Vec<&[Token]> {
        let list = &self.pool.list;
        self.rewriting
            .to_rank
            .iter()
            .map(|&id| list[id].tokens.as_slice())
            .collect()
    }

    /// Takes the scores of [`TaskSearch::to_rank`]'s programs: the best is returned (the first
    /// of equals).
    pub fn rank(&mut self, scores: &[f64]) {
        let ids = std::mem::take(&mut self.rewriting.to_rank);
        assert_eq!(scores.len(), ids.len(), "one score per program to rank");
        if let Some(&best) = rewrite::by_score(scores).first() {
            self.last = Some(ids[best]);
        }
    }

    /// Simplifies a solved search's answer ([`rewrite::simplify`]) if the rewrite stage is on
    /// with a simplification radius: each shorter passing program taken becomes a candidate,
    /// the last of them the answer. Call once the search is done and ranked.
    pub fn simplify(&mut self) {
        let Some(config) = self.config.rewrite else {
            return;
        };
        let Some(mut parent) = self.last else {
            return;
        };
        if config.simplify == 0 || self.ending != Some(Ending::Solved) {
            return;
        }
        let found = rewrite::simplify(
            &self.pool.programs[parent],
            self.pool.task,
            config.simplify,
            config.limit,
        );
        self.rewriting.count += found.executed;
        for step in found.steps {
            parent = self.add_passing(step, parent, true);
        }
        self.last = Some(parent);
    }

    /// Records a program the rewrite stage (or its simplification, `simplified`) found to pass
    /// the given examples, rewritten from candidate `parent`; returns its id.
    fn add_passing(&mut self, passing: Passing, parent: usize, simplified: bool) -> usize {
        let Passing { program, distance } = passing;
        let (passed, fingerprint) = evaluate(&program, self.pool.task);
        debug_assert_eq!(passed, self.pool.given());
        let pool = &mut self.pool;
        pool.list.push(Candidate {
            tokens: program.tokens(),
            passed,
            parent: Some(parent),
            call: self.calls,
            rewrites: distance,
            simplified,
        });
        pool.programs.push(program);
        pool.fingerprints.push(fingerprint);
        pool.list.len() - 1
    }

    /// Takes the debugger's candidates for the program of the last request.
    pub fn receive(&mut self, repaired: &[Vec<Token>]) {
        let parent = self.pending.take().expect("receive answers a request");
        self.calls += 1;
        self.add_all(repaired, Some(parent));
    }

    /// The task searched.
    pub fn task(&self) -> &'a Task {
        self.pool.task
    }

    /// The parsed program of the outstanding request.
    fn pending_program(&self) -> Option<&Program> {
        self.pending.map(|id| &self.pool.programs[id])
    }

    /// The tokens of the outstanding request.
    fn pending_tokens(&self) -> Option<&[Token]> {
        self.pending.map(|id| self.pool.list[id].tokens.as_slice())
    }

    pub fn is_done(&self) -> bool {
        self.ending.is_some()
    }

    /// The search's result (call once it is done).
    pub fn result(self) -> SearchResult {
        let candidates = self.pool.list;
        let mut path = Vec::new();
        let mut at = self.last;
        while let Some(id) = at {
            path.push(id);
            at = candidates[id].parent;
        }
        path.reverse();
        let program = self
            .last
            .map(|id| candidates[id].tokens.clone())
            .unwrap_or_default();
        let passes_given = self
            .last
            .is_some_and(|id| candidates[id].passed == self.pool.task.given().len());
        SearchResult {
            program,
            passes_given,
            ending: self.ending.unwrap_or(Ending::Exhausted),
            calls: self.calls,
            executed: self.executed,
            merged: self.merged,
            rewritten: self.rewriting.count,
            path,
            candidates,
        }
    }
}

/// One program for the debugger: the task, the program and its traces on the given inputs.
pub struct RepairRequest<'a> {
    pub task: &'a Task,
    /// Identifies the task among those searched together: the same for each of its requests,
    /// until [`Repairer::release`] is called with it.
    pub task_id: usize,
    pub tokens: &'a [Token],
    pub traces: &'a [Trace],
}

impl<'a> RepairRequest<'a> {
    /// The request as an item of a debugger batch: the program, the given examples and traces.
    pub fn item(&self) -> DebugItem<'a> {
        DebugItem {
            source: self.tokens,
            examples: self.task.given(),
            traces: self.traces,
        }
    }
}

/// The debugger as the search sees it: candidate repairs for a batch of programs.
pub trait Repairer {
    /// Each request's candidate repairs, best first.
    fn repair(&self, requests: &[RepairRequest]) -> Vec<Vec<Vec<Token>>>;

    /// The search of task `task_id` has ended: what was kept for it may go (and the id may
    /// name another task afterwards).
    fn release(&self, _task_id: usize) {}
}

/// Programs of one task to score for the rewrite stage's ranking.
pub struct RankRequest<'a> {
    pub task: &'a Task,
    pub programs: Vec<&'a [Token]>,
}

/// The ranking of passing programs by a network ([`Ranking::Likelihood`]).
pub trait Ranker {
    /// Each request's score for each of its programs (higher is better).
    fn scores(&self, requests: &[RankRequest]) -> Vec<Vec<f64>>;
}

/// What the searches call: the debugger, and the ranker of the rewrite stage's programs.
#[derive(Clone, Copy, Default)]
pub struct Networks<'a> {
    /// Without a debugger the searches make no calls (a budget of K = 0).
    pub repairer: Option<&'a dyn Repairer>,
    /// Without a ranker the rewrite stage's passing programs stay in enumeration order
    /// (nearest first).
    pub ranker: Option<&'a dyn Ranker>,
}

/// The SED debugger's beam search ([`repair::beam_search`]), in network batches. Each task's IO
/// embedding is computed at its first request and kept until it is released.
pub struct NeuralRepairer<'a, B: Backend> {
    pub backend: &'a B,
    pub debugger: &'a Debugger<B>,
    /// Candidates per call (the debugger's beam width).
    pub beam: usize,
    /// Most edit ops per candidate.
    pub max_ops: usize,
    /// Programs per network batch (fewer where their traces pass
    /// [`repair::MAX_BATCH_STATES`] states).
    pub batch: usize,
    /// The IO embedding `[pairs, ·]` of each task with requests, by task id.
    io_embeddings: RefCell<HashMap<usize, B::Tensor>>,
}

impl<'a, B: Backend> NeuralRepairer<'a, B> {
    /// The debugger with the beam and op limit of `config`, `batch` programs per network batch.
    pub fn new(
        backend: &'a B,
        debugger: &'a Debugger<B>,
        config: &SearchConfig,
        batch: usize,
    ) -> Self {
        NeuralRepairer {
            backend,
            debugger,
            beam: config.debugger_beam,
            max_ops: config.max_ops,
            batch,
            io_embeddings: RefCell::new(HashMap::new()),
        }
    }

    /// The IO embedding `[N · pairs, ·]` of the requests' tasks, computing (in one pass) those
    /// not kept yet.
    fn io_embedding(&self, requests: &[RepairRequest]) -> B::Tensor {
        let backend = self.backend;
        let pairs = self.debugger.config.pairs;
        let mut kept = self.io_embeddings.borrow_mut();
        let mut missing: Vec<&RepairRequest> = Vec::new();
        for r in requests {
            if !kept.contains_key(&r.task_id) && !missing.iter().any(|m| m.task_id == r.task_id) {
                missing.push(r);
            }
        }
        if !missing.is_empty() {
            let given = || missing.iter().flat_map(|r| r.task.given()[..pairs].iter());
            let inputs = grid_tensor(backend, given().map(|e| &e.input));
            let outputs = grid_tensor(backend, given().map(|e| &e.output));
            let (embedding, _) = self.debugger.io_encoder.forward(backend, &inputs, &outputs);
            for (k, r) in missing.iter().enumerate() {
                let rows = backend.slice(&embedding, 0, k * pairs, pairs);
                kept.insert(r.task_id, rows);
            }
        }
        let parts: Vec<&B::Tensor> = requests.iter().map(|r| &kept[&r.task_id]).collect();
        backend.concat(&parts, 0)
    }
}

impl<B: Backend> Repairer for NeuralRepairer<'_, B> {
    fn repair(&self, requests: &[RepairRequest]) -> Vec<Vec<Vec<Token>>> {
        let with_trace = self.debugger.trace_embed.is_some();
        let pairs = self.debugger.config.pairs;
        let all_items: Vec<DebugItem> = requests.iter().map(RepairRequest::item).collect();
        let mut answers = Vec::with_capacity(requests.len());
        for range in repair::network_batches(&all_items, pairs, self.batch, with_trace) {
            let items = &all_items[range.clone()];
            let chunk = &requests[range];
            let programs = DebuggerBatch::new(self.backend, items, pairs, with_trace);
            let memory = self.debugger.encode_program(self.backend, &programs);
            let io_embedding = self.io_embedding(chunk);
            let beams = repair::beam_search_encoded(
                self.backend,
                self.debugger,
                &programs,
                memory,
                &io_embedding,
                self.beam,
                self.max_ops,
            );
            answers.extend(
                beams
                    .into_iter()
                    .map(|b| b.into_iter().map(|h| h.hypothesis).collect()),
            );
        }
        answers
    }

    fn release(&self, task_id: usize) {
        self.io_embeddings.borrow_mut().remove(&task_id);
    }
}

/// Where the time of [`run_searches`] went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchTiming {
    /// The debugger's calls (for the network: building its batches and its beam search).
    pub network: f64,
    /// Executing candidates (the rewrite stage included) and recording the traces the
    /// debugger reads.
    pub execution: f64,
    /// Ranking the rewrite stage's passing programs.
    pub ranking: f64,
}

/// Runs the searches of `tasks` (each from its initial candidates), four network batches of
/// `batch` tasks in flight at a time, handing the debugger the requests of all of them at once
/// and the ranker the programs of all searches that end in the same round.
/// `progress` is called with the number of searches finished by each round.
pub fn run_searches(
    networks: Networks,
    tasks: &[&Task],
    initial: &[Vec<Vec<Token>>],
    config: &SearchConfig,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> (Vec<SearchResult>, SearchTiming) {
    assert_eq!(tasks.len(), initial.len(), "one candidate list per task");
    let config = SearchConfig {
        steps: networks.repairer.map_or(0, |_| config.steps),
        ..*config
    };
    let window = batch.max(1) * 4;
    let mut results: Vec<Option<SearchResult>> = vec![None; tasks.len()];
    let mut waiting = (0..tasks.len()).rev().collect::<Vec<_>>();
    let mut active: Vec<(usize, TaskSearch)> = Vec::new();
    let mut timing = SearchTiming::default();
    loop {
        let started = std::time::Instant::now();
        while active.len() < window {
            let Some(i) = waiting.pop() else { break };
            active.push((i, TaskSearch::new(tasks[i], config, &initial[i])));
        }
        if active.is_empty() {
            break;
        }
        // Every active search asks for one call (or ends).
        let requests: Vec<Option<Vec<Trace>>> = active
            .par_iter_mut()
            .map(|(_, search)| {
                search.next_request()?;
                let program = search.pending_program().expect("a request is out");
                Some(given_traces(program, search.task(), config.trace_steps))
            })
            .collect();
        let mut finished = Vec::new();
        let mut traces = Vec::new();
        let mut kept = Vec::new();
        for ((i, search), request) in active.drain(..).zip(requests) {
            match request {
                None => finished.push((i, search)),
                Some(t) => {
                    traces.push(t);
                    kept.push((i, search));
                }
            }
        }
        timing.execution += started.elapsed().as_secs_f64();
        if !finished.is_empty() {
            let started = std::time::Instant::now();
            if let Some(ranker) = networks.ranker {
                rank_finished(ranker, &mut finished);
            }
            timing.ranking += started.elapsed().as_secs_f64();
            let started = std::time::Instant::now();
            finished
                .par_iter_mut()
                .for_each(|(_, search)| search.simplify());
            timing.execution += started.elapsed().as_secs_f64();
            progress(finished.len());
            for (i, search) in finished {
                if let Some(repairer) = networks.repairer {
                    repairer.release(i);
                }
                results[i] = Some(search.result());
            }
        }
        let started = std::time::Instant::now();
        let asking: Vec<RepairRequest> = kept
            .iter()
            .zip(&traces)
            .map(|((i, search), traces)| RepairRequest {
                task: search.task(),
                task_id: *i,
                tokens: search.pending_tokens().expect("a request is out"),
                traces,
            })
            .collect();
        let answers = match networks.repairer {
            Some(repairer) if !asking.is_empty() => repairer.repair(&asking),
            _ => Vec::new(),
        };
        assert_eq!(answers.len(), asking.len(), "one answer per request");
        drop(asking);
        timing.network += started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        kept.par_iter_mut()
            .zip(answers.par_iter())
            .for_each(|((_, search), repaired)| search.receive(repaired));
        active = kept;
        timing.execution += started.elapsed().as_secs_f64();
    }
    let results = results
        .into_iter()
        .map(|r| r.expect("every search ran"))
        .collect();
    (results, timing)
}

/// Ranks, in one call, the passing programs of the finished searches whose rewrite stage found
/// several.
fn rank_finished(ranker: &dyn Ranker, finished: &mut [(usize, TaskSearch)]) {
    let waiting: Vec<usize> = (0..finished.len())
        .filter(|&k| !finished[k].1.rewriting.to_rank.is_empty())
        .collect();
    if waiting.is_empty() {
        return;
    }
    let requests: Vec<RankRequest> = waiting
        .iter()
        .map(|&k| RankRequest {
            task: finished[k].1.task(),
            programs: finished[k].1.to_rank(),
        })
        .collect();
    let scores = ranker.scores(&requests);
    assert_eq!(scores.len(), requests.len(), "one score list per request");
    drop(requests);
    for (&k, scores) in waiting.iter().zip(&scores) {
        finished[k].1.rank(scores);
    }
}
