//! The evaluation engine: SED on a split, under a plan of configurations, into a [`Report`].
//!
//! A [`Configuration`] is a [`Decoding`] of the synthesizer followed by nothing (the synthesizer
//! alone) or by a [`SearchMethod`] (a strategy with a budget of K debugger calls, with or without
//! the rewrite stage, or the rewrite stage alone). [`evaluate`] runs a
//! [`Plan`] a chunk of tasks at a time (whole network batches, so a resumed run batches as an
//! uninterrupted one does), skipping the chunks the report already covers and handing the report
//! to a save hook after each chunk; then, optionally, plain beam search as wide as each search's
//! mean number of programs executed (the paper's Table 2).
//!
//! - [`resume`]: continuing an unfinished report (same split, shard and settings; another task
//!   limit if no record is lost).
//! - [`mutation`]: the mutation benchmark (the paper's Figure 3).
//!
//! The engine reports progress and saves through callbacks; it prints nothing.

pub mod mutation;
pub mod resume;

use std::time::Instant;

use anyhow::{bail, Result};

use super::report::{ConfigReport, Report, TaskRecord};
use super::rewrite::RewriteConfig;
use super::sed::{
    run_searches, Networks, NeuralRepairer, SearchConfig, SearchMethod, SearchResult,
};
use super::synthesis::{decode_tasks, LikelihoodRanker, SynthesisConfig};
use crate::data::task::Task;
use crate::lang::token::tokens_to_string;
use crate::lang::Token;
use crate::model::debugger::Debugger;
use crate::model::synthesizer::Synthesizer;
use crate::nn::Backend;

/// How the synthesizer decodes in a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// One program per task ("LGRL-GD"); it is the answer even if it fails.
    Greedy,
    /// Beam search of this width ("LGRL"); the answer is the first beam that passes the given
    /// examples, if any.
    Beam(usize),
}

impl Decoding {
    /// Beam search of `width`, or greedy decoding for a width of 1.
    pub fn of_width(width: usize) -> Decoding {
        if width > 1 {
            Decoding::Beam(width)
        } else {
            Decoding::Greedy
        }
    }

    pub fn width(self) -> usize {
        match self {
            Decoding::Greedy => 1,
            Decoding::Beam(width) => width,
        }
    }

    /// Its name in reports: `greedy` or `beam N`.
    pub fn name(self) -> String {
        match self {
            Decoding::Greedy => "greedy".to_string(),
            Decoding::Beam(width) => format!("beam {width}"),
        }
    }

    /// The synthesizer's answer from its candidates: the first that passes the given examples,
    /// else the greedy program, or nothing after a beam search.
    pub fn answer(self, task: &Task, candidates: &[Vec<Token>]) -> Vec<Token> {
        let given = task.given().len();
        let passes =
            |tokens: &&Vec<Token>| matches!(task.score(tokens), Some((g, _)) if g == given);
        match (candidates.iter().find(passes), self) {
            (Some(found), _) => found.clone(),
            (None, Decoding::Beam(_)) => Vec::new(),
            (None, Decoding::Greedy) => candidates.first().cloned().unwrap_or_default(),
        }
    }
}

/// One configuration of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Configuration {
    pub decoding: Decoding,
    /// The search after the synthesizer (`None`: the synthesizer alone).
    pub search: Option<SearchMethod>,
    /// Debugger-call budget K (0 without search).
    pub steps: usize,
}

impl Configuration {
    /// Its name in reports: `beam 32`, `greedy + best-first`.
    pub fn name(&self) -> String {
        match self.search {
            None => self.decoding.name(),
            Some(method) => format!("{} + {}", self.decoding.name(), method.name()),
        }
    }

    /// An empty report of this configuration named `name`.
    pub fn report(&self, name: String) -> ConfigReport {
        ConfigReport {
            name,
            decoding: self.decoding.name(),
            search: self
                .search
                .map_or(ConfigReport::NO_SEARCH, SearchMethod::name)
                .to_string(),
            steps: self.steps,
            records: Vec::new(),
        }
    }
}

/// What an evaluation runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The synthesizer's decodings, each a column of Table 1.
    pub decodings: Vec<Decoding>,
    /// The searches after each decoding (none: the synthesizer alone only).
    pub searches: Vec<SearchMethod>,
    /// Decoding settings (the width comes from each decoding).
    pub synthesis: SynthesisConfig,
    /// Search settings (the strategy comes from each configuration; `steps` is the budget K).
    pub search: SearchConfig,
    /// The rewrite stage's settings, for the searches that have it.
    pub rewrite: RewriteConfig,
    /// Add plain beam search as wide as the mean number of programs executed by each debugger
    /// search without the rewrite stage.
    pub compare_beam: bool,
    /// Tasks per network batch.
    pub batch: usize,
    /// Tasks per saved chunk (rounded up to whole network batches).
    pub save_every: usize,
}

impl Plan {
    fn synthesis(&self, decoding: Decoding) -> SynthesisConfig {
        SynthesisConfig {
            beam: decoding.width(),
            ..self.synthesis
        }
    }

    /// Tasks per saved chunk: whole network batches.
    fn chunk_len(&self) -> usize {
        let batch = self.batch.max(1);
        self.save_every.max(1).div_ceil(batch) * batch
    }
}

/// The models an evaluation runs (the debugger only when the plan has searches).
pub struct Models<'a, B: Backend> {
    pub synthesizer: &'a Synthesizer<B>,
    pub debugger: Option<&'a Debugger<B>>,
}

/// What an evaluation tells its caller while it runs.
pub trait Monitor {
    /// A phase of `units` units of work starts (`what` names the units).
    fn begin(&mut self, _what: &str, _units: usize) {}
    /// `units` more units are done.
    fn advance(&mut self, _units: usize) {}
    /// The phase has ended.
    fn end(&mut self) {}
    /// A chunk of tasks has been added to the report: save it.
    fn save(&mut self, _report: &mut Report) -> Result<()> {
        Ok(())
    }
}

/// The tasks of shard `shard` of `shards`: those whose index is `shard` modulo `shards`, with
/// their index.
pub fn shard_of(tasks: &[Task], shard: usize, shards: usize) -> Vec<(usize, &Task)> {
    tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % shards.max(1) == shard)
        .collect()
}

/// The record of `program` as the answer to task `index`; `exact_of` is the program compared
/// with the gold one (the top candidate for the synthesizer alone).
pub fn record(index: usize, task: &Task, program: &[Token], exact_of: &[Token]) -> TaskRecord {
    let score = if program.is_empty() {
        None
    } else {
        task.score(program)
    };
    let passes_given = matches!(score, Some((g, _)) if g == task.given().len());
    TaskRecord {
        index,
        guid: task.guid.clone(),
        program: tokens_to_string(program),
        passes_given,
        passes_all: matches!(score, Some((_, true))),
        exact: !exact_of.is_empty() && exact_of == task.program.tokens().as_slice(),
        calls: 0,
        solved_at: passes_given.then_some(0),
        executed: 0,
        merged: 0,
        rewritten: 0,
    }
}

/// The record of a search's result for task `index`.
pub fn search_record(index: usize, task: &Task, result: &SearchResult) -> TaskRecord {
    let mut r = record(index, task, &result.program, &result.program);
    r.calls = result.calls;
    r.executed = result.executed;
    r.merged = result.merged;
    r.rewritten = result.rewritten;
    r.solved_at = r.passes_given.then_some(result.calls);
    r
}

/// The position of the configuration named `name` in the report, added empty if the report does
/// not have it yet.
fn slot(report: &mut Report, name: String, config: &Configuration) -> usize {
    let found = report.configs.iter().position(|c| c.name == name);
    found.unwrap_or_else(|| {
        report.configs.push(config.report(name));
        report.configs.len() - 1
    })
}

fn task_refs<'t>(chunk: &[(usize, &'t Task)]) -> Vec<&'t Task> {
    chunk.iter().map(|(_, t)| *t).collect()
}

fn add_time(report: &mut Report, key: &str, seconds: f64) {
    *report.timing.entry(key.to_string()).or_default() += seconds;
}

/// The synthesizer's candidates for `tasks` under `decoding`, its time added to the report's.
fn decode_timed<B: Backend>(
    backend: &B,
    models: &Models<B>,
    tasks: &[&Task],
    plan: &Plan,
    decoding: Decoding,
    report: &mut Report,
) -> Vec<Vec<Vec<Token>>> {
    let started = Instant::now();
    let config = plan.synthesis(decoding);
    let candidates = decode_tasks(
        backend,
        models.synthesizer,
        tasks,
        &config,
        plan.batch,
        |_| {},
    );
    add_time(report, "synthesizer", started.elapsed().as_secs_f64());
    candidates
}

/// Runs `plan` on `tasks` (task index and task) into `report`, which may already hold some of
/// the records (they are kept, and their chunks skipped).
pub fn evaluate<B: Backend>(
    backend: &B,
    models: &Models<B>,
    tasks: &[(usize, &Task)],
    plan: &Plan,
    report: &mut Report,
    monitor: &mut dyn Monitor,
) -> Result<()> {
    let batch = plan.batch.max(1);
    let budget = plan.search.steps;
    let chunks: Vec<&[(usize, &Task)]> = tasks.chunks(plan.chunk_len()).collect();
    let indices = |chunk: &[(usize, &Task)]| chunk.iter().map(|(i, _)| *i).collect::<Vec<_>>();

    // The synthesizer alone and each search after it, for every decoding.
    let columns: Vec<(Decoding, Vec<usize>)> = plan
        .decodings
        .iter()
        .map(|&decoding| {
            let alone = Configuration {
                decoding,
                search: None,
                steps: 0,
            };
            let mut slots = vec![slot(report, alone.name(), &alone)];
            for &method in &plan.searches {
                let searched = Configuration {
                    decoding,
                    search: Some(method),
                    steps: if method.uses_debugger() { budget } else { 0 },
                };
                slots.push(slot(report, searched.name(), &searched));
            }
            (decoding, slots)
        })
        .collect();
    let units = tasks.len() * columns.iter().map(|(_, s)| s.len()).sum::<usize>();
    monitor.begin("task evaluations", units);
    for (decoding, slots) in &columns {
        for chunk in &chunks {
            let covered = indices(chunk);
            if slots.iter().all(|&c| report.configs[c].covers(&covered)) {
                monitor.advance(chunk.len() * slots.len());
                continue;
            }
            let chunk_tasks = task_refs(chunk);
            let candidates = decode_timed(backend, models, &chunk_tasks, plan, *decoding, report);
            let records = chunk
                .iter()
                .zip(&candidates)
                .map(|((i, task), c)| {
                    let answer = decoding.answer(task, c);
                    let top = c.first().cloned().unwrap_or_default();
                    record(*i, task, &answer, &top)
                })
                .collect();
            report.configs[slots[0]].put(records);
            monitor.advance(chunk.len());
            for (&method, &slot) in plan.searches.iter().zip(&slots[1..]) {
                let config = method.config(&plan.search, plan.rewrite);
                let repairer = match (models.debugger, method.uses_debugger()) {
                    (Some(debugger), true) => {
                        Some(NeuralRepairer::new(backend, debugger, &config, batch))
                    }
                    (None, true) => {
                        bail!("the plan has debugger searches but no debugger was given")
                    }
                    (_, false) => None,
                };
                let ranker = LikelihoodRanker {
                    backend,
                    synthesizer: models.synthesizer,
                    batch: batch * 8,
                };
                let networks = Networks {
                    repairer: repairer.as_ref().map(|r| r as _),
                    ranker: Some(&ranker),
                };
                let (results, timing) = run_searches(
                    networks,
                    &chunk_tasks,
                    &candidates,
                    &config,
                    batch,
                    |done| monitor.advance(done),
                );
                let name = &report.configs[slot].name;
                let keys = [
                    (format!("{name}: debugger network"), timing.network),
                    (
                        format!("{name}: execution (VM, rewrite stage, traces)"),
                        timing.execution,
                    ),
                    (format!("{name}: ranking (synthesizer)"), timing.ranking),
                ];
                for (key, seconds) in keys {
                    if seconds > 0.0 {
                        add_time(report, &key, seconds);
                    }
                }
                let records = chunk
                    .iter()
                    .zip(&results)
                    .map(|((i, task), r)| search_record(*i, task, r))
                    .collect();
                report.configs[slot].put(records);
            }
            monitor.save(report)?;
        }
    }
    monitor.end();
    if !plan.compare_beam {
        return Ok(());
    }

    // Plain beam search as wide as each debugger search's mean number of programs executed. A
    // search with the rewrite stage executes hundreds of thousands of programs on the VM, most
    // of them never decoded: a beam that wide compares nothing, so it gets none.
    let widths: Vec<(String, usize)> = columns
        .iter()
        .flat_map(|(_, slots)| plan.searches.iter().zip(&slots[1..]))
        .filter(|(method, _)| method.uses_debugger() && !method.rewrite)
        .map(|(_, &slot)| {
            let config = &report.configs[slot];
            let mean = config.summary().mean_executed;
            (config.name.clone(), mean.round().max(1.0) as usize)
        })
        .collect();
    monitor.begin("tasks decoded (plain beams)", tasks.len() * widths.len());
    for (name, width) in widths {
        let plain = Configuration {
            decoding: Decoding::Beam(width),
            search: None,
            steps: 0,
        };
        let slot = slot(
            report,
            format!("beam {width} (as many programs as {name})"),
            &plain,
        );
        for chunk in &chunks {
            if !report.configs[slot].covers(&indices(chunk)) {
                let chunk_tasks = task_refs(chunk);
                let candidates =
                    decode_timed(backend, models, &chunk_tasks, plan, plain.decoding, report);
                let records = chunk
                    .iter()
                    .zip(&candidates)
                    .map(|((i, task), c)| {
                        let answer = plain.decoding.answer(task, c);
                        let mut r = record(*i, task, &answer, c.first().map_or(&[][..], |b| b));
                        r.executed = c.len();
                        r
                    })
                    .collect();
                report.configs[slot].put(records);
                monitor.save(report)?;
            }
            monitor.advance(chunk.len());
        }
    }
    monitor.end();
    Ok(())
}
