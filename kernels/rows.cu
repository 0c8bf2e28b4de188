// Row operations: gathers (embeddings, pointer positions), sparse row sums (the trace-to-token
// sum, and every scatter-add, given as the inverse mapping built on the host), the maximum over
// the IO examples of a task, and strided copies (concatenation and slicing along an axis).
// None uses atomics: each output element is written by one thread, in a fixed order.
#include "common.cuh"

// out[i, :] = table[rows[i], :]
extern "C" __global__ void gather_rows_f32(float* __restrict__ out,
                                           const float* __restrict__ table,
                                           const unsigned* __restrict__ rows, long long n,
                                           int width) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        long long r = i / width;
        out[i] = table[(long long)rows[r] * width + i % width];
    }
}

// out[r, :] = Σ_e weight[e] · x[cols[e], :] over the entries offsets[r]..offsets[r+1] of row r
// (compressed sparse rows; weight 1 when `weights` is null), entries in order.
extern "C" __global__ void sparse_rows_f32(float* __restrict__ out, const float* __restrict__ x,
                                           const unsigned* __restrict__ offsets,
                                           const unsigned* __restrict__ cols,
                                           const float* __restrict__ weights, long long n,
                                           int width) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        long long r = i / width;
        int d = (int)(i % width);
        float total = 0.0f;
        for (unsigned e = offsets[r]; e < offsets[r + 1]; ++e) {
            float v = x[(long long)cols[e] * width + d];
            total += weights ? weights[e] * v : v;
        }
        out[i] = total;
    }
}

// x [groups · size, width] → out [groups, width], the maximum over each group's rows, and the
// row that holds it (the first of equal maxima, as on the CPU).
extern "C" __global__ void max_groups_f32(float* __restrict__ out, unsigned* __restrict__ argmax,
                                          const float* __restrict__ x, long long n, int size,
                                          int width) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        long long g = i / width;
        int d = (int)(i % width);
        long long best = g * size;
        float best_value = x[best * width + d];
        for (long long r = g * size + 1; r < (g + 1) * size; ++r) {
            float v = x[r * width + d];
            if (v > best_value) {
                best = r;
                best_value = v;
            }
        }
        out[i] = best_value;
        argmax[i] = (unsigned)best;
    }
}

// dx [rows, width] (zeroed before) receives dy [groups, width] at the winning rows. Each (group,
// column) has one winner, in its own group, so no two threads write one element.
extern "C" __global__ void max_groups_backward_f32(float* __restrict__ dx,
                                                   const float* __restrict__ dy,
                                                   const unsigned* __restrict__ argmax,
                                                   long long n, int width) {
    for (long long i = global_index(); i < n; i += grid_stride()) {
        dx[(long long)argmax[i] * width + i % width] = dy[i];
    }
}

// dst[r · dst_stride + dst_offset + c] = src[r · src_stride + src_offset + c] for r < rows,
// c < cols: one part of a concatenation, or a slice, along an axis.
extern "C" __global__ void strided_copy_f32(float* __restrict__ dst, long long dst_stride,
                                            long long dst_offset, const float* __restrict__ src,
                                            long long src_stride, long long src_offset,
                                            long long rows, long long cols) {
    long long n = rows * cols;
    for (long long i = global_index(); i < n; i += grid_stride()) {
        long long r = i / cols, c = i % cols;
        dst[r * dst_stride + dst_offset + c] = src[r * src_stride + src_offset + c];
    }
}
