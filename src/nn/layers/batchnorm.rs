//! Batch normalisation over `[N, C, H, W]` (`nn.BatchNorm2d`: eps 1e-5, momentum 0.1, running
//! statistics in evaluation mode, unbiased variance in the running estimate).

use crate::nn::backend::{Backend, BatchNormSaved};
use crate::nn::param::{filled, join, Module, Param};

#[derive(Clone, Debug)]
pub struct BatchNorm2d<B: Backend> {
    pub weight: Param<B>,
    pub bias: Param<B>,
    pub running_mean: B::Tensor,
    pub running_var: B::Tensor,
    /// Batches seen in training mode (PyTorch's `num_batches_tracked`).
    pub batches: u64,
    pub eps: f64,
    pub momentum: f64,
}

impl<B: Backend> BatchNorm2d<B> {
    pub fn new(backend: &B, channels: usize) -> Self {
        BatchNorm2d {
            weight: Param::new(backend, filled(backend, &[channels], 1.0)),
            bias: Param::new(backend, filled(backend, &[channels], 0.0)),
            running_mean: filled(backend, &[channels], 0.0),
            running_var: filled(backend, &[channels], 1.0),
            batches: 0,
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// Training mode: normalises with the batch statistics and updates the running ones.
    pub fn forward_train(
        &mut self,
        backend: &B,
        x: &B::Tensor,
    ) -> (B::Tensor, BatchNormSaved<B::Tensor>) {
        let (y, saved, mean, var) =
            backend.batch_norm_train(x, &self.weight.value, &self.bias.value, self.eps);
        backend.lerp_assign(&mut self.running_mean, &mean, self.momentum);
        backend.lerp_assign(&mut self.running_var, &var, self.momentum);
        self.batches += 1;
        (y, saved)
    }

    /// Evaluation mode.
    pub fn forward_eval(&self, backend: &B, x: &B::Tensor) -> B::Tensor {
        backend.batch_norm_eval(
            x,
            &self.weight.value,
            &self.bias.value,
            &self.running_mean,
            &self.running_var,
            self.eps,
        )
    }

    /// Accumulates the parameter gradients and returns `dx` (training mode).
    pub fn backward(
        &mut self,
        backend: &B,
        x: &B::Tensor,
        saved: &BatchNormSaved<B::Tensor>,
        dy: &B::Tensor,
    ) -> B::Tensor {
        let (dx, dgamma, dbeta) = backend.batch_norm_backward(x, &self.weight.value, saved, dy);
        backend.add_assign(&mut self.weight.grad, &dgamma);
        backend.add_assign(&mut self.bias.grad, &dbeta);
        dx
    }
}

impl<B: Backend> Module<B> for BatchNorm2d<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        f(&join(prefix, "weight"), &mut self.weight);
        f(&join(prefix, "bias"), &mut self.bias);
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::Tensor)) {
        f(&join(prefix, "running_mean"), &mut self.running_mean);
        f(&join(prefix, "running_var"), &mut self.running_var);
    }
}
