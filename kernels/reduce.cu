// Reductions: column sums, sums of squares, and the per-channel sums of batch normalisation and
// of the convolution's bias gradient. Every reduction runs in a fixed order (no atomics), so a
// result does not change from run to run.
#include "common.cuh"

// out[j] = Σ_r x[r, j]: one thread per column, rows in order (the CPU backend's order).
extern "C" __global__ void sum_rows_f32(float* __restrict__ out, const float* __restrict__ x,
                                        int rows, int cols) {
    for (long long j = global_index(); j < cols; j += grid_stride()) {
        float total = 0.0f;
        for (int r = 0; r < rows; ++r) {
            total += x[(long long)r * cols + j];
        }
        out[j] = total;
    }
}

// partial[b] = Σ x² over the elements of block b's grid-stride share, in double; the host adds
// the partials.
extern "C" __global__ void sum_squares_f32(double* __restrict__ partial,
                                           const float* __restrict__ x, long long n) {
    __shared__ double scratch[KAREL_THREADS];
    double total = 0.0;
    for (long long i = global_index(); i < n; i += grid_stride()) {
        double v = x[i];
        total += v * v;
    }
    total = block_sum(total, scratch);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = total;
    }
}

// Per channel of x [N, C, plane] (one block per channel): the mean, 1/√(var + ε) and the
// unbiased variance, from the two-pass biased variance, all in double.
extern "C" __global__ void batch_norm_stats_f32(float* __restrict__ mean_out,
                                                float* __restrict__ inv_std_out,
                                                float* __restrict__ unbiased_var_out,
                                                const float* __restrict__ x, int images,
                                                int channels, int plane, double eps) {
    __shared__ double scratch[KAREL_THREADS];
    int ch = blockIdx.x;
    long long count = (long long)images * plane;
    double sum = 0.0;
    for (long long k = threadIdx.x; k < count; k += blockDim.x) {
        long long img = k / plane, p = k % plane;
        sum += x[(img * channels + ch) * plane + p];
    }
    double mean = block_sum(sum, scratch) / (double)count;
    double squares = 0.0;
    for (long long k = threadIdx.x; k < count; k += blockDim.x) {
        long long img = k / plane, p = k % plane;
        double d = x[(img * channels + ch) * plane + p] - mean;
        squares += d * d;
    }
    double var = block_sum(squares, scratch) / (double)count;
    if (threadIdx.x == 0) {
        double denominator = count > 1 ? (double)(count - 1) : 1.0;
        mean_out[ch] = (float)mean;
        inv_std_out[ch] = (float)(1.0 / sqrt(var + eps));
        unbiased_var_out[ch] = (float)(var * (double)count / denominator);
    }
}

// Per channel (one block each): Σ dy and Σ dy · x̂ with x̂ = (x − mean) · inv_std.
extern "C" __global__ void batch_norm_sums_f32(float* __restrict__ sum_dy,
                                               float* __restrict__ sum_dy_xhat,
                                               const float* __restrict__ x,
                                               const float* __restrict__ dy,
                                               const float* __restrict__ mean,
                                               const float* __restrict__ inv_std, int images,
                                               int channels, int plane) {
    __shared__ double scratch[KAREL_THREADS];
    int ch = blockIdx.x;
    long long count = (long long)images * plane;
    double sum = 0.0, dot = 0.0;
    float m = mean[ch], s = inv_std[ch];
    for (long long k = threadIdx.x; k < count; k += blockDim.x) {
        long long img = k / plane, p = k % plane;
        long long i = (img * channels + ch) * plane + p;
        float d = dy[i];
        sum += d;
        dot += (double)(d * ((x[i] - m) * s));
    }
    sum = block_sum(sum, scratch);
    dot = block_sum(dot, scratch);
    if (threadIdx.x == 0) {
        sum_dy[ch] = (float)sum;
        sum_dy_xhat[ch] = (float)dot;
    }
}

// The bias gradient of a convolution: db[o] = Σ_{n, p} dy[n, o, p] (one block per channel).
extern "C" __global__ void conv_bias_backward_f32(float* __restrict__ db,
                                                  const float* __restrict__ dy, int images,
                                                  int channels, int plane) {
    __shared__ double scratch[KAREL_THREADS];
    int ch = blockIdx.x;
    long long count = (long long)images * plane;
    double sum = 0.0;
    for (long long k = threadIdx.x; k < count; k += blockDim.x) {
        long long img = k / plane, p = k % plane;
        sum += dy[(img * channels + ch) * plane + p];
    }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) {
        db[ch] = (float)sum;
    }
}

// out[m, n] (+)= Σ_s partial[s, m, n]: the split-K reduction of the matrix products, in order.
extern "C" __global__ void sum_splits_f32(float* __restrict__ out,
                                          const float* __restrict__ partial, int splits,
                                          long long n, int accumulate) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        float total = accumulate ? out[i] : 0.0f;
        for (int s = 0; s < splits; ++s) {
            total += partial[(long long)s * n + i];
        }
        out[i] = total;
    }
}
