// Device code of the CUDA INT8 MLP (host launcher: mlp_dp4a.h / mlp_dp4a.cu).
//
// One thread per sample, a block works on tiles of blockDim.x consecutive samples (grid-stride
// over tiles). Dynamic shared memory holds, in 32-bit words (TileLayout):
//   [weights | input tile: one row of packed int8 inputs per thread | output tile: one row of
//    float outputs per thread]
// Global memory is touched only by coalesced loops over a tile's contiguous [rows, n] floats:
// thread t loads/stores elements t, t + T, ... (the shared-memory transpose), so the Python
// layout float32 [N, n] stays as it is. Inputs are quantized while they are staged.
// __dp4a dot products (signed x signed bytes, so no activation offset is needed).
// Bit-exact with python/neumat/quant/reference.py: every float operation is pinned
// (__fmul_rn, __int2float_rn, __float2int_rn = round-half-even), clamps follow numpy's clip
// (lo > v ? lo : v, then hi < v ? hi : v), and the file is compiled with --fmad=false.
// cuda/host_emulation.cpp runs these very functions on the host (tests without a GPU).
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlp_desc.h"

// The MlpDesc kernel parameter is read in place from the parameter space (sm_70+); without
// it, indexing d.widths[l] with a run-time l makes every thread copy the struct to a local
// stack frame. Device passes only, as CCCL's _CCCL_GRID_CONSTANT.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
#define NEUMAT_GRID_CONSTANT __grid_constant__
#else
#define NEUMAT_GRID_CONSTANT
#endif

namespace neumat::cuda {

constexpr int kMaxThreadsPerBlock = 256;  ///< the kernel's __launch_bounds__
constexpr int kMinThreadsPerBlock = 32;   ///< smallest block the launcher picks (one warp)

/// Word offsets of one block's dynamic shared memory for `threads` threads (see file comment).
/// Row strides are odd so that the rows of a warp's 32 threads start in 32 different banks.
struct TileLayout {
  int threads = 0;     ///< samples per tile = threads per block
  int in_words = 0;    ///< packed int8 words of one input row: words_per_row(n_0)
  int in_stride = 0;   ///< words between input rows: in_words | 1
  int in_offset = 0;   ///< first word of the input tile (after the weights)
  int out_stride = 0;  ///< floats between output rows: n_L | 1
  int out_offset = 0;  ///< first word of the output tile
  int total_words = 0; ///< words of dynamic shared memory per block

  NEUMAT_HD size_t bytes() const { return sizeof(uint32_t) * static_cast<size_t>(total_words); }
};

NEUMAT_HD inline TileLayout tile_layout(const MlpDesc& d, int threads) {
  TileLayout t;
  t.threads = threads;
  t.in_words = words_per_row(d.widths[0]);
  t.in_stride = t.in_words | 1;
  t.in_offset = d.word_offsets[d.n_layers];
  t.out_stride = d.widths[d.n_layers] | 1;
  t.out_offset = t.in_offset + threads * t.in_stride;
  t.total_words = t.out_offset + threads * t.out_stride;
  return t;
}

/// Threads per block the launcher uses: the largest of 256, 128, 64, 32 whose TileLayout fits
/// in `max_bytes` of shared memory per block; 0 when not even one warp's fits (host code).
inline int pick_threads(const MlpDesc& d, size_t max_bytes) {
  for (int threads = kMaxThreadsPerBlock; threads >= kMinThreadsPerBlock; threads /= 2) {
    if (tile_layout(d, threads).bytes() <= max_bytes) return threads;
  }
  return 0;
}

__device__ __forceinline__ float clamp_like_numpy(float v, float lo, float hi) {
  v = lo > v ? lo : v;
  return hi < v ? hi : v;
}

/// rne(clamp(v * m, lo, hi)) as an int (input and hidden quantization).
__device__ __forceinline__ int quantize(float v, float m, float lo, float hi) {
  return __float2int_rn(clamp_like_numpy(__fmul_rn(v, m), lo, hi));
}

/// Block set-up (thread `tid` of t.threads): copy the packed weights to shared memory and zero
/// the input tile (its padding bytes, k >= n_0, stay zero: load_input_tile never writes them).
__device__ __forceinline__ void stage_block(const MlpDesc& d, const TileLayout& t,
                                            uint32_t* smem, int tid) {
  for (int i = tid; i < t.in_offset; i += t.threads) smem[i] = d.weights[i];
  for (int i = t.in_offset + tid; i < t.out_offset; i += t.threads) smem[i] = 0u;
}

/// Phase 1 of a tile: quantize x_tile[rows, n_0] (contiguous floats) into the input tile, one
/// byte per element: element k of row r is byte k of row r's words (little-endian packing,
/// as the weights). Consecutive threads read consecutive floats (coalesced).
__device__ __forceinline__ void load_input_tile(const MlpDesc& d, const TileLayout& t,
                                                const float* __restrict__ x_tile, int rows,
                                                uint32_t* smem, int tid) {
  auto* tile = reinterpret_cast<unsigned char*>(smem + t.in_offset);
  const int n0 = d.widths[0];
  const float m = d.multipliers[0];
  const int count = rows * n0;
  for (int i = tid; i < count; i += t.threads) {
    const int r = i / n0;
    const int k = i - r * n0;
    tile[4 * r * t.in_stride + k] =
        static_cast<unsigned char>(quantize(x_tile[i], m, -127.0f, 127.0f) & 0xff);
  }
}

/// sum_w dp4a(act[w], row[w]) over the first nw words (MW is a compile-time bound, so act
/// stays in registers).
template <int MW>
__device__ __forceinline__ int dot_row(const uint32_t (&act)[MW], const uint32_t* row, int nw) {
  int acc = 0;
#pragma unroll
  for (int w = 0; w < MW; ++w) {
    if (w < nw) acc = __dp4a(static_cast<int>(act[w]), static_cast<int>(row[w]), acc);
  }
  return acc;
}

/// Phase 2: one sample through the whole network, from its packed quantized input row to its
/// float output row (both in shared memory). MW >= words_per_row(every width).
template <int MW>
__device__ __forceinline__ void forward_sample(const MlpDesc& d, const uint32_t* w_smem,
                                               const uint32_t* in_row, float* out_row) {
  uint32_t act[MW];
  const int in_words = words_per_row(d.widths[0]);
#pragma unroll
  for (int w = 0; w < MW; ++w) act[w] = w < in_words ? in_row[w] : 0u;
  for (int l = 0; l < d.n_layers; ++l) {
    const int nw = words_per_row(d.widths[l]);
    const int n_out = d.widths[l + 1];
    const uint32_t* rows = w_smem + d.word_offsets[l];
    const float m = d.multipliers[l + 1];
    if (l + 1 < d.n_layers) {
      // Fully unrolled up to 64-wide layers (next stays in registers); the 128-wide variant
      // keeps a loop (next in local memory) so the unrolled code stays small to compile.
      uint32_t next[MW];
#pragma unroll(MW <= 16 ? MW : 1)
      for (int jw = 0; jw < MW; ++jw) {
        uint32_t word = 0;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int j = 4 * jw + b;
          if (j < n_out) {
            const float v = __int2float_rn(dot_row<MW>(act, rows + j * nw, nw));
            word |= static_cast<uint32_t>(quantize(v, m, 0.0f, 127.0f)) << (8 * b);
          }
        }
        next[jw] = word;
      }
#pragma unroll
      for (int w = 0; w < MW; ++w) act[w] = next[w];
    } else {
      for (int j = 0; j < n_out; ++j) {
        const float v = __int2float_rn(dot_row<MW>(act, rows + j * nw, nw));
        out_row[j] = clamp_like_numpy(__fmul_rn(v, m), 0.0f, 1.0f);
      }
    }
  }
}

/// Phase 2 for thread `tid` of a tile with `rows` samples (threads past the last do nothing).
template <int MW>
__device__ __forceinline__ void forward_tile_row(const MlpDesc& d, const TileLayout& t,
                                                 uint32_t* smem, int rows, int tid) {
  if (tid >= rows) return;
  forward_sample<MW>(d, smem, smem + t.in_offset + tid * t.in_stride,
                     reinterpret_cast<float*>(smem + t.out_offset) + tid * t.out_stride);
}

/// Phase 3: write the output tile to y_tile[rows, n_L] (contiguous floats), coalesced.
__device__ __forceinline__ void store_output_tile(const MlpDesc& d, const TileLayout& t,
                                                  const uint32_t* smem, int rows,
                                                  float* __restrict__ y_tile, int tid) {
  const auto* tile = reinterpret_cast<const float*>(smem + t.out_offset);
  const int n_out = d.widths[d.n_layers];
  const int count = rows * n_out;
  for (int i = tid; i < count; i += t.threads) {
    const int r = i / n_out;
    y_tile[i] = tile[r * t.out_stride + (i - r * n_out)];
  }
}

/// y[n, n_L] = MLP(x[n, n_0]). Launch with blockDim.x = TileLayout::threads (pick_threads) and
/// tile_layout(d, blockDim.x).bytes() of dynamic shared memory. Each block stages the weights
/// once, then grid-strides over tiles; two barriers per tile order the phases (the output
/// tile is read by phase 3 of tile k before phase 2 of tile k+1 rewrites it, and the input
/// tile is read by phase 2 of tile k before phase 1 of tile k+1 rewrites it).
template <int MW>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    mlp_dp4a_kernel(NEUMAT_GRID_CONSTANT const MlpDesc d, const float* __restrict__ x,
                    float* __restrict__ y, int64_t n) {
  extern __shared__ uint32_t smem[];
  const TileLayout t = tile_layout(d, static_cast<int>(blockDim.x));
  const int tid = static_cast<int>(threadIdx.x);
  const int n0 = d.widths[0];
  const int n_out = d.widths[d.n_layers];
  stage_block(d, t, smem, tid);
  __syncthreads();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * t.threads;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * t.threads; base < n; base += stride) {
    const int rows = n - base < t.threads ? static_cast<int>(n - base) : t.threads;
    load_input_tile(d, t, x + base * n0, rows, smem, tid);
    __syncthreads();
    forward_tile_row<MW>(d, t, smem, rows, tid);
    __syncthreads();
    store_output_tile(d, t, smem, rows, y + base * n_out, tid);
  }
}

/// The register-array bound MW (packed words) the kernel is instantiated with for `d`: the
/// smallest of 8, 16 and kMaxWords that holds every layer's packed width (host code).
inline int kernel_words(const MlpDesc& d) {
  int max_width = 0;
  for (int l = 0; l <= d.n_layers; ++l) {
    if (d.widths[l] > max_width) max_width = d.widths[l];
  }
  const int words = words_per_row(max_width);
  return words <= 8 ? 8 : words <= 16 ? 16 : kMaxWords;
}

}  // namespace neumat::cuda
