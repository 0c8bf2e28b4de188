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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::convolution_is_direct;

    /// Every convolution of the `tiny` models takes the CPU backend's direct path, as in the
    /// build that began the training runs of `models/README.md`, so that later builds train
    /// them to the same bits.
    #[test]
    fn every_convolution_of_the_tiny_models_is_direct() {
        let synthesizer = Preset::Tiny.synthesizer();
        let debugger = Preset::Tiny.debugger(true);
        for io in [synthesizer.io, debugger.io] {
            assert!(convolution_is_direct(io.grid_channels, io.conv_channels));
            assert!(convolution_is_direct(
                2 * io.conv_channels,
                2 * io.conv_channels
            ));
        }
        let trace = debugger.trace.expect("the tiny debugger has TraceEmbed");
        let grid = debugger.io.grid_channels;
        // The first convolution in two parts: input ‖ output once per pair, the state per state.
        assert!(convolution_is_direct(2 * grid, trace.channels));
        assert!(convolution_is_direct(grid, trace.channels));
        assert!(convolution_is_direct(trace.channels, trace.channels));
        // The paper's sizes are wider: 15 → 32 stays on the other paths.
        let paper = Preset::Paper.synthesizer().io;
        assert!(!convolution_is_direct(
            paper.grid_channels,
            paper.conv_channels
        ));
    }
}
