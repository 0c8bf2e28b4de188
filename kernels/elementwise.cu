// Element-wise kernels: arithmetic, ReLU, the LSTM cell, batch normalisation's per-element
// passes, row selection and the optimiser updates. One thread per element in grid-stride loops;
// each kernel computes exactly the formula of the CPU backend (src/nn/cpu/mod.rs).
#include "common.cuh"

extern "C" __global__ void fill_f32(float* __restrict__ x, float value, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        x[i] = value;
    }
}

// a += b
extern "C" __global__ void add_assign_f32(float* __restrict__ a, const float* __restrict__ b,
                                          long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        a[i] += b[i];
    }
}

// out = a + b
extern "C" __global__ void add_f32(float* __restrict__ out, const float* __restrict__ a,
                                   const float* __restrict__ b, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        out[i] = a[i] + b[i];
    }
}

extern "C" __global__ void scale_f32(float* __restrict__ x, float factor, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        x[i] = x[i] * factor;
    }
}

// x[r, j] += bias[j] for a matrix of `cols` columns.
extern "C" __global__ void add_bias_f32(float* __restrict__ x, const float* __restrict__ bias,
                                        long long n, int cols) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        x[i] += bias[i % cols];
    }
}

extern "C" __global__ void relu_f32(float* __restrict__ y, const float* __restrict__ x,
                                    long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

// dx = dy where the ReLU's output y is positive.
extern "C" __global__ void relu_backward_f32(float* __restrict__ dx, const float* __restrict__ y,
                                             const float* __restrict__ dy, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
}

// running = (1 - momentum) · running + momentum · batch
extern "C" __global__ void lerp_f32(float* __restrict__ running, const float* __restrict__ batch,
                                    float momentum, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        running[i] = (1.0f - momentum) * running[i] + momentum * batch[i];
    }
}

// Row r of out is row r of `fresh` where keep[r], else row r of `old`.
extern "C" __global__ void select_rows_f32(float* __restrict__ out,
                                           const unsigned char* __restrict__ keep,
                                           const float* __restrict__ fresh,
                                           const float* __restrict__ old, long long n, int cols) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        out[i] = keep[i / cols] ? fresh[i] : old[i];
    }
}

// tanh x = 2σ(2x) − 1, as the CPU backend computes it.
KAREL_INLINE float tanh_f32(float x) {
    return 2.0f / (1.0f + expf(-2.0f * x)) - 1.0f;
}

// The LSTM cell over [B, 4H] pre-activation gates (i, f, g, o) and c_prev [B, H]: writes the
// activated gates, c and h. One thread per (row, hidden unit).
extern "C" __global__ void lstm_cell_f32(float* __restrict__ activated, float* __restrict__ h_out,
                                         float* __restrict__ c_out,
                                         const float* __restrict__ gates,
                                         const float* __restrict__ c_prev, long long n, int hidden) {
    for (long long k = global_index(); k < n; k += grid_stride()) {
        long long row = k / hidden;
        int j = (int)(k % hidden);
        const float* a = gates + row * 4 * hidden;
        float* act = activated + row * 4 * hidden;
        float i = sigmoid_f32(a[j]);
        float f = sigmoid_f32(a[hidden + j]);
        float g = tanh_f32(a[2 * hidden + j]);
        float o = sigmoid_f32(a[3 * hidden + j]);
        act[j] = i;
        act[hidden + j] = f;
        act[2 * hidden + j] = g;
        act[3 * hidden + j] = o;
        float c = f * c_prev[k] + i * g;
        c_out[k] = c;
        h_out[k] = o * tanh_f32(c);
    }
}

// Gradients of the pre-activation gates and of c_prev from those of h and c.
extern "C" __global__ void lstm_cell_backward_f32(float* __restrict__ dgates,
                                                  float* __restrict__ dc_prev,
                                                  const float* __restrict__ activated,
                                                  const float* __restrict__ c_prev,
                                                  const float* __restrict__ c,
                                                  const float* __restrict__ dh,
                                                  const float* __restrict__ dc, long long n,
                                                  int hidden) {
    for (long long k = global_index(); k < n; k += grid_stride()) {
        long long row = k / hidden;
        int j = (int)(k % hidden);
        const float* a = activated + row * 4 * hidden;
        float* dg = dgates + row * 4 * hidden;
        float i = a[j], f = a[hidden + j], g = a[2 * hidden + j], o = a[3 * hidden + j];
        float tc = tanh_f32(c[k]);
        float d_o = dh[k] * tc;
        float dct = dc[k] + dh[k] * o * (1.0f - tc * tc);
        dg[j] = dct * g * i * (1.0f - i);
        dg[hidden + j] = dct * c_prev[k] * f * (1.0f - f);
        dg[2 * hidden + j] = dct * i * (1.0f - g * g);
        dg[3 * hidden + j] = d_o * o * (1.0f - o);
        dc_prev[k] = dct * f;
    }
}

// Batch normalisation with given per-channel statistics: y = (x − mean) · scale · γ + β, where
// `scale` is 1/√(var + ε) (training: the batch's inverse standard deviation).
extern "C" __global__ void batch_norm_apply_f32(float* __restrict__ y, const float* __restrict__ x,
                                                const float* __restrict__ gamma,
                                                const float* __restrict__ beta,
                                                const float* __restrict__ mean,
                                                const float* __restrict__ inv_std, long long n,
                                                int channels, int plane) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        int ch = (int)((i / plane) % channels);
        y[i] = (x[i] - mean[ch]) * inv_std[ch] * gamma[ch] + beta[ch];
    }
}

// Evaluation mode: y = (x − mean) · γ/√(var + ε) + β with the running statistics.
extern "C" __global__ void batch_norm_eval_f32(float* __restrict__ y, const float* __restrict__ x,
                                               const float* __restrict__ gamma,
                                               const float* __restrict__ beta,
                                               const float* __restrict__ mean,
                                               const float* __restrict__ var, float eps,
                                               long long n, int channels, int plane) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        int ch = (int)((i / plane) % channels);
        float scale = gamma[ch] / sqrtf(var[ch] + eps);
        y[i] = (x[i] - mean[ch]) * scale + beta[ch];
    }
}

// dx = γ·inv_std/M · (M·dy − Σdy − x̂·Σ(dy·x̂)) from the per-channel sums (M = N·H·W).
extern "C" __global__ void batch_norm_backward_f32(float* __restrict__ dx,
                                                   const float* __restrict__ x,
                                                   const float* __restrict__ dy,
                                                   const float* __restrict__ gamma,
                                                   const float* __restrict__ mean,
                                                   const float* __restrict__ inv_std,
                                                   const float* __restrict__ sum_dy,
                                                   const float* __restrict__ sum_dy_xhat,
                                                   float count, long long n, int channels,
                                                   int plane) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        int ch = (int)((i / plane) % channels);
        float k = gamma[ch] * inv_std[ch] / count;
        float xhat = (x[i] - mean[ch]) * inv_std[ch];
        dx[i] = k * (count * dy[i] - sum_dy[ch] - xhat * sum_dy_xhat[ch]);
    }
}

// p -= lr · g
extern "C" __global__ void sgd_step_f32(float* __restrict__ param, const float* __restrict__ grad,
                                        float lr, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        param[i] = param[i] - lr * grad[i];
    }
}

// Adam(W) with bias corrections `c1` = 1 − β1^t and `c2` = √(1 − β2^t), and `decay` =
// 1 − lr · weight_decay.
extern "C" __global__ void adam_step_f32(float* __restrict__ param, const float* __restrict__ grad,
                                         float* __restrict__ m, float* __restrict__ v, float beta1,
                                         float beta2, float lr, float decay, float c1, float c2,
                                         float eps, long long n) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        float g = grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] * decay - lr * (mi / c1) / (sqrtf(vi) / c2 + eps);
    }
}
