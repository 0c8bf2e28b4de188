//! The `Backend` abstraction: tensors and the operations SED's models need, forward and backward.
//!
//! Models and layers are written against this trait only; the CPU backend ([`super::cpu`]) is the
//! numerical reference and a CUDA backend implements the same interface. Backward passes are
//! explicit operations (there is no autograd): every forward op that has parameters or inputs to
//! differentiate has a `_backward` partner that takes what the forward saved.
//!
//! **Tensor layouts** (all contiguous, row-major):
//! - matrices `[rows, cols]`; a batch of feature vectors is `[batch, features]`;
//! - grids `[N, C, H, W]` (for Karel, `H = W = 18`), channel-major like the world tensor;
//! - convolution weights `[out, in, 3, 3]` and LSTM weights `[4H, in]` with PyTorch's gate order
//!   (input, forget, cell, output), so that weights interchange with PyTorch's;
//! - token ids, targets and indices are plain `u32` slices on the host.

use std::fmt::Debug;

/// The sparse matrix of the trace-to-token sum: `out[r] = Σ weight · x[col]` over the entries of
/// row `r` (compressed sparse rows).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SparseRows {
    /// `offsets[r]..offsets[r + 1]` index the entries of row `r`; `offsets.len() == rows + 1`.
    pub offsets: Vec<u32>,
    pub cols: Vec<u32>,
    pub weights: Vec<f32>,
}

impl SparseRows {
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Builds the matrix from `(row, col, weight)` triples.
    pub fn from_triples(rows: usize, triples: &[(u32, u32, f32)]) -> SparseRows {
        let mut counts = vec![0u32; rows + 1];
        for &(r, _, _) in triples {
            counts[r as usize + 1] += 1;
        }
        for r in 0..rows {
            counts[r + 1] += counts[r];
        }
        let mut cursor = counts.clone();
        let mut cols = vec![0; triples.len()];
        let mut weights = vec![0.0; triples.len()];
        for &(r, c, w) in triples {
            let at = cursor[r as usize] as usize;
            cols[at] = c;
            weights[at] = w;
            cursor[r as usize] += 1;
        }
        SparseRows {
            offsets: counts,
            cols,
            weights,
        }
    }
}

/// What batch normalisation saves for its backward pass.
#[derive(Clone, Debug)]
pub struct BatchNormSaved<T> {
    /// Per-channel batch mean and inverse standard deviation `1 / sqrt(var + eps)`.
    pub mean: T,
    pub inv_std: T,
}

/// One direction of an LSTM layer run over all steps ([`Backend::lstm_run`]): its outputs and
/// what its backward pass needs.
#[derive(Clone, Debug)]
pub struct LstmRun<T> {
    /// `[T·B, H]`, step-major (row `t·B + b` is sequence `b` at step `t`): each step's hidden
    /// state, zero past a sequence's end.
    pub outputs: T,
    /// `[B, H]`: the final states, each sequence's at its end.
    pub h_n: T,
    pub c_n: T,
    /// What [`Backend::lstm_run_backward`] needs (the states each step started from, the cell
    /// states and the activated gates), in a layout of the backend's own.
    pub saved: Vec<T>,
}

/// Hyper-parameters of one Adam(W) step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW); 0 for Adam.
    pub weight_decay: f32,
    /// 1-based step number, for bias correction.
    pub step: u64,
}

/// Tensors and operations.
pub trait Backend: Clone + Debug + Send + Sync + 'static {
    type Tensor: Clone + Debug + Send + Sync;
    /// Row indices computed by an operation (the winners of [`Backend::max_groups`]), kept where
    /// the backend computes: on the host for the CPU, on the device for a GPU.
    type Index: Clone + Debug + Send + Sync;

    fn name(&self) -> &'static str;

    /// Waits until all queued work is done (a no-op where work is synchronous), for timing.
    fn synchronize(&self) {}

    // Creation and transfer.
    fn zeros(&self, shape: &[usize]) -> Self::Tensor;
    fn tensor_f32(&self, shape: &[usize], data: &[f32]) -> Self::Tensor;
    fn to_f32(&self, t: &Self::Tensor) -> Vec<f32>;
    fn tensor_f64(&self, shape: &[usize], data: &[f64]) -> Self::Tensor;
    fn to_f64(&self, t: &Self::Tensor) -> Vec<f64>;
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;
    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Self::Tensor;
    /// [`Backend::reshape`] of a tensor no longer needed in its old shape, without a copy where
    /// the backend can.
    fn reshape_owned(&self, t: Self::Tensor, shape: &[usize]) -> Self::Tensor {
        self.reshape(&t, shape)
    }

    // Linear algebra.
    /// `a · b` of matrices, either transposed first.
    fn matmul(
        &self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Self::Tensor;
    /// `c += a · b`.
    fn matmul_acc(
        &self,
        c: &mut Self::Tensor,
        a: &Self::Tensor,
        b: &Self::Tensor,
        transpose_a: bool,
        transpose_b: bool,
    );

    // Element-wise.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Self::Tensor;
    fn add_assign(&self, a: &mut Self::Tensor, b: &Self::Tensor);
    fn scale(&self, a: &mut Self::Tensor, factor: f64);
    /// Sets every element to `value`, in place.
    fn fill(&self, a: &mut Self::Tensor, value: f64);
    /// Adds `bias[j]` to every column `j` of a matrix.
    fn add_bias(&self, x: &mut Self::Tensor, bias: &Self::Tensor);
    /// Column sums of a matrix (a bias gradient).
    fn sum_rows(&self, x: &Self::Tensor) -> Self::Tensor;
    fn relu(&self, x: &Self::Tensor) -> Self::Tensor;
    /// The gradient through a ReLU, from its output `y`.
    fn relu_backward(&self, y: &Self::Tensor, dy: &Self::Tensor) -> Self::Tensor;
    /// Sum of squares of all elements (for gradient norms).
    fn sum_squares(&self, x: &Self::Tensor) -> f64;

    // Convolution 3×3, padding 1, stride 1.
    fn conv3x3(&self, x: &Self::Tensor, weight: &Self::Tensor, bias: &Self::Tensor)
        -> Self::Tensor;
    /// Gradients `(dx, dweight, dbias)`; `dx` only when `input_grad`.
    fn conv3x3_backward(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        dy: &Self::Tensor,
        input_grad: bool,
    ) -> (Option<Self::Tensor>, Self::Tensor, Self::Tensor);
    /// `relu(conv3x3(x, weight, bias))`, in one pass where the backend can.
    fn conv3x3_relu(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        bias: &Self::Tensor,
    ) -> Self::Tensor {
        self.relu(&self.conv3x3(x, weight, bias))
    }
    /// The gradients of [`Backend::conv3x3_relu`] from its output `y` and the gradient `dy` of
    /// that output: [`Backend::conv3x3_backward`] of `relu_backward(y, dy)`.
    fn conv3x3_relu_backward(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        input_grad: bool,
    ) -> (Option<Self::Tensor>, Self::Tensor, Self::Tensor) {
        self.conv3x3_backward(x, weight, &self.relu_backward(y, dy), input_grad)
    }

    // Batch normalisation over N, H, W per channel of `[N, C, H, W]`.
    /// Training mode: normalises with the batch statistics; returns the output, what backward
    /// needs, and the batch mean and unbiased variance (for the running statistics).
    fn batch_norm_train(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f64,
    ) -> (
        Self::Tensor,
        BatchNormSaved<Self::Tensor>,
        Self::Tensor,
        Self::Tensor,
    );
    /// Evaluation mode: normalises with running statistics.
    fn batch_norm_eval(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        mean: &Self::Tensor,
        var: &Self::Tensor,
        eps: f64,
    ) -> Self::Tensor;
    /// Gradients `(dx, dgamma, dbeta)` of training-mode batch normalisation.
    fn batch_norm_backward(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        saved: &BatchNormSaved<Self::Tensor>,
        dy: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor, Self::Tensor);
    /// `running = (1 - momentum) · running + momentum · batch`.
    fn lerp_assign(&self, running: &mut Self::Tensor, batch: &Self::Tensor, momentum: f64);

    // Rows: embeddings, pointer gathers.
    /// `out[i] = table[rows[i]]`.
    fn gather_rows(&self, table: &Self::Tensor, rows: &[u32]) -> Self::Tensor;
    /// The gradient of `gather_rows`: `out[rows[i]] += dy[i]`, for a table of `table_rows` rows.
    fn scatter_add_rows(&self, dy: &Self::Tensor, rows: &[u32], table_rows: usize) -> Self::Tensor;

    // Concatenation and slicing along an axis.
    fn concat(&self, parts: &[&Self::Tensor], axis: usize) -> Self::Tensor;
    fn slice(&self, x: &Self::Tensor, axis: usize, start: usize, len: usize) -> Self::Tensor;

    // LSTM cell (PyTorch's gate order i, f, g, o).
    /// From the pre-activation gates `[B, 4H]` (input and recurrent projections plus biases)
    /// and the previous cell state `[B, H]`: `(h, c, activated gates)`.
    fn lstm_cell(
        &self,
        gates: &Self::Tensor,
        c_prev: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor, Self::Tensor);
    /// From the activated gates, the cell states and the gradients of `h` and `c`: the gradients
    /// of the pre-activation gates and of `c_prev`.
    fn lstm_cell_backward(
        &self,
        activated: &Self::Tensor,
        c_prev: &Self::Tensor,
        c: &Self::Tensor,
        dh: &Self::Tensor,
        dc: &Self::Tensor,
    ) -> (Self::Tensor, Self::Tensor);
    /// Keeps row `i` of `new` where `keep[i]`, else row `i` of `old` (variable-length batches).
    fn select_rows(&self, keep: &[bool], new: &Self::Tensor, old: &Self::Tensor) -> Self::Tensor;

    /// The recurrence of one LSTM direction over all steps, from zero states: `gates_in`
    /// `[T·B, 4H]` holds each step's input projection with both biases, `offset` (`[B, 4H]`, if
    /// any) is added at every step, `w_hh` is `[4H, H]`. Sequence `b` runs `lengths[b]` steps
    /// (forward from step 0, or backward from its last step if `reverse`); past its end its output
    /// is zero and its state frozen. This default runs step by step on the other operations;
    /// a backend may run the whole recurrence at once.
    fn lstm_run(
        &self,
        gates_in: &Self::Tensor,
        offset: Option<&Self::Tensor>,
        w_hh: &Self::Tensor,
        lengths: &[usize],
        reverse: bool,
    ) -> LstmRun<Self::Tensor> {
        let batch = lengths.len();
        let steps = self.shape(gates_in)[0] / batch.max(1);
        let hidden = self.shape(w_hh)[1];
        let zero = self.zeros(&[batch, hidden]);
        let (mut h_state, mut c_state) = (zero.clone(), zero.clone());
        let mut outputs = vec![zero.clone(); steps];
        let mut saved: Vec<Option<[Self::Tensor; 4]>> = vec![None; steps];
        for t in step_order(steps, reverse) {
            let keep: Vec<bool> = lengths.iter().map(|&l| t < l).collect();
            let mut gates = self.slice(gates_in, 0, t * batch, batch);
            if let Some(offset) = offset {
                self.add_assign(&mut gates, offset);
            }
            self.matmul_acc(&mut gates, &h_state, w_hh, false, true);
            let (h_new, c_new, activated) = self.lstm_cell(&gates, &c_state);
            outputs[t] = self.select_rows(&keep, &h_new, &zero);
            let h_next = self.select_rows(&keep, &h_new, &h_state);
            let c_next = self.select_rows(&keep, &c_new, &c_state);
            saved[t] = Some([
                std::mem::replace(&mut h_state, h_next),
                std::mem::replace(&mut c_state, c_next),
                c_new,
                activated,
            ]);
        }
        let saved: Vec<[Self::Tensor; 4]> = saved.into_iter().map(|s| s.expect("ran")).collect();
        let stack = |i: usize| self.concat(&saved.iter().map(|s| &s[i]).collect::<Vec<_>>(), 0);
        LstmRun {
            outputs: self.concat(&outputs.iter().collect::<Vec<_>>(), 0),
            h_n: h_state,
            c_n: c_state,
            // Step-major, as the outputs: h_prev, c_prev, c, activated.
            saved: (0..4).map(stack).collect(),
        }
    }

    /// The backward pass of an [`Backend::lstm_run`], from the gradients of its outputs
    /// `[T·B, H]` and, if given, of its final states `[h_n, c_n]` (`[B, H]` each): the gradient
    /// of the gates' pre-activations `[T·B, 4H]` (zero past each sequence's end) and of `w_hh`.
    fn lstm_run_backward(
        &self,
        run: &LstmRun<Self::Tensor>,
        w_hh: &Self::Tensor,
        d_outputs: &Self::Tensor,
        [d_h_n, d_c_n]: [Option<&Self::Tensor>; 2],
        lengths: &[usize],
        reverse: bool,
    ) -> (Self::Tensor, Self::Tensor) {
        let batch = lengths.len();
        let steps = self.shape(d_outputs)[0] / batch.max(1);
        let hidden = self.shape(w_hh)[1];
        let zero = self.zeros(&[batch, hidden]);
        let mut dh_next = d_h_n.cloned().unwrap_or_else(|| zero.clone());
        let mut dc_next = d_c_n.cloned().unwrap_or_else(|| zero.clone());
        let mut d_gates: Vec<Option<Self::Tensor>> = vec![None; steps];
        let rows = |x: &Self::Tensor, t: usize| self.slice(x, 0, t * batch, batch);
        let [h_prev, c_prev, c, activated] = &run.saved[..] else {
            panic!("lstm_run_backward: not a run of this backend");
        };
        for t in step_order(steps, !reverse) {
            let keep: Vec<bool> = lengths.iter().map(|&l| t < l).collect();
            let dh_total = self.add(&rows(d_outputs, t), &dh_next);
            let dh = self.select_rows(&keep, &dh_total, &zero);
            let dc = self.select_rows(&keep, &dc_next, &zero);
            let (d_gate, dc_prev) = self.lstm_cell_backward(
                &rows(activated, t),
                &rows(c_prev, t),
                &rows(c, t),
                &dh,
                &dc,
            );
            // Past a sequence's end its state passes through unchanged: only the state's
            // gradient flows on.
            let dh_prev = self.matmul(&d_gate, w_hh, false, false);
            dh_next = self.select_rows(&keep, &dh_prev, &dh_next);
            dc_next = self.select_rows(&keep, &dc_prev, &dc_next);
            d_gates[t] = Some(d_gate);
        }
        let d_gates: Vec<Self::Tensor> = d_gates.into_iter().map(|d| d.expect("ran")).collect();
        let d_gates = self.concat(&d_gates.iter().collect::<Vec<_>>(), 0);
        // The recurrent weights' gradient of all steps in one product: Σ_t dG_tᵀ · h_{t-1}.
        let d_w_hh = self.matmul(&d_gates, h_prev, true, false);
        (d_gates, d_w_hh)
    }

    // Element-wise maximum over groups of rows (the IO examples of a task).
    /// `x` is `[groups · size, D]`; returns `[groups, D]` and the winning row of each element.
    fn max_groups(&self, x: &Self::Tensor, size: usize) -> (Self::Tensor, Self::Index);
    /// Routes `dy [groups, D]` to the winning rows; `rows` is the number of rows of `x`.
    fn max_groups_backward(
        &self,
        dy: &Self::Tensor,
        argmax: &Self::Index,
        rows: usize,
    ) -> Self::Tensor;
    /// The indices on the host.
    fn index_to_vec(&self, index: &Self::Index) -> Vec<u32>;

    // The trace-to-token weighted sum.
    /// `out [R, D] = S · x` for the sparse `S [R, x rows]`.
    fn sparse_rows(&self, s: &SparseRows, x: &Self::Tensor) -> Self::Tensor;
    /// `dx = Sᵀ · dy`, for `x` of `x_rows` rows.
    fn sparse_rows_backward(
        &self,
        s: &SparseRows,
        dy: &Self::Tensor,
        x_rows: usize,
    ) -> Self::Tensor;

    // Loss.
    /// Mean cross-entropy of `logits [N, C]` against `targets` (rows whose target is `ignore` do not
    /// count), logits where `mask` is false treated as −∞. Returns the loss, its gradient, and the
    /// number of rows counted.
    fn cross_entropy(
        &self,
        logits: &Self::Tensor,
        targets: &[u32],
        ignore: u32,
        mask: Option<&[bool]>,
    ) -> (f64, Self::Tensor, usize);
    /// Row-wise log-softmax (for decoding).
    fn log_softmax(&self, logits: &Self::Tensor) -> Self::Tensor;

    // Optimiser updates.
    fn sgd_step(&self, param: &mut Self::Tensor, grad: &Self::Tensor, lr: f64);
    fn adam_step(
        &self,
        param: &mut Self::Tensor,
        grad: &Self::Tensor,
        m: &mut Self::Tensor,
        v: &mut Self::Tensor,
        hyper: &AdamStep,
    );
}

/// The steps of a recurrence in the order it runs them. A sequence of `l` steps is inside its
/// sequence at steps `t < l`, in either direction: the reverse one starts at its own last step.
pub fn step_order(steps: usize, reverse: bool) -> impl Iterator<Item = usize> {
    (0..steps).map(move |t| if reverse { steps - 1 - t } else { t })
}
