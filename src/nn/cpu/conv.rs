//! 3×3 convolution (padding 1, stride 1), parallel over the images of a batch: directly
//! ([`super::direct`]) where input and output have few channels, by Winograd's F(2×2, 3×3)
//! ([`super::winograd`]) where they have many, otherwise as im2col + GEMM, described here. The
//! weight gradient is direct for narrow layers, otherwise im2col + GEMM.
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

use super::direct::{self, Sources};
use super::gemm::{gemm, MatRef};
use super::winograd;
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
    let kernel = Kernel::new(weight, out_channels, c);
    y.par_chunks_mut(out_channels * hw)
        .zip(x.par_chunks(c * hw))
        .for_each_init(Scratch::default, |scratch, (y_img, x_img)| {
            kernel.convolve_image(x_img, [c, h, w], Some(bias), relu, y_img, scratch);
        });
    y
}

/// A kernel `[O, C, 3, 3]` prepared for the path its channel counts take.
enum Kernel<T> {
    /// As given, for the direct convolution of narrow layers.
    Narrow { weight: Vec<T> },
    /// Winograd-transformed ([`winograd::transform_kernel`]).
    Winograd { u: Vec<T>, out_channels: usize },
    /// As given, for im2col + GEMM.
    Direct { weight: Vec<T>, out_channels: usize },
}

/// Per-thread buffers of [`Kernel::convolve_image`], reused across images.
#[derive(Default)]
struct Scratch<T> {
    cols: Vec<T>,
    winograd: winograd::Scratch<T>,
    sources: Sources<T>,
}

impl<T: Elem> Kernel<T> {
    fn new(weight: &[T], out_channels: usize, channels: usize) -> Kernel<T> {
        if direct::applies(channels, out_channels) {
            Kernel::Narrow {
                weight: direct::transpose_kernel(weight, out_channels, channels),
            }
        } else if winograd::applies(channels, out_channels) {
            Kernel::Winograd {
                u: winograd::transform_kernel(weight, out_channels, channels),
                out_channels,
            }
        } else {
            Kernel::Direct {
                weight: weight.to_vec(),
                out_channels,
            }
        }
    }

    /// `y_img [O, H, W]` from `x_img [C, H, W]` (`dims = [C, H, W]`), plus `bias` if given,
    /// followed by a ReLU if `relu`.
    fn convolve_image(
        &self,
        x_img: &[T],
        [c, h, w]: [usize; 3],
        bias: Option<&[T]>,
        relu: bool,
        y_img: &mut [T],
        scratch: &mut Scratch<T>,
    ) {
        match self {
            Kernel::Narrow { weight } => {
                scratch.sources.fill(x_img, c, h, w, true);
                direct::forward_image(&scratch.sources, weight, bias, relu, y_img);
            }
            Kernel::Winograd { u, out_channels } => winograd::convolve_image(
                x_img,
                c,
                h,
                w,
                u,
                *out_channels,
                bias,
                relu,
                y_img,
                &mut scratch.winograd,
            ),
            Kernel::Direct {
                weight,
                out_channels,
            } => {
                let hw = h * w;
                scratch.cols.resize(c * 9 * hw, T::zero());
                im2col(x_img, c, h, w, &mut scratch.cols);
                for (o, plane) in y_img.chunks_mut(hw).enumerate() {
                    plane.fill(bias.map_or(T::zero(), |b| b[o]));
                }
                gemm(
                    y_img,
                    MatRef::new(weight, *out_channels, c * 9, false),
                    MatRef::new(&scratch.cols, c * 9, hw, false),
                    true,
                    1,
                );
                if relu {
                    y_img.iter_mut().for_each(|v| *v = relu_value(*v));
                }
            }
        }
    }
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
    if direct::applies(c, out_channels) {
        return backward_narrow(x, dims, weight, out_channels, dy, relu_output, input_grad);
    }
    let hw = h * w;
    let k = c * 9;
    // The input gradient is the convolution of the output gradient with the flipped kernel.
    let flipped =
        input_grad.then(|| Kernel::new(&flipped_kernel(weight, out_channels, c), c, out_channels));
    // The gradients of the images `first..first + dx.len() / (c·hw)`, or of `first..first + count`
    // without an input gradient.
    let chunk_grads = |first: usize, count: usize, mut dx: Option<&mut [T]>| {
        let mut dw = vec![T::zero(); out_channels * k];
        let mut db = vec![T::zero(); out_channels];
        let mut cols = vec![T::zero(); k * hw];
        let mut masked = Vec::new();
        let mut scratch = Scratch::default();
        for i in first..first + count {
            let x_img = &x[i * c * hw..(i + 1) * c * hw];
            let dy_img = image_grad(dy, relu_output, i, out_channels * hw, &mut masked);
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
                let dx_img = &mut dx[local * c * hw..(local + 1) * c * hw];
                flipped.convolve_image(
                    dy_img,
                    [out_channels, h, w],
                    None,
                    false,
                    dx_img,
                    &mut scratch,
                );
            }
        }
        (dw, db)
    };
    by_chunks(
        n,
        c * hw,
        [out_channels * k, out_channels],
        input_grad,
        chunk_grads,
    )
}

/// [`backward`] of a narrow layer, by the direct kernels: per image, the (masked) output
/// gradient and the input are laid out once as [`Sources`] and serve the weight gradient, the bias
/// gradient and the input gradient (the convolution of the output gradient with the flipped
/// kernel). Chunks of [`CHUNK`] images keep their weight gradient as lane sums, reduced at the end
/// of the chunk, and the chunks' gradients are summed in order.
fn backward_narrow<T: Elem>(
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
    let flipped = input_grad.then(|| {
        direct::transpose_kernel(&flipped_kernel(weight, out_channels, c), c, out_channels)
    });
    let chunk_grads = |first: usize, count: usize, mut dx: Option<&mut [T]>| {
        let mut lanes = vec![T::zero(); out_channels * k * direct::LANES];
        let mut db = vec![T::zero(); out_channels];
        let mut masked = Vec::new();
        let (mut x_src, mut dy_src) = (Sources::default(), Sources::default());
        for i in first..first + count {
            let dy_img = image_grad(dy, relu_output, i, out_channels * hw, &mut masked);
            x_src.fill(&x[i * c * hw..(i + 1) * c * hw], c, h, w, true);
            // The masked copies of the output gradient serve only its convolution into `dx`.
            dy_src.fill(dy_img, out_channels, h, w, input_grad);
            direct::weight_grad_image(&x_src, &dy_src, &mut lanes);
            direct::bias_grad_image(&dy_src, &mut db);
            if let (Some(dx), Some(flipped)) = (dx.as_deref_mut(), &flipped) {
                let local = i - first;
                let dx_img = &mut dx[local * c * hw..(local + 1) * c * hw];
                direct::forward_image(&dy_src, flipped, None, false, dx_img);
            }
        }
        let mut dw = vec![T::zero(); out_channels * k];
        direct::reduce_lanes(&lanes, &mut dw);
        (dw, db)
    };
    by_chunks(
        n,
        c * hw,
        [out_channels * k, out_channels],
        input_grad,
        chunk_grads,
    )
}

/// Runs `chunk_grads(first, count, dx)` on the chunks of [`CHUNK`] images of a batch of `n`, in
/// parallel, each writing its images' input gradients (of `image` elements each) into its part of
/// `dx` when `input_grad`, and sums the chunks' `(dW, db)` (`weights` and `out_channels` long) in
/// chunk order, from zero (so an empty batch has zero gradients).
fn by_chunks<T: Elem>(
    n: usize,
    image: usize,
    [weights, out_channels]: [usize; 2],
    input_grad: bool,
    chunk_grads: impl Fn(usize, usize, Option<&mut [T]>) -> (Vec<T>, Vec<T>) + Sync,
) -> (Option<Vec<T>>, Vec<T>, Vec<T>) {
    let mut dx = input_grad.then(|| zeroed(n * image));
    let partials: Vec<(Vec<T>, Vec<T>)> = match dx.as_mut() {
        Some(dx) if image > 0 => dx
            .par_chunks_mut(CHUNK * image)
            .enumerate()
            .map(|(ci, part)| chunk_grads(ci * CHUNK, part.len() / image, Some(part)))
            .collect(),
        _ => (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|ci| chunk_grads(ci * CHUNK, CHUNK.min(n - ci * CHUNK), None))
            .collect(),
    };
    let mut dw = vec![T::zero(); weights];
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

/// The output gradient of image `i` (`image` elements), through the ReLU whose output is
/// `relu_output` if there was one: written into `masked`, or borrowed from `dy`.
fn image_grad<'a, T: Elem>(
    dy: &'a [T],
    relu_output: Option<&[T]>,
    i: usize,
    image: usize,
    masked: &'a mut Vec<T>,
) -> &'a [T] {
    let range = i * image..(i + 1) * image;
    match relu_output {
        Some(y) => {
            masked.clear();
            masked.extend(
                dy[range.clone()]
                    .iter()
                    .zip(&y[range])
                    .map(|(&d, &y)| relu_grad(y, d)),
            );
            &masked[..]
        }
        None => &dy[range],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    }

    /// Winograd's path equals im2col + GEMM (up to rounding) on odd and even sizes, channel
    /// counts that do and do not fill its vector lanes, with bias and ReLU.
    #[test]
    fn winograd_matches_im2col() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(c, o, h, w) in &[
            (1, 1, 1, 1),
            (3, 5, 2, 3),
            (17, 33, 5, 4),
            (32, 16, 18, 18),
            (20, 40, 7, 9),
        ] {
            let (x, wt, bias) = (
                random(c * h * w, &mut rng),
                random(o * c * 9, &mut rng),
                random(o, &mut rng),
            );
            for relu in [false, true] {
                let mut expected = vec![0.0; o * h * w];
                let mut cols = vec![0.0; c * 9 * h * w];
                im2col(&x, c, h, w, &mut cols);
                for (plane, &b) in expected.chunks_mut(h * w).zip(&bias) {
                    plane.fill(b);
                }
                gemm(
                    &mut expected,
                    MatRef::new(&wt, o, c * 9, false),
                    MatRef::new(&cols, c * 9, h * w, false),
                    true,
                    1,
                );
                if relu {
                    expected.iter_mut().for_each(|v| *v = relu_value(*v));
                }
                let u = winograd::transform_kernel(&wt, o, c);
                let mut y = vec![f64::NAN; o * h * w];
                let mut scratch = winograd::Scratch::default();
                winograd::convolve_image(
                    &x,
                    c,
                    h,
                    w,
                    &u,
                    o,
                    Some(&bias),
                    relu,
                    &mut y,
                    &mut scratch,
                );
                for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                        "{c}→{o} {h}×{w}: element {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// With Winograd on both the forward pass and the input gradient (64 channels), the input
    /// gradient is still the adjoint of the forward pass: ⟨conv(x), r⟩ is linear in x with
    /// gradient dx, so ⟨dx, e⟩ matches the change of ⟨conv(x + e) − conv(x), r⟩.
    #[test]
    fn winograd_input_gradient_is_the_adjoint() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (n, c, o, h, w) = (2, 64, 48, 5, 6);
        assert!(winograd::applies(c, o) && winograd::applies(o, c));
        let (x, wt, e) = (
            random(n * c * h * w, &mut rng),
            random(o * c * 9, &mut rng),
            random(n * c * h * w, &mut rng),
        );
        let bias = vec![0.0; o];
        let r = random(n * o * h * w, &mut rng);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let y = forward(&x, [n, c, h, w], &wt, o, &bias, false);
        let y_e = forward(&e, [n, c, h, w], &wt, o, &bias, false);
        let (dx, dw, _) = backward(&x, [n, c, h, w], &wt, o, &r, None, true);
        let dx = dx.unwrap();
        let (lhs, rhs) = (dot(&dx, &e), dot(&y_e, &r));
        assert!(
            (lhs - rhs).abs() <= 1e-10 * rhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        // And the weight gradient: ⟨dw, wt⟩ = ⟨conv_wt(x), r⟩ since the bias is zero.
        let (lhs, rhs) = (dot(&dw, &wt), dot(&y, &r));
        assert!(
            (lhs - rhs).abs() <= 1e-10 * rhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}
