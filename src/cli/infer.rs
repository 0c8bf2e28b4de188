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
use crate::search::{SearchConfig, Strategy, SynthesisConfig};

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

/// Which search follows the synthesizer: any registered strategy by its name, `both` (every
/// strategy, as separate configurations) or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SearchChoice {
    Strategy(Strategy),
    /// Every strategy, as separate configurations (eval only).
    Both,
    /// The synthesizer alone.
    None,
}

impl ValueEnum for SearchChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static CHOICES: OnceLock<Vec<SearchChoice>> = OnceLock::new();
        CHOICES.get_or_init(|| {
            let strategies = Strategy::ALL.iter().map(|&s| SearchChoice::Strategy(s));
            strategies
                .chain([SearchChoice::Both, SearchChoice::None])
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            SearchChoice::Strategy(strategy) => PossibleValue::new(strategy.name()),
            SearchChoice::Both => {
                PossibleValue::new("both").help("Every strategy, as separate configurations")
            }
            SearchChoice::None => PossibleValue::new("none").help("The synthesizer alone"),
        })
    }
}

impl SearchChoice {
    /// SED's default: best-first search.
    pub(super) const BEST_FIRST: SearchChoice = SearchChoice::Strategy(Strategy::BestFirst);

    pub(super) fn strategies(self) -> Vec<Strategy> {
        match self {
            SearchChoice::Strategy(strategy) => vec![strategy],
            SearchChoice::Both => Strategy::ALL.to_vec(),
            SearchChoice::None => vec![],
        }
    }

    /// Its name in a report's settings (`bestfirst`, `greedy`, `both`, `none`).
    fn setting(self) -> String {
        match self {
            SearchChoice::Strategy(strategy) => format!("{strategy:?}").to_lowercase(),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// The strategies of a list of choices, each once, in the order first named.
    pub(super) fn all_strategies(choices: &[SearchChoice]) -> Vec<Strategy> {
        let mut out: Vec<Strategy> = Vec::new();
        for strategy in choices.iter().flat_map(|c| c.strategies()) {
            if !out.contains(&strategy) {
                out.push(strategy);
            }
        }
        out
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
    max_ops: usize,
    /// Step limit of the execution traces given to the debugger, 1 to 10000.
    #[arg(long, default_value_t = 250, value_parser = values::trace_step_limit)]
    pub(super) trace_steps: u32,
    /// Merge observationally equal failing candidates (same outcomes and final worlds on the
    /// given inputs) so that no debugger call is spent twice on one behaviour (not in the
    /// original).
    #[arg(long)]
    pub(super) merge: bool,
    /// Programs (tasks) per network batch, 1 to 1024.
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

    pub(super) fn search(&self, strategy: Strategy, steps: usize) -> SearchConfig {
        SearchConfig {
            strategy,
            steps,
            debugger_beam: self.debugger_beam,
            max_ops: self.max_ops,
            trace_steps: self.trace_steps,
            merge: self.merge,
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
        let search: Vec<String> = search.iter().map(|c| c.setting()).collect();
        let name = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("built-in".to_string(), |p| p.display().to_string())
        };
        json!({
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
        })
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
