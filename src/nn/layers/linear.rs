//! Fully connected layer `y = x · Wᵀ + b` (`nn.Linear`, weight `[out, in]`).

use rand::Rng;

use crate::nn::backend::Backend;
use crate::nn::param::{join, uniform, Module, Param};

#[derive(Clone, Debug)]
pub struct Linear<B: Backend> {
    /// `[out, in]`.
    pub weight: Param<B>,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Param<B>>,
}

impl<B: Backend> Linear<B> {
    /// PyTorch's default initialisation: uniform in ±1/√in.
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        inputs: usize,
        outputs: usize,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        let bound = 1.0 / (inputs as f64).sqrt();
        let weight = Param::new(backend, uniform(backend, &[outputs, inputs], bound, rng));
        let bias = bias.then(|| Param::new(backend, uniform(backend, &[outputs], bound, rng)));
        Linear { weight, bias }
    }

    /// `x [N, in]` to `[N, out]`.
    pub fn forward(&self, backend: &B, x: &B::Tensor) -> B::Tensor {
        let mut y = backend.matmul(x, &self.weight.value, false, true);
        if let Some(bias) = &self.bias {
            backend.add_bias(&mut y, &bias.value);
        }
        y
    }

    /// Accumulates the parameter gradients; returns `dx` if `input_grad`.
    pub fn backward(
        &mut self,
        backend: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        input_grad: bool,
    ) -> Option<B::Tensor> {
        backend.matmul_acc(&mut self.weight.grad, dy, x, true, false);
        if let Some(bias) = &mut self.bias {
            let db = backend.sum_rows(dy);
            backend.add_assign(&mut bias.grad, &db);
        }
        input_grad.then(|| backend.matmul(dy, &self.weight.value, false, false))
    }
}

impl<B: Backend> Module<B> for Linear<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(bias) = &mut self.bias {
            f(&join(prefix, "bias"), bias);
        }
    }
}
