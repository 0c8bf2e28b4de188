//! The GPU backend against the CPU backend: every operation, forward and backward, on random
//! inputs of awkward sizes (not multiples of the tiles, products that split K), and whole
//! training steps of both models. The kernels run on the CPU emulation of a GPU everywhere, and
//! on a CUDA GPU too when one is present (otherwise those checks print a notice and pass, unless
//! `KAREL_REQUIRE_GPU` is set: then they fail and say what is missing). Every kernel source also
//! compiles with NVRTC for sm_80 and sm_90 when NVRTC can be loaded (required under
//! `KAREL_REQUIRE_NVRTC` or `KAREL_REQUIRE_GPU`).
//!
//! The CUDA checks are the tests named `gpu::cuda_*`: `scripts/gpu_check.sh run` runs exactly
//! those on the GPU machine, with binaries built elsewhere; they find the `karel` binary and the
//! repository at run time (`KAREL_BIN`, `KAREL_REPO`, or beside the test binary and in the
//! current folder), never through paths fixed at compile time.

use std::path::PathBuf;

use karel::nn::gpu::emulator::{self, ThreadOrder};
use karel::nn::gpu::GpuBackend;
use karel::nn::{AdamStep, Backend, CpuBackend, SparseRows};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The emulated GPU (needs the host C++ compiler, as the crate's build does).
fn emulated() -> GpuBackend {
    GpuBackend::emulated().unwrap_or_else(|e| panic!("the GPU emulator: {e}"))
}

/// Whether a missing GPU or NVRTC fails the CUDA checks instead of skipping them.
fn gpu_required() -> bool {
    std::env::var_os("KAREL_REQUIRE_GPU").is_some()
}

/// A CUDA GPU, if one is present. Under `KAREL_REQUIRE_GPU` its absence fails the test.
pub fn cuda() -> Option<GpuBackend> {
    #[cfg(feature = "cuda")]
    {
        match GpuBackend::cuda(0) {
            Ok(b) => Some(b),
            Err(e) => {
                assert!(
                    !gpu_required(),
                    "KAREL_REQUIRE_GPU is set but no CUDA device can be used: {e}"
                );
                eprintln!("notice: no CUDA device, CUDA checks skipped ({e})");
                None
            }
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        assert!(
            !gpu_required(),
            "KAREL_REQUIRE_GPU is set but this build has no `cuda` feature"
        );
        eprintln!("notice: built without the `cuda` feature, CUDA checks skipped");
        None
    }
}

/// The `karel` binary: `KAREL_BIN`, else a `karel` beside this test binary (as
/// `scripts/gpu_check.sh build` lays them out), else the one cargo built with this test.
pub fn karel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KAREL_BIN") {
        return PathBuf::from(path);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("karel")));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from(env!("CARGO_BIN_EXE_karel")),
    }
}

/// The repository's root: `KAREL_REPO`, else the current folder when it holds the example task,
/// else the folder this test was built from.
pub fn repository() -> PathBuf {
    if let Some(path) = std::env::var_os("KAREL_REPO") {
        return PathBuf::from(path);
    }
    match std::env::current_dir() {
        Ok(dir) if dir.join("examples/task.json").is_file() => dir,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// Every kernel source compiles with NVRTC, without a warning, for sm_80 and sm_90. Skipped with
/// a notice when NVRTC cannot be loaded, unless `KAREL_REQUIRE_NVRTC` (CI) or `KAREL_REQUIRE_GPU`
/// is set.
#[test]
fn cuda_kernels_compile_with_nvrtc() {
    #[cfg(feature = "cuda")]
    {
        use karel::nn::gpu::kernels::{self, nvrtc};
        if !nvrtc::available() {
            assert!(
                std::env::var_os("KAREL_REQUIRE_NVRTC").is_none() && !gpu_required(),
                "KAREL_REQUIRE_NVRTC or KAREL_REQUIRE_GPU is set but {}",
                nvrtc::library().unwrap_err()
            );
            eprintln!("notice: NVRTC not found, kernel compilation not checked");
            return;
        }
        let (major, minor) = nvrtc::version();
        let mut failures = Vec::new();
        for arch in kernels::CHECKED_ARCHS {
            for (file, source) in kernels::SOURCES {
                if let Err(log) = nvrtc::compile(file, &kernels::program(source), arch) {
                    failures.push(log);
                }
            }
        }
        assert!(
            failures.is_empty(),
            "NVRTC {major}.{minor}:\n{}",
            failures.join("\n\n")
        );
        // The check can fail: an error and a warning are reported with NVRTC's log, and a
        // kernel that compiles gives PTX.
        let error = nvrtc::compile(
            "broken.cu",
            "extern \"C\" __global__ void broken() { undefined_function(); }",
            "compute_80",
        )
        .unwrap_err();
        assert!(error.contains("undefined_function"), "{error}");
        let warning = nvrtc::compile(
            "warned.cu",
            "extern \"C\" __global__ void warned(float* out) { int unused = 1; out[0] = 1.0f; }",
            "compute_80",
        )
        .unwrap_err();
        assert!(warning.contains("warnings"), "{warning}");
        let ptx = nvrtc::compile(
            "fine.cu",
            "extern \"C\" __global__ void fine(float* out) { out[0] = 1.0f; }",
            "compute_80",
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&ptx).contains(".entry fine"));
        eprintln!(
            "NVRTC {major}.{minor}: {} sources compiled for {:?}",
            kernels::SOURCES.len(),
            kernels::CHECKED_ARCHS
        );
    }
    #[cfg(not(feature = "cuda"))]
    {
        assert!(
            !gpu_required(),
            "KAREL_REQUIRE_GPU is set but this build has no `cuda` feature"
        );
        eprintln!("notice: built without the `cuda` feature, kernel compilation not checked");
    }
}

/// Random values in [-1, 1).
fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

/// Runs every operation of the backend on inputs drawn from `seed` and returns each result,
/// named, as f64 values (indices too).
fn run_ops<B: Backend>(b: &B, seed: u64) -> Vec<(String, Vec<f64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    let put = |name: &str, t: &B::Tensor, out: &mut Vec<(String, Vec<f64>)>| {
        out.push((name.to_string(), b.to_f64(t)));
    };
    let tensor = |shape: &[usize], rng: &mut ChaCha8Rng| {
        b.tensor_f32(shape, &random(shape.iter().product(), rng))
    };

    // Matrix products: every transpose, odd sizes, one long K that splits.
    for (m, k, n) in [(70, 33, 65), (5, 2000, 7), (1, 1, 1), (64, 16, 64)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = tensor(&if ta { [k, m] } else { [m, k] }, &mut rng);
            let bm = tensor(&if tb { [n, k] } else { [k, n] }, &mut rng);
            let c = b.matmul(&a, &bm, ta, tb);
            put(&format!("matmul {m}x{k}x{n} {ta} {tb}"), &c, &mut out);
            let mut acc = tensor(&[m, n], &mut rng);
            b.matmul_acc(&mut acc, &a, &bm, ta, tb);
            put(&format!("matmul_acc {m}x{k}x{n} {ta} {tb}"), &acc, &mut out);
        }
    }

    // Element-wise.
    let x = tensor(&[7, 13], &mut rng);
    let y = tensor(&[7, 13], &mut rng);
    put("add", &b.add(&x, &y), &mut out);
    let mut z = x.clone();
    b.add_assign(&mut z, &y);
    b.scale(&mut z, -0.37);
    put("add_assign scale", &z, &mut out);
    let mut f = x.clone();
    b.fill(&mut f, 0.25);
    put("fill", &f, &mut out);
    let bias = tensor(&[13], &mut rng);
    let mut with_bias = x.clone();
    b.add_bias(&mut with_bias, &bias);
    put("add_bias", &with_bias, &mut out);
    put("sum_rows", &b.sum_rows(&x), &mut out);
    let r = b.relu(&x);
    put("relu", &r, &mut out);
    put("relu_backward", &b.relu_backward(&r, &y), &mut out);
    let big = tensor(&[3000], &mut rng);
    out.push(("sum_squares".into(), vec![b.sum_squares(&big)]));
    out.push(("zeros".into(), b.to_f64(&b.zeros(&[2, 3]))));

    // Convolution, batch normalisation: one small case, one whose weight gradient splits K.
    for (n, c, o, h, w) in [(3, 5, 4, 6, 7), (8, 3, 8, 18, 18), (1, 1, 1, 1, 1)] {
        let x = tensor(&[n, c, h, w], &mut rng);
        let weight = tensor(&[o, c, 3, 3], &mut rng);
        let bias = tensor(&[o], &mut rng);
        let yv = b.conv3x3(&x, &weight, &bias);
        put(&format!("conv3x3 {n} {c} {o} {h} {w}"), &yv, &mut out);
        let dy = tensor(&[n, o, h, w], &mut rng);
        let (dx, dw, db) = b.conv3x3_backward(&x, &weight, &dy, true);
        put("conv dx", &dx.expect("asked for"), &mut out);
        put("conv dw", &dw, &mut out);
        put("conv db", &db, &mut out);
        let (none, dw2, _) = b.conv3x3_backward(&x, &weight, &dy, false);
        assert!(none.is_none());
        put("conv dw without dx", &dw2, &mut out);

        let gamma = tensor(&[o], &mut rng);
        let beta = tensor(&[o], &mut rng);
        let (bn, saved, mean, var) = b.batch_norm_train(&yv, &gamma, &beta, 1e-5);
        put("bn y", &bn, &mut out);
        put("bn mean", &mean, &mut out);
        put("bn var", &var, &mut out);
        put("bn inv_std", &saved.inv_std, &mut out);
        let (bdx, dgamma, dbeta) = b.batch_norm_backward(&yv, &gamma, &saved, &dy);
        put("bn dx", &bdx, &mut out);
        put("bn dgamma", &dgamma, &mut out);
        put("bn dbeta", &dbeta, &mut out);
        let positive: Vec<f32> = random(o, &mut rng).iter().map(|v| v.abs() + 0.1).collect();
        let running_var = b.tensor_f32(&[o], &positive);
        put(
            "bn eval",
            &b.batch_norm_eval(&yv, &gamma, &beta, &mean, &running_var, 1e-5),
            &mut out,
        );
        let mut running = tensor(&[o], &mut rng);
        b.lerp_assign(&mut running, &mean, 0.1);
        put("lerp", &running, &mut out);
    }

    // Rows.
    let table = tensor(&[9, 5], &mut rng);
    let rows = [3u32, 0, 8, 3, 3, 1];
    let gathered = b.gather_rows(&table, &rows);
    put("gather_rows", &gathered, &mut out);
    put(
        "scatter_add_rows",
        &b.scatter_add_rows(&gathered, &rows, 9),
        &mut out,
    );
    let a3 = tensor(&[2, 3, 4], &mut rng);
    let b3 = tensor(&[2, 5, 4], &mut rng);
    let c3 = tensor(&[2, 3, 4], &mut rng);
    put("concat axis 1", &b.concat(&[&a3, &b3, &a3], 1), &mut out);
    put("concat axis 0", &b.concat(&[&a3, &c3], 0), &mut out);
    put("concat axis 2", &b.concat(&[&a3, &c3], 2), &mut out);
    put("slice axis 1", &b.slice(&b3, 1, 1, 3), &mut out);
    put("slice axis 2", &b.slice(&b3, 2, 2, 2), &mut out);
    put("slice axis 0", &b.slice(&b3, 0, 1, 1), &mut out);
    put("reshape", &b.reshape(&b3, &[10, 4]), &mut out);

    // LSTM cell.
    let (rows_, hidden) = (6, 5);
    let gates = tensor(&[rows_, 4 * hidden], &mut rng);
    let c_prev = tensor(&[rows_, hidden], &mut rng);
    let (h, c, act) = b.lstm_cell(&gates, &c_prev);
    put("lstm h", &h, &mut out);
    put("lstm c", &c, &mut out);
    put("lstm act", &act, &mut out);
    let dh = tensor(&[rows_, hidden], &mut rng);
    let dc = tensor(&[rows_, hidden], &mut rng);
    let (dgates, dc_prev) = b.lstm_cell_backward(&act, &c_prev, &c, &dh, &dc);
    put("lstm dgates", &dgates, &mut out);
    put("lstm dc_prev", &dc_prev, &mut out);
    let keep = [true, false, false, true, true, false];
    put("select_rows", &b.select_rows(&keep, &h, &c), &mut out);

    // Maximum over groups.
    let grouped = tensor(&[15, 7], &mut rng);
    let (max, argmax) = b.max_groups(&grouped, 5);
    put("max_groups", &max, &mut out);
    out.push((
        "max_groups argmax".into(),
        b.index_to_vec(&argmax).iter().map(|&a| a as f64).collect(),
    ));
    let dmax = tensor(&[3, 7], &mut rng);
    put(
        "max_groups_backward",
        &b.max_groups_backward(&dmax, &argmax, 15),
        &mut out,
    );

    // The sparse trace-to-token sum.
    let triples: Vec<(u32, u32, f32)> = (0..40)
        .map(|i| {
            (
                (i * 7 % 11) as u32,
                (i * 5 % 13) as u32,
                rng.random::<f32>(),
            )
        })
        .collect();
    let s = SparseRows::from_triples(11, &triples);
    let states = tensor(&[13, 6], &mut rng);
    put("sparse_rows", &b.sparse_rows(&s, &states), &mut out);
    let dtokens = tensor(&[11, 6], &mut rng);
    put(
        "sparse_rows_backward",
        &b.sparse_rows_backward(&s, &dtokens, 13),
        &mut out,
    );

    // Losses.
    let (n_rows, classes) = (9, 11);
    let logits = tensor(&[n_rows, classes], &mut rng);
    let targets = [3u32, 99, 0, 10, 5, 5, 99, 1, 2];
    let mask: Vec<bool> = (0..n_rows * classes)
        .map(|i| i % classes == targets[i / classes] as usize % classes || i % 3 != 0)
        .collect();
    for masked in [false, true] {
        let (loss, grad, counted) =
            b.cross_entropy(&logits, &targets, 99, masked.then_some(&mask[..]));
        out.push((
            format!("cross_entropy loss {masked}"),
            vec![loss, counted as f64],
        ));
        put(&format!("cross_entropy grad {masked}"), &grad, &mut out);
    }
    put("log_softmax", &b.log_softmax(&logits), &mut out);

    // Optimisers.
    let mut p = tensor(&[17], &mut rng);
    let g = tensor(&[17], &mut rng);
    b.sgd_step(&mut p, &g, 0.1);
    put("sgd", &p, &mut out);
    let (mut m, mut v) = (b.zeros(&[17]), b.zeros(&[17]));
    for step in 1..=3 {
        let hyper = AdamStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: if step == 3 { 0.01 } else { 0.0 },
            step,
        };
        b.adam_step(&mut p, &g, &mut m, &mut v, &hyper);
    }
    put("adam p", &p, &mut out);
    put("adam m", &m, &mut out);
    put("adam v", &v, &mut out);
    out
}

/// `‖a − b‖ / max(‖b‖, floor)`.
fn relative_error(a: &[f64], b: &[f64], floor: f64) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(floor)
}

/// Compares named results (of [`run_ops`] or a model snapshot) name by name: the relative error
/// of each, against a norm of at least `floor`.
fn compare(
    label: &str,
    got: &[(String, Vec<f64>)],
    want: &[(String, Vec<f64>)],
    tolerance: f64,
    floor: f64,
) {
    assert_eq!(got.len(), want.len());
    let mut failures = Vec::new();
    for ((name, a), (name_b, b)) in got.iter().zip(want) {
        assert_eq!(name, name_b);
        if a.len() != b.len() {
            failures.push(format!("{name}: {} values, want {}", a.len(), b.len()));
            continue;
        }
        if a.iter().any(|v| !v.is_finite()) {
            failures.push(format!("{name}: not finite"));
            continue;
        }
        let e = relative_error(a, b, floor);
        if e > tolerance {
            failures.push(format!("{name}: relative error {e:.2e}"));
        }
    }
    assert!(failures.is_empty(), "{label}:\n{}", failures.join("\n"));
}

/// Every operation on the emulated GPU equals the CPU backend's within f32 rounding.
#[test]
fn emulated_gpu_ops_match_the_cpu() {
    let gpu = emulated();
    let cpu = CpuBackend::<f32>::new();
    for seed in [1, 2] {
        let want = run_ops(&cpu, seed);
        let got = run_ops(&gpu, seed);
        compare(&format!("emulated, seed {seed}"), &got, &want, 2e-6, 1e-6);
    }
}

/// With TF32 products the results agree to TF32's precision (10 mantissa bits per operand,
/// about 5e-4 per product; up to 1e-2 where a sum cancels), and to f32's where no product is
/// involved. A wrong fragment layout would be off by the whole value.
#[test]
fn emulated_gpu_tf32_ops_match_the_cpu() {
    let gpu = emulated().with_tf32(true);
    let cpu = CpuBackend::<f32>::new();
    let want = run_ops(&cpu, 4);
    let got = run_ops(&gpu, 4);
    let products = |name: &str| {
        ["matmul", "conv", "bn ", "lerp"]
            .iter()
            .any(|p| name.starts_with(p))
    };
    let split = |rows: &[(String, Vec<f64>)], keep: bool| -> Vec<(String, Vec<f64>)> {
        rows.iter()
            .filter(|(n, _)| products(n) == keep)
            .cloned()
            .collect()
    };
    compare(
        "emulated TF32, products",
        &split(&got, true),
        &split(&want, true),
        1e-2,
        1e-6,
    );
    compare(
        "emulated TF32, the rest",
        &split(&got, false),
        &split(&want, false),
        2e-6,
        1e-6,
    );
    // TF32 is not f32: the products do differ.
    let f32_gpu = run_ops(&emulated(), 4);
    let differs = got
        .iter()
        .zip(&f32_gpu)
        .filter(|((n, _), _)| n.starts_with("matmul 70"))
        .any(|((_, a), (_, b))| relative_error(a, b, 1e-6) > 1e-6);
    assert!(differs, "the TF32 products equal the f32 ones");
}

/// Every operation gives the same bits whatever order the emulator runs the blocks of a grid and
/// the threads of a block in: no kernel races between blocks or between threads that no barrier
/// separates.
#[test]
fn emulated_gpu_ops_agree_in_every_order() {
    let reference = run_ops(&emulated(), 5);
    for order in &ThreadOrder::ALL[1..] {
        let gpu = GpuBackend::emulated_in_order(*order).unwrap();
        let got = run_ops(&gpu, 5);
        assert_eq!(got.len(), reference.len());
        for ((name, want), (_, have)) in reference.iter().zip(&got) {
            let same = want.len() == have.len()
                && want
                    .iter()
                    .zip(have)
                    .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            assert!(same, "{name}: other bits in the order {order:?}");
        }
    }
}

/// Runs a one-kernel source on the emulator in every order; the outputs (buffer 0) by order.
fn outputs_by_order(
    source: &str,
    grid: u32,
    block: u32,
    input: &[f32],
    output_len: usize,
) -> Vec<Vec<f32>> {
    ThreadOrder::ALL
        .iter()
        .map(|&order| {
            let mut buffers = vec![vec![0.0; output_len], input.to_vec()];
            emulator::run_source(
                source,
                "probe",
                [grid, 1, 1],
                [block, 1, 1],
                order,
                &mut buffers,
            )
            .unwrap();
            buffers.swap_remove(0)
        })
        .collect()
}

/// Whether every order gave `want`, bit for bit.
fn all_give(outputs: &[Vec<f32>], want: &[f32]) -> bool {
    outputs.iter().all(|out| {
        out.len() == want.len()
            && out
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    })
}

/// The emulator's detectors catch deliberately broken copies of a kernel: a missing barrier
/// (found by running the threads in another order), a consumer that reads what a higher thread
/// produces, a read of shared memory no thread wrote (NaN), an off-by-one store (the red zone
/// after the buffer) and read (NaN), and blocks that depend on each other.
#[test]
fn emulator_catches_broken_kernels() {
    // Each thread publishes its input in shared memory; thread t outputs what thread t − 1
    // published (thread 0 outputs 0).
    const SHIFT: &str = r#"
extern "C" __global__ void probe(float* out, const float* in) {
    __shared__ float s[64];
    unsigned t = threadIdx.x;
    s[t] = in[blockIdx.x * 64 + t];
    __syncthreads();
    out[blockIdx.x * 64 + t] = t > 0 ? s[t - 1] : 0.0f;
}
"#;
    let input: Vec<f32> = (0..128).map(|i| i as f32 + 1.0).collect();
    let want: Vec<f32> = (0..128)
        .map(|i| if i % 64 == 0 { 0.0 } else { i as f32 })
        .collect();
    assert!(all_give(
        &outputs_by_order(SHIFT, 2, 64, &input, 128),
        &want
    ));

    // The barrier missing: in ascending order every producer runs before its consumer, so only
    // another order shows the bug.
    let no_barrier = SHIFT.replace("__syncthreads();", "");
    let outputs = outputs_by_order(&no_barrier, 2, 64, &input, 128);
    assert!(all_give(&outputs[..1], &want), "ascending order hides it");
    assert!(!all_give(&outputs, &want), "a missing barrier went unseen");

    // Producer and consumer reversed: thread t reads what thread t + 1 writes, without a barrier.
    let reversed = no_barrier.replace("t > 0 ? s[t - 1] : 0.0f", "t < 63 ? s[t + 1] : 0.0f");
    let want_reversed: Vec<f32> = (0..128)
        .map(|i| if i % 64 == 63 { 0.0 } else { i as f32 + 2.0 })
        .collect();
    assert!(
        !all_give(
            &outputs_by_order(&reversed, 2, 64, &input, 128),
            &want_reversed
        ),
        "a reversed producer and consumer went unseen"
    );

    // Only even threads write shared memory, all read it: the odd slots hold NaN, in every order.
    let uninitialised = SHIFT.replace(
        "s[t] = in[blockIdx.x * 64 + t];",
        "if (t % 2 == 0) { s[t] = in[blockIdx.x * 64 + t]; }",
    );
    for out in outputs_by_order(&uninitialised, 2, 64, &input, 128) {
        assert!(
            out.iter().any(|v| v.is_nan()),
            "an uninitialised shared read went unseen"
        );
    }

    // An off-by-one store past the end of the output: the launch fails, naming the kernel.
    let off_by_one = SHIFT.replace(
        "out[blockIdx.x * 64 + t] =",
        "out[blockIdx.x * 64 + t + 1] =",
    );
    let mut buffers = vec![vec![0.0; 128], input.clone()];
    let error = emulator::run_source(
        &off_by_one,
        "probe",
        [2, 1, 1],
        [64, 1, 1],
        ThreadOrder::Ascending,
        &mut buffers,
    )
    .unwrap_err();
    assert!(
        error.contains("`probe`") && error.contains("past the end"),
        "{error}"
    );
    // A read past the end of the input gives NaN (thread 62 of the last block reads `in[128]`).
    let read_past = SHIFT.replace(
        "s[t] = in[blockIdx.x * 64 + t];",
        "s[t] = in[blockIdx.x * 64 + t + 2];",
    );
    for out in outputs_by_order(&read_past, 2, 64, &input, 128) {
        assert!(out[127].is_nan(), "an out-of-bounds read went unseen");
    }

    // Block b reads what block b − 1 wrote to global memory: a race between blocks that the
    // ascending order hides.
    const CHAIN: &str = r#"
extern "C" __global__ void probe(float* out, const float* in) {
    unsigned b = blockIdx.x;
    if (threadIdx.x == 0) {
        out[b] = in[b] + (b > 0 ? out[b - 1] : 0.0f);
    }
}
"#;
    let ones = vec![1.0f32; 8];
    let prefix: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    let outputs = outputs_by_order(CHAIN, 8, 32, &ones, 8);
    assert!(all_give(&outputs[..1], &prefix));
    assert!(
        !all_give(&outputs, &prefix),
        "a race between blocks went unseen"
    );
}

/// The same on a CUDA GPU, when there is one.
#[test]
fn cuda_ops_match_the_cpu() {
    let Some(gpu) = cuda() else { return };
    let cpu = CpuBackend::<f32>::new();
    for seed in [1, 2, 3] {
        let want = run_ops(&cpu, seed);
        let got = run_ops(&gpu, seed);
        compare(&format!("CUDA, seed {seed}"), &got, &want, 2e-6, 1e-6);
    }
    // The tensor-core path, to TF32's precision.
    let want = run_ops(&cpu, 4);
    let got = run_ops(&gpu.clone().with_tf32(true), 4);
    compare("CUDA TF32", &got, &want, 1e-2, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Whole models.

use karel::data::generate::{candidate, GenConfig};
use karel::data::repair::RepairConfig;
use karel::data::task::Task;
use karel::model::debugger::{Debugger, DebuggerConfig};
use karel::model::synthesizer::{Synthesizer, SynthesizerConfig};
use karel::nn::optim::{clip_grad_norm, Optimizer, OptimizerConfig};
use karel::nn::{zero_grads, Module};
use karel::train::debugger::{repair_batch, RepairItem};
use karel::train::synthesizer::synthesizer_batch;
use karel::train::Trainee;

fn tasks(count: usize) -> Vec<Task> {
    let config = GenConfig::new();
    (0..)
        .filter_map(|i| candidate(&config, 11, i))
        .take(count)
        .collect()
}

/// Every parameter and gradient of a model, by name.
fn snapshot<B: Backend, M: Module<B>>(b: &B, model: &mut M) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    model.visit_params("", &mut |name, p| {
        out.push((format!("{name} value"), b.to_f64(&p.value)));
        out.push((format!("{name} grad"), b.to_f64(&p.grad)));
    });
    model.visit_buffers("", &mut |name, t| out.push((name.to_string(), b.to_f64(t))));
    out
}

/// Two training steps (forward, backward, clipping, SGD) of a model on a fixed batch: the
/// losses, then every parameter, gradient and buffer. (SGD rather than Adam: Adam turns the
/// rounding noise of gradients that vanish exactly, such as a convolution bias before batch
/// normalisation, into full-size steps.)
fn train_steps<B, M>(b: &B, model: &mut M, batch: &M::Batch) -> Vec<(String, Vec<f64>)>
where
    B: Backend,
    M: Trainee<B>,
{
    let mut optimizer = Optimizer::new(OptimizerConfig::Sgd);
    let mut losses = Vec::new();
    for _ in 0..2 {
        zero_grads(b, model);
        let stats = model.train_step(b, batch);
        let norm = clip_grad_norm(b, model, 1.0);
        optimizer.update(b, model, 0.1);
        losses.extend([stats.loss, norm, stats.correct as f64, stats.tokens as f64]);
    }
    let mut out = vec![("loss, norm, correct, tokens".to_string(), losses)];
    out.extend(snapshot(b, model));
    out
}

fn small_synthesizer() -> SynthesizerConfig {
    let mut config = SynthesizerConfig::tiny();
    config.io.conv_channels = 4;
    config.io.output = 16;
    config.embedding = 8;
    config.hidden = 12;
    config
}

fn small_debugger(trace: bool) -> DebuggerConfig {
    let mut config = DebuggerConfig::tiny(trace);
    config.io.conv_channels = 3;
    config.io.output = 10;
    config.embedding = 6;
    config.hidden = 8;
    if let Some(t) = config.trace.as_mut() {
        t.channels = 3;
        t.output = 5;
    }
    config
}

/// Training steps of the synthesizer and of the debugger (with and without TraceEmbed) on
/// `gpu` equal those on the CPU backend.
fn models_match<G: Backend>(gpu: &G, label: &str) {
    let cpu = CpuBackend::<f32>::new();
    let tasks = tasks(3);
    let refs: Vec<&Task> = tasks.iter().collect();

    let config = small_synthesizer();
    let mut on_cpu = Synthesizer::new(&cpu, config, &mut ChaCha8Rng::seed_from_u64(4));
    let mut on_gpu = Synthesizer::new(gpu, config, &mut ChaCha8Rng::seed_from_u64(4));
    let want = train_steps(
        &cpu,
        &mut on_cpu,
        &synthesizer_batch(&cpu, &refs, config.pairs),
    );
    let got = train_steps(
        gpu,
        &mut on_gpu,
        &synthesizer_batch(gpu, &refs, config.pairs),
    );
    compare(&format!("{label}: synthesizer"), &got, &want, 1e-4, 1e-3);
    let batch = synthesizer_batch(gpu, &refs, config.pairs);
    let cpu_batch = synthesizer_batch(&cpu, &refs, config.pairs);
    assert_eq!(
        on_gpu.decode_greedy(gpu, &batch.inputs, &batch.outputs, 30),
        on_cpu.decode_greedy(&cpu, &cpu_batch.inputs, &cpu_batch.outputs, 30),
        "{label}: greedy decoding"
    );

    let repair = RepairConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let items: Vec<RepairItem> = tasks
        .iter()
        .filter_map(|t| {
            let e = karel::data::repair::repair_example(t, None, &repair, &mut rng).ok()?;
            Some(RepairItem {
                source: e.mutant.tokens(),
                examples: t.given().to_vec(),
                traces: e.traces,
                teacher: e.teacher,
            })
        })
        .collect();
    assert!(!items.is_empty());
    for trace in [true, false] {
        let config = small_debugger(trace);
        let mut on_cpu = Debugger::new(&cpu, config, &mut ChaCha8Rng::seed_from_u64(6));
        let mut on_gpu = Debugger::new(gpu, config, &mut ChaCha8Rng::seed_from_u64(6));
        let want = train_steps(
            &cpu,
            &mut on_cpu,
            &repair_batch(&cpu, &items, config.pairs, trace),
        );
        let got = train_steps(
            gpu,
            &mut on_gpu,
            &repair_batch(gpu, &items, config.pairs, trace),
        );
        compare(
            &format!("{label}: debugger, trace {trace}"),
            &got,
            &want,
            1e-4,
            1e-3,
        );
        let (cb, gb) = (
            repair_batch(&cpu, &items, config.pairs, trace),
            repair_batch(gpu, &items, config.pairs, trace),
        );
        assert_eq!(
            on_gpu.repair_greedy(gpu, &gb.batch, 30),
            on_cpu.repair_greedy(&cpu, &cb.batch, 30),
            "{label}: greedy repair, trace {trace}"
        );
    }
}

#[test]
fn emulated_gpu_trains_like_the_cpu() {
    models_match(&emulated(), "emulated");
}

#[test]
fn cuda_trains_like_the_cpu() {
    let Some(gpu) = cuda() else { return };
    models_match(&gpu, "CUDA");
}

/// `--device cuda` runs the built-in models on the GPU with the CPU's result, or, without a
/// GPU, is a clear error (a failure of the test under `KAREL_REQUIRE_GPU`).
#[test]
fn cuda_device_on_the_command_line() {
    let karel = |args: &[&str]| {
        std::process::Command::new(karel_binary())
            .args(args)
            .current_dir(repository())
            .output()
            .expect("the karel binary runs")
    };
    let on_gpu = karel(&[
        "synthesize",
        "examples/task.json",
        "--steps",
        "5",
        "--device",
        "cuda",
    ]);
    let gpu_present = cfg!(feature = "cuda") && GpuBackend::cuda_present();
    assert!(
        gpu_present || !gpu_required(),
        "KAREL_REQUIRE_GPU is set but no CUDA device can be used: {}",
        String::from_utf8_lossy(&on_gpu.stderr)
    );
    if gpu_present {
        let on_cpu = karel(&["synthesize", "examples/task.json", "--steps", "5"]);
        assert!(
            on_gpu.status.success(),
            "{}",
            String::from_utf8_lossy(&on_gpu.stderr)
        );
        // Rounding may reorder near-equal beams, so the programs found may differ; both must
        // solve the example task (scripts/gpu_check.sh shows any difference).
        let solved = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stdout).contains("passes the 5 given examples: yes")
        };
        assert!(solved(&on_cpu) && solved(&on_gpu));
    } else {
        assert_eq!(on_gpu.status.code(), Some(1));
        let message = String::from_utf8_lossy(&on_gpu.stderr);
        assert!(message.contains("--device cuda"), "{message}");
    }
}

/// `scripts/gpu_check.sh run` on a machine without a GPU runs every step, fails the device step
/// with a clear message, lists every step's verdict, and exits non-zero: the GPU check cannot
/// pass by accident.
#[test]
fn gpu_check_script_fails_without_a_gpu() {
    if cfg!(feature = "cuda") && GpuBackend::cuda_present() {
        eprintln!("notice: a CUDA device is present; the dry run is for machines without one");
        return;
    }
    let repo = repository();
    let bin = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // The carried binaries: this test binary and the karel binary.
    let this = std::env::current_exe().unwrap();
    std::os::unix::fs::symlink(&this, bin.path().join("it")).unwrap();
    std::os::unix::fs::symlink(karel_binary(), bin.path().join("karel")).unwrap();
    let output = std::process::Command::new("bash")
        .arg(repo.join("scripts/gpu_check.sh"))
        .arg("run")
        .arg(out.path())
        .current_dir(&repo)
        .env("KAREL_GPU_CHECK_BIN", bin.path())
        .env("KAREL_GPU_CHECK_QUICK", "1")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_ne!(output.status.code(), Some(0), "{stdout}");
    let summary = std::fs::read_to_string(out.path().join("summary.md")).expect("a summary");
    for step in ["device", "nvrtc", "parity", "models"] {
        assert!(
            summary.lines().any(|l| l.contains(&format!("| {step} |"))),
            "{step} missing from the summary:\n{summary}"
        );
    }
    assert!(summary.contains("| device | FAIL |"), "{summary}");
    // The CUDA tests ran and failed: they never pass without a device under the script.
    assert!(summary.contains("| parity | FAIL |"), "{summary}");
    assert!(
        summary.contains("no NVIDIA GPU") || summary.contains("nvidia-smi"),
        "{summary}"
    );
}
