//! 3×3 convolution (padding 1, stride 1) as im2col + GEMM, parallel over the images of a batch.
//!
//! Forward, per image: `cols [C·9, H·W]` gathers each output position's 3×3 neighbourhoods, and
//! `y = W [O, C·9] · cols + b`. Backward: `dW += dY · colsᵀ` (accumulated per thread, then summed),
//! `db += Σ dY`, and `dX = col2im(Wᵀ · dY)`.

use rayon::prelude::*;

use super::gemm::{gemm, MatRef};
use super::Elem;

/// The columns `x_out` of an output row that read input column `x_out + kx - 1` inside the
/// image, and the first input column they read.
fn valid_span(kx: usize, w: usize) -> (std::ops::Range<usize>, usize) {
    match kx {
        0 => (1..w, 0),
        1 => (0..w, 0),
        _ => (0..w.saturating_sub(1), 1),
    }
}

/// Fills `cols [C·9, H·W]` from one image `x [C, H, W]`.
fn im2col<T: Elem>(x: &[T], channels: usize, h: usize, w: usize, cols: &mut [T]) {
    let hw = h * w;
    for c in 0..channels {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut cols[(c * 9 + ky * 3 + kx) * hw..][..hw];
                let (span, first) = valid_span(kx, w);
                for y in 0..h {
                    let out = &mut row[y * w..(y + 1) * w];
                    let sy = y as isize + ky as isize - 1;
                    if sy < 0 || sy >= h as isize || span.is_empty() {
                        out.fill(T::zero());
                        continue;
                    }
                    let src = &plane[sy as usize * w..(sy as usize + 1) * w];
                    out[..span.start].fill(T::zero());
                    out[span.end..].fill(T::zero());
                    out[span.clone()].copy_from_slice(&src[first..first + span.len()]);
                }
            }
        }
    }
}

/// Adds `cols [C·9, H·W]` back into an image gradient `dx [C, H, W]` (the adjoint of im2col).
fn col2im<T: Elem>(cols: &[T], channels: usize, h: usize, w: usize, dx: &mut [T]) {
    let hw = h * w;
    dx[..channels * hw].fill(T::zero());
    for c in 0..channels {
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &cols[(c * 9 + ky * 3 + kx) * hw..][..hw];
                let (span, first) = valid_span(kx, w);
                for y in 0..h {
                    let sy = y as isize + ky as isize - 1;
                    if sy < 0 || sy >= h as isize || span.is_empty() {
                        continue;
                    }
                    let target = &mut dx[c * hw + sy as usize * w..][first..first + span.len()];
                    for (t, &v) in target
                        .iter_mut()
                        .zip(&row[y * w + span.start..y * w + span.end])
                    {
                        *t += v;
                    }
                }
            }
        }
    }
}

/// `y [N, O, H, W]` from `x [N, C, H, W]`, `weight [O, C, 3, 3]`, `bias [O]`.
pub fn forward<T: Elem>(
    x: &[T],
    dims: [usize; 4],
    weight: &[T],
    out_channels: usize,
    bias: &[T],
) -> Vec<T> {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let mut y = vec![T::zero(); n * out_channels * hw];
    if n == 0 {
        return y;
    }
    y.par_chunks_mut(out_channels * hw)
        .zip(x.par_chunks(c * hw))
        .for_each_init(
            || vec![T::zero(); c * 9 * hw],
            |cols, (y_img, x_img)| {
                im2col(x_img, c, h, w, cols);
                for (o, plane) in y_img.chunks_mut(hw).enumerate() {
                    plane.fill(bias[o]);
                }
                gemm(
                    y_img,
                    MatRef::new(weight, out_channels, c * 9, false),
                    MatRef::new(cols, c * 9, hw, false),
                    true,
                    1,
                );
            },
        );
    y
}

/// Images per parallel task of the backward pass. Partial weight gradients are summed in chunk
/// order, so results do not depend on the number of threads.
const CHUNK: usize = 8;

/// Gradients `(dx, dweight, dbias)`; `dx` only when `input_grad`.
pub fn backward<T: Elem>(
    x: &[T],
    dims: [usize; 4],
    weight: &[T],
    out_channels: usize,
    dy: &[T],
    input_grad: bool,
) -> (Option<Vec<T>>, Vec<T>, Vec<T>) {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let k = c * 9;
    // The gradients of the images `first..first + dx.len() / (c·hw)`, or of `first..first + count`
    // without an input gradient.
    let chunk_grads = |first: usize, count: usize, mut dx: Option<&mut [T]>| {
        let mut dw = vec![T::zero(); out_channels * k];
        let mut db = vec![T::zero(); out_channels];
        let mut cols = vec![T::zero(); k * hw];
        for i in first..first + count {
            let x_img = &x[i * c * hw..(i + 1) * c * hw];
            let dy_img = &dy[i * out_channels * hw..(i + 1) * out_channels * hw];
            im2col(x_img, c, h, w, &mut cols);
            gemm(
                &mut dw,
                MatRef::new(dy_img, out_channels, hw, false),
                MatRef::new(&cols, hw, k, true),
                true,
                1,
            );
            for (o, plane) in dy_img.chunks(hw).enumerate() {
                db[o] += plane.iter().copied().fold(T::zero(), |a, b| a + b);
            }
            if let Some(dx) = dx.as_deref_mut() {
                gemm(
                    &mut cols,
                    MatRef::new(weight, k, out_channels, true),
                    MatRef::new(dy_img, out_channels, hw, false),
                    false,
                    1,
                );
                let local = i - first;
                col2im(
                    &cols,
                    c,
                    h,
                    w,
                    &mut dx[local * c * hw..(local + 1) * c * hw],
                );
            }
        }
        (dw, db)
    };
    let mut dx = input_grad.then(|| vec![T::zero(); n * c * hw]);
    let partials: Vec<(Vec<T>, Vec<T>)> = match dx.as_mut() {
        Some(dx) => dx
            .par_chunks_mut(CHUNK * c * hw)
            .enumerate()
            .map(|(ci, part)| chunk_grads(ci * CHUNK, part.len() / (c * hw), Some(part)))
            .collect(),
        None => (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|ci| chunk_grads(ci * CHUNK, CHUNK.min(n - ci * CHUNK), None))
            .collect(),
    };
    let mut dw = vec![T::zero(); out_channels * k];
    let mut db = vec![T::zero(); out_channels];
    for (pw, pb) in partials {
        for (a, b) in dw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    (dx, dw, db)
}
