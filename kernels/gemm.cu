// Matrix products and the 3×3 convolution (padding 1, stride 1) as implicit matrix products.
//
// One tiled kernel body, `gemm_tile`, computes a 64 × 64 block of C = A · B from loaders that
// fetch A(m, k) and B(k, n) and a store that writes C(m, n): a plain matrix (either operand
// transposed), the im2col view of an image batch, or the gradients' views. K advances 16 at a
// time through shared memory; 256 threads either each accumulate a 4 × 4 micro-tile in f32 FMA
// (the exact path), or, with `tf32`, as 8 warps issue TF32 tensor-core products (mma.m16n8k8,
// sm_80 and later) with f32 accumulation. Products with a long K and few output tiles split K
// over blockIdx.z: each split writes its partial product, and sum_splits_f32 (reduce.cu) adds
// them in order.
#include "common.cuh"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16

template <bool TF32, class LoadA, class LoadB, class Store>
KAREL_INLINE void gemm_tile(int M, int N, int k_begin, int k_end, const LoadA& load_a,
                            const LoadB& load_b, const Store& store) {
    // A is stored k-major; the rows are padded against shared-memory bank conflicts of the loads
    // (k varying fastest across threads) and of the tensor-core fragment reads.
    __shared__ float tile_a[TILE_K][TILE_M + 4];
    __shared__ float tile_b[TILE_K][TILE_N + 8];
    int t = threadIdx.x;
    int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    // FMA: thread (tx, ty) owns rows ty + 16i and columns tx + 16j. TF32: warp w owns the
    // 16 × 32 block at rows 16·(w mod 4), columns 32·(w / 4), as four 16 × 8 products.
    int tx = t % 16, ty = t / 16;
    int warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
    float acc[4][4];
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            acc[i][j] = 0.0f;
        }
    }
    for (int k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        for (int r = 0; r < 4; ++r) {
            int e = t + KAREL_THREADS * r;
            int am = e / TILE_K, ak = e % TILE_K;
            int gm = m0 + am, gk = k0 + ak;
            tile_a[ak][am] = (gm < M && gk < k_end) ? load_a(gm, gk) : 0.0f;
            int bn = e % TILE_N, bk = e / TILE_N;
            int gn = n0 + bn, gkb = k0 + bk;
            tile_b[bk][bn] = (gn < N && gkb < k_end) ? load_b(gkb, gn) : 0.0f;
        }
        __syncthreads();
        if constexpr (TF32) {
            for (int ks = 0; ks < TILE_K; ks += 8) {
                unsigned a[4] = {tf32_bits(tile_a[ks + q][wm + g]),
                                 tf32_bits(tile_a[ks + q][wm + g + 8]),
                                 tf32_bits(tile_a[ks + q + 4][wm + g]),
                                 tf32_bits(tile_a[ks + q + 4][wm + g + 8])};
                for (int nt = 0; nt < 4; ++nt) {
                    int col = wn + 8 * nt + g;
                    unsigned b[2] = {tf32_bits(tile_b[ks + q][col]),
                                     tf32_bits(tile_b[ks + q + 4][col])};
                    mma_tf32(acc[nt], a, b);
                }
            }
        } else {
            for (int kk = 0; kk < TILE_K; ++kk) {
                float a[4], b[4];
                for (int i = 0; i < 4; ++i) {
                    a[i] = tile_a[kk][ty + 16 * i];
                }
                for (int j = 0; j < 4; ++j) {
                    b[j] = tile_b[kk][tx + 16 * j];
                }
                for (int i = 0; i < 4; ++i) {
                    for (int j = 0; j < 4; ++j) {
                        acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                    }
                }
            }
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            int m, n;
            if constexpr (TF32) {
                // acc[nt = i][register j]
                m = m0 + wm + g + (j >= 2 ? 8 : 0);
                n = n0 + wn + 8 * i + 2 * q + (j & 1);
            } else {
                m = m0 + ty + 16 * i;
                n = n0 + tx + 16 * j;
            }
            if (m < M && n < N) {
                store(m, n, acc[i][j]);
            }
        }
    }
}

// The tile in f32 FMA, or on the tensor cores in TF32 (`tf32`, sm_80 and later).
template <class LoadA, class LoadB, class Store>
KAREL_INLINE void gemm_tile_as(int tf32, int M, int N, int k_begin, int k_end,
                               const LoadA& load_a, const LoadB& load_b, const Store& store) {
    if (tf32) {
        gemm_tile<true>(M, N, k_begin, k_end, load_a, load_b, store);
    } else {
        gemm_tile<false>(M, N, k_begin, k_end, load_a, load_b, store);
    }
}

// The K range of this block's split: whole tiles of K / splits, rounded up.
KAREL_INLINE void split_range(int K, int splits, int* begin, int* end) {
    int per = (K + splits - 1) / splits;
    per = (per + TILE_K - 1) / TILE_K * TILE_K;
    int b = blockIdx.z * per;
    int e = b + per;
    *begin = b < K ? b : K;
    *end = e < K ? e : K;
}

// A row-major matrix of `cols` columns, read as M(r, c), or its transpose.
struct Matrix {
    const float* data;
    int cols;
    int transposed;
    KAREL_INLINE float operator()(int r, int c) const {
        return transposed ? data[(long long)c * cols + r] : data[(long long)r * cols + c];
    }
};

// C(m, n) into a row-major [M, N] matrix (accumulating or not), or into split s of a
// [splits, M, N] buffer of partial products.
struct MatrixStore {
    float* out;
    int N;
    int accumulate;
    long long split_offset;
    KAREL_INLINE void operator()(int m, int n, float v) const {
        float* p = out + split_offset + (long long)m * N + n;
        *p = accumulate ? *p + v : v;
    }
};

// C [M, N] (+)= op(A) · op(B), op(A) [M, K], op(B) [K, N]. `a_cols`/`b_cols` are the stored
// widths (K or M for A, N or K for B). With splits > 1, `out` is the partial buffer.
extern "C" __global__ void __launch_bounds__(KAREL_THREADS)
    gemm_f32(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b,
             int M, int N, int K, int trans_a, int trans_b, int accumulate, int splits, int tf32) {
    int k_begin, k_end;
    split_range(K, splits, &k_begin, &k_end);
    Matrix load_a = {a, trans_a ? M : K, trans_a};
    Matrix load_b = {b, trans_b ? K : N, trans_b};
    MatrixStore store = {out, N, splits > 1 ? 0 : accumulate,
                         splits > 1 ? (long long)blockIdx.z * M * N : 0};
    gemm_tile_as(tf32, M, N, k_begin, k_end, load_a, load_b, store);
}

// Geometry of a batch of images for the convolutions.
struct Images {
    int channels, h, w;
    // Pixel (y, x) of channel c of image `img`, zero outside the image.
    KAREL_INLINE float at(const float* data, int img, int c, int y, int x) const {
        if (y < 0 || y >= h || x < 0 || x >= w) {
            return 0.0f;
        }
        return data[(((long long)img * channels + c) * h + y) * w + x];
    }
};

// im2col as the B operand of the forward pass: B(k = (c, ky, kx), n = (img, y, x)) =
// x[img, c, y + ky − 1, x + kx − 1].
struct Im2col {
    const float* x;
    Images geometry;
    KAREL_INLINE float operator()(int k, int n) const {
        int plane = geometry.h * geometry.w;
        int img = n / plane, p = n % plane;
        int c = k / 9, r = k % 9;
        return geometry.at(x, img, c, p / geometry.w + r / 3 - 1, p % geometry.w + r % 3 - 1);
    }
};

// The same view transposed, as the B operand of the weight gradient: B(k = (img, y, x),
// n = (c, ky, kx)).
struct Im2colTransposed {
    Im2col view;
    KAREL_INLINE float operator()(int k, int n) const { return view(n, k); }
};

// The output gradient as the B operand of the input gradient: B(k = (o, ky, kx),
// n = (img, sy, sx)) = dy[img, o, sy − ky + 1, sx − kx + 1].
struct OutputGradientCols {
    const float* dy;
    Images geometry;  // of dy: channels = output channels
    KAREL_INLINE float operator()(int k, int n) const {
        int plane = geometry.h * geometry.w;
        int img = n / plane, p = n % plane;
        int o = k / 9, r = k % 9;
        return geometry.at(dy, img, o, p / geometry.w - r / 3 + 1, p % geometry.w - r % 3 + 1);
    }
};

// The weights [O, C, 3, 3] as the A operand of the input gradient: A(c, k = (o, ky, kx)).
struct WeightsByInput {
    const float* weight;
    int in_channels;
    KAREL_INLINE float operator()(int c, int k) const {
        int o = k / 9, r = k % 9;
        return weight[((long long)o * in_channels + c) * 9 + r];
    }
};

// The output gradient as the A operand of the weight gradient: A(o, k = (img, p)).
struct OutputGradientRows {
    const float* dy;
    int channels, plane;
    KAREL_INLINE float operator()(int o, int k) const {
        int img = k / plane, p = k % plane;
        return dy[((long long)img * channels + o) * plane + p];
    }
};

// C(m = channel, n = (img, p)) into an image batch [images, channels, plane], plus a bias.
struct ImageStore {
    float* out;
    const float* bias;
    int channels, plane;
    KAREL_INLINE void operator()(int m, int n, float v) const {
        int img = n / plane, p = n % plane;
        out[((long long)img * channels + m) * plane + p] = bias ? v + bias[m] : v;
    }
};

// y [N, O, H, W] = conv(x [N, C, H, W], weight [O, C, 3, 3]) + bias [O].
extern "C" __global__ void __launch_bounds__(KAREL_THREADS)
    conv3x3_forward_f32(float* __restrict__ y, const float* __restrict__ x,
                        const float* __restrict__ weight, const float* __restrict__ bias,
                        int images, int in_channels, int out_channels, int h, int w, int tf32) {
    int plane = h * w;
    Matrix load_a = {weight, in_channels * 9, 0};
    Im2col load_b = {x, {in_channels, h, w}};
    ImageStore store = {y, bias, out_channels, plane};
    gemm_tile_as(tf32, out_channels, images * plane, 0, in_channels * 9, load_a, load_b, store);
}

// dx [N, C, H, W] from dy [N, O, H, W] and the weights.
extern "C" __global__ void __launch_bounds__(KAREL_THREADS)
    conv3x3_backward_data_f32(float* __restrict__ dx, const float* __restrict__ dy,
                              const float* __restrict__ weight, int images, int in_channels,
                              int out_channels, int h, int w, int tf32) {
    int plane = h * w;
    WeightsByInput load_a = {weight, in_channels};
    OutputGradientCols load_b = {dy, {out_channels, h, w}};
    ImageStore store = {dx, nullptr, in_channels, plane};
    gemm_tile_as(tf32, in_channels, images * plane, 0, out_channels * 9, load_a, load_b, store);
}

// dweight [O, C·9] = Σ over images and pixels of dy · im2col(x), K split over blockIdx.z (with
// splits > 1, `out` is the [splits, O, C·9] partial buffer).
extern "C" __global__ void __launch_bounds__(KAREL_THREADS)
    conv3x3_backward_weight_f32(float* __restrict__ out, const float* __restrict__ x,
                                const float* __restrict__ dy, int images, int in_channels,
                                int out_channels, int h, int w, int splits, int tf32) {
    int plane = h * w;
    int M = out_channels, N = in_channels * 9, K = images * plane;
    int k_begin, k_end;
    split_range(K, splits, &k_begin, &k_end);
    OutputGradientRows load_a = {dy, out_channels, plane};
    Im2colTransposed load_b = {{x, {in_channels, h, w}}};
    MatrixStore store = {out, N, 0, splits > 1 ? (long long)blockIdx.z * M * N : 0};
    gemm_tile_as(tf32, M, N, k_begin, k_end, load_a, load_b, store);
}
