// CPU emulation of the part of the CUDA programming model that the kernels in kernels/ use, so
// that the kernels (and the GPU backend's launch code) run and are tested on machines without a
// GPU. The kernel sources are compiled unchanged by the host C++ compiler after this header.
//
// A launch runs the blocks of its grid one after another on the calling thread. The threads of
// a block are fibers, each on its own stack, run in turn: a thread runs until it
// reaches __syncthreads or returns, and no thread passes a barrier before every thread of the
// block still running has reached it, so a missing barrier shows up as a wrong result, as on a
// GPU. A thread that returns early leaves the block's barriers, as on sm_70 and later.
// __shared__ variables become function statics in one section of their own: one copy, used by
// the one block that runs, filled with 0xff bytes (NaN as floats) when each block starts, so that
// reading shared memory no thread of the block wrote shows.
//
// The order (karel_emu_set_order) says in which order the blocks of a grid run and, between two
// barriers, the threads of a block: ascending, descending, or shuffled from a seed (a new order
// for every block and every stretch between barriers). A kernel whose result depends on the
// order has a race: between blocks, or between threads without a barrier between them.
#pragma once
#define KAREL_EMULATION 1

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include <vector>

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
};

namespace emu {

// Switching between fibers. On x86-64, a minimal switch of the callee-saved registers and the
// stack pointer (ucontext's swapcontext also saves the signal mask, a system call per switch,
// and dominated the emulation's time); elsewhere, ucontext.
#if defined(__x86_64__) && defined(__ELF__)
extern "C" void karel_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl karel_emu_switch
    .hidden karel_emu_switch
    .type karel_emu_switch, @function
karel_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw (%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size karel_emu_switch, .-karel_emu_switch
)");

struct Context {
    void* sp = nullptr;
};

// Prepares `fiber` to start `entry` on the stack [base, base + bytes): the frame that
// karel_emu_switch pops (the floating-point control words, six registers, then `entry` as the
// return address).
inline void prepare(Context& fiber, char* base, size_t bytes, void (*entry)()) {
    uintptr_t top = ((uintptr_t)(base + bytes)) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;           // entry's own return address: it never returns
    *--sp = (void*)entry;      // where the switch returns to
    for (int i = 0; i < 6; ++i) {
        *--sp = nullptr;       // rbp, rbx, r12–r15
    }
    // The current control words (MXCSR at 8, the x87 control word at 0), for the fiber.
    unsigned mxcsr;
    unsigned short x87;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(x87));
    sp -= 2;
    memcpy((char*)sp + 8, &mxcsr, sizeof mxcsr);
    memcpy((char*)sp, &x87, sizeof x87);
    fiber.sp = sp;
}

inline void switch_to(Context& from, Context& to) {
    karel_emu_switch(&from.sp, to.sp);
}
#else
struct Context {
    ucontext_t context;
};

inline void prepare(Context& fiber, char* base, size_t bytes, void (*entry)()) {
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = base;
    fiber.context.uc_stack.ss_size = bytes;
    fiber.context.uc_link = nullptr;
    makecontext(&fiber.context, entry, 0);
}

inline void switch_to(Context& from, Context& to) {
    swapcontext(&from.context, &to.context);
}
#endif

enum class State { Running, AtBarrier, Finished };

// The order of blocks and threads: 0 ascending, 1 descending, 2 shuffled from `order_seed`.
inline int order_mode = 0;
inline unsigned long long order_seed = 0;

inline unsigned long long mix(unsigned long long x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The indices 0..n in the current order; `salt` picks the shuffle.
inline void ordered(std::vector<int>& order, int n, unsigned long long salt) {
    order.resize(n);
    for (int i = 0; i < n; ++i) {
        order[i] = order_mode == 1 ? n - 1 - i : i;
    }
    if (order_mode == 2) {
        unsigned long long state = mix(order_seed ^ mix(salt));
        for (int i = n - 1; i > 0; --i) {
            state = mix(state);
            int j = (int)(state % (unsigned long long)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
}

// The shared-memory section (empty when no kernel declares shared memory).
extern "C" char __start_karel_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_karel_shared[] __attribute__((weak, visibility("hidden")));

// Fills shared memory with 0xff bytes: what a block reads before writing it is NaN.
inline void poison_shared() {
    if (__start_karel_shared != nullptr && __stop_karel_shared > __start_karel_shared) {
        memset(__start_karel_shared, 0xff, (size_t)(__stop_karel_shared - __start_karel_shared));
    }
}

// The blocks of `grid` in the current order.
inline std::vector<uint3> blocks_of(dim3 grid) {
    std::vector<uint3> blocks;
    for (unsigned z = 0; z < grid.z; ++z) {
        for (unsigned y = 0; y < grid.y; ++y) {
            for (unsigned x = 0; x < grid.x; ++x) {
                blocks.push_back({x, y, z});
            }
        }
    }
    std::vector<int> order;
    ordered(order, (int)blocks.size(), 0x0b10c5);
    std::vector<uint3> out;
    out.reserve(blocks.size());
    for (int i : order) {
        out.push_back(blocks[i]);
    }
    return out;
}

struct Launch {
    dim3 grid;
    dim3 block;
    uint3 block_index;
    uint3 thread_index;
    int current = 0;
    Context scheduler;
    std::vector<Context> fibers;
    std::vector<State> states;
    void (*body)(void*) = nullptr;
    void* closure = nullptr;
};

inline Launch* current = nullptr;

// Stack of each fiber (the kernels keep small frames).
constexpr size_t STACK_BYTES = 64 * 1024;

inline std::vector<std::vector<char>>& stacks() {
    static std::vector<std::vector<char>> pool;
    return pool;
}

// A fiber's whole life: the kernel for one thread, then back to the scheduler for good.
inline void fiber_entry() {
    Launch* l = current;
    l->body(l->closure);
    l->states[l->current] = State::Finished;
    switch_to(l->fibers[l->current], l->scheduler);
    __builtin_trap();  // a finished fiber is never resumed
}

// Runs `body` for every thread of every block of the grid, each thread straight through: for
// kernels that never wait at a barrier.
template <class Body>
void launch_direct(dim3 grid, dim3 block, Body body) {
    Launch state;
    state.grid = grid;
    state.block = block;
    state.current = -1;
    current = &state;
    int threads = (int)(block.x * block.y * block.z);
    std::vector<int> order;
    unsigned long long salt = 0;
    for (uint3 b : blocks_of(grid)) {
        state.block_index = b;
        poison_shared();
        ordered(order, threads, ++salt);
        for (int t : order) {
            unsigned u = (unsigned)t;
            state.thread_index = {u % block.x, (u / block.x) % block.y, u / (block.x * block.y)};
            body();
        }
    }
    current = nullptr;
}

// Runs `body` for every thread of every block of the grid, the threads of a block as fibers.
template <class Body>
void launch(dim3 grid, dim3 block, Body body) {
    Launch state;
    state.grid = grid;
    state.block = block;
    int threads = (int)(block.x * block.y * block.z);
    state.fibers.resize(threads);
    state.states.resize(threads);
    state.body = [](void* closure) { (*static_cast<Body*>(closure))(); };
    state.closure = &body;
    auto& pool = stacks();
    while ((int)pool.size() < threads) {
        pool.emplace_back(STACK_BYTES);
    }
    current = &state;
    std::vector<int> order;
    unsigned long long salt = 0;
    for (uint3 b : blocks_of(grid)) {
        state.block_index = b;
        poison_shared();
        for (int t = 0; t < threads; ++t) {
            prepare(state.fibers[t], pool[t].data(), STACK_BYTES, fiber_entry);
            state.states[t] = State::Running;
        }
        // Rounds: every running thread advances to its next barrier or its end, in the order.
        bool running = true;
        while (running) {
            running = false;
            ordered(order, threads, ++salt);
            for (int t : order) {
                if (state.states[t] != State::Running) {
                    continue;
                }
                unsigned u = (unsigned)t;
                state.current = t;
                state.thread_index = {u % block.x, (u / block.x) % block.y,
                                      u / (block.x * block.y)};
                switch_to(state.scheduler, state.fibers[t]);
            }
            for (int t = 0; t < threads; ++t) {
                if (state.states[t] == State::AtBarrier) {
                    state.states[t] = State::Running;
                    running = true;
                }
            }
        }
    }
    current = nullptr;
}

inline void syncthreads() {
    Launch* l = current;
    int t = l->current;
    if (t < 0) {
        // A kernel launched without fibers (its source shows no barrier) reached one.
        __builtin_trap();
    }
    l->states[t] = State::AtBarrier;
    switch_to(l->fibers[t], l->scheduler);
}

}  // namespace emu

extern "C" void karel_emu_set_order(int mode, unsigned long long seed) {
    emu::order_mode = mode;
    emu::order_seed = seed;
}

#define threadIdx (::emu::current->thread_index)
#define blockIdx (::emu::current->block_index)
#define blockDim (::emu::current->block)
#define gridDim (::emu::current->grid)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static __attribute__((section("karel_shared")))
#define __launch_bounds__(...)
#define __syncthreads() ::emu::syncthreads()

inline float __int_as_float(int bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

// TF32 rounding as cvt.rna.tf32.f32: to the nearest value with 10 mantissa bits, ties away
// from zero, as the bits of an f32.
inline unsigned tf32_bits(float x) {
    unsigned bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits + 0x1000u) & 0xffffe000u;
}

// mma.m16n8k8 in TF32 for one warp (see common.cuh for the fragment layouts). The lanes of a
// warp meet through a block-wide barrier, which is sound because every warp of the tiled
// kernels reaches the same products in the same order.
inline void mma_tf32(float c[4], const unsigned a[4], const unsigned b[2]) {
    static float A[8][16][8], B[8][8][8];
    unsigned t = threadIdx.x, w = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    auto value = [](unsigned bits) {
        float v;
        memcpy(&v, &bits, sizeof v);
        return v;
    };
    A[w][g][q] = value(a[0]);
    A[w][g + 8][q] = value(a[1]);
    A[w][g][q + 4] = value(a[2]);
    A[w][g + 8][q + 4] = value(a[3]);
    B[w][q][g] = value(b[0]);
    B[w][q + 4][g] = value(b[1]);
    __syncthreads();
    const unsigned rows[4] = {g, g, g + 8, g + 8};
    const unsigned cols[4] = {2 * q, 2 * q + 1, 2 * q, 2 * q + 1};
    for (int i = 0; i < 4; ++i) {
        float sum = c[i];
        for (int k = 0; k < 8; ++k) {
            sum = fmaf(A[w][rows[i]][k], B[w][k][cols[i]], sum);
        }
        c[i] = sum;
    }
    __syncthreads();
}

inline double __longlong_as_double(long long bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}
