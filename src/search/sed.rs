//! SED's search (the paper's Algorithms 1 and 2; SED `tools/iterative_search.py`): starting from
//! the synthesizer's candidates, execute, and let the debugger edit the most promising failing
//! program until one passes the given examples or the budget of debugger calls is spent.
//!
//! - **Best-first**: every new valid program is marked seen and queued (FIFO) in the bucket of the
//!   number of given examples it passes; the head of the highest non-empty bucket is popped,
//!   accepted if it passes all of them, and otherwise given to the debugger, whose candidates are
//!   queued in turn. With every bucket empty the search gives up with the first initial
//!   candidate.
//! - **Greedy**: only the newest candidate list counts: the first unseen program in it that passes
//!   is accepted, otherwise the best by (examples passed, token list) is marked seen and debugged.
//!   With nothing unseen it gives up with the last program it chose.
//! - `steps` (K) counts debugger calls. The first decision, over the initial candidates, is free.
//!   At the limit the program last popped (chosen) is returned.
//! - **Observational merging** (not in the original, off by default): a failing program with the
//!   same outcomes and final worlds on the given inputs as a program already queued (best-first)
//!   or already debugged (greedy) is dropped, so that no debugger call is spent twice on one
//!   behaviour. Programs that pass every given example are never merged.
//!
//! A [`TaskSearch`] is a state machine that asks for one debugger call at a time, so that
//! [`run_searches`] can batch the calls of many tasks into full network batches.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::repair;
use crate::data::repair::given_traces;
use crate::data::task::Task;
use crate::lang::{parse_tokens, Program, Token};
use crate::model::debugger::{DebugItem, Debugger, DebuggerBatch};
use crate::nn::Backend;
use crate::vm::{self, Outcome, RunConfig, Trace, Vm};

/// Which search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    BestFirst,
    Greedy,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::BestFirst => "best-first",
            Strategy::Greedy => "greedy",
        }
    }
}

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
    /// The debugger call that produced it (0: the synthesizer).
    pub call: usize,
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
    /// The returned program's ancestry, from a synthesizer candidate to it (indices into
    /// `candidates`).
    pub path: Vec<usize>,
    pub candidates: Vec<Candidate>,
}

/// One task's search, driven by [`TaskSearch::next_request`] and [`TaskSearch::receive`].
pub struct TaskSearch<'a> {
    task: &'a Task,
    config: SearchConfig,
    candidates: Vec<Candidate>,
    /// Token lists already met (best-first) or already debugged (greedy).
    seen: HashSet<Vec<Token>>,
    /// Fingerprints of the behaviours already queued (best-first) or debugged (greedy).
    behaviours: HashSet<u64>,
    fingerprints: Vec<u64>,
    buckets: Vec<VecDeque<usize>>,
    current: Vec<usize>,
    calls: usize,
    last: Option<usize>,
    pending: Option<usize>,
    ending: Option<Ending>,
    executed: usize,
    merged: usize,
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
            task,
            config,
            candidates: Vec::new(),
            seen: HashSet::new(),
            behaviours: HashSet::new(),
            fingerprints: Vec::new(),
            buckets: vec![VecDeque::new(); task.given().len() + 1],
            current: Vec::new(),
            calls: 0,
            last: None,
            pending: None,
            ending: None,
            executed: 0,
            merged: 0,
        };
        search.add_all(initial, None);
        search
    }

    fn given(&self) -> usize {
        self.task.given().len()
    }

    /// Executes and records the valid programs of `programs`, then queues them (best-first) or
    /// makes them the current list (greedy).
    fn add_all(&mut self, programs: &[Vec<Token>], parent: Option<usize>) {
        let evaluated: Vec<Option<(Program, usize, u64)>> = programs
            .iter()
            .map(|tokens| {
                if tokens.is_empty() {
                    return None;
                }
                let program = parse_tokens(tokens, &Default::default()).ok()?;
                let (passed, fingerprint) = evaluate(&program, self.task);
                Some((program, passed, fingerprint))
            })
            .collect();
        self.current.clear();
        for (tokens, result) in programs.iter().zip(evaluated) {
            let Some((_, passed, fingerprint)) = result else {
                continue;
            };
            let fails = passed < self.given();
            match self.config.strategy {
                Strategy::BestFirst => {
                    if self.seen.contains(tokens) {
                        continue;
                    }
                    self.seen.insert(tokens.clone());
                    self.executed += 1;
                    if self.config.merge && fails && !self.behaviours.insert(fingerprint) {
                        self.merged += 1;
                        continue;
                    }
                    let id = self.push(tokens, passed, parent, fingerprint);
                    self.buckets[passed].push_back(id);
                }
                Strategy::Greedy => {
                    if self.seen.contains(tokens) {
                        continue;
                    }
                    self.executed += 1;
                    if self.config.merge && fails && self.behaviours.contains(&fingerprint) {
                        self.merged += 1;
                        continue;
                    }
                    let id = self.push(tokens, passed, parent, fingerprint);
                    self.current.push(id);
                }
            }
        }
    }

    fn push(
        &mut self,
        tokens: &[Token],
        passed: usize,
        parent: Option<usize>,
        fingerprint: u64,
    ) -> usize {
        self.candidates.push(Candidate {
            tokens: tokens.to_vec(),
            passed,
            parent,
            call: self.calls,
        });
        self.fingerprints.push(fingerprint);
        self.candidates.len() - 1
    }

    /// Decides the next move: the program to give the debugger, or `None` once the search has
    /// ended.
    pub fn next_request(&mut self) -> Option<&[Token]> {
        if self.ending.is_some() {
            return None;
        }
        debug_assert!(self.pending.is_none(), "a request is already out");
        let chosen = match self.config.strategy {
            Strategy::BestFirst => self.buckets.iter_mut().rev().find_map(|b| b.pop_front()),
            Strategy::Greedy => self.choose_greedy(),
        };
        let Some(id) = chosen else {
            self.ending = Some(Ending::Exhausted);
            if self.config.strategy == Strategy::BestFirst && !self.candidates.is_empty() {
                self.last = Some(0);
            }
            return None;
        };
        self.last = Some(id);
        if self.candidates[id].passed == self.given() {
            self.ending = Some(Ending::Solved);
            return None;
        }
        if self.calls >= self.config.steps {
            self.ending = Some(Ending::StepLimit);
            return None;
        }
        self.pending = Some(id);
        Some(&self.candidates[id].tokens)
    }

    /// Greedy: the first unseen passing program of the current list, else the best unseen one
    /// (most examples passed, then the largest token list by text), which is marked seen.
    fn choose_greedy(&mut self) -> Option<usize> {
        let unseen: Vec<usize> = self
            .current
            .iter()
            .copied()
            .filter(|&id| !self.seen.contains(&self.candidates[id].tokens))
            .collect();
        if let Some(&id) = unseen
            .iter()
            .find(|&&id| self.candidates[id].passed == self.given())
        {
            return Some(id);
        }
        let text = |id: usize| -> Vec<&'static str> {
            self.candidates[id]
                .tokens
                .iter()
                .map(|t| t.text())
                .collect()
        };
        let best = unseen.into_iter().max_by(|&a, &b| {
            self.candidates[a]
                .passed
                .cmp(&self.candidates[b].passed)
                .then_with(|| text(a).cmp(&text(b)))
        })?;
        self.seen.insert(self.candidates[best].tokens.clone());
        self.behaviours.insert(self.fingerprints[best]);
        Some(best)
    }

    /// Takes the debugger's candidates for the program of the last request.
    pub fn receive(&mut self, repaired: &[Vec<Token>]) {
        let parent = self.pending.take().expect("receive answers a request");
        self.calls += 1;
        self.add_all(repaired, Some(parent));
    }

    /// The program of the outstanding request and the task, for building the debugger's input.
    pub fn task(&self) -> &'a Task {
        self.task
    }

    pub fn is_done(&self) -> bool {
        self.ending.is_some()
    }

    /// The search's result (call once it is done).
    pub fn result(self) -> SearchResult {
        let mut path = Vec::new();
        let mut at = self.last;
        while let Some(id) = at {
            path.push(id);
            at = self.candidates[id].parent;
        }
        path.reverse();
        let program = self
            .last
            .map(|id| self.candidates[id].tokens.clone())
            .unwrap_or_default();
        let passes_given = self
            .last
            .is_some_and(|id| self.candidates[id].passed == self.task.given().len());
        SearchResult {
            program,
            passes_given,
            ending: self.ending.unwrap_or(Ending::Exhausted),
            calls: self.calls,
            executed: self.executed,
            merged: self.merged,
            path,
            candidates: self.candidates,
        }
    }
}

/// The debugger's input for one program of a task: the program and its traces on the given
/// inputs.
fn request_item(task: &Task, tokens: &[Token], trace_steps: u32) -> Vec<Trace> {
    let program = parse_tokens(tokens, &Default::default()).expect("candidates parse");
    given_traces(&program, task, trace_steps)
}

/// Where the time of [`run_searches`] went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchTiming {
    /// Building the debugger's batches and running its beam search.
    pub network: f64,
    /// Executing candidates and recording the traces the debugger reads.
    pub execution: f64,
}

/// Runs the searches of `tasks` (each from its initial candidates), batching the debugger calls
/// of up to `batch` tasks at a time. `progress` is called with the number of searches finished
/// by each round.
pub fn run_searches<B: Backend>(
    backend: &B,
    debugger: &Debugger<B>,
    tasks: &[&Task],
    initial: &[Vec<Vec<Token>>],
    config: &SearchConfig,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> (Vec<SearchResult>, SearchTiming) {
    assert_eq!(tasks.len(), initial.len(), "one candidate list per task");
    let batch = batch.max(1);
    let window = batch * 4;
    let mut results: Vec<Option<SearchResult>> = vec![None; tasks.len()];
    let mut waiting = (0..tasks.len()).rev().collect::<Vec<_>>();
    let mut active: Vec<(usize, TaskSearch)> = Vec::new();
    let with_trace = debugger.trace_embed.is_some();
    let mut timing = SearchTiming::default();
    loop {
        let started = std::time::Instant::now();
        while active.len() < window {
            let Some(i) = waiting.pop() else { break };
            active.push((i, TaskSearch::new(tasks[i], *config, &initial[i])));
        }
        if active.is_empty() {
            break;
        }
        // Every active search asks for one call (or ends).
        let requests: Vec<Option<(Vec<Token>, Vec<Trace>)>> = active
            .par_iter_mut()
            .map(|(_, search)| {
                let tokens = search.next_request()?.to_vec();
                let traces = request_item(search.task(), &tokens, config.trace_steps);
                Some((tokens, traces))
            })
            .collect();
        let mut finished = 0;
        let mut asking = Vec::new();
        let mut kept = Vec::new();
        for ((i, search), request) in active.drain(..).zip(requests) {
            match request {
                None => {
                    results[i] = Some(search.result());
                    finished += 1;
                }
                Some(r) => {
                    asking.push(r);
                    kept.push((i, search));
                }
            }
        }
        if finished > 0 {
            progress(finished);
        }
        timing.execution += started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let mut answers: Vec<Vec<Vec<Token>>> = Vec::with_capacity(asking.len());
        for (chunk, searches) in asking.chunks(batch).zip(kept.chunks(batch)) {
            let items: Vec<DebugItem> = chunk
                .iter()
                .zip(searches)
                .map(|((tokens, traces), (_, search))| DebugItem {
                    source: tokens,
                    examples: search.task().given(),
                    traces,
                })
                .collect();
            let debug_batch =
                DebuggerBatch::new(backend, &items, debugger.config.pairs, with_trace);
            let beams = repair::beam_search(
                backend,
                debugger,
                &debug_batch,
                config.debugger_beam,
                config.max_ops,
            );
            answers.extend(
                beams
                    .into_iter()
                    .map(|b| b.into_iter().map(|h| h.hypothesis).collect()),
            );
        }
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
