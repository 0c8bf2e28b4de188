//! Named model sizes and parameter summaries (`karel model summary`).
//!
//! - `paper`: SED's sizes (synthesizer 12,446,592 parameters; debugger 21,990,016 with
//!   TraceEmbed, 15,908,736 without);
//! - `tiny`: narrow convolutions and 64-wide LSTMs, small enough to train in minutes on two CPU
//!   cores (the embedded default models).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::debugger::{Debugger, DebuggerConfig};
use super::synthesizer::{Synthesizer, SynthesizerConfig};
use crate::nn::param::{count_params, Module, Param};
use crate::nn::{Backend, CpuBackend};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Paper,
    Tiny,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Tiny => "tiny",
        }
    }

    pub fn synthesizer(self) -> SynthesizerConfig {
        match self {
            Preset::Paper => SynthesizerConfig::paper(),
            Preset::Tiny => SynthesizerConfig::tiny(),
        }
    }

    pub fn debugger(self, trace: bool) -> DebuggerConfig {
        match self {
            Preset::Paper => DebuggerConfig::paper(trace),
            Preset::Tiny => DebuggerConfig::tiny(trace),
        }
    }
}

/// Parameter counts of one model: the total and per component (in parameter-name order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamSummary {
    pub total: usize,
    pub components: Vec<(String, usize)>,
}

/// Groups the parameters of `module` by component: the first name segment, or the first two for
/// the `encoder.*` and `decoder.*` parts.
pub fn summarize<B: Backend>(backend: &B, module: &mut impl Module<B>) -> ParamSummary {
    let mut components: Vec<(String, usize)> = Vec::new();
    module.visit_params("", &mut |name, p: &mut Param<B>| {
        let segments: Vec<&str> = name.split('.').collect();
        let depth = if matches!(segments[0], "encoder" | "decoder") && segments.len() > 2 {
            2
        } else {
            1
        };
        let component = segments[..depth].join(".");
        let count = p.len(backend);
        match components.last_mut() {
            Some((last, total)) if *last == component => *total += count,
            _ => components.push((component, count)),
        }
    });
    ParamSummary {
        total: count_params(backend, module),
        components,
    }
}

/// The summaries of a preset's synthesizer, debugger, and debugger without TraceEmbed.
#[derive(Clone, Debug, Serialize)]
pub struct PresetSummary {
    pub preset: Preset,
    pub synthesizer: ParamSummary,
    pub debugger: ParamSummary,
    pub debugger_no_trace_embed: ParamSummary,
}

pub fn preset_summary(preset: Preset) -> PresetSummary {
    let backend = CpuBackend::<f32>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut synthesizer = Synthesizer::new(&backend, preset.synthesizer(), &mut rng);
    let mut debugger = Debugger::new(&backend, preset.debugger(true), &mut rng);
    let mut plain = Debugger::new(&backend, preset.debugger(false), &mut rng);
    PresetSummary {
        preset,
        synthesizer: summarize(&backend, &mut synthesizer),
        debugger: summarize(&backend, &mut debugger),
        debugger_no_trace_embed: summarize(&backend, &mut plain),
    }
}
