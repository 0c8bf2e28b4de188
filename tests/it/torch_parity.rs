//! Parity with PyTorch: the fixtures of `tests/data/torch/` (written by
//! `scripts/torch_fixtures.py`) recomputed with the CPU backend in f32. The error of a tensor is
//! `max |ours − torch| / max |torch|`; it must stay under 1e-5 for single operations and 1e-4 for
//! the composite IO encoder + LSTM stack.

use std::collections::HashMap;

use karel::model::io_encoder::{IoEncoder, IoEncoderConfig};
use karel::nn::layers::{BatchNorm2d, Embedding, Linear, Lstm};
use karel::nn::param::Module;
use karel::nn::{Backend, CpuBackend};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::SafeTensors;

use crate::common::data_path;

type B = CpuBackend<f32>;

struct Fixture(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Fixture {
    fn load(name: &str) -> Fixture {
        let bytes = std::fs::read(data_path(&format!("torch/{name}.safetensors"))).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        Fixture(
            file.tensors()
                .into_iter()
                .map(|(k, v)| {
                    let values = v
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    (k, (v.shape().to_vec(), values))
                })
                .collect(),
        )
    }

    fn tensor(&self, b: &B, name: &str) -> <B as Backend>::Tensor {
        let (shape, values) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no `{name}`"));
        b.tensor_f32(shape, values)
    }

    fn values(&self, name: &str) -> &[f32] {
        &self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no `{name}`"))
            .1
    }

    fn ids(&self, name: &str) -> Vec<u32> {
        self.values(name).iter().map(|&v| v as u32).collect()
    }
}

#[track_caller]
fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tolerance: f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let scale = theirs
        .iter()
        .fold(0.0f64, |m, &v| m.max(v.abs() as f64))
        .max(1e-12);
    let error = ours
        .iter()
        .zip(theirs)
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()))
        / scale;
    assert!(
        error < tolerance,
        "{what}: relative error {error:e} (tolerance {tolerance:e})"
    );
}

/// Copies the fixture's tensors into a module's parameters, the names mapped by `rename`.
fn load_params(b: &B, module: &mut impl Module<B>, f: &Fixture, rename: impl Fn(&str) -> String) {
    module.visit_params("", &mut |name, p| p.value = f.tensor(b, &rename(name)));
}

/// Compares every parameter gradient of a module with the fixture's.
fn check_grads(
    b: &B,
    module: &mut impl Module<B>,
    f: &Fixture,
    rename: impl Fn(&str) -> String,
    tolerance: f64,
) {
    let mut checked = 0;
    module.visit_params("", &mut |name, p| {
        assert_close(
            &format!("d{name}"),
            &b.to_f32(&p.grad),
            f.values(&format!("d{}", rename(name))),
            tolerance,
        );
        checked += 1;
    });
    assert!(checked > 0);
}

#[test]
fn convolution() {
    compare_convolution("conv");
}

/// Channel counts at which the forward pass and the input gradient go through Winograd's
/// F(2×2, 3×3).
#[test]
fn wide_convolution() {
    compare_convolution("conv_wide");
}

fn compare_convolution(fixture: &str) {
    let (b, f) = (B::new(), Fixture::load(fixture));
    let (x, w) = (f.tensor(&b, "x"), f.tensor(&b, "weight"));
    assert_close(
        "y",
        &b.to_f32(&b.conv3x3(&x, &w, &f.tensor(&b, "bias"))),
        f.values("y"),
        1e-5,
    );
    let (dx, dw, db) = b.conv3x3_backward(&x, &w, &f.tensor(&b, "r"), true);
    assert_close("dx", &b.to_f32(&dx.unwrap()), f.values("dx"), 1e-5);
    assert_close("dweight", &b.to_f32(&dw), f.values("dweight"), 1e-5);
    assert_close("dbias", &b.to_f32(&db), f.values("dbias"), 1e-5);
}

#[test]
fn batch_norm() {
    let (b, f) = (B::new(), Fixture::load("batchnorm"));
    let mut bn = BatchNorm2d::new(&b, 4);
    bn.weight.value = f.tensor(&b, "weight");
    bn.bias.value = f.tensor(&b, "bias");
    let x = f.tensor(&b, "x");
    let (y, saved) = bn.forward_train(&b, &x);
    assert_close("y", &b.to_f32(&y), f.values("y"), 1e-5);
    let dx = bn.backward(&b, &x, &saved, &f.tensor(&b, "r"));
    assert_close("dx", &b.to_f32(&dx), f.values("dx"), 1e-5);
    assert_close(
        "dweight",
        &b.to_f32(&bn.weight.grad),
        f.values("dweight"),
        1e-5,
    );
    assert_close("dbias", &b.to_f32(&bn.bias.grad), f.values("dbias"), 1e-5);
    assert_close(
        "running_mean",
        &b.to_f32(&bn.running_mean),
        f.values("running_mean"),
        1e-5,
    );
    assert_close(
        "running_var",
        &b.to_f32(&bn.running_var),
        f.values("running_var"),
        1e-5,
    );
    assert_close(
        "y_eval",
        &b.to_f32(&bn.forward_eval(&b, &x)),
        f.values("y_eval"),
        1e-5,
    );
}

#[test]
fn linear_and_embedding() {
    let (b, f) = (B::new(), Fixture::load("linear"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut lin = Linear::new(&b, 7, 3, true, &mut rng);
    load_params(&b, &mut lin, &f, |n| n.to_string());
    let x = f.tensor(&b, "x");
    let y = b.relu(&lin.forward(&b, &x));
    assert_close("y", &b.to_f32(&y), f.values("y"), 1e-5);
    let dy = b.relu_backward(&y, &f.tensor(&b, "r"));
    let dx = lin.backward(&b, &x, &dy, true).unwrap();
    assert_close("dx", &b.to_f32(&dx), f.values("dx"), 1e-5);
    check_grads(&b, &mut lin, &f, |n| n.to_string(), 1e-5);

    let mut emb = Embedding::new(&b, 6, 4, &mut rng);
    emb.weight.value = f.tensor(&b, "table");
    let ids = f.ids("ids");
    assert_close("e", &b.to_f32(&emb.forward(&b, &ids)), f.values("e"), 1e-5);
    emb.backward(&b, &ids, &f.tensor(&b, "re"));
    assert_close(
        "dtable",
        &b.to_f32(&emb.weight.grad),
        f.values("dtable"),
        1e-5,
    );
}

/// Splits a `[T, B, …]` fixture tensor into one `[B, …]` tensor per step.
fn steps(b: &B, f: &Fixture, name: &str) -> Vec<<B as Backend>::Tensor> {
    let (shape, values) = &f.0[name];
    let per = values.len() / shape[0];
    (0..shape[0])
        .map(|t| b.tensor_f32(&shape[1..], &values[t * per..(t + 1) * per]))
        .collect()
}

#[test]
fn bidirectional_lstm_with_packed_sequences() {
    let (b, f) = (B::new(), Fixture::load("lstm"));
    let mut lstm = Lstm::new(&b, 6, 5, 2, true, &mut ChaCha8Rng::seed_from_u64(0));
    load_params(&b, &mut lstm, &f, |n| n.to_string());
    let lengths: Vec<usize> = f.ids("lengths").iter().map(|&l| l as usize).collect();
    let (out, cache) = lstm.forward(&b, &steps(&b, &f, "x"), &lengths);
    let y: Vec<f32> = out.outputs.iter().flat_map(|t| b.to_f32(t)).collect();
    assert_close("y", &y, f.values("y"), 1e-5);
    assert_close("h_n", &b.to_f32(&out.h_n), f.values("h_n"), 1e-5);
    assert_close("c_n", &b.to_f32(&out.c_n), f.values("c_n"), 1e-5);
    let dx = lstm.backward(
        &b,
        &cache,
        &steps(&b, &f, "r"),
        Some(&f.tensor(&b, "rh")),
        Some(&f.tensor(&b, "rc")),
        true,
    );
    let dx: Vec<f32> = dx.iter().flat_map(|t| b.to_f32(t)).collect();
    assert_close("dx", &dx, f.values("dx"), 1e-5);
    check_grads(&b, &mut lstm, &f, |n| n.to_string(), 1e-5);
}

#[test]
fn losses_max_and_log_softmax() {
    let (b, f) = (B::new(), Fixture::load("losses"));
    let logits = f.tensor(&b, "logits");
    let targets: Vec<u32> = f
        .values("targets")
        .iter()
        .map(|&t| if t < 0.0 { u32::MAX } else { t as u32 })
        .collect();
    let mask: Vec<bool> = f.values("mask").iter().map(|&m| m > 0.5).collect();
    let (loss, grad, counted) = b.cross_entropy(&logits, &targets, u32::MAX, Some(&mask));
    assert_eq!(counted, 5);
    assert_close("loss", &[loss as f32], f.values("loss"), 1e-5);
    assert_close("dlogits", &b.to_f32(&grad), f.values("dlogits"), 1e-5);
    assert_close(
        "log_softmax",
        &b.to_f32(&b.log_softmax(&logits)),
        f.values("log_softmax"),
        1e-5,
    );
    let g = f.tensor(&b, "g");
    let (m, argmax) = b.max_groups(&g, 3);
    assert_close("max", &b.to_f32(&m), f.values("max"), 1e-5);
    let dg = b.max_groups_backward(&f.tensor(&b, "rmax"), &argmax, 12);
    assert_close("dg", &b.to_f32(&dg), f.values("dg"), 1e-5);
}

#[test]
fn io_encoder_and_lstm_stack() {
    let (b, f) = (B::new(), Fixture::load("composite"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let config = IoEncoderConfig {
        grid_channels: 3,
        conv_channels: 2,
        height: 5,
        width: 5,
        output: 6,
    };
    let mut encoder = IoEncoder::new(&b, config, &mut rng);
    let mut embedding = Embedding::new(&b, 7, 4, &mut rng);
    let mut lstm = Lstm::new(&b, 10, 5, 2, false, &mut rng);
    let enc_name = |n: &str| format!("encoder.{n}");
    let emb_name = |n: &str| format!("embedding.{n}");
    let lstm_name = |n: &str| format!("lstm.{n}");
    load_params(&b, &mut encoder, &f, enc_name);
    load_params(&b, &mut embedding, &f, emb_name);
    load_params(&b, &mut lstm, &f, lstm_name);

    // Forward: one embedding per pair, max over the 4 pairs, concatenated to every token.
    let (io, io_cache) = encoder.forward(&b, &f.tensor(&b, "inputs"), &f.tensor(&b, "outputs"));
    assert_close("io", &b.to_f32(&io), f.values("io"), 1e-4);
    let (pooled, argmax) = b.max_groups(&io, 4);
    let tokens = f.ids("tokens");
    let lengths: Vec<usize> = f.ids("lengths").iter().map(|&l| l as usize).collect();
    let (t_steps, batch) = (4, 3);
    let pooled_rows = b.gather_rows(&pooled, &vec![0; batch]);
    let token_steps: Vec<_> = (0..t_steps)
        .map(|t| tokens[t * batch..(t + 1) * batch].to_vec())
        .collect();
    let inputs: Vec<_> = token_steps
        .iter()
        .map(|ids| b.concat(&[&embedding.forward(&b, ids), &pooled_rows], 1))
        .collect();
    let (out, cache) = lstm.forward(&b, &inputs, &lengths);
    let y: Vec<f32> = out.outputs.iter().flat_map(|t| b.to_f32(t)).collect();
    assert_close("y", &y, f.values("y"), 1e-4);
    assert_close("h_n", &b.to_f32(&out.h_n), f.values("h_n"), 1e-4);

    // Backward through the whole stack.
    let d_inputs = lstm.backward(
        &b,
        &cache,
        &steps(&b, &f, "r"),
        Some(&f.tensor(&b, "rh")),
        None,
        true,
    );
    let mut d_pooled_rows = b.zeros(&[batch, 6]);
    for (ids, d) in token_steps.iter().zip(&d_inputs) {
        embedding.backward(&b, ids, &b.slice(d, 1, 0, 4));
        b.add_assign(&mut d_pooled_rows, &b.slice(d, 1, 4, 6));
    }
    let d_pooled = b.scatter_add_rows(&d_pooled_rows, &vec![0; batch], 1);
    let d_io = b.max_groups_backward(&d_pooled, &argmax, 4);
    encoder.backward(&b, &io_cache, &d_io);
    check_grads(&b, &mut lstm, &f, lstm_name, 1e-4);
    check_grads(&b, &mut embedding, &f, emb_name, 1e-4);
    check_grads(&b, &mut encoder, &f, enc_name, 1e-4);
}

/// A one-tensor module for optimiser tests.
struct Single(karel::nn::Param<B>);

impl Module<B> for Single {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut karel::nn::Param<B>)) {
        f(&karel::nn::param::join(prefix, "p"), &mut self.0);
    }
}

#[test]
fn optimisers_and_clipping() {
    use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
    let (b, f) = (B::new(), Fixture::load("optim"));
    let cases = [
        ("adam", OptimizerConfig::adam()),
        (
            "adamw",
            OptimizerConfig::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.1,
            },
        ),
        ("sgd_clip", OptimizerConfig::Sgd),
    ];
    for (name, config) in cases {
        let mut module = Single(karel::nn::Param::new(&b, f.tensor(&b, "start")));
        let mut optimizer = Optimizer::new(config);
        let lr = if name == "sgd_clip" { 0.5 } else { 0.01 };
        for i in 0..3 {
            module.0.grad = f.tensor(&b, &format!("grad{i}"));
            if name == "sgd_clip" {
                clip_grad_norm(&b, &mut module, 1.0);
            }
            optimizer.update(&b, &mut module, lr);
        }
        assert_close(name, &b.to_f32(&module.0.value), f.values(name), 1e-5);
    }
}
