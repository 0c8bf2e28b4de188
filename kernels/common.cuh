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

// Tensor cores (sm_80 and later): one warp's D [16×8] += A [16×8] · B [8×8] in TF32 with f32
// accumulation, the operands in the fragment layouts of PTX's mma.m16n8k8 (lane = 4·g + q:
// a = A[g][q], A[g+8][q], A[g][q+4], A[g+8][q+4]; b = B[q][g], B[q+4][g]; c = C[g][2q],
// C[g][2q+1], C[g+8][2q], C[g+8][2q+1]). The emulator defines its own versions.
#ifndef KAREL_EMULATION
KAREL_INLINE unsigned tf32_bits(float x) {
#if __CUDA_ARCH__ >= 800
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#else
    return __float_as_uint(x) & 0xffffe000u;
#endif
}

KAREL_INLINE void mma_tf32(float c[4], const unsigned a[4], const unsigned b[2]) {
#if __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
}
#endif

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
