//! The GPU backend against the CPU backend: every operation, forward and backward, on random inputs
//! of awkward sizes (not multiples of the tiles, products that split K), one test per operation
//! (`gpu::emulated_op::*`, from the `op_tests!` list), and whole training steps of both models. The
//! kernels run on the CPU emulation of a GPU everywhere, and on a CUDA GPU too when one is present
//! (otherwise those checks print a notice and pass, unless `KAREL_REQUIRE_GPU` is set: then they
//! fail and say what is missing). Every kernel source also compiles with NVRTC for sm_80 and sm_90
//! when NVRTC can be loaded (required under `KAREL_REQUIRE_NVRTC` or `KAREL_REQUIRE_GPU`).
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

/// Named results, as f64 values (indices too).
type Results = Vec<(String, Vec<f64>)>;

/// One operation's check on one backend: random inputs drawn from a seed, and the results.
struct Run<'a, B: Backend> {
    b: &'a B,
    rng: ChaCha8Rng,
    out: Results,
}

impl<B: Backend> Run<'_, B> {
    /// A tensor of random values.
    fn tensor(&mut self, shape: &[usize]) -> B::Tensor {
        self.b
            .tensor_f32(shape, &random(shape.iter().product(), &mut self.rng))
    }

    /// Records a tensor's values.
    fn put(&mut self, name: impl Into<String>, t: &B::Tensor) {
        let values = self.b.to_f64(t);
        self.out.push((name.into(), values));
    }
}

/// Runs one operation's check on inputs drawn from `seed`; its results.
fn run_op<B: Backend>(b: &B, seed: u64, op: fn(&mut Run<'_, B>)) -> Results {
    let mut run = Run {
        b,
        rng: ChaCha8Rng::seed_from_u64(seed),
        out: Results::new(),
    };
    op(&mut run);
    run.out
}

/// Image, input-channel, output-channel, height and width of the convolution and batch-norm
/// checks: one small case, one whose weight gradient splits K, one of single elements.
const CONV_SHAPES: [(usize, usize, usize, usize, usize); 3] =
    [(3, 5, 4, 6, 7), (8, 3, 8, 18, 18), (1, 1, 1, 1, 1)];

/// Row indices of the gather and scatter checks (repeated, unordered) into 9 rows.
const ROWS: [u32; 6] = [3, 0, 8, 3, 3, 1];

/// The check of each operation of the backend, forward and backward, on awkward sizes (not
/// multiples of the tiles, products that split K).
mod ops {
    use super::*;

    /// Every transpose, odd sizes, one long K that splits.
    const PRODUCTS: [(usize, usize, usize); 4] =
        [(70, 33, 65), (5, 2000, 7), (1, 1, 1), (64, 16, 64)];
    const TRANSPOSES: [(bool, bool); 4] =
        [(false, false), (true, false), (false, true), (true, true)];

    pub fn matmul<B: Backend>(r: &mut Run<'_, B>) {
        for (m, k, n) in PRODUCTS {
            for (ta, tb) in TRANSPOSES {
                let a = r.tensor(&if ta { [k, m] } else { [m, k] });
                let bm = r.tensor(&if tb { [n, k] } else { [k, n] });
                let c = r.b.matmul(&a, &bm, ta, tb);
                r.put(format!("matmul {m}x{k}x{n} {ta} {tb}"), &c);
            }
        }
    }

    pub fn matmul_acc<B: Backend>(r: &mut Run<'_, B>) {
        for (m, k, n) in PRODUCTS {
            for (ta, tb) in TRANSPOSES {
                let a = r.tensor(&if ta { [k, m] } else { [m, k] });
                let bm = r.tensor(&if tb { [n, k] } else { [k, n] });
                let mut acc = r.tensor(&[m, n]);
                r.b.matmul_acc(&mut acc, &a, &bm, ta, tb);
                r.put(format!("matmul_acc {m}x{k}x{n} {ta} {tb}"), &acc);
            }
        }
    }

    pub fn add<B: Backend>(r: &mut Run<'_, B>) {
        let (x, y) = (r.tensor(&[7, 13]), r.tensor(&[7, 13]));
        let sum = r.b.add(&x, &y);
        r.put("add", &sum);
    }

    pub fn add_assign<B: Backend>(r: &mut Run<'_, B>) {
        let (mut x, y) = (r.tensor(&[7, 13]), r.tensor(&[7, 13]));
        r.b.add_assign(&mut x, &y);
        r.put("add_assign", &x);
    }

    pub fn scale<B: Backend>(r: &mut Run<'_, B>) {
        let mut x = r.tensor(&[7, 13]);
        r.b.scale(&mut x, -0.37);
        r.put("scale", &x);
    }

    pub fn fill<B: Backend>(r: &mut Run<'_, B>) {
        let mut x = r.tensor(&[7, 13]);
        r.b.fill(&mut x, 0.25);
        r.put("fill", &x);
    }

    pub fn add_bias<B: Backend>(r: &mut Run<'_, B>) {
        let (mut x, bias) = (r.tensor(&[7, 13]), r.tensor(&[13]));
        r.b.add_bias(&mut x, &bias);
        r.put("add_bias", &x);
    }

    pub fn sum_rows<B: Backend>(r: &mut Run<'_, B>) {
        let x = r.tensor(&[7, 13]);
        let sums = r.b.sum_rows(&x);
        r.put("sum_rows", &sums);
    }

    pub fn relu<B: Backend>(r: &mut Run<'_, B>) {
        let x = r.tensor(&[7, 13]);
        let y = r.b.relu(&x);
        r.put("relu", &y);
    }

    pub fn relu_backward<B: Backend>(r: &mut Run<'_, B>) {
        let (x, dy) = (r.tensor(&[7, 13]), r.tensor(&[7, 13]));
        let y = r.b.relu(&x);
        let dx = r.b.relu_backward(&y, &dy);
        r.put("relu_backward", &dx);
    }

    pub fn sum_squares<B: Backend>(r: &mut Run<'_, B>) {
        let x = r.tensor(&[3000]);
        let sum = r.b.sum_squares(&x);
        r.out.push(("sum_squares".into(), vec![sum]));
    }

    pub fn zeros<B: Backend>(r: &mut Run<'_, B>) {
        let z = r.b.zeros(&[2, 3]);
        r.put("zeros", &z);
    }

    pub fn conv3x3<B: Backend>(r: &mut Run<'_, B>) {
        for (n, c, o, h, w) in CONV_SHAPES {
            let x = r.tensor(&[n, c, h, w]);
            let weight = r.tensor(&[o, c, 3, 3]);
            let bias = r.tensor(&[o]);
            let y = r.b.conv3x3(&x, &weight, &bias);
            r.put(format!("conv3x3 {n} {c} {o} {h} {w}"), &y);
        }
    }

    pub fn conv3x3_backward<B: Backend>(r: &mut Run<'_, B>) {
        for (n, c, o, h, w) in CONV_SHAPES {
            let x = r.tensor(&[n, c, h, w]);
            let weight = r.tensor(&[o, c, 3, 3]);
            let dy = r.tensor(&[n, o, h, w]);
            let (dx, dw, db) = r.b.conv3x3_backward(&x, &weight, &dy, true);
            r.put("conv dx", &dx.expect("asked for"));
            r.put("conv dw", &dw);
            r.put("conv db", &db);
            let (none, dw2, _) = r.b.conv3x3_backward(&x, &weight, &dy, false);
            assert!(none.is_none());
            r.put("conv dw without dx", &dw2);
        }
    }

    pub fn batch_norm_train<B: Backend>(r: &mut Run<'_, B>) {
        for (n, _, o, h, w) in CONV_SHAPES {
            let x = r.tensor(&[n, o, h, w]);
            let (gamma, beta) = (r.tensor(&[o]), r.tensor(&[o]));
            let (y, saved, mean, var) = r.b.batch_norm_train(&x, &gamma, &beta, 1e-5);
            r.put("bn y", &y);
            r.put("bn mean", &mean);
            r.put("bn var", &var);
            r.put("bn inv_std", &saved.inv_std);
        }
    }

    pub fn batch_norm_backward<B: Backend>(r: &mut Run<'_, B>) {
        for (n, _, o, h, w) in CONV_SHAPES {
            let (x, dy) = (r.tensor(&[n, o, h, w]), r.tensor(&[n, o, h, w]));
            let (gamma, beta) = (r.tensor(&[o]), r.tensor(&[o]));
            let (_, saved, _, _) = r.b.batch_norm_train(&x, &gamma, &beta, 1e-5);
            let (dx, dgamma, dbeta) = r.b.batch_norm_backward(&x, &gamma, &saved, &dy);
            r.put("bn dx", &dx);
            r.put("bn dgamma", &dgamma);
            r.put("bn dbeta", &dbeta);
        }
    }

    pub fn batch_norm_eval<B: Backend>(r: &mut Run<'_, B>) {
        for (n, _, o, h, w) in CONV_SHAPES {
            let x = r.tensor(&[n, o, h, w]);
            let (gamma, beta, mean) = (r.tensor(&[o]), r.tensor(&[o]), r.tensor(&[o]));
            let positive: Vec<f32> = random(o, &mut r.rng)
                .iter()
                .map(|v| v.abs() + 0.1)
                .collect();
            let var = r.b.tensor_f32(&[o], &positive);
            let y = r.b.batch_norm_eval(&x, &gamma, &beta, &mean, &var, 1e-5);
            r.put("bn eval", &y);
        }
    }

    pub fn lerp_assign<B: Backend>(r: &mut Run<'_, B>) {
        for (_, _, o, _, _) in CONV_SHAPES {
            let (mut running, batch) = (r.tensor(&[o]), r.tensor(&[o]));
            r.b.lerp_assign(&mut running, &batch, 0.1);
            r.put("lerp", &running);
        }
    }

    pub fn gather_rows<B: Backend>(r: &mut Run<'_, B>) {
        let table = r.tensor(&[9, 5]);
        let gathered = r.b.gather_rows(&table, &ROWS);
        r.put("gather_rows", &gathered);
    }

    pub fn scatter_add_rows<B: Backend>(r: &mut Run<'_, B>) {
        let dy = r.tensor(&[ROWS.len(), 5]);
        let table = r.b.scatter_add_rows(&dy, &ROWS, 9);
        r.put("scatter_add_rows", &table);
    }

    pub fn concat<B: Backend>(r: &mut Run<'_, B>) {
        let (a, b, c) = (
            r.tensor(&[2, 3, 4]),
            r.tensor(&[2, 5, 4]),
            r.tensor(&[2, 3, 4]),
        );
        let joined = r.b.concat(&[&a, &b, &a], 1);
        r.put("concat axis 1", &joined);
        let joined = r.b.concat(&[&a, &c], 0);
        r.put("concat axis 0", &joined);
        let joined = r.b.concat(&[&a, &c], 2);
        r.put("concat axis 2", &joined);
    }

    pub fn slice<B: Backend>(r: &mut Run<'_, B>) {
        let x = r.tensor(&[2, 5, 4]);
        for (axis, start, len) in [(1, 1, 3), (2, 2, 2), (0, 1, 1)] {
            let part = r.b.slice(&x, axis, start, len);
            r.put(format!("slice axis {axis}"), &part);
        }
    }

    pub fn reshape<B: Backend>(r: &mut Run<'_, B>) {
        let x = r.tensor(&[2, 5, 4]);
        let y = r.b.reshape(&x, &[10, 4]);
        r.put("reshape", &y);
    }

    /// Rows and hidden size of the LSTM checks.
    const LSTM: (usize, usize) = (6, 5);

    pub fn lstm_cell<B: Backend>(r: &mut Run<'_, B>) {
        let (rows, hidden) = LSTM;
        let (gates, c_prev) = (r.tensor(&[rows, 4 * hidden]), r.tensor(&[rows, hidden]));
        let (h, c, act) = r.b.lstm_cell(&gates, &c_prev);
        r.put("lstm h", &h);
        r.put("lstm c", &c);
        r.put("lstm act", &act);
    }

    pub fn lstm_cell_backward<B: Backend>(r: &mut Run<'_, B>) {
        let (rows, hidden) = LSTM;
        let (gates, c_prev) = (r.tensor(&[rows, 4 * hidden]), r.tensor(&[rows, hidden]));
        let (dh, dc) = (r.tensor(&[rows, hidden]), r.tensor(&[rows, hidden]));
        let (_, c, act) = r.b.lstm_cell(&gates, &c_prev);
        let (dgates, dc_prev) = r.b.lstm_cell_backward(&act, &c_prev, &c, &dh, &dc);
        r.put("lstm dgates", &dgates);
        r.put("lstm dc_prev", &dc_prev);
    }

    pub fn select_rows<B: Backend>(r: &mut Run<'_, B>) {
        let (new, old) = (r.tensor(&[6, 5]), r.tensor(&[6, 5]));
        let keep = [true, false, false, true, true, false];
        let chosen = r.b.select_rows(&keep, &new, &old);
        r.put("select_rows", &chosen);
    }

    pub fn max_groups<B: Backend>(r: &mut Run<'_, B>) {
        let grouped = r.tensor(&[15, 7]);
        let (max, argmax) = r.b.max_groups(&grouped, 5);
        r.put("max_groups", &max);
        let winners =
            r.b.index_to_vec(&argmax)
                .iter()
                .map(|&a| a as f64)
                .collect();
        r.out.push(("max_groups argmax".into(), winners));
    }

    pub fn max_groups_backward<B: Backend>(r: &mut Run<'_, B>) {
        let (grouped, dmax) = (r.tensor(&[15, 7]), r.tensor(&[3, 7]));
        let (_, argmax) = r.b.max_groups(&grouped, 5);
        let dx = r.b.max_groups_backward(&dmax, &argmax, 15);
        r.put("max_groups_backward", &dx);
    }

    /// The sparse trace-to-token sum: 11 rows over 13 columns, with repeated entries.
    fn sparse(rng: &mut ChaCha8Rng) -> SparseRows {
        let triples: Vec<(u32, u32, f32)> = (0..40)
            .map(|i| {
                (
                    (i * 7 % 11) as u32,
                    (i * 5 % 13) as u32,
                    rng.random::<f32>(),
                )
            })
            .collect();
        SparseRows::from_triples(11, &triples)
    }

    pub fn sparse_rows<B: Backend>(r: &mut Run<'_, B>) {
        let s = sparse(&mut r.rng);
        let states = r.tensor(&[13, 6]);
        let tokens = r.b.sparse_rows(&s, &states);
        r.put("sparse_rows", &tokens);
    }

    pub fn sparse_rows_backward<B: Backend>(r: &mut Run<'_, B>) {
        let s = sparse(&mut r.rng);
        let dtokens = r.tensor(&[11, 6]);
        let dstates = r.b.sparse_rows_backward(&s, &dtokens, 13);
        r.put("sparse_rows_backward", &dstates);
    }

    /// Rows and classes of the loss checks.
    const LOGITS: [usize; 2] = [9, 11];

    pub fn cross_entropy<B: Backend>(r: &mut Run<'_, B>) {
        let [rows, classes] = LOGITS;
        let logits = r.tensor(&LOGITS);
        let targets = [3u32, 99, 0, 10, 5, 5, 99, 1, 2];
        let mask: Vec<bool> = (0..rows * classes)
            .map(|i| i % classes == targets[i / classes] as usize % classes || i % 3 != 0)
            .collect();
        for masked in [false, true] {
            let (loss, grad, counted) =
                r.b.cross_entropy(&logits, &targets, 99, masked.then_some(&mask[..]));
            r.out.push((
                format!("cross_entropy loss {masked}"),
                vec![loss, counted as f64],
            ));
            r.put(format!("cross_entropy grad {masked}"), &grad);
        }
    }

    pub fn log_softmax<B: Backend>(r: &mut Run<'_, B>) {
        let logits = r.tensor(&LOGITS);
        let y = r.b.log_softmax(&logits);
        r.put("log_softmax", &y);
    }

    pub fn sgd_step<B: Backend>(r: &mut Run<'_, B>) {
        let (mut p, g) = (r.tensor(&[17]), r.tensor(&[17]));
        r.b.sgd_step(&mut p, &g, 0.1);
        r.put("sgd", &p);
    }

    pub fn adam_step<B: Backend>(r: &mut Run<'_, B>) {
        let (mut p, g) = (r.tensor(&[17]), r.tensor(&[17]));
        let (mut m, mut v) = (r.b.zeros(&[17]), r.b.zeros(&[17]));
        for step in 1..=3 {
            let hyper = AdamStep {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: if step == 3 { 0.01 } else { 0.0 },
                step,
            };
            r.b.adam_step(&mut p, &g, &mut m, &mut v, &hyper);
        }
        r.put("adam p", &p);
        r.put("adam m", &m);
        r.put("adam v", &v);
    }
}

/// The operations checked, each a function of [`ops`]: [`run_ops`] runs them all, in this order,
/// and `emulated_op::<op>` is one test per operation against the CPU backend.
macro_rules! op_tests {
    ($($op:ident,)*) => {
        /// Runs every operation's check on inputs drawn from `seed`; each result, named.
        fn run_ops<B: Backend>(b: &B, seed: u64) -> Results {
            let mut out = Results::new();
            $(out.extend(run_op(b, seed, ops::$op::<B>));)*
            out
        }

        /// One test per operation: on the emulated GPU it equals the CPU backend's within f32
        /// rounding.
        mod emulated_op {
            $(
                #[test]
                fn $op() {
                    super::emulated_op_matches(stringify!($op), super::ops::$op, super::ops::$op);
                }
            )*
        }
    };
}

op_tests! {
    matmul,
    matmul_acc,
    add,
    add_assign,
    scale,
    fill,
    add_bias,
    sum_rows,
    relu,
    relu_backward,
    sum_squares,
    zeros,
    conv3x3,
    conv3x3_backward,
    batch_norm_train,
    batch_norm_backward,
    batch_norm_eval,
    lerp_assign,
    gather_rows,
    scatter_add_rows,
    concat,
    slice,
    reshape,
    lstm_cell,
    lstm_cell_backward,
    select_rows,
    max_groups,
    max_groups_backward,
    sparse_rows,
    sparse_rows_backward,
    cross_entropy,
    log_softmax,
    sgd_step,
    adam_step,
}

/// One operation on the emulated GPU equals the CPU backend's within f32 rounding, for two
/// seeds.
fn emulated_op_matches(
    name: &str,
    on_cpu: fn(&mut Run<'_, CpuBackend<f32>>),
    on_gpu: fn(&mut Run<'_, GpuBackend>),
) {
    let (cpu, gpu) = (CpuBackend::<f32>::new(), emulated());
    for seed in [1, 2] {
        let want = run_op(&cpu, seed, on_cpu);
        let got = run_op(&gpu, seed, on_gpu);
        compare(
            &format!("emulated {name}, seed {seed}"),
            &got,
            &want,
            2e-6,
            1e-6,
        );
    }
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

/// With TF32 products the results agree to TF32's precision (10 mantissa bits per operand,
/// about 5e-4 per product; up to 1e-2 where a sum cancels), and to f32's where no product is
/// involved. A wrong fragment layout would be off by the whole value.
#[test]
fn emulated_gpu_tf32_ops_match_the_cpu() {
    let gpu = emulated().with_tf32(true);
    let cpu = CpuBackend::<f32>::new();
    let want = run_ops(&cpu, 4);
    let got = run_ops(&gpu, 4);
    // Batch normalisation and the running statistics take random inputs, not products.
    let products = |name: &str| ["matmul", "conv"].iter().any(|p| name.starts_with(p));
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
use karel::search::{repair, synthesis};
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
        synthesis::greedy(gpu, &on_gpu, &batch.inputs, &batch.outputs, 30),
        synthesis::greedy(&cpu, &on_cpu, &cpu_batch.inputs, &cpu_batch.outputs, 30),
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
            repair::greedy(gpu, &on_gpu, &gb.batch, 30),
            repair::greedy(&cpu, &on_cpu, &cb.batch, 30),
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
