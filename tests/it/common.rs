//! Helpers shared by the integration tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;

/// Path of a file in `tests/data/`.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The JSON records of a gzipped JSON-lines file in `tests/data/`.
pub fn read_jsonl_gz(name: &str) -> Vec<serde_json::Value> {
    let file = std::fs::File::open(data_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    BufReader::new(GzDecoder::new(file))
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1));
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1))
        })
        .collect()
}

/// Checks the accumulated gradients of `model` against central finite differences of `loss`
/// (f64), at `per_param` evenly spaced coordinates of every parameter.
pub fn check_model_gradients<M>(
    model: &mut M,
    per_param: usize,
    label: &str,
    mut loss: impl FnMut(&mut M) -> f64,
) where
    M: karel::nn::Module<karel::nn::CpuBackend<f64>> + Clone,
{
    use karel::nn::Backend;
    let b = karel::nn::CpuBackend::<f64>::new();
    let mut params = Vec::new();
    model.visit_params("", &mut |name, p| {
        params.push((
            name.to_string(),
            b.shape(&p.value),
            b.to_f64(&p.value),
            b.to_f64(&p.grad),
        ))
    });
    for (name, shape, value, grad) in params {
        for i in (0..value.len()).step_by((value.len() / per_param).max(1)) {
            let mut loss_at = |delta: f64| {
                let mut copy = model.clone();
                copy.visit_params("", &mut |n, p| {
                    if n == name {
                        let mut v = value.clone();
                        v[i] += delta;
                        p.value = b.tensor_f64(&shape, &v);
                    }
                });
                loss(&mut copy)
            };
            let numeric = (loss_at(1e-6) - loss_at(-1e-6)) / 2e-6;
            assert!(
                (numeric - grad[i]).abs() <= 1e-6 * numeric.abs().max(1.0),
                "{label}{name}[{i}]: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }
}
