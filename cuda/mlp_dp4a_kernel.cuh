// Device code of the CUDA INT8 MLP (host launcher: mlp_dp4a.h / mlp_dp4a.cu).
//
// One thread per sample (grid-stride), all packed weights staged in dynamic shared memory per
// block, __dp4a dot products (signed x signed bytes, so no activation offset is needed).
// Bit-exact with python/neumat/quant/reference.py: every float operation is pinned
// (__fmul_rn, __int2float_rn, __float2int_rn = round-half-even), clamps follow numpy's clip
// (lo > v ? lo : v, then hi < v ? hi : v), and the file is compiled with --fmad=false.
#pragma once

#include <cstdint>

#include "mlp_desc.h"

namespace neumat::cuda {

constexpr int kThreadsPerBlock = 256;

__device__ __forceinline__ float clamp_like_numpy(float v, float lo, float hi) {
  v = lo > v ? lo : v;
  return hi < v ? hi : v;
}

/// rne(clamp(v * m, lo, hi)) as an int (input and hidden quantization).
__device__ __forceinline__ int quantize(float v, float m, float lo, float hi) {
  return __float2int_rn(clamp_like_numpy(__fmul_rn(v, m), lo, hi));
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

/// One sample through the whole network. MW >= words_per_row(every width).
template <int MW>
__device__ __forceinline__ void forward_sample(const MlpDesc& d, const uint32_t* w_smem,
                                               const float* xs, float* ys) {
  uint32_t act[MW];
  const int n0 = d.widths[0];
#pragma unroll
  for (int w = 0; w < MW; ++w) {
    uint32_t word = 0;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int k = 4 * w + b;
      if (k < n0) {
        const int q = quantize(xs[k], d.multipliers[0], -127.0f, 127.0f);
        word |= (static_cast<uint32_t>(q) & 0xffu) << (8 * b);
      }
    }
    act[w] = word;
  }
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
        ys[j] = clamp_like_numpy(__fmul_rn(v, m), 0.0f, 1.0f);
      }
    }
  }
}

/// Grid-stride over samples; each block first stages all packed weights in shared memory.
template <int MW>
__global__ void __launch_bounds__(kThreadsPerBlock)
    mlp_dp4a_kernel(const MlpDesc d, const float* __restrict__ x, float* __restrict__ y,
                    int64_t n) {
  extern __shared__ uint32_t w_smem[];
  const int total = d.word_offsets[d.n_layers];
  for (int i = threadIdx.x; i < total; i += blockDim.x) w_smem[i] = d.weights[i];
  __syncthreads();
  const int n0 = d.widths[0];
  const int n_out = d.widths[d.n_layers];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < n;
       s += stride) {
    forward_sample<MW>(d, w_smem, x + s * n0, y + s * n_out);
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
