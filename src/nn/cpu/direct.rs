//! Direct 3×3 convolution (padding 1, stride 1) for narrow layers: the IO encoders' and
//! TraceEmbed's convolutions of a few channels, where im2col + GEMM spends more time building and
//! packing matrices than multiplying (a GEMM with 8 or 16 rows).
//!
//! An image's planes are flattened (`p = y·W + x`), so tap `(ky, kx)` of output pixel `p` reads
//! input pixel `p + (ky − 1)·W + (kx − 1)`. [`Sources`] keeps each input channel three times,
//! with `W + 1` zeros before and after the plane (the rows above and below the image); in the copy
//! read by the taps of the left neighbour (`kx = 0`) the last column is zeroed, in the copy of the
//! right neighbour (`kx = 2`) the first, which is exactly what a read that wraps around into the
//! previous or next row would find there. Every tap is then a plain offset into one copy, and the
//! products run over vectors of [`LANES`] consecutive pixels: for a block of output channels and
//! pixel vectors the accumulators stay in registers while input channels and taps stream past. No
//! im2col matrix, no packing.
//!
//! The weight gradient `dW[o, c, tap] = Σ_p dY[o, p] · X[c, p + offset(tap)]` runs over the same
//! copies, with one accumulator vector per weight for a block of output channels and the three
//! taps of a kernel row, summed over an image's pixel vectors, then over images, and reduced over
//! the lanes at the end (by the caller, [`reduce_lanes`]).
//!
//! Every sum is taken in an order that depends only on the shapes (input channel, then tap; pixel
//! vectors, then lanes), with fused multiply-adds (`mul_add`), so the AVX-512, AVX2 and portable
//! builds give the same bits. Input channels that are zero in an image (most of the 15 channels of
//! a one-hot Karel grid) are skipped: their products add nothing.

use super::Elem;

/// Pixels per vector: one AVX-512 register of f32, two of AVX2.
pub const LANES: usize = 16;

/// Output channels up to which a convolution takes the direct path: measured faster than
/// im2col + GEMM on the `tiny` models' layers (15 → 8, 16 → 16, 8 → 8; BENCHMARKS.md), slower at
/// 32 (15 → 32 and 32 → 32, where im2col + GEMM and Winograd keep them).
pub const MAX_OUT_CHANNELS: usize = 16;
/// Input channels up to which a convolution takes the direct path: up to 32, so that TraceEmbed's
/// input-and-output convolution of the `tiny` debugger (30 → 8, once per IO pair) is direct as
/// well. Every convolution of the `tiny` models is then direct, as in the build that began the
/// training runs of `models/README.md` (6e5494c): the same layers take the same path, and give
/// the same bits.
pub const MAX_IN_CHANNELS: usize = 32;

/// Whether a convolution of `channels` inputs to `out_channels` outputs takes this path.
pub fn applies(channels: usize, out_channels: usize) -> bool {
    channels <= MAX_IN_CHANNELS && out_channels <= MAX_OUT_CHANNELS
}

/// The zero-bordered, column-masked copies of one image's channels (see the module
/// documentation), reused from image to image.
#[derive(Debug, Default)]
pub struct Sources<T> {
    /// `data[(kx · channels + c) · stride ..]`: the copy of channel `c` read by column tap `kx`.
    data: Vec<T>,
    /// Whether channel `c` has a non-zero element (the others are skipped).
    nonzero: Vec<bool>,
    /// Whether the masked copies were made (a convolution needs them).
    masked: bool,
    channels: usize,
    width: usize,
    /// Pixels of a plane.
    pixels: usize,
    /// Pixel vectors of a plane (the last one may run past the plane).
    vectors: usize,
    /// Elements of one copy: the border, the plane rounded up to whole vectors, the border.
    stride: usize,
}

impl<T: Elem> Sources<T> {
    /// Makes the copies of `x [channels, h, w]`. The plain copy (`kx = 1`) is written for every
    /// channel, so that [`Sources::plain`] can be read as a zero-padded plane; the masked copies
    /// only for non-zero channels, and only if `masked` (a convolution reads them, the weight
    /// gradient's output-gradient side does not).
    pub fn fill(&mut self, x: &[T], channels: usize, h: usize, w: usize, masked: bool) {
        let pixels = h * w;
        let border = w + 1;
        self.masked = masked;
        self.channels = channels;
        self.width = w;
        self.pixels = pixels;
        self.vectors = pixels.div_ceil(LANES);
        self.stride = 2 * border + self.vectors * LANES;
        let stride = self.stride;
        if self.data.len() < 3 * channels * stride {
            self.data.resize(3 * channels * stride, T::zero());
        }
        self.nonzero.clear();
        for c in 0..channels {
            let plane = &x[c * pixels..][..pixels];
            let nonzero = plane.iter().any(|&v| v != T::zero());
            self.nonzero.push(nonzero);
            for kx in 0..3 {
                let copy = &mut self.data[(kx * channels + c) * stride..][..stride];
                if !nonzero || (!masked && kx != 1) {
                    if kx == 1 {
                        copy.fill(T::zero());
                    }
                    continue;
                }
                copy[..border].fill(T::zero());
                copy[border..border + pixels].copy_from_slice(plane);
                copy[border + pixels..].fill(T::zero());
                let wrapped = match kx {
                    0 => w - 1,
                    2 => 0,
                    _ => continue,
                };
                for y in 0..h {
                    copy[border + y * w + wrapped] = T::zero();
                }
            }
        }
    }

    /// Where tap `(ky, kx)` of channel `c` starts reading for output pixel `p`: the border
    /// `W + 1` plus the offset `(ky − 1)·W + (kx − 1)`.
    #[inline(always)]
    fn at(&self, kx: usize, c: usize, ky: usize, p: usize) -> usize {
        (kx * self.channels + c) * self.stride + p + ky * self.width + kx
    }

    /// The vector of channel `c`'s pixels `p..p + LANES`, zero past the plane.
    #[inline(always)]
    fn plain(&self, c: usize, p: usize) -> &[T; LANES] {
        let start = (self.channels + c) * self.stride + self.width + 1 + p;
        self.data[start..start + LANES]
            .try_into()
            .expect("a whole vector")
    }
}

/// A kernel `[O, C, 3, 3]` as the forward pass reads it: `[C, 3, 3, O]`, the weights of the
/// output channels of one input channel and tap side by side.
pub fn transpose_kernel<T: Elem>(weight: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let mut transposed = vec![T::zero(); weight.len()];
    for o in 0..out_channels {
        for k in 0..channels * 9 {
            transposed[k * out_channels + o] = weight[o * channels * 9 + k];
        }
    }
    transposed
}

/// `y_img [O, H, W]`: the convolution of the image in `src` with `weight`, a kernel
/// `[O, C, 3, 3]` given as [`transpose_kernel`] makes it, plus `bias` if given, followed by a ReLU
/// if `relu`.
pub fn forward_image<T: Elem>(
    src: &Sources<T>,
    weight: &[T],
    bias: Option<&[T]>,
    relu: bool,
    y_img: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(src32) = (src as &dyn std::any::Any).downcast_ref::<Sources<f32>>() {
        let (weight, bias, y_img) = (
            x86::as_f32(weight),
            bias.map(x86::as_f32),
            x86::as_f32_mut(y_img),
        );
        if x86::has_avx512() {
            // SAFETY: the CPU has AVX-512F and FMA, checked just above.
            return unsafe { x86::forward_avx512(src32, weight, bias, relu, y_img) };
        }
        if x86::has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { x86::forward_avx2(src32, weight, bias, relu, y_img) };
        }
    }
    // SAFETY: the portable vectors need no instruction set.
    unsafe { forward_body::<T, Portable<T>, 2, 1>(src, weight, bias, relu, y_img) }
}

/// The forward pass in blocks of `OB` output channels × `PB` pixel vectors (the remainders in
/// blocks of one).
///
/// # Safety
/// The CPU has the instruction set of `V`.
#[inline(always)]
unsafe fn forward_body<T: Elem, V: Vector<T>, const OB: usize, const PB: usize>(
    src: &Sources<T>,
    weight: &[T],
    bias: Option<&[T]>,
    relu: bool,
    y_img: &mut [T],
) {
    let out_channels = y_img.len() / src.pixels.max(1);
    assert_eq!(
        weight.len(),
        out_channels * src.channels * 9,
        "kernel shape"
    );
    assert!(src.masked, "a convolution reads the masked copies");
    let mut o0 = 0;
    while o0 < out_channels {
        let block = if o0 + OB <= out_channels { OB } else { 1 };
        let mut v0 = 0;
        while v0 < src.vectors {
            let pb = if v0 + PB <= src.vectors { PB } else { 1 };
            // SAFETY: as for this function.
            unsafe {
                match (block == OB, pb == PB) {
                    (true, true) => {
                        forward_block::<T, V, OB, PB>(src, weight, bias, relu, y_img, o0, v0)
                    }
                    (true, false) => {
                        forward_block::<T, V, OB, 1>(src, weight, bias, relu, y_img, o0, v0)
                    }
                    (false, true) => {
                        forward_block::<T, V, 1, PB>(src, weight, bias, relu, y_img, o0, v0)
                    }
                    (false, false) => {
                        forward_block::<T, V, 1, 1>(src, weight, bias, relu, y_img, o0, v0)
                    }
                }
            }
            v0 += pb;
        }
        o0 += block;
    }
}

/// Output channels `o0..o0 + OB`, pixel vectors `v0..v0 + PB`.
///
/// # Safety
/// The CPU has the instruction set of `V`.
#[inline(always)]
unsafe fn forward_block<T: Elem, V: Vector<T>, const OB: usize, const PB: usize>(
    src: &Sources<T>,
    weight: &[T],
    bias: Option<&[T]>,
    relu: bool,
    y_img: &mut [T],
    o0: usize,
    v0: usize,
) {
    let channels = src.channels;
    let out_channels = weight.len() / (9 * channels).max(1);
    let p0 = v0 * LANES;
    // SAFETY: the caller guarantees `V`'s instruction set.
    unsafe {
        let mut acc = [[V::splat(T::zero()); PB]; OB];
        if let Some(bias) = bias {
            for (o, acc) in acc.iter_mut().enumerate() {
                *acc = [V::splat(bias[o0 + o]); PB];
            }
        }
        for c in 0..channels {
            if !src.nonzero[c] {
                continue;
            }
            for ky in 0..3 {
                for kx in 0..3 {
                    let start = src.at(kx, c, ky, p0);
                    let span = &src.data[start..start + PB * LANES];
                    let mut v = [V::splat(T::zero()); PB];
                    for (j, v) in v.iter_mut().enumerate() {
                        *v = V::load(span[j * LANES..(j + 1) * LANES].try_into().expect("lanes"));
                    }
                    let at = (c * 9 + ky * 3 + kx) * out_channels + o0;
                    let w = &weight[at..at + OB];
                    for o in 0..OB {
                        let wv = V::splat(w[o]);
                        for j in 0..PB {
                            acc[o][j] = wv.mul_add(v[j], acc[o][j]);
                        }
                    }
                }
            }
        }
        let pixels = src.pixels;
        for (o, rows) in acc.iter().enumerate() {
            let plane = &mut y_img[(o0 + o) * pixels..][..pixels];
            for (j, row) in rows.iter().enumerate() {
                let p = p0 + j * LANES;
                let n = LANES.min(pixels.saturating_sub(p));
                let mut values = [T::zero(); LANES];
                row.store(&mut values);
                for (out, &v) in plane[p..p + n].iter_mut().zip(&values) {
                    *out = if relu { super::relu_value(v) } else { v };
                }
            }
        }
    }
}

/// Adds one image's weight-gradient products to `lanes [O, C·9, LANES]`: `x` holds the image's
/// input, `dy` its output gradient (as [`Sources`] of `O` channels: only its plain copies are
/// read). [`reduce_lanes`] turns the sums into `dW [O, C, 3, 3]`.
pub fn weight_grad_image<T: Elem>(x: &Sources<T>, dy: &Sources<T>, lanes: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(x32), Some(dy32)) = (
        (x as &dyn std::any::Any).downcast_ref::<Sources<f32>>(),
        (dy as &dyn std::any::Any).downcast_ref::<Sources<f32>>(),
    ) {
        let lanes = x86::as_f32_mut(lanes);
        if x86::has_avx512() {
            // SAFETY: the CPU has AVX-512F and FMA, checked just above.
            return unsafe { x86::weight_grad_avx512(x32, dy32, lanes) };
        }
        if x86::has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { x86::weight_grad_avx2(x32, dy32, lanes) };
        }
    }
    // SAFETY: the portable vectors need no instruction set.
    unsafe { weight_grad_body::<T, Portable<T>, 1>(x, dy, lanes) }
}

/// The weight gradient in blocks of `OB` output channels × one kernel row (three taps).
///
/// # Safety
/// The CPU has the instruction set of `V`.
#[inline(always)]
unsafe fn weight_grad_body<T: Elem, V: Vector<T>, const OB: usize>(
    x: &Sources<T>,
    dy: &Sources<T>,
    lanes: &mut [T],
) {
    let out_channels = dy.channels;
    assert_eq!(x.pixels, dy.pixels, "image sizes");
    assert_eq!(
        lanes.len(),
        out_channels * x.channels * 9 * LANES,
        "gradient shape"
    );
    let mut o0 = 0;
    while o0 < out_channels {
        // SAFETY: as for this function.
        unsafe {
            if o0 + OB <= out_channels {
                weight_grad_block::<T, V, OB>(x, dy, lanes, o0);
                o0 += OB;
            } else {
                weight_grad_block::<T, V, 1>(x, dy, lanes, o0);
                o0 += 1;
            }
        }
    }
}

/// Output channels `o0..o0 + OB`, every input channel and kernel row.
///
/// # Safety
/// The CPU has the instruction set of `V`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the indices are the formula's: output channel, tap
unsafe fn weight_grad_block<T: Elem, V: Vector<T>, const OB: usize>(
    x: &Sources<T>,
    dy: &Sources<T>,
    lanes: &mut [T],
    o0: usize,
) {
    let channels = x.channels;
    let row = channels * 9 * LANES;
    let lane_sums = |lanes: &[T], o: usize, k: usize| -> [T; LANES] {
        let at = (o0 + o) * row + k * LANES;
        lanes[at..at + LANES].try_into().expect("lanes")
    };
    // SAFETY: the caller guarantees `V`'s instruction set.
    unsafe {
        for c in 0..channels {
            if !x.nonzero[c] {
                continue;
            }
            for ky in 0..3 {
                let k = c * 9 + ky * 3;
                let mut acc = [[V::splat(T::zero()); 3]; OB];
                for (o, acc) in acc.iter_mut().enumerate() {
                    for (kx, acc) in acc.iter_mut().enumerate() {
                        *acc = V::load(&lane_sums(lanes, o, k + kx));
                    }
                }
                for v in 0..x.vectors {
                    let p = v * LANES;
                    let mut d = [V::splat(T::zero()); OB];
                    for (o, d) in d.iter_mut().enumerate() {
                        *d = V::load(dy.plain(o0 + o, p));
                    }
                    for kx in 0..3 {
                        let start = x.at(kx, c, ky, p);
                        let s = V::load(x.data[start..start + LANES].try_into().expect("lanes"));
                        for o in 0..OB {
                            acc[o][kx] = d[o].mul_add(s, acc[o][kx]);
                        }
                    }
                }
                for (o, acc) in acc.iter().enumerate() {
                    for (kx, acc) in acc.iter().enumerate() {
                        let at = (o0 + o) * row + (k + kx) * LANES;
                        acc.store((&mut lanes[at..at + LANES]).try_into().expect("lanes"));
                    }
                }
            }
        }
    }
}

/// [`LANES`] values as the kernels compute with them: in registers of some instruction set, or
/// as a plain array.
trait Vector<T>: Copy {
    /// # Safety
    /// The CPU has the vector's instruction set (so for every method).
    unsafe fn load(values: &[T; LANES]) -> Self;
    unsafe fn splat(value: T) -> Self;
    /// `self · b + acc`, each lane one fused multiply-add.
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self;
    unsafe fn store(self, out: &mut [T; LANES]);
}

/// Plain arrays, for any element type and CPU.
#[derive(Clone, Copy)]
struct Portable<T>([T; LANES]);

impl<T: Elem> Vector<T> for Portable<T> {
    #[inline(always)]
    unsafe fn load(values: &[T; LANES]) -> Self {
        Portable(*values)
    }

    #[inline(always)]
    unsafe fn splat(value: T) -> Self {
        Portable([value; LANES])
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        let mut out = acc.0;
        for ((out, &a), &b) in out.iter_mut().zip(&self.0).zip(&b.0) {
            *out = a.mul_add(b, *out);
        }
        Portable(out)
    }

    #[inline(always)]
    unsafe fn store(self, out: &mut [T; LANES]) {
        *out = self.0;
    }
}

/// The f32 kernels in AVX-512 and AVX2 registers, chosen at run time.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{forward_body, weight_grad_body, Sources, Vector, LANES};

    pub fn has_avx512() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
    }

    pub fn has_avx2() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// `x` as f32, when its element type is f32.
    pub fn as_f32<T: 'static>(x: &[T]) -> &[f32] {
        assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
        // SAFETY: `T` is `f32`, checked just above.
        unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
    }

    /// `x` as f32, when its element type is f32.
    pub fn as_f32_mut<T: 'static>(x: &mut [T]) -> &mut [f32] {
        assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
        // SAFETY: `T` is `f32`, checked just above.
        unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), x.len()) }
    }

    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn forward_avx512(
        src: &Sources<f32>,
        weight: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        y_img: &mut [f32],
    ) {
        // SAFETY: as for this function.
        unsafe { forward_body::<f32, Avx512, 4, 3>(src, weight, bias, relu, y_img) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_avx2(
        src: &Sources<f32>,
        weight: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        y_img: &mut [f32],
    ) {
        // SAFETY: as for this function.
        unsafe { forward_body::<f32, Avx2, 2, 3>(src, weight, bias, relu, y_img) }
    }

    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn weight_grad_avx512(x: &Sources<f32>, dy: &Sources<f32>, lanes: &mut [f32]) {
        // SAFETY: as for this function.
        unsafe { weight_grad_body::<f32, Avx512, 4>(x, dy, lanes) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_avx2(x: &Sources<f32>, dy: &Sources<f32>, lanes: &mut [f32]) {
        // SAFETY: as for this function.
        unsafe { weight_grad_body::<f32, Avx2, 2>(x, dy, lanes) }
    }

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    impl Vector<f32> for Avx512 {
        #[inline(always)]
        unsafe fn load(values: &[f32; LANES]) -> Self {
            // SAFETY: `values` holds 16 floats; the caller guarantees AVX-512F.
            unsafe { Avx512(_mm512_loadu_ps(values.as_ptr())) }
        }

        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            unsafe { Avx512(_mm512_set1_ps(value)) }
        }

        #[inline(always)]
        unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
            // SAFETY: the caller guarantees AVX-512F.
            unsafe { Avx512(_mm512_fmadd_ps(self.0, b.0, acc.0)) }
        }

        #[inline(always)]
        unsafe fn store(self, out: &mut [f32; LANES]) {
            // SAFETY: `out` holds 16 floats; the caller guarantees AVX-512F.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
        }
    }

    /// Two AVX2 registers.
    #[derive(Clone, Copy)]
    pub struct Avx2(__m256, __m256);

    impl Vector<f32> for Avx2 {
        #[inline(always)]
        unsafe fn load(values: &[f32; LANES]) -> Self {
            // SAFETY: `values` holds 16 floats; the caller guarantees AVX2.
            unsafe {
                Avx2(
                    _mm256_loadu_ps(values.as_ptr()),
                    _mm256_loadu_ps(values.as_ptr().add(8)),
                )
            }
        }

        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            // SAFETY: the caller guarantees AVX2.
            unsafe { Avx2(_mm256_set1_ps(value), _mm256_set1_ps(value)) }
        }

        #[inline(always)]
        unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
            // SAFETY: the caller guarantees AVX2 and FMA.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(self.0, b.0, acc.0),
                    _mm256_fmadd_ps(self.1, b.1, acc.1),
                )
            }
        }

        #[inline(always)]
        unsafe fn store(self, out: &mut [f32; LANES]) {
            // SAFETY: `out` holds 16 floats; the caller guarantees AVX2.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), self.0);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), self.1);
            }
        }
    }
}

/// The AVX2 path, for tests on CPUs that also have AVX-512.
#[cfg(all(test, target_arch = "x86_64"))]
fn forward_avx2_for_tests(src: &Sources<f32>, weight: &[f32], y_img: &mut [f32]) -> bool {
    if !x86::has_avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2 and FMA, checked just above.
    unsafe { x86::forward_avx2(src, weight, None, true, y_img) };
    true
}

/// Adds the lane sums `lanes [K, LANES]` to `dw [K]`, the lanes of each summed in order.
pub fn reduce_lanes<T: Elem>(lanes: &[T], dw: &mut [T]) {
    for (d, lane) in dw.iter_mut().zip(lanes.chunks_exact(LANES)) {
        *d += lane.iter().fold(T::zero(), |a, &b| a + b);
    }
}

/// The bias gradient of one image: `db[o] += Σ_p dy[o, p]`, from `dy` as [`Sources`].
pub fn bias_grad_image<T: Elem>(dy: &Sources<T>, db: &mut [T]) {
    for (o, d) in db.iter_mut().enumerate() {
        let mut lanes = [T::zero(); LANES];
        for v in 0..dy.vectors {
            for (a, &b) in lanes.iter_mut().zip(dy.plain(o, v * LANES)) {
                *a += b;
            }
        }
        *d += lanes.iter().fold(T::zero(), |a, &b| a + b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The convolution by its definition, in f64.
    fn reference(x: &[f64], [c_n, h, w]: [usize; 3], weight: &[f64], o_n: usize) -> Vec<f64> {
        let mut y = vec![0.0; o_n * h * w];
        for o in 0..o_n {
            for yy in 0..h {
                for xx in 0..w {
                    let mut s = 0.0;
                    for c in 0..c_n {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (sy, sx) = (yy as isize + ky - 1, xx as isize + kx - 1);
                                if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                    s += weight[((o * c_n + c) * 9) + (ky * 3 + kx) as usize]
                                        * x[(c * h + sy as usize) * w + sx as usize];
                                }
                            }
                        }
                    }
                    y[(o * h + yy) * w + xx] = s;
                }
            }
        }
        y
    }

    /// Forward pass and weight gradient against the definition, on sizes whose planes do and do
    /// not fill whole vectors, with channels that are entirely zero, and the portable blocking
    /// against the one the CPU runs (the same bits).
    #[test]
    fn matches_the_definition_on_every_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for &(c_n, o_n, h, w) in &[(1, 1, 1, 1), (3, 5, 2, 3), (15, 8, 18, 18), (16, 16, 7, 9)] {
            let mut x: Vec<f64> = (0..c_n * h * w)
                .map(|_| rng.random::<f64>() - 0.5)
                .collect();
            if c_n > 2 {
                x[h * w..2 * h * w].fill(0.0);
            }
            let weight: Vec<f64> = (0..o_n * c_n * 9)
                .map(|_| rng.random::<f64>() - 0.5)
                .collect();
            let expected = reference(&x, [c_n, h, w], &weight, o_n);
            let mut src = Sources::default();
            src.fill(&x, c_n, h, w, true);
            let mut y = vec![f64::NAN; o_n * h * w];
            let kernel = transpose_kernel(&weight, o_n, c_n);
            forward_image(&src, &kernel, None, false, &mut y);
            for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{c_n}→{o_n} {h}×{w}: {i}: {a} vs {b}"
                );
            }
            // dW[o, c, tap] = Σ_p dy[o, p] · x[c, p + offset(tap)]: the derivative of ⟨y, dy⟩.
            let dy: Vec<f64> = (0..o_n * h * w)
                .map(|_| rng.random::<f64>() - 0.5)
                .collect();
            let mut dy_src = Sources::default();
            dy_src.fill(&dy, o_n, h, w, false);
            let mut lanes = vec![0.0; o_n * c_n * 9 * LANES];
            weight_grad_image(&src, &dy_src, &mut lanes);
            let mut dw = vec![0.0; o_n * c_n * 9];
            reduce_lanes(&lanes, &mut dw);
            for k in 0..weight.len() {
                let mut unit = vec![0.0; weight.len()];
                unit[k] = 1.0;
                let yk = reference(&x, [c_n, h, w], &unit, o_n);
                let want: f64 = yk.iter().zip(&dy).map(|(a, b)| a * b).sum();
                assert!((dw[k] - want).abs() < 1e-12, "dW {k}: {} vs {want}", dw[k]);
            }
            same_bits_on_every_path(&x, &weight, &dy, [c_n, o_n, h, w]);
            let mut db = vec![0.0; o_n];
            bias_grad_image(&dy_src, &mut db);
            for o in 0..o_n {
                let want: f64 = dy[o * h * w..(o + 1) * h * w].iter().sum();
                assert!((db[o] - want).abs() < 1e-12);
            }
        }
    }

    /// In f32, the kernels of the CPU's instruction set, AVX2's where the CPU has it, and the
    /// portable ones give the same bits (forward with ReLU, and the weight gradient).
    fn same_bits_on_every_path(x: &[f64], weight: &[f64], dy: &[f64], dims: [usize; 4]) {
        let [c_n, o_n, h, w] = dims;
        let narrow = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (x, weight, dy) = (narrow(x), narrow(weight), narrow(dy));
        let kernel = transpose_kernel(&weight, o_n, c_n);
        let mut src = Sources::default();
        src.fill(&x, c_n, h, w, true);
        let mut dy_src = Sources::default();
        dy_src.fill(&dy, o_n, h, w, false);
        let mut fast = vec![f32::NAN; o_n * h * w];
        forward_image(&src, &kernel, None, true, &mut fast);
        let mut portable = vec![f32::NAN; o_n * h * w];
        // SAFETY: the portable vectors need no instruction set.
        unsafe {
            forward_body::<f32, Portable<f32>, 2, 1>(&src, &kernel, None, true, &mut portable)
        };
        let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&fast), bits(&portable));
        #[cfg(target_arch = "x86_64")]
        {
            let mut avx2 = vec![f32::NAN; o_n * h * w];
            if forward_avx2_for_tests(&src, &kernel, &mut avx2) {
                assert_eq!(bits(&avx2), bits(&portable));
            }
        }
        let mut fast = vec![0.0f32; o_n * c_n * 9 * LANES];
        weight_grad_image(&src, &dy_src, &mut fast);
        let mut portable = vec![0.0f32; o_n * c_n * 9 * LANES];
        // SAFETY: the portable vectors need no instruction set.
        unsafe { weight_grad_body::<f32, Portable<f32>, 1>(&src, &dy_src, &mut portable) };
        assert_eq!(bits(&fast), bits(&portable));
    }
}
