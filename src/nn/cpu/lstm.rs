//! The LSTM cell's element-wise rows (PyTorch's gate order i, f, g, o), compiled twice on x86-64:
//! for the baseline target and with AVX2, chosen at run time. The two compute the same operations
//! in the same order (Rust never contracts a multiply and an add into an FMA), so they give the
//! same bits; AVX2 only makes the vectors twice as wide.

use super::Elem;

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
