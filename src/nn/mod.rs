//! The neural engine: a backend abstraction with hand-written forward and backward passes, the
//! CPU (ndarray) backend that is the numerical reference, layers, optimisers and checkpoints.
//!
//! - [`backend`]: the [`Backend`] trait and its tensor layouts;
//! - [`cpu`]: [`CpuBackend`], generic over `f32` (training) and `f64` (gradient checks);
//! - [`param`]: parameters, named traversal ([`Module`]), PyTorch's default initialisation;
//! - [`layers`]: convolution, batch normalisation, linear, embedding, LSTM;
//! - [`optim`]: SGD, Adam/AdamW, gradient clipping, the step-decay schedule;
//! - [`checkpoint`]: safetensors checkpoints with model, optimiser and RNG state.

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod layers;
pub mod optim;
pub mod param;

pub use backend::{AdamStep, Backend, BatchNormSaved, SparseRows};
pub use cpu::CpuBackend;
pub use param::{count_params, zero_grads, Module, Param};
