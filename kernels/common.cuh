// Shared definitions of the neural engine's CUDA kernels.
//
// Every kernel file starts with `#include "common.cuh"`; the Rust side (src/nn/gpu/kernels.rs)
// pastes this header in place of that line, so NVRTC needs no include paths. When the kernels are
// compiled for the CPU emulator (tests without a GPU), KAREL_EMULATION is defined and the
// emulator's header, pasted before this one, supplies threadIdx, __syncthreads and the rest.
//
// Conventions: entry points are `extern "C"` and named `<op>_f32`; tensors are contiguous and
// row-major (grids N × C × H × W); element counts that can pass 2^31 are `long long`.
#pragma once

#ifndef KAREL_EMULATION
#define KAREL_INLINE __device__ __forceinline__
#else
#define KAREL_INLINE inline
#endif

// Infinities, written so that NVRTC needs no math header.
#define KAREL_INF_F32 __int_as_float(0x7f800000)
#define KAREL_INF_F64 __longlong_as_double(0x7ff0000000000000LL)

// Threads per block of the one-dimensional kernels, and of the block reductions.
#define KAREL_THREADS 256

// The global index of this thread in a one-dimensional grid, and the grid's stride, for
// grid-stride loops over `long long` counts.
KAREL_INLINE long long global_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

KAREL_INLINE long long grid_stride() {
    return (long long)gridDim.x * blockDim.x;
}

KAREL_INLINE float sigmoid_f32(float x) {
    return 1.0f / (1.0f + expf(-x));
}

// Sum of `value` over the block's threads (blockDim.x == KAREL_THREADS), with the result in
// every thread. `scratch` is shared memory of KAREL_THREADS doubles. Fixed order: deterministic.
KAREL_INLINE double block_sum(double value, double* scratch) {
    unsigned t = threadIdx.x;
    scratch[t] = value;
    __syncthreads();
    for (unsigned half = KAREL_THREADS / 2; half > 0; half /= 2) {
        if (t < half) {
            scratch[t] += scratch[t + half];
        }
        __syncthreads();
    }
    double total = scratch[0];
    __syncthreads();
    return total;
}

// Maximum of `value` over the block's threads, with the result in every thread.
KAREL_INLINE float block_max(float value, float* scratch) {
    unsigned t = threadIdx.x;
    scratch[t] = value;
    __syncthreads();
    for (unsigned half = KAREL_THREADS / 2; half > 0; half /= 2) {
        if (t < half) {
            scratch[t] = fmaxf(scratch[t], scratch[t + half]);
        }
        __syncthreads();
    }
    float total = scratch[0];
    __syncthreads();
    return total;
}
