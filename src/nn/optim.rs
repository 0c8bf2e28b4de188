//! Optimisers and training utilities: SGD (the paper's), Adam and AdamW, global-norm gradient
//! clipping, and SED's step-decay learning-rate schedule.

use serde::{Deserialize, Serialize};

use super::backend::{AdamStep, Backend};
use super::param::Module;

/// `lr · rate^⌊step / every⌋` (SED: `lr_decay_steps = 100000`, `lr_decay_rate = 0.5`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepDecay {
    pub lr: f64,
    pub every: u64,
    pub rate: f64,
}

impl StepDecay {
    pub fn at(&self, step: u64) -> f64 {
        self.lr * self.rate.powi((step / self.every.max(1)) as i32)
    }
}

/// The global L2 norm of all gradients of `module`.
pub fn grad_norm<B: Backend>(backend: &B, module: &mut impl Module<B>) -> f64 {
    let mut total = 0.0;
    module.visit_params("", &mut |_, p| total += backend.sum_squares(&p.grad));
    total.sqrt()
}

/// Scales all gradients so that their global norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Returns the norm before.
pub fn clip_grad_norm<B: Backend>(backend: &B, module: &mut impl Module<B>, max_norm: f64) -> f64 {
    let norm = grad_norm(backend, module);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit_params("", &mut |_, p| backend.scale(&mut p.grad, factor));
    }
    norm
}

/// Which optimiser, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Plain SGD, no momentum (SED's `--optimizer sgd`).
    Sgd,
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    pub fn adam() -> OptimizerConfig {
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// An optimiser with its state: Adam's moments by parameter name, and the step count.
#[derive(Clone, Debug)]
pub struct Optimizer<B: Backend> {
    pub config: OptimizerConfig,
    pub step: u64,
    /// `(m, v)` per parameter, in traversal order (empty for SGD).
    pub moments: Vec<(String, B::Tensor, B::Tensor)>,
}

impl<B: Backend> Optimizer<B> {
    pub fn new(config: OptimizerConfig) -> Optimizer<B> {
        Optimizer {
            config,
            step: 0,
            moments: Vec::new(),
        }
    }

    /// Applies one update with learning rate `lr` to every parameter of `module`.
    pub fn update(&mut self, backend: &B, module: &mut impl Module<B>, lr: f64) {
        self.step += 1;
        match self.config {
            OptimizerConfig::Sgd => {
                module.visit_params("", &mut |_, p| backend.sgd_step(&mut p.value, &p.grad, lr))
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let hyper = AdamStep {
                    lr: lr as f32,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    step: self.step,
                };
                let moments = &mut self.moments;
                let mut index = 0;
                module.visit_params("", &mut |name, p| {
                    if moments.len() <= index {
                        let zeros = backend.zeros(&backend.shape(&p.value));
                        moments.push((name.to_string(), zeros.clone(), zeros));
                    }
                    let (_, m, v) = &mut moments[index];
                    backend.adam_step(&mut p.value, &p.grad, m, v, &hyper);
                    index += 1;
                });
            }
        }
    }
}
