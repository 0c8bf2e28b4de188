//! Multi-layer, optionally bidirectional LSTM over variable-length batches (`nn.LSTM` with
//! packed sequences), forward and backward.
//!
//! Weights use PyTorch's layout and names: per layer `l` and direction (`_reverse` for the
//! backward one) `weight_ih_l{l}` `[4H, in]`, `weight_hh_l{l}` `[4H, H]`, `bias_ih_l{l}` and
//! `bias_hh_l{l}` `[4H]`, gates in the order input, forget, cell, output. Inputs are time-major:
//! one `[B, in]` tensor per step. Row `b` of the batch is a sequence of `lengths[b]` steps: past
//! its end its outputs are zero and its state is frozen (as with packed sequences), and the
//! backward direction starts at its own last step. Initial states are zero.

use rand::Rng;

use crate::nn::backend::{Backend, LstmRun};
use crate::nn::param::{join, uniform, Module, Param};

/// The weights of one layer and direction.
#[derive(Clone, Debug)]
pub struct LstmDirection<B: Backend> {
    pub weight_ih: Param<B>,
    pub weight_hh: Param<B>,
    pub bias_ih: Param<B>,
    pub bias_hh: Param<B>,
}

#[derive(Clone, Debug)]
pub struct Lstm<B: Backend> {
    pub input_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
    /// `cells[layer * directions + direction]`.
    pub cells: Vec<LstmDirection<B>>,
}

/// What the forward pass saved for the backward pass.
#[derive(Clone, Debug)]
pub struct LstmCache<B: Backend> {
    lengths: Vec<usize>,
    /// The input of every layer, stacked over time: `[T·B, in]`.
    layer_inputs: Vec<B::Tensor>,
    /// `runs[layer * directions + direction]`.
    runs: Vec<LstmRun<B::Tensor>>,
    /// The static part of the first layer's input, if any.
    static_input: Option<B::Tensor>,
}

/// The outputs of the forward pass.
#[derive(Clone, Debug)]
pub struct LstmOutput<B: Backend> {
    /// One `[B, directions · H]` tensor per step: the last layer's hidden states (forward ‖
    /// backward), zero past each sequence's end.
    pub outputs: Vec<B::Tensor>,
    /// Final hidden and cell states, `[layers · directions, B, H]`, each sequence's at its end.
    pub h_n: B::Tensor,
    pub c_n: B::Tensor,
}

impl<B: Backend> Lstm<B> {
    /// PyTorch's default initialisation: every weight and bias uniform in ±1/√H.
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        input_size: usize,
        hidden: usize,
        layers: usize,
        bidirectional: bool,
        rng: &mut R,
    ) -> Self {
        let directions = if bidirectional { 2 } else { 1 };
        let bound = 1.0 / (hidden as f64).sqrt();
        let mut cells = Vec::with_capacity(layers * directions);
        for layer in 0..layers {
            let inputs = if layer == 0 {
                input_size
            } else {
                hidden * directions
            };
            for _ in 0..directions {
                let mut param =
                    |shape: &[usize]| Param::new(backend, uniform(backend, shape, bound, rng));
                cells.push(LstmDirection {
                    weight_ih: param(&[4 * hidden, inputs]),
                    weight_hh: param(&[4 * hidden, hidden]),
                    bias_ih: param(&[4 * hidden]),
                    bias_hh: param(&[4 * hidden]),
                });
            }
        }
        Lstm {
            input_size,
            hidden,
            layers,
            bidirectional,
            cells,
        }
    }

    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Runs the LSTM over `inputs` (one `[B, input_size]` tensor per step; at least one step).
    pub fn forward(
        &self,
        backend: &B,
        inputs: &[B::Tensor],
        lengths: &[usize],
    ) -> (LstmOutput<B>, LstmCache<B>) {
        self.forward_with_static(backend, inputs, None, lengths)
    }

    /// Like [`Lstm::forward`], with the first layer's input made of a part that changes with the
    /// step (`inputs`, `[B, input_size − S]` each) followed by a part that does not
    /// (`static_input`, `[B, S]`, the same at every step). The result is that of `forward` on the
    /// concatenated inputs, but the static part's projection is computed once instead of at
    /// every step.
    pub fn forward_with_static(
        &self,
        backend: &B,
        inputs: &[B::Tensor],
        static_input: Option<&B::Tensor>,
        lengths: &[usize],
    ) -> (LstmOutput<B>, LstmCache<B>) {
        let steps = inputs.len();
        let batch = lengths.len();
        let h = self.hidden;
        let directions = self.directions();
        let mut cache = LstmCache {
            lengths: lengths.to_vec(),
            layer_inputs: Vec::with_capacity(self.layers),
            runs: Vec::with_capacity(self.cells.len()),
            static_input: static_input.cloned(),
        };
        let mut stacked = backend.concat(&inputs.iter().collect::<Vec<_>>(), 0);
        for layer in 0..self.layers {
            for direction in 0..directions {
                let cell = &self.cells[layer * directions + direction];
                // Input projections of all steps at once: [T·B, 4H]; a static part of the
                // first layer's input is projected once, [B, 4H], and added at every step.
                let (dynamic_weight, static_projection) = match (layer, static_input) {
                    (0, Some(s)) => {
                        let (dynamic, fixed) = split_weight(backend, &cell.weight_ih.value, s);
                        (Some(dynamic), Some(backend.matmul(s, &fixed, false, true)))
                    }
                    _ => (None, None),
                };
                let mut projected = backend.matmul(
                    &stacked,
                    dynamic_weight.as_ref().unwrap_or(&cell.weight_ih.value),
                    false,
                    true,
                );
                backend.add_bias(&mut projected, &cell.bias_ih.value);
                backend.add_bias(&mut projected, &cell.bias_hh.value);
                cache.runs.push(backend.lstm_run(
                    &projected,
                    static_projection.as_ref(),
                    &cell.weight_hh.value,
                    lengths,
                    direction == 1,
                ));
            }
            let runs: &[LstmRun<B::Tensor>] = &cache.runs[layer * directions..];
            let next = if directions == 1 {
                runs[0].outputs.clone()
            } else {
                backend.concat(&[&runs[0].outputs, &runs[1].outputs], 1)
            };
            cache
                .layer_inputs
                .push(std::mem::replace(&mut stacked, next));
        }
        let stack = |state: &dyn Fn(&LstmRun<B::Tensor>) -> &B::Tensor| {
            let reshaped: Vec<B::Tensor> = cache
                .runs
                .iter()
                .map(|run| backend.reshape(state(run), &[1, batch, h]))
                .collect();
            backend.concat(&reshaped.iter().collect::<Vec<_>>(), 0)
        };
        let output = LstmOutput {
            outputs: (0..steps)
                .map(|t| backend.slice(&stacked, 0, t * batch, batch))
                .collect(),
            h_n: stack(&|run| &run.h_n),
            c_n: stack(&|run| &run.c_n),
        };
        (output, cache)
    }

    /// Backward pass from the gradients of the outputs (one `[B, directions·H]` per step) and,
    /// optionally, of the final states (`[layers·directions, B, H]` each). Accumulates the weight
    /// gradients and, if `input_grad`, returns the gradients of the inputs, one `[B, input_size]`
    /// per step (an empty vector otherwise).
    pub fn backward(
        &mut self,
        backend: &B,
        cache: &LstmCache<B>,
        d_outputs: &[B::Tensor],
        d_h_n: Option<&B::Tensor>,
        d_c_n: Option<&B::Tensor>,
        input_grad: bool,
    ) -> Vec<B::Tensor> {
        self.backward_with_static(backend, cache, d_outputs, d_h_n, d_c_n, input_grad)
            .0
    }

    /// [`Lstm::backward`] after [`Lstm::forward_with_static`]: also returns the gradient of the
    /// static input (`[B, S]`, when `input_grad` and there was one).
    pub fn backward_with_static(
        &mut self,
        backend: &B,
        cache: &LstmCache<B>,
        d_outputs: &[B::Tensor],
        d_h_n: Option<&B::Tensor>,
        d_c_n: Option<&B::Tensor>,
        input_grad: bool,
    ) -> (Vec<B::Tensor>, Option<B::Tensor>) {
        let mut d_static: Option<B::Tensor> = None;
        let steps = d_outputs.len();
        let batch = cache.lengths.len();
        let h = self.hidden;
        let directions = self.directions();
        // The gradient of the current layer's outputs, stacked over time: [T·B, directions·H].
        let mut d_stacked = backend.concat(&d_outputs.iter().collect::<Vec<_>>(), 0);
        for layer in (0..self.layers).rev() {
            let stacked = &cache.layer_inputs[layer];
            let inputs = backend.shape(stacked)[1];
            let wants_input = layer > 0 || input_grad;
            let mut d_input = backend.zeros(&[if wants_input { steps * batch } else { 0 }, inputs]);
            for direction in 0..directions {
                let index = layer * directions + direction;
                let cell = &mut self.cells[index];
                let run = &cache.runs[index];
                let final_grad = |d: Option<&B::Tensor>| {
                    d.map(|d| backend.reshape(&backend.slice(d, 0, index, 1), &[batch, h]))
                };
                let own_part;
                let d_out = if directions == 1 {
                    &d_stacked
                } else {
                    own_part = backend.slice(&d_stacked, 1, direction * h, h);
                    &own_part
                };
                let (d_gates, d_w_hh) = backend.lstm_run_backward(
                    run,
                    &cell.weight_hh.value,
                    d_out,
                    [final_grad(d_h_n).as_ref(), final_grad(d_c_n).as_ref()],
                    &cache.lengths,
                    direction == 1,
                );
                backend.add_assign(&mut cell.weight_hh.grad, &d_w_hh);
                let static_part = if layer == 0 {
                    cache.static_input.as_ref()
                } else {
                    None
                };
                let input_weight = match static_part {
                    Some(s) => {
                        // dW = [dGᵀ · X_dynamic ‖ (Σ_t dG_t)ᵀ · S]; dS = (Σ_t dG_t) · W_static.
                        let (dynamic, fixed) = split_weight(backend, &cell.weight_ih.value, s);
                        let mut d_sum = backend.slice(&d_gates, 0, 0, batch);
                        for t in 1..steps {
                            backend.add_assign(
                                &mut d_sum,
                                &backend.slice(&d_gates, 0, t * batch, batch),
                            );
                        }
                        let d_dynamic = backend.matmul(&d_gates, stacked, true, false);
                        let d_fixed = backend.matmul(&d_sum, s, true, false);
                        backend.add_assign(
                            &mut cell.weight_ih.grad,
                            &backend.concat(&[&d_dynamic, &d_fixed], 1),
                        );
                        if input_grad {
                            let d = backend.matmul(&d_sum, &fixed, false, false);
                            match &mut d_static {
                                Some(total) => backend.add_assign(total, &d),
                                None => d_static = Some(d),
                            }
                        }
                        dynamic
                    }
                    None => {
                        backend.matmul_acc(
                            &mut cell.weight_ih.grad,
                            &d_gates,
                            stacked,
                            true,
                            false,
                        );
                        cell.weight_ih.value.clone()
                    }
                };
                let db = backend.sum_rows(&d_gates);
                backend.add_assign(&mut cell.bias_ih.grad, &db);
                backend.add_assign(&mut cell.bias_hh.grad, &db);
                if wants_input {
                    backend.matmul_acc(&mut d_input, &d_gates, &input_weight, false, false);
                }
            }
            d_stacked = d_input;
        }
        let d_inputs = if input_grad {
            (0..steps)
                .map(|t| backend.slice(&d_stacked, 0, t * batch, batch))
                .collect()
        } else {
            Vec::new()
        };
        (d_inputs, d_static)
    }
}

/// The recurrent state of a unidirectional LSTM during step-by-step decoding: `h` and `c` of
/// every layer, `[B, H]` each.
#[derive(Clone, Debug)]
pub struct LstmState<B: Backend> {
    pub h: Vec<B::Tensor>,
    pub c: Vec<B::Tensor>,
}

impl<B: Backend> LstmState<B> {
    /// Keeps rows `rows` of every state, in that order (beam reordering).
    pub fn select(&self, backend: &B, rows: &[u32]) -> LstmState<B> {
        LstmState {
            h: self
                .h
                .iter()
                .map(|t| backend.gather_rows(t, rows))
                .collect(),
            c: self
                .c
                .iter()
                .map(|t| backend.gather_rows(t, rows))
                .collect(),
        }
    }
}

/// Step-by-step decoding with a unidirectional LSTM whose first-layer input may end with a static
/// part (see [`Lstm::forward_with_static`]): the static projection and both biases are folded
/// into one `[B, 4H]` term computed once.
#[derive(Clone, Debug)]
pub struct LstmStepper<B: Backend> {
    /// The first layer's input weight restricted to the dynamic input.
    dynamic_weight: B::Tensor,
    /// `static · W_staticᵀ + b_ih + b_hh` of the first layer, `[B, 4H]` (or `[1, 4H]` without a
    /// static input, broadcast by [`Backend::add_bias`]).
    first_offset: B::Tensor,
    static_rows: bool,
}

impl<B: Backend> LstmStepper<B> {
    /// Keeps rows `rows` of the static term (beam reordering).
    pub fn select(&self, backend: &B, rows: &[u32]) -> LstmStepper<B> {
        let mut next = self.clone();
        if self.static_rows {
            next.first_offset = backend.gather_rows(&self.first_offset, rows);
        }
        next
    }
}

impl<B: Backend> Lstm<B> {
    /// The zero state of `batch` sequences.
    pub fn zero_state(&self, backend: &B, batch: usize) -> LstmState<B> {
        let zero = backend.zeros(&[batch, self.hidden]);
        LstmState {
            h: vec![zero.clone(); self.layers],
            c: vec![zero; self.layers],
        }
    }

    /// Prepares step-by-step decoding; `static_input` is `[B, S]` as in
    /// [`Lstm::forward_with_static`]. Unidirectional LSTMs only.
    pub fn stepper(&self, backend: &B, static_input: Option<&B::Tensor>) -> LstmStepper<B> {
        assert!(
            !self.bidirectional,
            "step-by-step decoding needs a unidirectional LSTM"
        );
        let cell = &self.cells[0];
        let biases = backend.add(&cell.bias_ih.value, &cell.bias_hh.value);
        match static_input {
            Some(s) => {
                let (dynamic, fixed) = split_weight(backend, &cell.weight_ih.value, s);
                let mut offset = backend.matmul(s, &fixed, false, true);
                backend.add_bias(&mut offset, &biases);
                LstmStepper {
                    dynamic_weight: dynamic,
                    first_offset: offset,
                    static_rows: true,
                }
            }
            None => LstmStepper {
                dynamic_weight: cell.weight_ih.value.clone(),
                first_offset: backend.reshape(&biases, &[4 * self.hidden]),
                static_rows: false,
            },
        }
    }

    /// One step: `input` is `[B, dynamic input]`; returns the last layer's output `[B, H]` and the
    /// new state. Equal to one step of [`Lstm::forward_with_static`].
    pub fn step(
        &self,
        backend: &B,
        stepper: &LstmStepper<B>,
        state: &LstmState<B>,
        input: &B::Tensor,
    ) -> (B::Tensor, LstmState<B>) {
        self.step_grouped(backend, stepper, state, input, 1)
    }

    /// One step where consecutive groups of `group` streams share their dynamic input (the IO
    /// pairs of one task, which differ only in the static input): `input` is
    /// `[B / group, dynamic input]`, and its projection is computed once per group. Equal to
    /// [`Lstm::step`] on the input with each row repeated `group` times.
    pub fn step_grouped(
        &self,
        backend: &B,
        stepper: &LstmStepper<B>,
        state: &LstmState<B>,
        input: &B::Tensor,
        group: usize,
    ) -> (B::Tensor, LstmState<B>) {
        let mut next = LstmState {
            h: Vec::with_capacity(self.layers),
            c: Vec::with_capacity(self.layers),
        };
        let mut x = input.clone();
        for layer in 0..self.layers {
            let cell = &self.cells[layer];
            let mut gates = if layer == 0 {
                let mut g = backend.matmul(&x, &stepper.dynamic_weight, false, true);
                if group > 1 {
                    let rows = backend.shape(&g)[0] as u32;
                    let repeated: Vec<u32> = (0..rows)
                        .flat_map(|r| std::iter::repeat_n(r, group))
                        .collect();
                    g = backend.gather_rows(&g, &repeated);
                }
                if stepper.static_rows {
                    backend.add_assign(&mut g, &stepper.first_offset);
                } else {
                    backend.add_bias(&mut g, &stepper.first_offset);
                }
                g
            } else {
                let mut g = backend.matmul(&x, &cell.weight_ih.value, false, true);
                backend.add_bias(&mut g, &cell.bias_ih.value);
                backend.add_bias(&mut g, &cell.bias_hh.value);
                g
            };
            backend.matmul_acc(
                &mut gates,
                &state.h[layer],
                &cell.weight_hh.value,
                false,
                true,
            );
            let (h, c, _) = backend.lstm_cell(&gates, &state.c[layer]);
            x = h.clone();
            next.h.push(h);
            next.c.push(c);
        }
        (x, next)
    }
}

/// Splits a first-layer input weight `[4H, in]` into the columns of the dynamic input and those
/// of the static input `s` (`[B, S]`, the last `S` columns).
fn split_weight<B: Backend>(
    backend: &B,
    weight: &B::Tensor,
    s: &B::Tensor,
) -> (B::Tensor, B::Tensor) {
    let inputs = backend.shape(weight)[1];
    let fixed = backend.shape(s)[1];
    (
        backend.slice(weight, 1, 0, inputs - fixed),
        backend.slice(weight, 1, inputs - fixed, fixed),
    )
}

impl<B: Backend> Module<B> for Lstm<B> {
    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        let directions = self.directions();
        for (index, cell) in self.cells.iter_mut().enumerate() {
            let (layer, direction) = (index / directions, index % directions);
            let suffix = if direction == 1 { "_reverse" } else { "" };
            f(
                &join(prefix, &format!("weight_ih_l{layer}{suffix}")),
                &mut cell.weight_ih,
            );
            f(
                &join(prefix, &format!("weight_hh_l{layer}{suffix}")),
                &mut cell.weight_hh,
            );
            f(
                &join(prefix, &format!("bias_ih_l{layer}{suffix}")),
                &mut cell.bias_ih,
            );
            f(
                &join(prefix, &format!("bias_hh_l{layer}{suffix}")),
                &mut cell.bias_hh,
            );
        }
    }
}
