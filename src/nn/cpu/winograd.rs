//! Winograd's minimal filtering F(2×2, 3×3) for the 3×3 convolutions (padding 1, stride 1) of
//! the CPU backend: each 2×2 block of outputs takes 16 products per channel pair instead of 36.
//!
//! With the transforms of Lavin & Gray (2016), `Y = Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 3×3
//! kernel `g` of a channel pair and the 4×4 input patch `d` around the output block. Per image:
//! 1. the input is copied channels-last into a zero-bordered buffer, so that a patch's channels
//!    are contiguous;
//! 2. `V[ξ][t][c]`, the 16 transformed values `ξ` of tile `t` and channel `c`;
//! 3. for each `ξ`, one product `M[ξ] [T, O] = V[ξ] [T, C] · U[ξ] [C, O]` with the transformed
//!    kernel `U[ξ][c][o]` (computed once per call);
//! 4. the output transform of `M` into `y [O, H, W]`, with bias and an optional ReLU.
//!
//! In exact arithmetic this is the convolution; in floating point it rounds differently (the
//! transforms add and halve values), within a few units in the last place of the output's scale.
//! It is used where it is faster: enough input and output channels for the products to dominate.

use super::gemm::{gemm, MatRef};
use super::{relu_value, Elem};

/// Channels from which the Winograd path is faster than im2col + GEMM (measured on the models'
/// 64-channel layers; narrower layers keep im2col).
pub const MIN_CHANNELS: usize = 32;

/// Whether a convolution of `channels` inputs to `out_channels` outputs takes this path.
pub fn applies(channels: usize, out_channels: usize) -> bool {
    channels >= MIN_CHANNELS && out_channels >= MIN_CHANNELS
}

/// `U[ξ][c][o] = (G g Gᵀ)[ξ]` of `weight [O, C, 3, 3]`, with `G = [[1, 0, 0], [½, ½, ½],
/// [½, −½, ½], [0, 0, 1]]`.
pub fn transform_kernel<T: Elem>(weight: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let half = T::from_f64(0.5).expect("½ is representable");
    let mut u = vec![T::zero(); 16 * channels * out_channels];
    for o in 0..out_channels {
        for c in 0..channels {
            let g = &weight[(o * channels + c) * 9..][..9];
            // rows = G · g (4×3)
            let mut rows = [[T::zero(); 3]; 4];
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                rows[0][j] = g0;
                rows[1][j] = (g0 + g1 + g2) * half;
                rows[2][j] = (g0 - g1 + g2) * half;
                rows[3][j] = g2;
            }
            for (i, r) in rows.iter().enumerate() {
                let values = [
                    r[0],
                    (r[0] + r[1] + r[2]) * half,
                    (r[0] - r[1] + r[2]) * half,
                    r[2],
                ];
                for (l, v) in values.into_iter().enumerate() {
                    u[((i * 4 + l) * channels + c) * out_channels + o] = v;
                }
            }
        }
    }
    u
}

/// Scratch buffers of one thread, reused across images.
#[derive(Default)]
pub struct Scratch<T> {
    padded: Vec<T>,
    v: Vec<T>,
    m: Vec<T>,
}

/// Channels transformed together: one AVX-512 vector of f32.
const LANES: usize = 16;

/// `y_img [O, H, W]` from `x_img [C, H, W]` and the transformed kernel `u` (from
/// [`transform_kernel`]), plus `bias` if given, followed by a ReLU if `relu`.
#[allow(clippy::too_many_arguments)]
pub fn convolve_image<T: Elem>(
    x_img: &[T],
    channels: usize,
    h: usize,
    w: usize,
    u: &[T],
    out_channels: usize,
    bias: Option<&[T]>,
    relu: bool,
    y_img: &mut [T],
    scratch: &mut Scratch<T>,
) {
    let (tiles_h, tiles_w) = (h.div_ceil(2), w.div_ceil(2));
    let tiles = tiles_h * tiles_w;
    pad_channels_last(x_img, channels, h, w, &mut scratch.padded);
    scratch.v.clear();
    scratch.v.resize(16 * tiles * channels, T::zero());
    transform_input(&scratch.padded, channels, tiles_h, tiles_w, &mut scratch.v);
    scratch.m.clear();
    scratch.m.resize(16 * tiles * out_channels, T::zero());
    let (plane_v, plane_m) = (tiles * channels, tiles * out_channels);
    for xi in 0..16 {
        gemm(
            &mut scratch.m[xi * plane_m..][..plane_m],
            MatRef::new(
                &scratch.v[xi * plane_v..][..plane_v],
                tiles,
                channels,
                false,
            ),
            MatRef::new(
                &u[xi * channels * out_channels..][..channels * out_channels],
                channels,
                out_channels,
                false,
            ),
            false,
            1,
        );
    }
    let output = Output {
        h,
        w,
        tiles_w,
        out_channels,
        bias,
        relu,
    };
    transform_output(&scratch.m, &output, tiles_h, &mut scratch.padded, y_img);
}

/// Copies `x [C, H, W]` channels-last into `padded [(2⌈H/2⌉ + 2) · (2⌈W/2⌉ + 2), C]` with a zero
/// border: padded row `r`, column `q` holds input row `r − 1`, column `q − 1`.
fn pad_channels_last<T: Elem>(x: &[T], c_n: usize, h: usize, w: usize, padded: &mut Vec<T>) {
    let pw = 2 * w.div_ceil(2) + 2;
    let ph = 2 * h.div_ceil(2) + 2;
    padded.clear();
    padded.resize(ph * pw * c_n, T::zero());
    for c in 0..c_n {
        let plane = &x[c * h * w..][..h * w];
        for y in 0..h {
            let base = ((y + 1) * pw + 1) * c_n + c;
            for (q, &v) in plane[y * w..][..w].iter().enumerate() {
                padded[base + q * c_n] = v;
            }
        }
    }
}

/// `V[ξ][t][c] = (Bᵀ d B)[ξ]` for every tile `t` (2×2 outputs) and channel, with `Bᵀ = [[1, 0,
/// −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]` and `d` the 4×4 padded patch of the tile.
fn transform_input<T: Elem>(padded: &[T], c_n: usize, tiles_h: usize, tiles_w: usize, v: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { transform_input_avx512(padded, c_n, tiles_h, tiles_w, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { transform_input_avx2(padded, c_n, tiles_h, tiles_w, v) };
    }
    transform_input_body(padded, c_n, tiles_h, tiles_w, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transform_input_avx512<T: Elem>(
    padded: &[T],
    c_n: usize,
    tiles_h: usize,
    tiles_w: usize,
    v: &mut [T],
) {
    transform_input_body(padded, c_n, tiles_h, tiles_w, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transform_input_avx2<T: Elem>(
    padded: &[T],
    c_n: usize,
    tiles_h: usize,
    tiles_w: usize,
    v: &mut [T],
) {
    transform_input_body(padded, c_n, tiles_h, tiles_w, v)
}

#[inline(always)]
fn transform_input_body<T: Elem>(
    padded: &[T],
    c_n: usize,
    tiles_h: usize,
    tiles_w: usize,
    v: &mut [T],
) {
    let pw = 2 * tiles_w + 2;
    let plane = tiles_h * tiles_w * c_n;
    for ty in 0..tiles_h {
        for tx in 0..tiles_w {
            let t = ty * tiles_w + tx;
            for c0 in (0..c_n).step_by(LANES) {
                let len = LANES.min(c_n - c0);
                let mut d = [[T::zero(); LANES]; 16];
                for (i, lanes) in d.iter_mut().enumerate() {
                    let at = ((2 * ty + i / 4) * pw + 2 * tx + i % 4) * c_n + c0;
                    copy_lanes(&padded[at..], &mut lanes[..], len);
                }
                let mut out = [[T::zero(); LANES]; 16];
                for e in 0..LANES {
                    let x = |k: usize, j: usize| d[k * 4 + j][e];
                    // Rows first: s[k][l] = Σ_j d[k][j] Bᵀ[l][j].
                    let mut s = [[T::zero(); 4]; 4];
                    for (k, row) in s.iter_mut().enumerate() {
                        *row = [
                            x(k, 0) - x(k, 2),
                            x(k, 1) + x(k, 2),
                            x(k, 2) - x(k, 1),
                            x(k, 1) - x(k, 3),
                        ];
                    }
                    for l in 0..4 {
                        out[l][e] = s[0][l] - s[2][l];
                        out[4 + l][e] = s[1][l] + s[2][l];
                        out[8 + l][e] = s[2][l] - s[1][l];
                        out[12 + l][e] = s[1][l] - s[3][l];
                    }
                }
                for (xi, lanes) in out.iter().enumerate() {
                    copy_lanes(&lanes[..], &mut v[xi * plane + t * c_n + c0..], len);
                }
            }
        }
    }
}

/// Where and how [`transform_output`] writes.
struct Output<'a, T> {
    h: usize,
    w: usize,
    tiles_w: usize,
    out_channels: usize,
    bias: Option<&'a [T]>,
    relu: bool,
}

/// `len` leading elements of `src` into `dst`: a fixed-size copy (a few vector moves, no call)
/// when `len` is [`LANES`].
#[inline(always)]
fn copy_lanes<T: Elem>(src: &[T], dst: &mut [T], len: usize) {
    if len == LANES {
        let src: &[T; LANES] = src[..LANES].try_into().expect("LANES elements");
        let dst: &mut [T; LANES] = (&mut dst[..LANES]).try_into().expect("LANES elements");
        *dst = *src;
    } else {
        dst[..len].copy_from_slice(&src[..len]);
    }
}

/// `y [O, H, W]` from `M[ξ][t][o]`: each tile's 2×2 outputs `Aᵀ M A` with `Aᵀ = [[1, 1, 1, 0],
/// [0, 1, −1, −1]]` (into `channels_last [H·W, O]`), then plus the bias and through the ReLU if
/// asked, transposed into place.
fn transform_output<T: Elem>(
    m: &[T],
    out: &Output<T>,
    tiles_h: usize,
    channels_last: &mut Vec<T>,
    y: &mut [T],
) {
    channels_last.clear();
    channels_last.resize(out.h * out.w * out.out_channels, T::zero());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { transform_output_avx512(m, out, tiles_h, channels_last, y) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { transform_output_avx2(m, out, tiles_h, channels_last, y) };
    }
    transform_output_body(m, out, tiles_h, channels_last, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transform_output_avx512<T: Elem>(
    m: &[T],
    out: &Output<T>,
    tiles_h: usize,
    channels_last: &mut [T],
    y: &mut [T],
) {
    transform_output_body(m, out, tiles_h, channels_last, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transform_output_avx2<T: Elem>(
    m: &[T],
    out: &Output<T>,
    tiles_h: usize,
    channels_last: &mut [T],
    y: &mut [T],
) {
    transform_output_body(m, out, tiles_h, channels_last, y)
}

#[inline(always)]
fn transform_output_body<T: Elem>(
    m: &[T],
    out: &Output<T>,
    tiles_h: usize,
    channels_last: &mut [T],
    y: &mut [T],
) {
    let (h, w, o_n) = (out.h, out.w, out.out_channels);
    let plane = tiles_h * out.tiles_w * o_n;
    for ty in 0..tiles_h {
        for tx in 0..out.tiles_w {
            let t = ty * out.tiles_w + tx;
            let rows = 2.min(h - 2 * ty);
            let cols = 2.min(w - 2 * tx);
            for o0 in (0..o_n).step_by(LANES) {
                let len = LANES.min(o_n - o0);
                let mut mv = [[T::zero(); LANES]; 16];
                for (xi, lanes) in mv.iter_mut().enumerate() {
                    copy_lanes(&m[xi * plane + t * o_n + o0..], &mut lanes[..], len);
                }
                let mut blocks = [[T::zero(); LANES]; 4];
                for e in 0..LANES {
                    let at = |k: usize, l: usize| mv[k * 4 + l][e];
                    let s: [[T; 4]; 2] = [
                        std::array::from_fn(|l| at(0, l) + at(1, l) + at(2, l)),
                        std::array::from_fn(|l| at(1, l) - at(2, l) - at(3, l)),
                    ];
                    for i in 0..2 {
                        blocks[2 * i][e] = s[i][0] + s[i][1] + s[i][2];
                        blocks[2 * i + 1][e] = s[i][1] - s[i][2] - s[i][3];
                    }
                }
                for i in 0..rows {
                    for j in 0..cols {
                        let at = ((2 * ty + i) * w + 2 * tx + j) * o_n + o0;
                        copy_lanes(&blocks[2 * i + j][..], &mut channels_last[at..], len);
                    }
                }
            }
        }
    }
    let hw = h * w;
    for (o, plane) in y[..o_n * hw].chunks_exact_mut(hw).enumerate() {
        let b = out.bias.map_or(T::zero(), |b| b[o]);
        for (p, value) in plane.iter_mut().enumerate() {
            let v = channels_last[p * o_n + o] + b;
            *value = if out.relu { relu_value(v) } else { v };
        }
    }
}
