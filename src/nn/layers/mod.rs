//! Layers with parameters, written against [`Backend`](super::Backend): each has a forward pass
//! that returns what its backward pass needs, and a backward pass that accumulates the parameter
//! gradients and returns the input gradient.

mod batchnorm;
mod conv;
mod embedding;
mod linear;
mod lstm;

pub use batchnorm::BatchNorm2d;
pub use conv::Conv2d;
pub use embedding::Embedding;
pub use linear::Linear;
pub use lstm::{Lstm, LstmCache, LstmOutput, LstmState, LstmStepper};
