//! 3×3 convolution (padding 1, stride 1) as im2col + GEMM, parallel over the images of a batch.
//!
//! Forward, per image: `cols [C·9, H·W]` gathers each output position's 3×3 neighbourhoods, and
//! `y = W [O, C·9] · cols + b`. Backward: `dW += dY · colsᵀ` (accumulated per chunk of images,
//! then summed in chunk order), `db += Σ dY`, and `dX` as the convolution of `dY` with the
//! flipped, transposed kernel `W'[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]`: the same product shape
//! as the forward pass, written straight into `dX` (cheaper than `Wᵀ · dY` followed by the
//! scatter-add of col2im).
//!
//! A ReLU after the convolution can be fused: applied to each output image while it is in cache,
//! and, backward, its mask applied to each image's gradient before the products.

use rayon::prelude::*;

use super::gemm::{gemm, MatRef};
use super::{relu_grad, relu_value, zeroed, Elem};

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

/// `y [N, O, H, W]` from `x [N, C, H, W]`, `weight [O, C, 3, 3]`, `bias [O]`, followed by a
/// ReLU if `relu`.
pub fn forward<T: Elem>(
    x: &[T],
    dims: [usize; 4],
    weight: &[T],
    out_channels: usize,
    bias: &[T],
    relu: bool,
) -> Vec<T> {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let mut y = zeroed(n * out_channels * hw);
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
                if relu {
                    y_img.iter_mut().for_each(|v| *v = relu_value(*v));
                }
            },
        );
    y
}

/// `W'[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]` of `weight [O, C, 3, 3]`: the kernel whose
/// convolution of an output gradient is the input gradient.
fn flipped_kernel<T: Elem>(weight: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let mut flipped = vec![T::zero(); weight.len()];
    for o in 0..out_channels {
        for c in 0..channels {
            for tap in 0..9 {
                flipped[(c * out_channels + o) * 9 + 8 - tap] =
                    weight[(o * channels + c) * 9 + tap];
            }
        }
    }
    flipped
}

/// Images per parallel task of the backward pass. Partial weight gradients are summed in chunk
/// order, so results do not depend on the number of threads.
const CHUNK: usize = 8;

/// Gradients `(dx, dweight, dbias)`; `dx` only when `input_grad`. With `relu_output`, the
/// convolution was followed by a ReLU whose output that is, and `dy` is the gradient of the
/// ReLU's output.
pub fn backward<T: Elem>(
    x: &[T],
    dims: [usize; 4],
    weight: &[T],
    out_channels: usize,
    dy: &[T],
    relu_output: Option<&[T]>,
    input_grad: bool,
) -> (Option<Vec<T>>, Vec<T>, Vec<T>) {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let k = c * 9;
    let flipped = input_grad.then(|| flipped_kernel(weight, out_channels, c));
    // The gradients of the images `first..first + dx.len() / (c·hw)`, or of `first..first + count`
    // without an input gradient.
    let chunk_grads = |first: usize, count: usize, mut dx: Option<&mut [T]>| {
        let mut dw = vec![T::zero(); out_channels * k];
        let mut db = vec![T::zero(); out_channels];
        let mut cols = vec![T::zero(); k.max(out_channels * 9) * hw];
        let mut masked = vec![
            T::zero();
            if relu_output.is_some() {
                out_channels * hw
            } else {
                0
            }
        ];
        for i in first..first + count {
            let x_img = &x[i * c * hw..(i + 1) * c * hw];
            let image = i * out_channels * hw..(i + 1) * out_channels * hw;
            let dy_img = match relu_output {
                Some(y) => {
                    for ((m, &d), &y) in masked.iter_mut().zip(&dy[image.clone()]).zip(&y[image]) {
                        *m = relu_grad(y, d);
                    }
                    &masked[..]
                }
                None => &dy[image],
            };
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
            if let (Some(dx), Some(flipped)) = (dx.as_deref_mut(), &flipped) {
                let local = i - first;
                im2col(dy_img, out_channels, h, w, &mut cols);
                gemm(
                    &mut dx[local * c * hw..(local + 1) * c * hw],
                    MatRef::new(flipped, c, out_channels * 9, false),
                    MatRef::new(&cols, out_channels * 9, hw, false),
                    false,
                    1,
                );
            }
        }
        (dw, db)
    };
    let mut dx = input_grad.then(|| zeroed(n * c * hw));
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
