// CPU emulation of the part of the CUDA programming model that the kernels in kernels/ use, so
// that the kernels (and the GPU backend's launch code) run and are tested on machines without a
// GPU. The kernel sources are compiled unchanged by the host C++ compiler after this header.
//
// A launch runs the blocks of its grid one after another; the threads of a block are real
// threads, so __syncthreads is a real barrier and a missing one shows up as a wrong result, as
// on a GPU. __shared__ variables become function statics: one copy, used by the one block that
// runs at a time. A thread that returns early leaves the block's barrier, as on sm_70 and later.
#pragma once
#define KAREL_EMULATION 1

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
};

namespace emu {

// A reusable barrier whose party can shrink (threads that have left the kernel).
struct Barrier {
    std::mutex mutex;
    std::condition_variable released;
    int expected = 0;
    int arrived = 0;
    unsigned long generation = 0;

    void reset(int parties) {
        std::lock_guard<std::mutex> lock(mutex);
        expected = parties;
        arrived = 0;
    }

    // Waits for the whole party; the last thread to arrive runs `last` before releasing the
    // others.
    template <class F>
    void wait(F last) {
        std::unique_lock<std::mutex> lock(mutex);
        unsigned long seen = generation;
        if (++arrived >= expected) {
            last();
            arrived = 0;
            ++generation;
            released.notify_all();
        } else {
            released.wait(lock, [&] { return generation != seen; });
        }
    }

    void wait() {
        wait([] {});
    }

    // Leaves the party for the rest of this block.
    void leave() {
        std::lock_guard<std::mutex> lock(mutex);
        --expected;
        if (expected > 0 && arrived >= expected) {
            arrived = 0;
            ++generation;
            released.notify_all();
        }
    }
};

struct Launch {
    dim3 grid;
    dim3 block;
    int threads;
    Barrier sync;
    Barrier block_end;
};

inline Launch* current = nullptr;
inline thread_local uint3 thread_index;
inline thread_local uint3 block_index;

// Runs `body` for every thread of every block of the grid.
template <class Body>
void launch(dim3 grid, dim3 block, Body body) {
    Launch state;
    state.grid = grid;
    state.block = block;
    state.threads = (int)(block.x * block.y * block.z);
    state.sync.reset(state.threads);
    state.block_end.reset(state.threads);
    current = &state;
    std::vector<std::thread> pool;
    pool.reserve(state.threads);
    for (int t = 0; t < state.threads; ++t) {
        pool.emplace_back([&state, &body, t] {
            unsigned u = (unsigned)t;
            thread_index = {u % state.block.x, (u / state.block.x) % state.block.y,
                            u / (state.block.x * state.block.y)};
            for (unsigned z = 0; z < state.grid.z; ++z) {
                for (unsigned y = 0; y < state.grid.y; ++y) {
                    for (unsigned x = 0; x < state.grid.x; ++x) {
                        block_index = {x, y, z};
                        body();
                        state.sync.leave();
                        state.block_end.wait([&state] { state.sync.reset(state.threads); });
                    }
                }
            }
        });
    }
    for (auto& thread : pool) {
        thread.join();
    }
    current = nullptr;
}

inline void syncthreads() {
    current->sync.wait();
}

}  // namespace emu

#define threadIdx (::emu::thread_index)
#define blockIdx (::emu::block_index)
#define blockDim (::emu::current->block)
#define gridDim (::emu::current->grid)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __syncthreads() ::emu::syncthreads()

inline float __int_as_float(int bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

inline double __longlong_as_double(long long bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}
