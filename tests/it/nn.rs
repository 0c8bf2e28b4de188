//! The neural engine: every backward pass against central finite differences in f64 on random
//! shapes; optimisers; checkpoints.

use karel::nn::backend::SparseRows;
use karel::nn::layers::{BatchNorm2d, Conv2d, Embedding, Linear, Lstm};
use karel::nn::param::Module;
use karel::nn::{Backend, CpuBackend};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

type B64 = CpuBackend<f64>;

fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// Compares `analytic` with central differences of `f` around `x`.
fn check_gradient(
    name: &str,
    x: &[f64],
    analytic: &[f64],
    f: impl Fn(&[f64]) -> f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(x.len(), analytic.len(), "{}: gradient length", name);
    let h = 1e-6;
    for i in 0..x.len() {
        let mut plus = x.to_vec();
        let mut minus = x.to_vec();
        plus[i] += h;
        minus[i] -= h;
        let numeric = (f(&plus) - f(&minus)) / (2.0 * h);
        let error = (numeric - analytic[i]).abs();
        let scale = numeric.abs().max(analytic[i].abs()).max(1.0);
        prop_assert!(
            error <= 1e-6 * scale,
            "{}: element {} analytic {} numeric {}",
            name,
            i,
            analytic[i],
            numeric
        );
    }
    Ok(())
}

/// `Σ y ⊙ r` for a fixed random `r`: a scalar loss whose gradient with respect to `y` is `r`.
fn weighted_sum(y: &[f64], r: &[f64]) -> f64 {
    y.iter().zip(r).map(|(a, b)| a * b).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn conv3x3_gradients(n in 1usize..3, c in 1usize..4, o in 1usize..4, h in 1usize..5, w in 1usize..5, seed in any::<u64>()) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (x, wt, bias) = (random(n * c * h * w, &mut rng), random(o * c * 9, &mut rng), random(o, &mut rng));
        let r = random(n * o * h * w, &mut rng);
        let forward = |x: &[f64], wt: &[f64], bias: &[f64]| {
            let y = b.conv3x3(&b.tensor_f64(&[n, c, h, w], x), &b.tensor_f64(&[o, c, 3, 3], wt), &b.tensor_f64(&[o], bias));
            weighted_sum(&b.to_f64(&y), &r)
        };
        let (dx, dw, db) = b.conv3x3_backward(&b.tensor_f64(&[n, c, h, w], &x), &b.tensor_f64(&[o, c, 3, 3], &wt), &b.tensor_f64(&[n, o, h, w], &r), true);
        check_gradient("conv dx", &x, &b.to_f64(&dx.unwrap()), |v| forward(v, &wt, &bias))?;
        check_gradient("conv dw", &wt, &b.to_f64(&dw), |v| forward(&x, v, &bias))?;
        check_gradient("conv db", &bias, &b.to_f64(&db), |v| forward(&x, &wt, v))?;
    }

    #[test]
    fn fused_conv3x3_relu_gradients(n in 1usize..20, c in 1usize..4, o in 1usize..4, h in 1usize..5, w in 1usize..5, seed in any::<u64>()) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (x, wt, bias) = (random(n * c * h * w, &mut rng), random(o * c * 9, &mut rng), random(o, &mut rng));
        let r = random(n * o * h * w, &mut rng);
        let (xt, wtt, biast) = (b.tensor_f64(&[n, c, h, w], &x), b.tensor_f64(&[o, c, 3, 3], &wt), b.tensor_f64(&[o], &bias));
        let y = b.conv3x3_relu(&xt, &wtt, &biast);
        let composed = b.relu(&b.conv3x3(&xt, &wtt, &biast));
        prop_assert_eq!(b.to_f64(&y), b.to_f64(&composed), "fused forward differs from conv then relu");
        let rt = b.tensor_f64(&[n, o, h, w], &r);
        let (dx, dw, db) = b.conv3x3_relu_backward(&xt, &wtt, &y, &rt, true);
        let (cdx, cdw, cdb) = b.conv3x3_backward(&xt, &wtt, &b.relu_backward(&composed, &rt), true);
        prop_assert_eq!(b.to_f64(dx.as_ref().unwrap()), b.to_f64(&cdx.unwrap()), "fused dx");
        prop_assert_eq!(b.to_f64(&dw), b.to_f64(&cdw), "fused dw");
        prop_assert_eq!(b.to_f64(&db), b.to_f64(&cdb), "fused db");
        let forward = |x: &[f64], wt: &[f64], bias: &[f64]| {
            let y = b.conv3x3_relu(&b.tensor_f64(&[n, c, h, w], x), &b.tensor_f64(&[o, c, 3, 3], wt), &b.tensor_f64(&[o], bias));
            weighted_sum(&b.to_f64(&y), &r)
        };
        // Finite differences are only meaningful away from the ReLU's kink: skip them when a
        // pre-activation is so close to 0 that a step of the check could cross it.
        let near_kink = b.to_f64(&b.conv3x3(&xt, &wtt, &biast)).iter().any(|z| z.abs() < 1e-4);
        if near_kink {
            return Ok(());
        }
        check_gradient("fused dw", &wt, &b.to_f64(&dw), |v| forward(&x, v, &bias))?;
        check_gradient("fused db", &bias, &b.to_f64(&db), |v| forward(&x, &wt, v))?;
        if n <= 2 {
            check_gradient("fused dx", &x, &b.to_f64(&dx.unwrap()), |v| forward(v, &wt, &bias))?;
        }
    }

    #[test]
    fn batch_norm_gradients(n in 1usize..4, c in 1usize..4, hw in 1usize..4, seed in any::<u64>()) {
        prop_assume!(n * hw * hw > 1);
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shape = [n, c, hw, hw];
        let (x, g, beta) = (random(n * c * hw * hw, &mut rng), random(c, &mut rng), random(c, &mut rng));
        let r = random(x.len(), &mut rng);
        let forward = |x: &[f64], g: &[f64], beta: &[f64]| {
            let (y, ..) = b.batch_norm_train(&b.tensor_f64(&shape, x), &b.tensor_f64(&[c], g), &b.tensor_f64(&[c], beta), 1e-5);
            weighted_sum(&b.to_f64(&y), &r)
        };
        let xt = b.tensor_f64(&shape, &x);
        let gt = b.tensor_f64(&[c], &g);
        let (_, saved, mean, var) = b.batch_norm_train(&xt, &gt, &b.tensor_f64(&[c], &beta), 1e-5);
        let (dx, dg, dbeta) = b.batch_norm_backward(&xt, &gt, &saved, &b.tensor_f64(&shape, &r));
        check_gradient("bn dx", &x, &b.to_f64(&dx), |v| forward(v, &g, &beta))?;
        check_gradient("bn dgamma", &g, &b.to_f64(&dg), |v| forward(&x, v, &beta))?;
        check_gradient("bn dbeta", &beta, &b.to_f64(&dbeta), |v| forward(&x, &g, v))?;
        // Evaluation with the batch's own statistics (biased variance) gives the training output.
        let count = (n * hw * hw) as f64;
        let biased: Vec<f64> = b.to_f64(&var).iter().map(|v| v * (count - 1.0) / count).collect();
        let eval = b.batch_norm_eval(&xt, &gt, &b.tensor_f64(&[c], &beta), &mean, &b.tensor_f64(&[c], &biased), 1e-5);
        let (train, ..) = b.batch_norm_train(&xt, &gt, &b.tensor_f64(&[c], &beta), 1e-5);
        for (a, e) in b.to_f64(&train).iter().zip(b.to_f64(&eval)) {
            prop_assert!((a - e).abs() < 1e-9);
        }
    }

    #[test]
    fn linear_relu_embedding_gradients(n in 1usize..4, i in 1usize..5, o in 1usize..5, vocab in 1usize..6, seed in any::<u64>()) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layer = Linear::new(&b, i, o, true, &mut rng);
        let x = random(n * i, &mut rng);
        let r = random(n * o, &mut rng);
        let (w0, b0) = (b.to_f64(&layer.weight.value), b.to_f64(&layer.bias.as_ref().unwrap().value));
        let forward = |x: &[f64], w: &[f64], bias: &[f64]| {
            let mut y = b.matmul(&b.tensor_f64(&[n, i], x), &b.tensor_f64(&[o, i], w), false, true);
            b.add_bias(&mut y, &b.tensor_f64(&[o], bias));
            weighted_sum(&b.to_f64(&b.relu(&y)), &r)
        };
        let xt = b.tensor_f64(&[n, i], &x);
        let y = b.relu(&layer.forward(&b, &xt));
        let dy = b.relu_backward(&y, &b.tensor_f64(&[n, o], &r));
        let dx = layer.backward(&b, &xt, &dy, true).unwrap();
        check_gradient("linear dx", &x, &b.to_f64(&dx), |v| forward(v, &w0, &b0))?;
        check_gradient("linear dw", &w0, &b.to_f64(&layer.weight.grad), |v| forward(&x, v, &b0))?;
        check_gradient("linear db", &b0, &b.to_f64(&layer.bias.as_ref().unwrap().grad), |v| forward(&x, &w0, v))?;

        let mut emb = Embedding::new(&b, vocab, o, &mut rng);
        let ids: Vec<u32> = (0..n + 2).map(|_| rng.random_range(0..vocab as u32)).collect();
        let r = random(ids.len() * o, &mut rng);
        let table = b.to_f64(&emb.weight.value);
        emb.backward(&b, &ids, &b.tensor_f64(&[ids.len(), o], &r));
        check_gradient("embedding", &table, &b.to_f64(&emb.weight.grad), |t| {
            weighted_sum(&b.to_f64(&b.gather_rows(&b.tensor_f64(&[vocab, o], t), &ids)), &r)
        })?;
    }

    #[test]
    fn lstm_cell_gradients(batch in 1usize..4, h in 1usize..5, seed in any::<u64>()) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (gates, c_prev) = (random(batch * 4 * h, &mut rng), random(batch * h, &mut rng));
        let (rh, rc) = (random(batch * h, &mut rng), random(batch * h, &mut rng));
        let forward = |g: &[f64], cp: &[f64]| {
            let (hs, cs, _) = b.lstm_cell(&b.tensor_f64(&[batch, 4 * h], g), &b.tensor_f64(&[batch, h], cp));
            weighted_sum(&b.to_f64(&hs), &rh) + weighted_sum(&b.to_f64(&cs), &rc)
        };
        let cpt = b.tensor_f64(&[batch, h], &c_prev);
        let (_, c, act) = b.lstm_cell(&b.tensor_f64(&[batch, 4 * h], &gates), &cpt);
        let (dg, dcp) = b.lstm_cell_backward(&act, &cpt, &c, &b.tensor_f64(&[batch, h], &rh), &b.tensor_f64(&[batch, h], &rc));
        check_gradient("lstm dgates", &gates, &b.to_f64(&dg), |v| forward(v, &c_prev))?;
        check_gradient("lstm dc_prev", &c_prev, &b.to_f64(&dcp), |v| forward(&gates, v))?;
    }

    #[test]
    fn lstm_layer_gradients(
        lengths in prop::collection::vec(0usize..4, 1..4),
        input in 1usize..4,
        hidden in 1usize..4,
        layers in 1usize..3,
        bidirectional in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let steps = lengths.iter().copied().max().unwrap_or(0).max(1);
        let batch = lengths.len();
        let mut lstm = Lstm::new(&b, input, hidden, layers, bidirectional, &mut rng);
        let dirs = lstm.directions();
        let x = random(steps * batch * input, &mut rng);
        let r = random(steps * batch * dirs * hidden, &mut rng);
        let rh = random(layers * dirs * batch * hidden, &mut rng);
        let rc = random(layers * dirs * batch * hidden, &mut rng);
        let to_steps = |x: &[f64]| -> Vec<_> {
            (0..steps).map(|t| b.tensor_f64(&[batch, input], &x[t * batch * input..(t + 1) * batch * input])).collect()
        };
        let loss = |lstm: &Lstm<B64>, x: &[f64]| {
            let (out, _) = lstm.forward(&b, &to_steps(x), &lengths);
            let ys: Vec<f64> = out.outputs.iter().flat_map(|y| b.to_f64(y)).collect();
            weighted_sum(&ys, &r) + weighted_sum(&b.to_f64(&out.h_n), &rh) + weighted_sum(&b.to_f64(&out.c_n), &rc)
        };
        let (_, cache) = lstm.forward(&b, &to_steps(&x), &lengths);
        let d_out: Vec<_> = (0..steps)
            .map(|t| b.tensor_f64(&[batch, dirs * hidden], &r[t * batch * dirs * hidden..(t + 1) * batch * dirs * hidden]))
            .collect();
        let shape = [layers * dirs, batch, hidden];
        let dx = lstm.backward(&b, &cache, &d_out, Some(&b.tensor_f64(&shape, &rh)), Some(&b.tensor_f64(&shape, &rc)), true);
        let dx: Vec<f64> = dx.iter().flat_map(|d| b.to_f64(d)).collect();
        check_gradient("lstm dx", &x, &dx, |v| loss(&lstm, v))?;
        // Every weight, by name.
        let mut names = Vec::new();
        lstm.visit_params("", &mut |name, p| names.push((name.to_string(), b.to_f64(&p.value), b.to_f64(&p.grad), b.shape(&p.value))));
        for (name, value, grad, shape) in names {
            check_gradient(&name, &value, &grad, |v| {
                let mut copy = lstm.clone();
                copy.visit_params("", &mut |n, p| if n == name { p.value = b.tensor_f64(&shape, v) });
                loss(&copy, &x)
            })?;
        }
        // Outputs past a sequence's end are zero.
        let (out, _) = lstm.forward(&b, &to_steps(&x), &lengths);
        for (t, y) in out.outputs.iter().enumerate() {
            let y = b.to_f64(y);
            for (row, &len) in lengths.iter().enumerate() {
                if t >= len {
                    prop_assert!(y[row * dirs * hidden..(row + 1) * dirs * hidden].iter().all(|&v| v == 0.0));
                }
            }
        }
    }

    #[test]
    fn max_gather_sparse_and_loss_gradients(groups in 1usize..4, size in 1usize..4, d in 1usize..4, classes in 2usize..6, seed in any::<u64>()) {
        let b = B64::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rows = groups * size;
        let x = random(rows * d, &mut rng);
        let r = random(groups * d, &mut rng);
        let xt = b.tensor_f64(&[rows, d], &x);
        let (_, argmax) = b.max_groups(&xt, size);
        let dx = b.max_groups_backward(&b.tensor_f64(&[groups, d], &r), &argmax, rows);
        check_gradient("max", &x, &b.to_f64(&dx), |v| weighted_sum(&b.to_f64(&b.max_groups(&b.tensor_f64(&[rows, d], v), size).0), &r))?;

        let picks: Vec<u32> = (0..5).map(|_| rng.random_range(0..rows as u32)).collect();
        let r = random(picks.len() * d, &mut rng);
        let dx = b.scatter_add_rows(&b.tensor_f64(&[picks.len(), d], &r), &picks, rows);
        check_gradient("gather", &x, &b.to_f64(&dx), |v| weighted_sum(&b.to_f64(&b.gather_rows(&b.tensor_f64(&[rows, d], v), &picks)), &r))?;

        let triples: Vec<(u32, u32, f32)> = (0..7).map(|_| (rng.random_range(0..3), rng.random_range(0..rows as u32), rng.random::<f32>())).collect();
        let s = SparseRows::from_triples(3, &triples);
        let r = random(3 * d, &mut rng);
        let dx = b.sparse_rows_backward(&s, &b.tensor_f64(&[3, d], &r), rows);
        check_gradient("sparse", &x, &b.to_f64(&dx), |v| weighted_sum(&b.to_f64(&b.sparse_rows(&s, &b.tensor_f64(&[rows, d], v))), &r))?;

        let logits = random(rows * classes, &mut rng);
        let targets: Vec<u32> = (0..rows).map(|i| if i % 3 == 2 { 99 } else { rng.random_range(0..classes as u32) }).collect();
        // Mask out one wrong class per row.
        let mask: Vec<bool> = (0..rows * classes).map(|k| k % classes != (targets[k / classes] as usize + 1) % classes).collect();
        let (_, grad, counted) = b.cross_entropy(&b.tensor_f64(&[rows, classes], &logits), &targets, 99, Some(&mask));
        prop_assert_eq!(counted, targets.iter().filter(|&&t| t != 99).count());
        check_gradient("cross entropy", &logits, &b.to_f64(&grad), |v| b.cross_entropy(&b.tensor_f64(&[rows, classes], v), &targets, 99, Some(&mask)).0)?;
    }
}

#[test]
fn concat_and_slice_are_inverse() {
    let b = B64::new();
    let x = b.tensor_f64(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = b.tensor_f64(&[2, 1], &[7.0, 8.0]);
    let c = b.concat(&[&x, &y], 1);
    assert_eq!(b.to_f64(&c), [1.0, 2.0, 3.0, 7.0, 4.0, 5.0, 6.0, 8.0]);
    assert_eq!(b.to_f64(&b.slice(&c, 1, 3, 1)), [7.0, 8.0]);
    assert_eq!(b.slice(&c, 1, 0, 3), x);
    let rows = b.concat(&[&x, &x], 0);
    assert_eq!(b.shape(&rows), [4, 3]);
    assert_eq!(b.slice(&rows, 0, 2, 2), x);
}

#[test]
fn batch_norm_tracks_running_statistics_like_pytorch() {
    let b = B64::new();
    let mut bn = BatchNorm2d::new(&b, 1);
    let x = b.tensor_f64(&[2, 1, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    bn.forward_train(&b, &x);
    // mean 2.5, unbiased variance 5/3; momentum 0.1 from (0, 1).
    let mean = b.to_f64(&bn.running_mean)[0];
    let var = b.to_f64(&bn.running_var)[0];
    assert!((mean - 0.25).abs() < 1e-12 && (var - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-12);
    let mut conv = Conv2d::new(&b, 3, 4, &mut ChaCha8Rng::seed_from_u64(0));
    let mut names = Vec::new();
    conv.visit_params("io.conv", &mut |n, _| names.push(n.to_string()));
    bn.visit_buffers("bn", &mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "io.conv.weight",
            "io.conv.bias",
            "bn.running_mean",
            "bn.running_var"
        ]
    );
}

mod checkpoints {
    use karel::model::io_encoder::{IoEncoder, IoEncoderConfig};
    use karel::nn::checkpoint::{self, CheckpointError, Metadata};
    use karel::nn::layers::Linear;
    use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
    use karel::nn::param::{join, zero_grads, Module, Param};
    use karel::nn::{Backend, CpuBackend};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type B = CpuBackend<f32>;

    /// A small IO encoder with a linear head, trained to predict a random target.
    struct Tiny {
        encoder: IoEncoder<B>,
        head: Linear<B>,
    }

    impl Module<B> for Tiny {
        fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
            self.encoder.visit_params(&join(prefix, "encoder"), f);
            self.head.visit_params(&join(prefix, "head"), f);
        }
    }

    fn tiny(b: &B, seed: u64) -> Tiny {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let config = IoEncoderConfig {
            grid_channels: 3,
            conv_channels: 2,
            height: 4,
            width: 4,
            output: 5,
        };
        Tiny {
            encoder: IoEncoder::new(b, config, &mut rng),
            head: Linear::new(b, 5, 3, true, &mut rng),
        }
    }

    /// One training step on a batch drawn from `data`; returns the loss.
    fn step(b: &B, model: &mut Tiny, opt: &mut Optimizer<B>, data: &mut ChaCha8Rng) -> f64 {
        let grid = |rng: &mut ChaCha8Rng| {
            let values: Vec<f32> = (0..2 * 3 * 16).map(|_| rng.random::<f32>()).collect();
            b.tensor_f32(&[2, 3, 4, 4], &values)
        };
        let (inputs, outputs) = (grid(data), grid(data));
        let targets: Vec<u32> = (0..2).map(|_| data.random_range(0..3)).collect();
        zero_grads(b, model);
        let (io, cache) = model.encoder.forward(b, &inputs, &outputs);
        let logits = model.head.forward(b, &io);
        let (loss, d_logits, _) = b.cross_entropy(&logits, &targets, u32::MAX, None);
        let d_io = model.head.backward(b, &io, &d_logits, true).unwrap();
        model.encoder.backward(b, &cache, &d_io);
        clip_grad_norm(b, model, 1.0);
        opt.update(b, model, 0.01);
        loss
    }

    fn params(b: &B, model: &mut Tiny) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        model.visit_params("", &mut |_, p| out.push(b.to_f32(&p.value)));
        out
    }

    #[test]
    fn resuming_from_a_checkpoint_continues_bit_for_bit() {
        let b = B::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");

        let mut straight = tiny(&b, 1);
        let mut opt = Optimizer::new(OptimizerConfig::adam());
        let mut data = ChaCha8Rng::seed_from_u64(99);
        let mut losses = Vec::new();
        for _ in 0..6 {
            losses.push(step(&b, &mut straight, &mut opt, &mut data));
        }
        assert!(losses[5] < losses[0], "the loss goes down: {losses:?}");

        let mut first = tiny(&b, 1);
        let mut opt = Optimizer::new(OptimizerConfig::adam());
        let mut data = ChaCha8Rng::seed_from_u64(99);
        for _ in 0..3 {
            step(&b, &mut first, &mut opt, &mut data);
        }
        let mut meta = Metadata::default();
        meta.set("rng", serde_json::to_string(&data).unwrap());
        meta.set("step", "3");
        checkpoint::save(&path, &b, &mut first, Some(&opt), &meta).unwrap();

        let mut resumed = tiny(&b, 7);
        let mut opt = Optimizer::new(OptimizerConfig::Sgd);
        let meta = checkpoint::load(&path, &b, &mut resumed, Some(&mut opt)).unwrap();
        assert_eq!(meta.get("step"), Some("3"));
        assert_eq!(opt.step, 3);
        let mut data: ChaCha8Rng = serde_json::from_str(meta.get("rng").unwrap()).unwrap();
        for _ in 3..6 {
            step(&b, &mut resumed, &mut opt, &mut data);
        }
        assert_eq!(params(&b, &mut resumed), params(&b, &mut straight));
    }

    #[test]
    fn damaged_and_mismatched_checkpoints_are_clear_errors() {
        let b = B::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let mut model = tiny(&b, 1);
        checkpoint::save(&path, &b, &mut model, None, &Metadata::default()).unwrap();
        let mut copy = tiny(&b, 2);
        checkpoint::load(&path, &b, &mut copy, None).unwrap();
        assert_eq!(params(&b, &mut copy), params(&b, &mut model));

        let bytes = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.safetensors");
        std::fs::write(&bad, &bytes[..bytes.len() - 100]).unwrap();
        let error = checkpoint::load(&bad, &b, &mut copy, None).unwrap_err();
        assert!(matches!(error, CheckpointError::Format { .. }), "{error}");
        assert!(error.to_string().contains("truncated"));
        std::fs::write(&bad, b"garbage").unwrap();
        assert!(matches!(
            checkpoint::load(&bad, &b, &mut copy, None),
            Err(CheckpointError::Format { .. })
        ));
        assert!(matches!(
            checkpoint::load(&dir.path().join("none"), &b, &mut copy, None),
            Err(CheckpointError::Io { .. })
        ));

        // A model of other sizes.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let config = IoEncoderConfig {
            grid_channels: 3,
            conv_channels: 3,
            height: 4,
            width: 4,
            output: 5,
        };
        let mut other = Tiny {
            encoder: IoEncoder::new(&b, config, &mut rng),
            head: Linear::new(&b, 5, 3, true, &mut rng),
        };
        let error = checkpoint::load(&path, &b, &mut other, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("encoder.input_encoder.weight") && error.contains("shape"),
            "{error}"
        );
        // A model without the head's bias: the file holds a tensor the model lacks.
        let mut headless = tiny(&b, 1);
        headless.head.bias = None;
        let error = checkpoint::load(&path, &b, &mut headless, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("model.head.bias") && error.contains("does not belong"),
            "{error}"
        );
        // Weights that are not finite: damaged, never loaded silently.
        let mut broken = tiny(&b, 1);
        broken.head.weight.value = b.tensor_f64(
            &b.shape(&broken.head.weight.value),
            &vec![f64::NAN; b.to_f64(&broken.head.weight.value).len()],
        );
        let nan = dir.path().join("nan.safetensors");
        checkpoint::save(&nan, &b, &mut broken, None, &Metadata::default()).unwrap();
        let error = checkpoint::load(&nan, &b, &mut copy, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("model.head.weight") && error.contains("NaN"),
            "{error}"
        );
    }
}

mod models {
    use karel::lang::Token;
    use karel::model::io_encoder::{IoEncoder, IoEncoderConfig};
    use karel::model::synthesizer::{Synthesizer, SynthesizerBatch, SynthesizerConfig};
    use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
    use karel::nn::param::{count_params, zero_grads, Module};
    use karel::nn::{Backend, CpuBackend};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn paper_parameter_counts() {
        let b = CpuBackend::<f32>::new();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut encoder = IoEncoder::new(&b, IoEncoderConfig::paper(), &mut rng);
        assert_eq!(count_params(&b, &mut encoder), 10_847_616);
        let mut synthesizer = Synthesizer::new(&b, SynthesizerConfig::paper(), &mut rng);
        assert_eq!(count_params(&b, &mut synthesizer), 12_446_592);
    }

    fn small() -> SynthesizerConfig {
        let mut config = SynthesizerConfig::tiny();
        config.io = IoEncoderConfig {
            grid_channels: 3,
            conv_channels: 2,
            height: 4,
            width: 4,
            output: 6,
        };
        config.embedding = 5;
        config.hidden = 4;
        config.pairs = 2;
        config
    }

    /// The synthesizer's backward pass against finite differences of its loss (f64).
    #[test]
    fn synthesizer_gradients() {
        let b = CpuBackend::<f64>::new();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut model = Synthesizer::new(&b, small(), &mut rng);
        let grid = |rng: &mut ChaCha8Rng| {
            let v: Vec<f64> = (0..3 * 2 * 3 * 16).map(|_| rng.random::<f64>()).collect();
            b.tensor_f64(&[6, 3, 4, 4], &v)
        };
        let batch = SynthesizerBatch {
            inputs: grid(&mut rng),
            outputs: grid(&mut rng),
            programs: vec![
                vec![Token::Def, Token::Run, Token::MOpen],
                vec![Token::Move],
                vec![
                    Token::TurnLeft,
                    Token::Move,
                    Token::PutMarker,
                    Token::MClose,
                ],
            ],
        };
        let forward = model.forward_train(&b, &batch);
        assert_eq!(forward.tokens, 3 + 1 + 1 + 1 + 4 + 1);
        model.backward(&b, forward);
        crate::common::check_model_gradients(&mut model, 3, "", |m| {
            m.forward_train(&b, &batch).loss
        });
    }

    /// A few steps on a fixed tiny dataset: the loss goes down.
    #[test]
    fn synthesizer_loss_goes_down() {
        let b = CpuBackend::<f32>::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut model = Synthesizer::new(&b, small(), &mut rng);
        let v: Vec<f32> = (0..6 * 3 * 16).map(|_| rng.random::<f32>()).collect();
        let batch = SynthesizerBatch {
            inputs: b.tensor_f32(&[6, 3, 4, 4], &v),
            outputs: b.tensor_f32(&[6, 3, 4, 4], &v),
            programs: vec![
                vec![Token::Move, Token::TurnLeft],
                vec![Token::PutMarker],
                vec![Token::Move],
            ],
        };
        let mut opt = Optimizer::new(OptimizerConfig::adam());
        let mut losses = Vec::new();
        for _ in 0..30 {
            zero_grads(&b, &mut model);
            let forward = model.forward_train(&b, &batch);
            losses.push(forward.loss);
            model.backward(&b, forward);
            clip_grad_norm(&b, &mut model, 1.0);
            opt.update(&b, &mut model, 0.05);
        }
        assert!(losses[29] < losses[0] * 0.5, "{losses:?}");
    }

    /// Training steps of the `tiny` synthesizer (large enough that the element-wise, row-wise
    /// and matrix-product loops split over threads) give the same bits on 1, 2 and 3 threads.
    #[test]
    fn training_is_independent_of_the_thread_count() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| {
                let b = CpuBackend::<f32>::new();
                let mut rng = ChaCha8Rng::seed_from_u64(9);
                let mut model = Synthesizer::new(&b, SynthesizerConfig::tiny(), &mut rng);
                let pairs = model.config.pairs;
                let tasks = 6;
                let cells = tasks * pairs * 15 * 18 * 18;
                let grid = |rng: &mut ChaCha8Rng| {
                    let v: Vec<f32> = (0..cells)
                        .map(|_| if rng.random::<f32>() < 0.1 { 1.0 } else { 0.0 })
                        .collect();
                    b.tensor_f32(&[tasks * pairs, 15, 18, 18], &v)
                };
                let programs = (0..tasks)
                    .map(|t| {
                        (0..3 + 2 * t)
                            .map(|i| [Token::Move, Token::TurnLeft, Token::PutMarker][(i + t) % 3])
                            .collect()
                    })
                    .collect();
                let batch = SynthesizerBatch {
                    inputs: grid(&mut rng),
                    outputs: grid(&mut rng),
                    programs,
                };
                let mut opt = Optimizer::new(OptimizerConfig::adam());
                let mut losses = Vec::new();
                for _ in 0..3 {
                    zero_grads(&b, &mut model);
                    let forward = model.forward_train(&b, &batch);
                    losses.push(forward.loss.to_bits());
                    model.backward(&b, forward);
                    clip_grad_norm(&b, &mut model, 1.0);
                    opt.update(&b, &mut model, 0.01);
                }
                let mut params = Vec::new();
                model.visit_params("", &mut |_, p| {
                    params.extend(b.to_f32(&p.value).iter().map(|v| v.to_bits()))
                });
                (losses, params)
            })
        };
        let one = run(1);
        assert!(!one.1.is_empty());
        assert_eq!(one, run(2), "1 and 2 threads differ");
        assert_eq!(one, run(3), "1 and 3 threads differ");
    }
}

#[test]
fn lstm_static_input_equals_concatenated_input() {
    let b = B64::new();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (batch, dynamic, fixed, hidden, steps) = (3, 2, 3, 4, 4);
    let lengths = [4, 1, 3];
    for bidirectional in [false, true] {
        let lstm = Lstm::new(&b, dynamic + fixed, hidden, 2, bidirectional, &mut rng);
        let xs: Vec<_> = (0..steps)
            .map(|_| b.tensor_f64(&[batch, dynamic], &random(batch * dynamic, &mut rng)))
            .collect();
        let s = b.tensor_f64(&[batch, fixed], &random(batch * fixed, &mut rng));
        let joined: Vec<_> = xs.iter().map(|x| b.concat(&[x, &s], 1)).collect();
        let (a, cache_a) = lstm.forward(&b, &joined, &lengths);
        let (c, cache_c) = lstm.forward_with_static(&b, &xs, Some(&s), &lengths);
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-12);
        for (ya, yc) in a.outputs.iter().zip(&c.outputs) {
            assert!(close(&b.to_f64(ya), &b.to_f64(yc)));
        }
        let d: Vec<_> = (0..steps)
            .map(|_| {
                b.tensor_f64(
                    &[batch, lstm.directions() * hidden],
                    &random(batch * lstm.directions() * hidden, &mut rng),
                )
            })
            .collect();
        let (mut la, mut lc) = (lstm.clone(), lstm.clone());
        let dx_a = la.backward(&b, &cache_a, &d, None, None, true);
        let (dx_c, ds) = lc.backward_with_static(&b, &cache_c, &d, None, None, true);
        let mut ds_expected = b.zeros(&[batch, fixed]);
        for (da, dc) in dx_a.iter().zip(&dx_c) {
            assert!(close(&b.to_f64(&b.slice(da, 1, 0, dynamic)), &b.to_f64(dc)));
            b.add_assign(&mut ds_expected, &b.slice(da, 1, dynamic, fixed));
        }
        assert!(close(&b.to_f64(&ds.unwrap()), &b.to_f64(&ds_expected)));
        let mut grads_a = Vec::new();
        la.visit_params("", &mut |_, p| grads_a.push(b.to_f64(&p.grad)));
        let mut grads_c = Vec::new();
        lc.visit_params("", &mut |_, p| grads_c.push(b.to_f64(&p.grad)));
        for (ga, gc) in grads_a.iter().zip(&grads_c) {
            assert!(close(ga, gc));
        }
    }
}

/// The CPU's whole-recurrence LSTM (blocks of sequences, longest first, finished sequences
/// skipped) gives, step by step, what the cell op gives: sequences of unsorted lengths (zero
/// included) in more rows than one block holds, in both directions, with a per-sequence offset;
/// outputs zero past each end, final states each sequence's own.
#[test]
fn lstm_run_equals_the_cell_step_by_step() {
    let b = B64::new();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (batch, hidden, steps) = (70, 3, 6);
    let lengths: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % (steps + 1)).collect();
    let gates_in = b.tensor_f64(
        &[steps * batch, 4 * hidden],
        &random(steps * batch * 4 * hidden, &mut rng),
    );
    let offset = b.tensor_f64(&[batch, 4 * hidden], &random(batch * 4 * hidden, &mut rng));
    let w_hh = b.tensor_f64(
        &[4 * hidden, hidden],
        &random(4 * hidden * hidden, &mut rng),
    );
    for reverse in [false, true] {
        let run = b.lstm_run(&gates_in, Some(&offset), &w_hh, &lengths, reverse);
        let outputs = b.to_f64(&run.outputs);
        let (h_n, c_n) = (b.to_f64(&run.h_n), b.to_f64(&run.c_n));
        for row in 0..batch {
            let mut h = b.zeros(&[1, hidden]);
            let mut c = b.zeros(&[1, hidden]);
            let order: Vec<usize> = if reverse {
                (0..steps).rev().collect()
            } else {
                (0..steps).collect()
            };
            for t in order {
                let out = &outputs[(t * batch + row) * hidden..][..hidden];
                if t >= lengths[row] {
                    assert!(out.iter().all(|&v| v == 0.0), "row {row} step {t}");
                    continue;
                }
                let mut gates = b.slice(&gates_in, 0, t * batch + row, 1);
                b.add_assign(&mut gates, &b.slice(&offset, 0, row, 1));
                b.matmul_acc(&mut gates, &h, &w_hh, false, true);
                let (h_new, c_new, _) = b.lstm_cell(&gates, &c);
                for (a, e) in out.iter().zip(b.to_f64(&h_new)) {
                    assert!((a - e).abs() < 1e-12, "row {row} step {t}: {a} vs {e}");
                }
                (h, c) = (h_new, c_new);
            }
            for (got, want) in [(&h_n, &h), (&c_n, &c)] {
                for (a, e) in got[row * hidden..][..hidden].iter().zip(b.to_f64(want)) {
                    assert!((a - e).abs() < 1e-12, "final state of row {row}");
                }
            }
        }
    }
}

/// An LSTM over an empty batch runs and differentiates to empty results.
#[test]
fn lstm_over_an_empty_batch() {
    let b = B64::new();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for bidirectional in [false, true] {
        let mut lstm = Lstm::new(&b, 2, 3, 2, bidirectional, &mut rng);
        let xs = vec![b.zeros(&[0, 2]); 3];
        let (out, cache) = lstm.forward(&b, &xs, &[]);
        assert!(out.outputs.iter().all(|o| b.shape(o)[0] == 0));
        let d = vec![b.zeros(&[0, lstm.directions() * 3]); 3];
        let dx = lstm.backward(&b, &cache, &d, None, None, true);
        assert!(dx.iter().all(|o| b.shape(o) == [0, 2]));
    }
}

/// A convolution over an empty batch has zero gradients of its kernel's and bias' shapes, on
/// every path (direct for narrow layers, Winograd and im2col for wider ones).
#[test]
fn convolution_gradients_of_an_empty_batch() {
    let b = B64::new();
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for (c, o) in [(15, 8), (16, 16), (32, 32), (20, 40)] {
        let x = b.zeros(&[0, c, 18, 18]);
        let w = b.tensor_f64(&[o, c, 3, 3], &random(o * c * 9, &mut rng));
        let dy = b.zeros(&[0, o, 18, 18]);
        let (dx, dw, db) = b.conv3x3_backward(&x, &w, &dy, true);
        assert_eq!(b.shape(&dx.expect("input gradient")), [0, c, 18, 18]);
        assert_eq!(b.to_f64(&dw), vec![0.0; o * c * 9], "{c} → {o}");
        assert_eq!(b.to_f64(&db), vec![0.0; o], "{c} → {o}");
    }
}
