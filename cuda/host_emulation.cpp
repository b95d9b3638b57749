// Host emulation of the CUDA kernel and of the launcher's CUDA-free decisions, for tests on
// machines without a GPU.
//
// Not part of the extension: tests/cuda_emulation.py compiles this file with the host C++
// compiler (plus cpp/mlp_desc.cpp) into a small shared library. It runs the very device
// functions of mlp_dp4a_kernel.cuh — block set-up, the coalesced tile load with its
// quantization, forward_sample<MW>, the tile store — block by block over the same grid-stride
// loop as mlp_dp4a_kernel, each phase for every thread of the block before the next phase (what
// the kernel's __syncthreads() guarantee), in ascending or descending thread order (a correct
// kernel cannot depend on the order within a phase). The CUDA intrinsics it uses are defined by
// their documented semantics (__dp4a: signed 4-byte dot + accumulate; __fmul_rn: IEEE
// round-to-nearest-even multiply; __float2int_rn: round half to even; __int2float_rn).
// What it cannot check: real concurrency, bank conflicts, streams, occupancy.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

#define __host__
#define __device__
#define __global__
#define __shared__
#define __restrict__
#define __forceinline__ inline
#define __launch_bounds__(threads)

namespace {
struct Dim3 {
  unsigned x = 0;
};
Dim3 threadIdx, blockIdx, blockDim, gridDim;
void __syncthreads() {}
int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) {
    c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  }
  return c;
}
float __fmul_rn(float a, float b) { return a * b; }
int __float2int_rn(float v) { return static_cast<int>(std::nearbyint(v)); }
float __int2float_rn(int v) { return static_cast<float>(v); }
}  // namespace

#include "launch_plan.h"
#include "mlp_dp4a_kernel.cuh"

namespace {

using neumat::MlpDesc;
using namespace neumat::cuda;

template <int MW>
void emulate_launch(const MlpDesc& d, const float* x, float* y, int64_t n, int threads,
                    int64_t blocks, bool descending) {
  const TileLayout t = tile_layout(d, threads);
  std::vector<uint32_t> smem(static_cast<size_t>(t.total_words));
  auto each_thread = [&](auto&& phase) {
    for (int i = 0; i < threads; ++i) phase(descending ? threads - 1 - i : i);
  };
  for (int64_t b = 0; b < blocks; ++b) {
    // A new block finds shared memory holding whatever was there before.
    std::fill(smem.begin(), smem.end(), 0xa5a5a5a5u);
    each_thread([&](int tid) { stage_block(d, t, smem.data(), tid); });
    for (int64_t base = b * threads; base < n; base += blocks * threads) {
      const int rows = n - base < threads ? static_cast<int>(n - base) : threads;
      each_thread([&](int tid) {
        load_input_tile(d, t, x + base * d.widths[0], rows, smem.data(), tid);
      });
      each_thread([&](int tid) { forward_tile_row<MW>(d, t, smem.data(), rows, tid); });
      each_thread([&](int tid) {
        store_output_tile(d, t, smem.data(), rows, y + base * d.widths[d.n_layers], tid);
      });
    }
  }
}

MlpDesc desc_of(const int32_t* widths, int n_widths, const float* mult, const uint32_t* weights,
                int n_words) {
  return neumat::make_mlp_desc(widths, n_widths, mult, n_widths, weights, n_words);
}

}  // namespace

/// y[n, n_L] = MLP(x[n, n_0]) as mlp_dp4a_kernel<MW> computes it with `blocks` blocks of
/// `threads` threads (MW as the launcher picks it). Network arguments as
/// neumat._native.mlp_int8_forward (callers pass valid ones: make_mlp_desc throws otherwise).
/// Returns the MW used.
extern "C" int neumat_emulated_forward(const int32_t* widths, int n_widths, const float* mult,
                                       const uint32_t* weights, int n_words, const float* x,
                                       float* y, int64_t n, int threads, int64_t blocks,
                                       int descending) {
  const MlpDesc d = desc_of(widths, n_widths, mult, weights, n_words);
  const int mw = kernel_words(d);
  if (mw == 8) {
    emulate_launch<8>(d, x, y, n, threads, blocks, descending != 0);
  } else if (mw == 16) {
    emulate_launch<16>(d, x, y, n, threads, blocks, descending != 0);
  } else {
    emulate_launch<neumat::kMaxWords>(d, x, y, n, threads, blocks, descending != 0);
  }
  return mw;
}

/// The launcher's block size for `max_bytes` of shared memory per block (pick_threads), and
/// the TileLayout for it in out[0..6]: threads, in_words, in_stride, in_offset, out_stride,
/// out_offset, total_words (all zero when nothing fits).
extern "C" int neumat_emulated_layout(const int32_t* widths, int n_widths, const float* mult,
                                      const uint32_t* weights, int n_words, int64_t max_bytes,
                                      int32_t* out) {
  const MlpDesc d = desc_of(widths, n_widths, mult, weights, n_words);
  const int threads = pick_threads(d, static_cast<size_t>(max_bytes));
  const TileLayout t = threads ? tile_layout(d, threads) : TileLayout{};
  const int32_t fields[7] = {t.threads,  t.in_words,   t.in_stride,
                             t.in_offset, t.out_stride, t.out_offset, t.total_words};
  std::memcpy(out, fields, sizeof(fields));
  return threads;
}

/// plan_streams: has_* = 0 means the argument is absent (None). out[0] = launch stream,
/// out[1] = number of waits, out[2..3] = the streams waited for.
extern "C" void neumat_plan_streams(int has_requested, uint64_t requested, int has_x, uint64_t x,
                                    int has_y, uint64_t y, uint64_t* out) {
  auto opt = [](int has, uint64_t v) {
    return has ? std::optional<std::uintptr_t>(static_cast<std::uintptr_t>(v)) : std::nullopt;
  };
  const StreamPlan p = plan_streams(opt(has_requested, requested), opt(has_x, x), opt(has_y, y));
  out[0] = p.launch;
  out[1] = static_cast<uint64_t>(p.n_waits);
  out[2] = p.waits[0];
  out[3] = p.waits[1];
}

/// require_disjoint: 0 when the ranges are disjoint, else 1 with the error message copied to
/// `message` (at most `capacity` bytes, NUL-terminated).
extern "C" int neumat_require_disjoint(uint64_t x, uint64_t x_bytes, uint64_t y, uint64_t y_bytes,
                                       char* message, int capacity) {
  try {
    require_disjoint(x, x_bytes, y, y_bytes);
    return 0;
  } catch (const std::invalid_argument& e) {
    std::strncpy(message, e.what(), static_cast<size_t>(capacity - 1));
    message[capacity - 1] = '\0';
    return 1;
  }
}
