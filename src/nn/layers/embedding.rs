//! Embedding table (`nn.Embedding`, weight `[vocabulary, dim]`).

use rand::Rng;

use crate::nn::backend::Backend;
use crate::nn::param::{join, normal, Module, Param};

#[derive(Clone, Debug)]
pub struct Embedding<B: Backend> {
    pub weight: Param<B>,
    pub vocabulary: usize,
}

impl<B: Backend> Embedding<B> {
    /// PyTorch's default initialisation: standard normal.
    pub fn new<R: Rng + ?Sized>(backend: &B, vocabulary: usize, dim: usize, rng: &mut R) -> Self {
        Embedding {
            weight: Param::new(backend, normal(backend, &[vocabulary, dim], rng)),
            vocabulary,
        }
    }

    /// The rows of `ids`: `[ids.len(), dim]`.
    pub fn forward(&self, backend: &B, ids: &[u32]) -> B::Tensor {
        backend.gather_rows(&self.weight.value, ids)
    }

    /// Accumulates the table gradient.
    pub fn backward(&mut self, backend: &B, ids: &[u32], dy: &B::Tensor) {
        let grad = backend.scatter_add_rows(dy, ids, self.vocabulary);
        backend.add_assign(&mut self.weight.grad, &grad);
    }
}

impl<B: Backend> Module<B> for Embedding<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        f(&join(prefix, "weight"), &mut self.weight);
    }
}
