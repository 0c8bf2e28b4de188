// Losses and decoding: softmax cross-entropy with an ignore index and logit masks, and row-wise
// log-softmax. One thread per row (the class counts are small: 43 tokens, 90 edit ops), the
// classes in order, as the CPU backend computes them.
#include "common.cuh"

// Per row r of logits [rows, classes]: loss[r] = −log softmax(row)[target] over the allowed
// classes (mask[r, j] != 0, or all without a mask), in double; grad[r, j] = (p_j − [j = t]) /
// denominator for allowed classes and 0 elsewhere. Rows whose target is `ignore` get loss 0 and a
// zero gradient. The host adds the losses in row order.
extern "C" __global__ void cross_entropy_f32(double* __restrict__ loss, float* __restrict__ grad,
                                             const float* __restrict__ logits,
                                             const unsigned* __restrict__ targets,
                                             const unsigned char* __restrict__ mask,
                                             unsigned ignore, int rows, int classes,
                                             double denominator) {
    for (long long r = global_index(); r < rows; r += grid_stride()) {
        const float* row = logits + r * classes;
        float* g = grad + r * classes;
        const unsigned char* allowed = mask ? mask + r * classes : nullptr;
        unsigned t = targets[r];
        if (t == ignore) {
            for (int j = 0; j < classes; ++j) {
                g[j] = 0.0f;
            }
            loss[r] = 0.0;
            continue;
        }
        double max = -KAREL_INF_F64;
        for (int j = 0; j < classes; ++j) {
            if (!allowed || allowed[j]) {
                max = fmax(max, (double)row[j]);
            }
        }
        double sum = 0.0;
        for (int j = 0; j < classes; ++j) {
            if (!allowed || allowed[j]) {
                sum += exp((double)row[j] - max);
            }
        }
        double log_z = max + log(sum);
        loss[r] = -((double)row[t] - log_z);
        for (int j = 0; j < classes; ++j) {
            if (!allowed || allowed[j]) {
                double p = exp((double)row[j] - log_z);
                g[j] = (float)((p - (j == (int)t ? 1.0 : 0.0)) / denominator);
            } else {
                g[j] = 0.0f;
            }
        }
    }
}

// out[r, :] = logits[r, :] − log Σ exp(logits[r, :]), in f32.
extern "C" __global__ void log_softmax_f32(float* __restrict__ out,
                                           const float* __restrict__ logits, int rows,
                                           int classes) {
    for (long long r = global_index(); r < rows; r += grid_stride()) {
        const float* row = logits + r * classes;
        float max = -KAREL_INF_F32;
        for (int j = 0; j < classes; ++j) {
            max = fmaxf(max, row[j]);
        }
        float sum = 0.0f;
        for (int j = 0; j < classes; ++j) {
            sum += expf(row[j] - max);
        }
        float log_z = max + logf(sum);
        for (int j = 0; j < classes; ++j) {
            out[r * classes + j] = row[j] - log_z;
        }
    }
}
