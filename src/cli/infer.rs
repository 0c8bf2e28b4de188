//! The options `karel synthesize` and `karel eval` share: the models, the synthesizer's decoding
//! and the search after it ([`ModelArgs`], [`Decode`], [`SearchChoice`]), mapped to the search
//! layer's configurations; and their progress bars and output checks.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{values, DeviceChoice};
use crate::model::debugger::Debugger;
use crate::model::load::{load_debugger, load_synthesizer, ModelSource};
use crate::model::synthesizer::Synthesizer;
use crate::nn::Backend;
use crate::search::{
    Ranking, RewriteConfig, SearchConfig, SearchMethod, Strategy, SynthesisConfig,
};

/// A progress bar over `len` units of work named `what`.
pub(super) fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}, {{per_sec}}, eta {{eta}}"
        ))
        .expect("valid template"),
    );
    bar
}

/// How the synthesizer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Decode {
    /// One program per task ("LGRL-GD").
    Greedy,
    /// Beam search ("LGRL"); its beams, in order, are the search's start.
    Beam,
    /// Both, as separate configurations (eval only).
    Both,
}

/// Which search follows the synthesizer: any search method by its name (each strategy, each
/// with `+rewrite`, `rewrite` alone), `both` (SED's strategies, as separate configurations) or
/// `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SearchChoice {
    Method(SearchMethod),
    /// Every strategy, as separate configurations (eval only).
    Both,
    /// The synthesizer alone.
    None,
}

impl ValueEnum for SearchChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static CHOICES: OnceLock<Vec<SearchChoice>> = OnceLock::new();
        CHOICES.get_or_init(|| {
            let methods = SearchMethod::all().iter().map(|&m| SearchChoice::Method(m));
            methods
                .chain([SearchChoice::Both, SearchChoice::None])
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            SearchChoice::Method(method) => PossibleValue::new(method.name()),
            SearchChoice::Both => {
                PossibleValue::new("both").help("Every strategy, as separate configurations")
            }
            SearchChoice::None => PossibleValue::new("none").help("The synthesizer alone"),
        })
    }
}

impl SearchChoice {
    /// The default: best-first search with the rewrite stage.
    pub(super) const DEFAULT: SearchChoice =
        SearchChoice::Method(SearchMethod::with_rewrite(Strategy::BestFirst));

    pub(super) fn methods(self) -> Vec<SearchMethod> {
        match self {
            SearchChoice::Method(method) => vec![method],
            SearchChoice::Both => Strategy::ALL
                .iter()
                .map(|&s| SearchMethod::sed(s))
                .collect(),
            SearchChoice::None => vec![],
        }
    }

    /// Its name in a report's settings (`bestfirst`, `greedy+rewrite`, `rewrite`, `both`,
    /// `none`).
    fn setting(self) -> String {
        match self {
            SearchChoice::Method(SearchMethod {
                strategy: Some(strategy),
                rewrite,
            }) => {
                let name = format!("{strategy:?}").to_lowercase();
                if rewrite {
                    format!("{name}+rewrite")
                } else {
                    name
                }
            }
            SearchChoice::Method(_) => "rewrite".to_string(),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// The methods of a list of choices, each once, in the order first named.
    pub(super) fn all_methods(choices: &[SearchChoice]) -> Vec<SearchMethod> {
        let mut out: Vec<SearchMethod> = Vec::new();
        for method in choices.iter().flat_map(|c| c.methods()) {
            if !out.contains(&method) {
                out.push(method);
            }
        }
        out
    }
}

/// A ranking of the rewrite stage's programs, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RankChoice(Ranking);

impl ValueEnum for RankChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static CHOICES: OnceLock<Vec<RankChoice>> = OnceLock::new();
        CHOICES.get_or_init(|| Ranking::ALL.iter().map(|&r| RankChoice(r)).collect())
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self.0 {
            Ranking::Likelihood => "The synthesizer's log-likelihood given the examples",
            Ranking::Nearest => "Fewest rewrites from the candidate",
            Ranking::Shortest => "Fewest tokens",
        };
        Some(PossibleValue::new(self.0.name()).help(help))
    }
}

/// Options shared by `synthesize` and `eval`: models, decoding and search.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Synthesizer checkpoint [default: the built-in tiny synthesizer].
    #[arg(long, value_name = "CKPT")]
    synthesizer: Option<PathBuf>,
    /// Debugger checkpoint [default: the built-in tiny debugger].
    #[arg(long, value_name = "CKPT")]
    pub(super) debugger: Option<PathBuf>,
    /// Synthesizer beam width (with beam decoding), 1 to 1024.
    #[arg(long, default_value_t = 32, value_parser = values::width)]
    pub(super) beam: usize,
    /// Most program tokens the synthesizer writes, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = values::length_limit)]
    max_len: usize,
    /// Mask tokens that cannot continue a program while decoding (not in the original).
    #[arg(long)]
    grammar: bool,
    /// Candidates per debugger call (the debugger's beam width), 1 to 1024.
    #[arg(long, default_value_t = 64, value_parser = values::width)]
    pub(super) debugger_beam: usize,
    /// Most edit ops per debugger candidate, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = values::length_limit)]
    pub(super) max_ops: usize,
    /// Step limit of the execution traces given to the debugger, 1 to 10000.
    #[arg(long, default_value_t = 250, value_parser = values::trace_step_limit)]
    pub(super) trace_steps: u32,
    /// Merge observationally equal failing candidates (same outcomes and final worlds on the
    /// given inputs) so that no debugger call is spent twice on one behaviour (not in the
    /// original).
    #[arg(long)]
    pub(super) merge: bool,
    /// Rewrite stage: the most AST rewrites from a candidate (1 to 3).
    #[arg(long, default_value_t = RewriteConfig::default().radius, value_parser = values::rewrite_radius)]
    rewrite_radius: usize,
    /// Rewrite stage: the most programs one candidate's expansion executes, 1 to 2000000.
    #[arg(long, default_value_t = RewriteConfig::default().limit, value_parser = values::rewrite_budget)]
    rewrite_limit: usize,
    /// Rewrite stage: the most programs it executes per task, 1 to 2000000.
    #[arg(long, default_value_t = RewriteConfig::default().budget, value_parser = values::rewrite_budget)]
    rewrite_budget: usize,
    /// Rewrite stage: how the programs that pass the given examples are ranked (the first is
    /// the answer).
    #[arg(long, value_enum, default_value_t = RankChoice(RewriteConfig::default().ranking))]
    rank: RankChoice,
    /// Rewrite stage: once an answer passes the given examples, replace it by the shortest
    /// passing program within this many shrinking rewrites (removed actions, unwrapped blocks),
    /// again while one passes, executing at most --rewrite-limit programs (0 to 3; 0: off, as
    /// in the original; not in the original).
    #[arg(long, default_value_t = RewriteConfig::default().simplify, value_parser = values::simplify_radius)]
    simplify: usize,
    /// Programs (tasks) per network batch, 1 to 1024 (a debugger batch holds at most 16,384
    /// trace states: fewer programs where their traces are long).
    #[arg(long, default_value_t = 16, value_parser = values::width)]
    pub(super) batch: usize,
    /// Where the networks run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub(super) device: DeviceChoice,
    /// With --device cuda: matrix products and convolutions on the tensor cores in TF32 (f32
    /// accumulation) instead of f32.
    #[arg(long)]
    pub(super) tf32: bool,
}

impl ModelArgs {
    pub(super) fn synthesis(&self, beam: usize) -> SynthesisConfig {
        SynthesisConfig {
            beam,
            max_len: self.max_len,
            grammar: self.grammar,
        }
    }

    /// The search settings of `method` with a budget of `steps` calls.
    pub(super) fn search(&self, method: SearchMethod, steps: usize) -> SearchConfig {
        let base = SearchConfig {
            strategy: Strategy::BestFirst,
            steps,
            debugger_beam: self.debugger_beam,
            max_ops: self.max_ops,
            trace_steps: self.trace_steps,
            merge: self.merge,
            rewrite: None,
        };
        method.config(&base, self.rewrite())
    }

    /// The rewrite stage's settings.
    pub(super) fn rewrite(&self) -> RewriteConfig {
        RewriteConfig {
            radius: self.rewrite_radius,
            limit: self.rewrite_limit,
            budget: self.rewrite_budget,
            ranking: self.rank.0,
            simplify: self.simplify,
        }
    }

    pub(super) fn load_synthesizer<B: Backend>(&self, backend: &B) -> Result<Synthesizer<B>> {
        load_synthesizer(
            backend,
            ModelSource::or_default(self.synthesizer.as_deref()),
        )
    }

    pub(super) fn load_debugger<B: Backend>(&self, backend: &B) -> Result<Debugger<B>> {
        load_debugger(backend, ModelSource::or_default(self.debugger.as_deref()))
    }

    /// What identifies the models and decoding in a report (shards must agree on it).
    pub(super) fn settings(
        &self,
        decode: Decode,
        search: &[SearchChoice],
        steps: usize,
    ) -> serde_json::Value {
        let rewriting = search.iter().flat_map(|c| c.methods()).any(|m| m.rewrite);
        let search: Vec<String> = search.iter().map(|c| c.setting()).collect();
        let name = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("built-in".to_string(), |p| p.display().to_string())
        };
        let mut settings = json!({
            "synthesizer": name(&self.synthesizer),
            "debugger": name(&self.debugger),
            "decode": format!("{decode:?}").to_lowercase(),
            "beam": self.beam,
            "max_len": self.max_len,
            "grammar": self.grammar,
            "search": search.join(","),
            "steps": steps,
            "debugger_beam": self.debugger_beam,
            "max_ops": self.max_ops,
            "trace_steps": self.trace_steps,
            "merge": self.merge,
        });
        // Only with the rewrite stage, so that reports of searches without it keep their
        // settings.
        if rewriting {
            settings["rewrite"] = json!({
                "radius": self.rewrite_radius,
                "limit": self.rewrite_limit,
                "budget": self.rewrite_budget,
                "rank": self.rank.0.name(),
                "simplify": self.simplify,
            });
        }
        settings
    }
}

/// Checks the given output paths before any work.
pub(super) fn check_outputs(paths: &[(Option<&Path>, &str)]) -> Result<()> {
    for (path, option) in paths {
        if let Some(path) = path {
            super::check_output_path(path, option)?;
        }
    }
    Ok(())
}
