//! Parameters, their gradients, named traversal, and PyTorch's default initialisation.

use rand::{Rng, RngExt};

use super::backend::Backend;

/// A trainable tensor and its accumulated gradient.
#[derive(Clone, Debug)]
pub struct Param<B: Backend> {
    pub value: B::Tensor,
    pub grad: B::Tensor,
}

impl<B: Backend> Param<B> {
    pub fn new(backend: &B, value: B::Tensor) -> Param<B> {
        let grad = backend.zeros(&backend.shape(&value));
        Param { value, grad }
    }

    /// Number of elements.
    pub fn len(&self, backend: &B) -> usize {
        backend.shape(&self.value).iter().product()
    }

    pub fn is_empty(&self, backend: &B) -> bool {
        self.len(backend) == 0
    }
}

/// What a module exposes for checkpoints and optimisers: its parameters and its buffers (state
/// that is saved but not trained, such as BatchNorm's running statistics), by name.
///
/// Names follow PyTorch's `state_dict` keys (`encoder.conv1.weight`, `lstm.weight_ih_l0_reverse`,
/// `bn.running_mean`), so that weights move between the two with a plain rename map at most.
pub trait Module<B: Backend> {
    /// Calls `f` with every parameter and its full name.
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>));

    /// Calls `f` with every buffer and its full name.
    fn visit_buffers(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut B::Tensor)) {}
}

/// Joins a prefix and a name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Sets every gradient of `module` to zero.
pub fn zero_grads<B: Backend>(backend: &B, module: &mut impl Module<B>) {
    module.visit_params("", &mut |_, p| {
        p.grad = backend.zeros(&backend.shape(&p.value))
    });
}

/// Number of trainable parameters of `module`.
pub fn count_params<B: Backend>(backend: &B, module: &mut impl Module<B>) -> usize {
    let mut total = 0;
    module.visit_params("", &mut |_, p| total += p.len(backend));
    total
}

/// A tensor of `shape` with values uniform in `[-bound, bound)`, as PyTorch's
/// `kaiming_uniform_(a=√5)` (bound `1/√fan_in` for weights) and its bias initialisation.
pub fn uniform<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    shape: &[usize],
    bound: f64,
    rng: &mut R,
) -> B::Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) * bound)
        .collect();
    backend.tensor_f64(shape, &values)
}

/// A tensor of standard normal values (PyTorch's `Embedding` initialisation).
pub fn normal<B: Backend, R: Rng + ?Sized>(backend: &B, shape: &[usize], rng: &mut R) -> B::Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| {
            // Box–Muller.
            let u1 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    backend.tensor_f64(shape, &values)
}

/// A tensor filled with `value`.
pub fn filled<B: Backend>(backend: &B, shape: &[usize], value: f64) -> B::Tensor {
    let n: usize = shape.iter().product();
    backend.tensor_f64(shape, &vec![value; n])
}
