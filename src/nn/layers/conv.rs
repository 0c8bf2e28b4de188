//! 3×3 convolution, padding 1, stride 1 (`nn.Conv2d(c_in, c_out, 3, padding=1)`).

use rand::Rng;

use crate::nn::backend::Backend;
use crate::nn::param::{join, uniform, Module, Param};

#[derive(Clone, Debug)]
pub struct Conv2d<B: Backend> {
    /// `[out, in, 3, 3]`.
    pub weight: Param<B>,
    /// `[out]`.
    pub bias: Param<B>,
}

impl<B: Backend> Conv2d<B> {
    /// PyTorch's default initialisation: weights and bias uniform in ±1/√(in·9).
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        in_channels: usize,
        out_channels: usize,
        rng: &mut R,
    ) -> Self {
        let bound = 1.0 / ((in_channels * 9) as f64).sqrt();
        Conv2d {
            weight: Param::new(
                backend,
                uniform(backend, &[out_channels, in_channels, 3, 3], bound, rng),
            ),
            bias: Param::new(backend, uniform(backend, &[out_channels], bound, rng)),
        }
    }

    /// `x [N, in, H, W]` to `[N, out, H, W]`.
    pub fn forward(&self, backend: &B, x: &B::Tensor) -> B::Tensor {
        backend.conv3x3(x, &self.weight.value, &self.bias.value)
    }

    /// `relu(forward(x))`, fused where the backend can.
    pub fn forward_relu(&self, backend: &B, x: &B::Tensor) -> B::Tensor {
        backend.conv3x3_relu(x, &self.weight.value, &self.bias.value)
    }

    /// The backward pass of [`Conv2d::forward_relu`], from its output `y` and the gradient `dy`
    /// of that output: accumulates the parameter gradients; returns `dx` if `input_grad`.
    pub fn backward_relu(
        &mut self,
        backend: &B,
        x: &B::Tensor,
        y: &B::Tensor,
        dy: &B::Tensor,
        input_grad: bool,
    ) -> Option<B::Tensor> {
        let (dx, dw, db) = backend.conv3x3_relu_backward(x, &self.weight.value, y, dy, input_grad);
        backend.add_assign(&mut self.weight.grad, &dw);
        backend.add_assign(&mut self.bias.grad, &db);
        dx
    }

    /// Accumulates the parameter gradients; returns `dx` if `input_grad`.
    pub fn backward(
        &mut self,
        backend: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        input_grad: bool,
    ) -> Option<B::Tensor> {
        let (dx, dw, db) = backend.conv3x3_backward(x, &self.weight.value, dy, input_grad);
        backend.add_assign(&mut self.weight.grad, &dw);
        backend.add_assign(&mut self.bias.grad, &db);
        dx
    }
}

impl<B: Backend> Module<B> for Conv2d<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        f(&join(prefix, "weight"), &mut self.weight);
        f(&join(prefix, "bias"), &mut self.bias);
    }
}
