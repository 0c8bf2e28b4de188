//! The LSTM on the CPU: the cell's element-wise rows (PyTorch's gate order i, f, g, o), and whole
//! recurrences ([`run`], [`run_backward`]).
//!
//! The rows are compiled twice on x86-64: for the baseline target and with AVX2, chosen at run
//! time. The two compute the same operations in the same order (Rust never contracts a multiply
//! and an add into an FMA), so they give the same bits; AVX2 only makes the vectors twice as wide.
//!
//! A recurrence is split into blocks of at most [`BLOCK_ROWS`] sequences, each run through its
//! steps by one task: the sequences of a batch are independent, so the threads need not meet at
//! every step, and a block's state, gates and recurrent product stay in cache. The sequences are
//! put into blocks longest first, and in a block, at each step, only the sequences not yet past
//! their end (a prefix of the block) are computed: a batch padded to its longest sequence costs
//! what its sequences' own lengths cost. Each block keeps its results step-major in buffers of its
//! own: the outputs (and, backward, the gates' gradients) are copied into the batch's step-major
//! tensors at the end, zero past each sequence's end; what the backward pass needs stays block by
//! block ([`Saved`]), and the recurrent weight gradient is summed block by block in order.

use rayon::prelude::*;

use super::gemm::{gemm, MatRef};
use super::Elem;
use crate::nn::backend::step_order;

/// Sequences per block of a recurrence.
const BLOCK_ROWS: usize = 32;

/// An LSTM direction's run over all steps, as [`crate::nn::backend::LstmRun`] holds it, in plain
/// vectors: the outputs step-major, the saved states block by block ([`Saved`]).
pub(super) struct Run<T> {
    pub outputs: Vec<T>,
    pub h_n: Vec<T>,
    pub c_n: Vec<T>,
    pub saved: Saved<Vec<T>>,
}

/// What a run keeps for its backward pass, block after block (in the order of [`blocks`]), each
/// block's `[longest, rows, width]` step-major over its own steps: the states each step started
/// from, the cell states and the activated gates. Only the rows alive at a step are written.
pub(super) struct Saved<V> {
    pub h_prev: V,
    pub c_prev: V,
    pub c: V,
    pub activated: V,
}

/// A block's share of a run: its outputs `[longest, rows, H]`, final states and saved states.
struct BlockRun<T> {
    outputs: Vec<T>,
    h_n: Vec<T>,
    c_n: Vec<T>,
    saved: Saved<Vec<T>>,
}

/// The sequences of a batch in blocks, longest first: `blocks[i]` lists its sequences (rows of
/// the batch) by decreasing length, so that the ones alive at a step are a prefix.
fn blocks(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut rows: Vec<usize> = (0..lengths.len()).collect();
    rows.sort_by_key(|&r| std::cmp::Reverse(lengths[r]));
    rows.chunks(BLOCK_ROWS).map(<[usize]>::to_vec).collect()
}

/// The steps block `block` runs: up to its longest sequence's end, at most `steps`.
fn longest(block: &[usize], lengths: &[usize], steps: usize) -> usize {
    block.first().map_or(0, |&r| lengths[r]).min(steps)
}

/// Where each block's saved states start, in rows (`longest · rows` a block).
fn block_starts(blocks: &[Vec<usize>], lengths: &[usize], steps: usize) -> Vec<usize> {
    let mut start = 0;
    blocks
        .iter()
        .map(|block| {
            let here = start;
            start += longest(block, lengths, steps) * block.len();
            here
        })
        .collect()
}

/// How many sequences of a block (by decreasing length) are alive at step `t`.
fn alive(block: &[usize], lengths: &[usize], t: usize) -> usize {
    block.partition_point(|&r| lengths[r] > t)
}

/// Copies each block's step-major `[longest, rows, width]` buffer (`pick` of its result) into
/// the batch's step-major `[T·B, width]` tensor, each block row to its sequence's row; zero
/// elsewhere.
fn gather<T: Elem, R: Sync>(
    results: &[R],
    blocks: &[Vec<usize>],
    steps: usize,
    width: usize,
    pick: impl Fn(&R) -> &[T] + Sync,
) -> Vec<T> {
    let batch: usize = blocks.iter().map(Vec::len).sum();
    let mut out = vec![T::zero(); steps * batch * width];
    if width > 0 && batch > 0 {
        out.par_chunks_mut(batch * width)
            .enumerate()
            .for_each(|(t, step)| {
                for (result, block) in results.iter().zip(blocks) {
                    let local = pick(result);
                    let rows = block.len() * width;
                    if let Some(local) = local.get(t * rows..(t + 1) * rows) {
                        for (&r, row) in block.iter().zip(local.chunks_exact(width)) {
                            step[r * width..(r + 1) * width].copy_from_slice(row);
                        }
                    }
                }
            });
    }
    out
}

/// The rows of sequences `rows` at step `t` of a step-major `[T·B, width]` tensor, copied into
/// `out` (`[rows, width]`).
fn rows_at<T: Elem>(x: &[T], t: usize, batch: usize, rows: &[usize], width: usize, out: &mut [T]) {
    for (&r, row) in rows.iter().zip(out.chunks_exact_mut(width)) {
        row.copy_from_slice(&x[(t * batch + r) * width..][..width]);
    }
}

/// The recurrence of one direction (see [`crate::nn::Backend::lstm_run`]): `gates_in`
/// `[T·B, 4H]`, `offset` `[B, 4H]`, `w_hh` `[4H, H]`.
pub(super) fn run<T: Elem>(
    gates_in: &[T],
    offset: Option<&[T]>,
    w_hh: &[T],
    lengths: &[usize],
    hidden: usize,
    reverse: bool,
) -> Run<T> {
    let batch = lengths.len();
    let g = 4 * hidden;
    let steps = gates_in.len() / (batch * g).max(1);
    let blocks = blocks(lengths);
    let results: Vec<BlockRun<T>> = blocks
        .par_iter()
        .map(|block| {
            let rows = block.len();
            let longest = longest(block, lengths, steps);
            let mut h = vec![T::zero(); rows * hidden];
            let mut c = vec![T::zero(); rows * hidden];
            let state = longest * rows * hidden;
            let mut local = BlockRun {
                outputs: vec![T::zero(); state],
                h_n: Vec::new(),
                c_n: Vec::new(),
                saved: Saved {
                    h_prev: vec![T::zero(); state],
                    c_prev: vec![T::zero(); state],
                    c: vec![T::zero(); state],
                    activated: vec![T::zero(); longest * rows * g],
                },
            };
            let mut offsets = vec![T::zero(); if offset.is_some() { rows * g } else { 0 }];
            if let Some(offset) = offset {
                rows_at(offset, 0, 0, block, g, &mut offsets);
            }
            for t in step_order(longest, reverse) {
                let live = alive(block, lengths, t);
                let (at, n) = (t * rows * hidden, live * hidden);
                let gates = &mut local.saved.activated[t * rows * g..][..live * g];
                rows_at(gates_in, t, batch, &block[..live], g, gates);
                for (a, &b) in gates.iter_mut().zip(&offsets) {
                    *a += b;
                }
                gemm(
                    gates,
                    MatRef::new(&h[..n], live, hidden, false),
                    MatRef::new(w_hh, hidden, g, true),
                    true,
                    1,
                );
                local.saved.h_prev[at..at + n].copy_from_slice(&h[..n]);
                local.saved.c_prev[at..at + n].copy_from_slice(&c[..n]);
                for r in 0..live {
                    let row = r * hidden..(r + 1) * hidden;
                    let h_out = &mut local.outputs[at + row.start..at + row.end];
                    let c_out = &mut local.saved.c[at + row.start..at + row.end];
                    cell_row(
                        &mut gates[r * g..(r + 1) * g],
                        &c[row.clone()],
                        h_out,
                        c_out,
                    );
                    h[row.clone()].copy_from_slice(h_out);
                    c[row].copy_from_slice(c_out);
                }
            }
            local.h_n = h;
            local.c_n = c;
            local
        })
        .collect();
    let concat = |pick: fn(&Saved<Vec<T>>) -> &Vec<T>| -> Vec<T> {
        results
            .iter()
            .flat_map(|r| pick(&r.saved).iter().copied())
            .collect()
    };
    Run {
        outputs: gather(&results, &blocks, steps, hidden, |r| &r.outputs),
        // The final states: one step of `[rows, H]` a block.
        h_n: gather(&results, &blocks, 1, hidden, |r| &r.h_n),
        c_n: gather(&results, &blocks, 1, hidden, |r| &r.c_n),
        saved: Saved {
            h_prev: concat(|s| &s.h_prev),
            c_prev: concat(|s| &s.c_prev),
            c: concat(|s| &s.c),
            activated: concat(|s| &s.activated),
        },
    }
}

/// The backward pass of a [`run`] (see [`crate::nn::Backend::lstm_run_backward`]): the gates'
/// gradient `[T·B, 4H]`, zero past each sequence's end, and the gradient of `w_hh`, summed
/// block by block in order.
pub(super) fn run_backward<'a, T: Elem>(
    saved: &Saved<&'a [T]>,
    w_hh: &[T],
    d_outputs: &[T],
    d_final: [Option<&[T]>; 2],
    lengths: &[usize],
    hidden: usize,
    reverse: bool,
) -> (Vec<T>, Vec<T>) {
    let batch = lengths.len();
    let g = 4 * hidden;
    let steps = d_outputs.len() / (batch * hidden).max(1);
    let blocks = blocks(lengths);
    let starts = block_starts(&blocks, lengths, steps);
    let results: Vec<(Vec<T>, Vec<T>)> = blocks
        .par_iter()
        .zip(&starts)
        .map(|(block, &start)| {
            let rows = block.len();
            let longest = longest(block, lengths, steps);
            let own = |x: &'a [T], width: usize| -> &'a [T] {
                &x[start * width..(start + longest * rows) * width]
            };
            let (h_prev, c_prev, c, activated) = (
                own(saved.h_prev, hidden),
                own(saved.c_prev, hidden),
                own(saved.c, hidden),
                own(saved.activated, g),
            );
            let initial = |d: Option<&[T]>| {
                let mut out = vec![T::zero(); rows * hidden];
                if let Some(d) = d {
                    rows_at(d, 0, 0, block, hidden, &mut out);
                }
                out
            };
            let mut dh_next = initial(d_final[0]);
            let mut dc_next = initial(d_final[1]);
            let mut d_gates = vec![T::zero(); longest * rows * g];
            let mut dh_prev = vec![T::zero(); rows * hidden];
            let mut dc_prev = vec![T::zero(); hidden];
            let mut dh = vec![T::zero(); rows * hidden];
            // The reverse of the forward pass's order; past a sequence's end its state passed
            // through unchanged, so its gradients pass through too.
            for t in step_order(longest, !reverse) {
                let live = alive(block, lengths, t);
                let (at, n) = (t * rows * hidden, live * hidden);
                rows_at(d_outputs, t, batch, &block[..live], hidden, &mut dh[..n]);
                for (d, &next) in dh[..n].iter_mut().zip(&dh_next[..n]) {
                    *d += next;
                }
                let dg = &mut d_gates[t * rows * g..][..live * g];
                for r in 0..live {
                    let row = r * hidden..(r + 1) * hidden;
                    let saved_row = at + row.start..at + row.end;
                    cell_backward_row(
                        &activated[(t * rows + r) * g..][..g],
                        &c_prev[saved_row.clone()],
                        &c[saved_row],
                        &dh[row.clone()],
                        &dc_next[row.clone()],
                        &mut dg[r * g..(r + 1) * g],
                        &mut dc_prev,
                    );
                    dc_next[row].copy_from_slice(&dc_prev);
                }
                gemm(
                    &mut dh_prev[..n],
                    MatRef::new(dg, live, g, false),
                    MatRef::new(w_hh, g, hidden, false),
                    false,
                    1,
                );
                dh_next[..n].copy_from_slice(&dh_prev[..n]);
            }
            // This block's share of Σ_t dG_tᵀ · h_{t-1}.
            let mut d_w_hh = vec![T::zero(); g * hidden];
            gemm(
                &mut d_w_hh,
                MatRef::new(&d_gates, g, longest * rows, true),
                MatRef::new(h_prev, longest * rows, hidden, false),
                false,
                1,
            );
            (d_gates, d_w_hh)
        })
        .collect();
    let mut d_w_hh = vec![T::zero(); g * hidden];
    for (_, partial) in &results {
        for (a, &b) in d_w_hh.iter_mut().zip(partial) {
            *a += b;
        }
    }
    (gather(&results, &blocks, steps, g, |r| &r.0), d_w_hh)
}

/// One row: `a` holds the gate pre-activations `[i | f | g | o]` and is overwritten with the
/// activations; `c_out = f·c_prev + i·g`, `h_out = o·tanh(c_out)`.
pub(super) fn cell_row<T: Elem>(a: &mut [T], c_prev: &[T], h_out: &mut [T], c_out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { cell_row_avx2(a, c_prev, h_out, c_out) };
    }
    cell_row_body(a, c_prev, h_out, c_out)
}

/// The gradient of one row: `a` the activations saved by [`cell_row`], `c` its cell output,
/// `dh`, `dc` the incoming gradients; writes the gates' gradients `dg` and `dc_prev`.
pub(super) fn cell_backward_row<T: Elem>(
    a: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &[T],
    dg: &mut [T],
    dc_prev: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { cell_backward_row_avx2(a, c_prev, c, dh, dc, dg, dc_prev) };
    }
    cell_backward_row_body(a, c_prev, c, dh, dc, dg, dc_prev)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn cell_row_avx2<T: Elem>(a: &mut [T], c_prev: &[T], h_out: &mut [T], c_out: &mut [T]) {
    cell_row_body(a, c_prev, h_out, c_out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn cell_backward_row_avx2<T: Elem>(
    a: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &[T],
    dg: &mut [T],
    dc_prev: &mut [T],
) {
    cell_backward_row_body(a, c_prev, c, dh, dc, dg, dc_prev)
}

#[inline(always)]
fn cell_row_body<T: Elem>(a: &mut [T], c_prev: &[T], h_out: &mut [T], c_out: &mut [T]) {
    let h = c_prev.len();
    assert!(
        a.len() == 4 * h && h_out.len() == h && c_out.len() == h,
        "LSTM row sizes"
    );
    let (i, rest) = a.split_at_mut(h);
    let (f, rest) = rest.split_at_mut(h);
    let (g, o) = rest.split_at_mut(h);
    for j in 0..h {
        let (iv, fv, gv, ov) = (
            i[j].sigmoid(),
            f[j].sigmoid(),
            g[j].fast_tanh(),
            o[j].sigmoid(),
        );
        i[j] = iv;
        f[j] = fv;
        g[j] = gv;
        o[j] = ov;
        let cv = fv * c_prev[j] + iv * gv;
        c_out[j] = cv;
        h_out[j] = ov * cv.fast_tanh();
    }
}

#[inline(always)]
fn cell_backward_row_body<T: Elem>(
    a: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &[T],
    dg: &mut [T],
    dc_prev: &mut [T],
) {
    let h = c_prev.len();
    assert!(
        a.len() == 4 * h
            && dg.len() == 4 * h
            && [c.len(), dh.len(), dc.len(), dc_prev.len()] == [h; 4],
        "LSTM row sizes"
    );
    let one = T::one();
    let (i, rest) = a.split_at(h);
    let (f, rest) = rest.split_at(h);
    let (g, o) = rest.split_at(h);
    let (di, rest) = dg.split_at_mut(h);
    let (df, rest) = rest.split_at_mut(h);
    let (dgg, d_o) = rest.split_at_mut(h);
    for j in 0..h {
        let (iv, fv, gv, ov) = (i[j], f[j], g[j], o[j]);
        let tc = c[j].fast_tanh();
        let dov = dh[j] * tc;
        let dct = dc[j] + dh[j] * ov * (one - tc * tc);
        di[j] = dct * gv * iv * (one - iv);
        df[j] = dct * c_prev[j] * fv * (one - fv);
        dgg[j] = dct * iv * (one - gv * gv);
        d_o[j] = dov * ov * (one - ov);
        dc_prev[j] = dct * fv;
    }
}
