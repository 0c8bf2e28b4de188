//! Integration tests, one binary with a module per topic. Inputs live in `tests/data/`; the
//! reference corpora there are gzipped copies of the corpora made with the original Python code.

mod cli;
mod common;
mod conformance;
mod data;
mod gpu;
mod lang;
mod layers;
mod models;
mod nn;
mod props;
mod regressions;
mod robustness;
mod search;
mod strategies;
mod torch_parity;
mod train;
mod vm;
