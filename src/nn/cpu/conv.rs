//! 3×3 convolution (padding 1, stride 1) as im2col + GEMM, parallel over blocks of images.
//!
//! Forward, per block of images: `cols [C·9, block·H·W]` gathers each output position's 3×3
//! neighbourhoods, and `Y = W [O, C·9] · cols + b`, then reordered to `[block, O, H, W]`.
//! Backward: `dW += dY · colsᵀ` (one partial per block, summed in block order), `db += Σ dY`, and
//! `dX = col2im(Wᵀ · dY)`.

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

/// Fills the columns of one image `x [C, H, W]` in a block of images: row `r` of the block's
/// `cols [C·9, stride]` holds this image's `H·W` values at `offset..offset + H·W`.
fn im2col<T: Elem>(
    x: &[T],
    channels: usize,
    h: usize,
    w: usize,
    cols: &mut [T],
    stride: usize,
    offset: usize,
) {
    let hw = h * w;
    for c in 0..channels {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut cols[(c * 9 + ky * 3 + kx) * stride + offset..][..hw];
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

/// Adds one image's columns of a block (laid out as in [`im2col`]) back into its gradient
/// `dx [C, H, W]` (the adjoint of im2col).
fn col2im<T: Elem>(
    cols: &[T],
    channels: usize,
    h: usize,
    w: usize,
    stride: usize,
    offset: usize,
    dx: &mut [T],
) {
    let hw = h * w;
    dx[..channels * hw].fill(T::zero());
    for c in 0..channels {
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &cols[(c * 9 + ky * 3 + kx) * stride + offset..][..hw];
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

/// Images per block: each block's columns form one matrix `[C·9, block·H·W]`, so that a product
/// covers several images (wide products run much closer to the machine's peak than one image's
/// `[O, C·9] · [C·9, H·W]`, especially for few channels). Blocks are also the unit of parallel
/// work, and partial weight gradients are summed in block order, so results do not depend on the
/// number of threads.
const BLOCK: usize = 8;

/// Copies a block's `[O, count·H·W]` matrix into its images' `[count, O, H·W]` layout.
fn wide_to_images<T: Elem>(wide: &[T], images: &mut [T], out_channels: usize, hw: usize) {
    let stride = images.len() / out_channels;
    for (b, image) in images.chunks_mut(out_channels * hw).enumerate() {
        for (o, plane) in image.chunks_mut(hw).enumerate() {
            plane.copy_from_slice(&wide[o * stride + b * hw..][..hw]);
        }
    }
}

/// The inverse of [`wide_to_images`].
fn images_to_wide<T: Elem>(images: &[T], wide: &mut [T], out_channels: usize, hw: usize) {
    let stride = images.len() / out_channels;
    for (b, image) in images.chunks(out_channels * hw).enumerate() {
        for (o, plane) in image.chunks(hw).enumerate() {
            wide[o * stride + b * hw..][..hw].copy_from_slice(plane);
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
    y.par_chunks_mut(BLOCK * out_channels * hw)
        .zip(x.par_chunks(BLOCK * c * hw))
        .for_each_init(
            || {
                (
                    vec![T::zero(); c * 9 * BLOCK * hw],
                    vec![T::zero(); out_channels * BLOCK * hw],
                )
            },
            |(cols, wide), (y_block, x_block)| {
                let count = x_block.len() / (c * hw);
                let stride = count * hw;
                for (b, x_img) in x_block.chunks(c * hw).enumerate() {
                    im2col(x_img, c, h, w, cols, stride, b * hw);
                }
                let wide = &mut wide[..out_channels * stride];
                for (o, row) in wide.chunks_mut(stride).enumerate() {
                    row.fill(bias[o]);
                }
                gemm(
                    wide,
                    MatRef::new(weight, out_channels, c * 9, false),
                    MatRef::new(&cols[..c * 9 * stride], c * 9, stride, false),
                    true,
                    1,
                );
                wide_to_images(wide, y_block, out_channels, hw);
            },
        );
    y
}

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
    // The gradients of the block of images `first..first + count`; `dx` is the block's part of
    // the input gradient, if wanted.
    let block_grads = |first: usize, count: usize, dx: Option<&mut [T]>| {
        let stride = count * hw;
        let mut dw = vec![T::zero(); out_channels * k];
        let mut db = vec![T::zero(); out_channels];
        let mut cols = vec![T::zero(); k * stride];
        let mut wide = vec![T::zero(); out_channels * stride];
        let x_block = &x[first * c * hw..(first + count) * c * hw];
        let dy_block = &dy[first * out_channels * hw..(first + count) * out_channels * hw];
        for (b, x_img) in x_block.chunks(c * hw).enumerate() {
            im2col(x_img, c, h, w, &mut cols, stride, b * hw);
        }
        images_to_wide(dy_block, &mut wide, out_channels, hw);
        gemm(
            &mut dw,
            MatRef::new(&wide, out_channels, stride, false),
            MatRef::new(&cols, stride, k, true),
            false,
            1,
        );
        for (o, row) in wide.chunks(stride).enumerate() {
            db[o] = row.iter().copied().fold(T::zero(), |a, b| a + b);
        }
        if let Some(dx) = dx {
            gemm(
                &mut cols,
                MatRef::new(weight, k, out_channels, true),
                MatRef::new(&wide, out_channels, stride, false),
                false,
                1,
            );
            for (b, dx_img) in dx.chunks_mut(c * hw).enumerate() {
                col2im(&cols, c, h, w, stride, b * hw, dx_img);
            }
        }
        (dw, db)
    };
    let mut dx = input_grad.then(|| vec![T::zero(); n * c * hw]);
    let partials: Vec<(Vec<T>, Vec<T>)> = match dx.as_mut() {
        Some(dx) => dx
            .par_chunks_mut(BLOCK * c * hw)
            .enumerate()
            .map(|(bi, part)| block_grads(bi * BLOCK, part.len() / (c * hw), Some(part)))
            .collect(),
        None => (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|bi| block_grads(bi * BLOCK, BLOCK.min(n - bi * BLOCK), None))
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
