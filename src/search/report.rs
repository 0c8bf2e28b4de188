//! Evaluation reports: one record per task and configuration, from which every number is
//! computed (the paper's Table 1, the curve over the number of edit steps K, the programs
//! executed per task), so that shards of a split merge exactly.
//!
//! A configuration is a decoding of the synthesizer (greedy, or beam search) followed either by
//! nothing (the synthesizer alone) or by an SED search with a budget of K debugger calls. The
//! curve over K' ≤ K comes from the same run: a search's trajectory does not depend on its
//! budget, so it would have succeeded within K' calls exactly when it succeeded after at most
//! K' calls (`solved_at`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::sed::SearchMethod;

/// One task under one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Position of the task in the split.
    pub index: usize,
    pub guid: String,
    /// The program returned, tokens separated by spaces (empty: none).
    pub program: String,
    /// It passes the 5 given examples.
    pub passes_given: bool,
    /// It passes all 6 examples, the held-out one included (generalization).
    pub passes_all: bool,
    /// It is the gold program, token for token.
    pub exact: bool,
    /// Debugger calls made.
    pub calls: usize,
    /// Debugger calls made before a program passing the given examples was accepted (`None`:
    /// none was).
    pub solved_at: Option<usize>,
    /// Distinct valid programs executed on the given examples.
    pub executed: usize,
    /// Candidates dropped by observational merging.
    pub merged: usize,
    /// Programs the rewrite stage executed (absent in reports of builds without it).
    #[serde(default)]
    pub rewritten: usize,
}

/// The records of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigReport {
    /// E.g. `beam 32 + best-first`.
    pub name: String,
    /// `greedy` or `beam N`.
    pub decoding: String,
    /// `best-first`, `greedy` or `none` (the synthesizer alone).
    pub search: String,
    /// Debugger-call budget K (0 without search).
    pub steps: usize,
    pub records: Vec<TaskRecord>,
}

/// Numbers of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub tasks: usize,
    /// Share of tasks whose program fails some of the 6 examples.
    pub generalization_error: f64,
    /// Share of tasks whose program is not the gold program.
    pub exact_error: f64,
    /// Mean debugger calls and programs executed per task.
    pub mean_calls: f64,
    pub mean_executed: f64,
    pub merged: usize,
    /// Mean programs the rewrite stage executed per task.
    #[serde(default)]
    pub mean_rewritten: f64,
}

fn share(count: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

impl ConfigReport {
    /// The `search` of a configuration without search (the synthesizer alone).
    pub const NO_SEARCH: &'static str = "none";

    /// Whether a search follows the synthesizer.
    pub fn has_search(&self) -> bool {
        self.search != Self::NO_SEARCH
    }

    /// Whether this is a plain beam search of the comparison at equal programs (named after the
    /// search it matches, not after its decoding).
    pub fn is_beam_comparison(&self) -> bool {
        !self.has_search() && self.name != self.decoding
    }

    /// Whether every task index of `indices` has a record.
    pub fn covers(&self, indices: &[usize]) -> bool {
        let have: std::collections::HashSet<usize> = self.records.iter().map(|r| r.index).collect();
        indices.iter().all(|i| have.contains(i))
    }

    /// Replaces the records of the tasks of `records` (by index), keeping the records in task
    /// order.
    pub fn put(&mut self, records: Vec<TaskRecord>) {
        let fresh: std::collections::HashSet<usize> = records.iter().map(|r| r.index).collect();
        self.records.retain(|r| !fresh.contains(&r.index));
        self.records.extend(records);
        self.records.sort_by_key(|r| r.index);
    }

    pub fn summary(&self) -> Summary {
        let n = self.records.len();
        let count = |f: &dyn Fn(&TaskRecord) -> bool| self.records.iter().filter(|r| f(r)).count();
        let sum = |f: &dyn Fn(&TaskRecord) -> usize| self.records.iter().map(f).sum::<usize>();
        Summary {
            name: self.name.clone(),
            tasks: n,
            generalization_error: 1.0 - share(count(&|r| r.passes_all), n),
            exact_error: 1.0 - share(count(&|r| r.exact), n),
            mean_calls: share(sum(&|r| r.calls), n),
            mean_executed: share(sum(&|r| r.executed), n),
            merged: sum(&|r| r.merged),
            mean_rewritten: share(sum(&|r| r.rewritten), n),
        }
    }

    /// Generalization and exact-match errors with a budget of `k ≤ steps` debugger calls.
    pub fn errors_at(&self, k: usize) -> (f64, f64) {
        let within = |r: &&TaskRecord| r.solved_at.is_some_and(|s| s <= k);
        let n = self.records.len();
        let general = self
            .records
            .iter()
            .filter(within)
            .filter(|r| r.passes_all)
            .count();
        let exact = self
            .records
            .iter()
            .filter(within)
            .filter(|r| r.exact)
            .count();
        (1.0 - share(general, n), 1.0 - share(exact, n))
    }
}

/// A whole evaluation (or one shard of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The split evaluated.
    pub data: String,
    /// Tasks in the split (all shards together).
    pub split_tasks: usize,
    /// `[i, n]`: this report covers the tasks whose index is `i` modulo `n`.
    pub shards: Vec<[usize; 2]>,
    /// The settings that must agree between shards (models, decoding, search).
    pub settings: serde_json::Value,
    /// The budgets K of the curve.
    pub curve_steps: Vec<usize>,
    pub configs: Vec<ConfigReport>,
    /// Wall-clock seconds, split into network and VM time where measured.
    pub seconds: f64,
    pub timing: BTreeMap<String, f64>,
    /// Every configuration has a record of every task of the shard. An unfinished report is
    /// saved while an evaluation runs, and continued with `karel eval --resume`.
    #[serde(default = "finished")]
    pub complete: bool,
    /// Computed from the records (rewritten on every save; ignored on reading).
    #[serde(default)]
    pub summaries: Vec<Summary>,
}

fn finished() -> bool {
    true
}

impl Report {
    /// Recomputes the summaries from the records.
    pub fn refresh(&mut self) {
        self.summaries = self.configs.iter().map(ConfigReport::summary).collect();
    }

    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.refresh();
        let text = serde_json::to_string_pretty(self)?;
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<Report> {
        let text = crate::fsutil::read_text(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an evaluation report", path.display()))?;
        report.refresh();
        Ok(report)
    }

    /// Merges the reports of shards of one evaluation: same split, settings and
    /// configurations, no task twice.
    pub fn merge(parts: Vec<(String, Report)>) -> Result<Report> {
        let mut parts = parts.into_iter();
        let Some((first_name, mut merged)) = parts.next() else {
            bail!("nothing to merge");
        };
        if !merged.complete {
            bail!("{first_name} is an unfinished evaluation: finish it with `karel eval --resume`");
        }
        for (name, part) in parts {
            if !part.complete {
                bail!("{name} is an unfinished evaluation: finish it with `karel eval --resume`");
            }
            if part.data != merged.data || part.split_tasks != merged.split_tasks {
                bail!(
                    "{name} evaluates {} ({} tasks), {first_name} evaluates {} ({} tasks)",
                    part.data,
                    part.split_tasks,
                    merged.data,
                    merged.split_tasks
                );
            }
            if part.settings != merged.settings || part.curve_steps != merged.curve_steps {
                bail!("{name} was made with other settings than {first_name}");
            }
            let names = |r: &Report| r.configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            if names(&part) != names(&merged) {
                bail!("{name} has other configurations than {first_name}");
            }
            for (config, other) in merged.configs.iter_mut().zip(part.configs) {
                config.records.extend(other.records);
            }
            merged.shards.extend(part.shards);
            merged.seconds += part.seconds;
            for (k, v) in part.timing {
                *merged.timing.entry(k).or_default() += v;
            }
        }
        for config in &mut merged.configs {
            config.records.sort_by_key(|r| r.index);
            if let Some(w) = config.records.windows(2).find(|w| w[0].index == w[1].index) {
                bail!(
                    "task {} ({}) is in more than one report",
                    w[0].index,
                    w[0].guid
                );
            }
        }
        merged.shards.sort();
        merged.refresh();
        Ok(merged)
    }

    /// Tasks covered, and whether that is the whole split.
    pub fn coverage(&self) -> (usize, bool) {
        let covered = self
            .configs
            .iter()
            .map(|c| c.records.len())
            .min()
            .unwrap_or(0);
        (covered, covered == self.split_tasks)
    }

    /// The report as Markdown: the Table-1-style errors, the curve over K, and the programs
    /// executed per task.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let (covered, whole) = self.coverage();
        let _ = writeln!(
            out,
            "Evaluation of `{}`: {covered} of {} tasks{}{}.\n",
            self.data,
            self.split_tasks,
            if whole { "" } else { " (partial)" },
            if self.complete {
                ""
            } else {
                "; unfinished (continue it with `karel eval --resume`)"
            }
        );
        let pct = |x: f64| format!("{:.2} %", 100.0 * x);
        // Table 1: one column per decoding, one row per search.
        let mut decodings: Vec<&str> = Vec::new();
        let mut searches: Vec<(&str, usize)> = Vec::new();
        for c in &self.configs {
            if !decodings.contains(&c.decoding.as_str()) {
                decodings.push(&c.decoding);
            }
            if !searches.contains(&(c.search.as_str(), c.steps)) {
                searches.push((&c.search, c.steps));
            }
        }
        let _ = writeln!(
            out,
            "Generalization error (exact-match error in parentheses); lower is better.\n"
        );
        let _ = writeln!(out, "| | {} |", decodings.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(decodings.len()));
        for (search, steps) in &searches {
            let label = match search.strip_suffix("+rewrite") {
                _ if *search == ConfigReport::NO_SEARCH => "synthesizer alone".to_string(),
                _ if *search == SearchMethod::REWRITE.name() => {
                    "+ rewrite stage (no debugger)".to_string()
                }
                Some(strategy) => format!("+ debugger, {strategy}, K = {steps}, + rewrite stage"),
                None => format!("+ debugger, {search}, K = {steps}"),
            };
            let cells: Vec<String> = decodings
                .iter()
                .map(|d| {
                    self.configs
                        .iter()
                        .find(|c| c.decoding == *d && c.search == *search && c.steps == *steps)
                        .map(|c| {
                            let s = c.summary();
                            format!("{} ({})", pct(s.generalization_error), pct(s.exact_error))
                        })
                        .unwrap_or_default()
                })
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        let searched: Vec<&ConfigReport> = self.configs.iter().filter(|c| c.has_search()).collect();
        if !searched.is_empty() && !self.curve_steps.is_empty() {
            let _ = writeln!(
                out,
                "\nGeneralization error against the debugger-call budget K.\n"
            );
            let heads: Vec<String> = self
                .curve_steps
                .iter()
                .map(|k| format!("K = {k}"))
                .collect();
            let _ = writeln!(out, "| | {} |", heads.join(" | "));
            let _ = writeln!(out, "|---|{}", "---|".repeat(heads.len()));
            for c in &searched {
                let cells: Vec<String> = self
                    .curve_steps
                    .iter()
                    .map(|&k| pct(c.errors_at(k).0))
                    .collect();
                let _ = writeln!(out, "| {} | {} |", c.name, cells.join(" | "));
            }
            let _ = writeln!(
                out,
                "\nMean debugger calls and programs executed per task (candidates of the search; \
                 programs the rewrite stage ran).\n"
            );
            let _ = writeln!(
                out,
                "| | calls | programs executed | merged | rewrite stage |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|");
            for c in &searched {
                let s = c.summary();
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {:.1} | {} | {:.0} |",
                    c.name, s.mean_calls, s.mean_executed, s.merged, s.mean_rewritten
                );
            }
        }
        if !self.timing.is_empty() {
            let _ = writeln!(
                out,
                "\nTime: {:.1} s in all, {:.2} s per task (all configurations).",
                self.seconds,
                self.seconds / covered.max(1) as f64
            );
            for (k, v) in &self.timing {
                let _ = writeln!(out, "- {k}: {v:.1} s");
            }
        }
        out
    }

    /// The curves over K (generalization error) of the configurations with a search.
    pub fn curves(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        self.configs
            .iter()
            .filter(|c| c.has_search())
            .map(|c| {
                let points = self
                    .curve_steps
                    .iter()
                    .map(|&k| (k as f64, 100.0 * c.errors_at(k).0))
                    .collect();
                (c.name.clone(), points)
            })
            .collect()
    }
}
