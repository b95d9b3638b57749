// The INT8 MLP forward pass, written once over a "vector traits" type V and instantiated by
// each per-ISA translation unit (mlp_scalar.cpp, mlp_avx2.cpp, mlp_avxvnni.cpp,
// mlp_avx512vnni.cpp).
//
// Parallelism is across samples: one vector lane = one sample, V::kLanes samples per block.
// Activations of a block are stored "word-major": word w (4 packed u8 activations, input
// 4w..4w+3, first in the low byte) of lane s lives at act[w * kLanes + s]. A weight word is
// broadcast to all lanes, so each vpdpbusd adds 4 products for kLanes samples at once.
//
// Arithmetic follows python/neumat/quant/spec.py (assumes the default round-to-nearest-even
// floating-point mode, like numpy): f32 multiply, clamp as numpy's clip (lo > v ? lo : v, then
// hi < v ? hi : v), then round-half-even. The build uses -ffp-contract=off and no fast-math.
//
// ODR rule: this header is compiled with ISA-specific flags, so it must not pull in inline
// functions with external linkage shared with generic code (no <algorithm>, <vector>,
// <string>, ...) and must not call MlpDesc's inline member functions. Everything here is a
// template over V (an anonymous-namespace type per ISA file), hence private to that file.
//
// V provides (I = integer vector of kLanes int32, F = float vector of kLanes float32):
//   zero(), set1(int32), load(const uint32_t*) / store(uint32_t*, I)  [aligned, kLanes words]
//   dpbusd(I acc, I u8_words, uint32_t w): acc += dot(u8 bytes of each lane, s8 bytes of w)
//   to_float(I), mul(F, float), clamp(F, lo, hi), cvt_rne(F) -> I, store_f(float*, F)
//   pack4(q0, q1, q2, q3): q0 | q1 << 8 | q2 << 16 | q3 << 24 per lane (values in [0, 255])
//   quantize_offset(const float* x, float m0, uint8_t* dst): kLanes floats -> kLanes bytes
//       rne(clamp(x * m0, -127, 127)) + 128
//   gather_rows(const uint8_t* base, int stride, int n): lane s < n loads the (unaligned)
//       uint32 at base + s * stride, lanes >= n are 0
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mlp_kernels.h"

namespace neumat::cpu {

template <class V>
struct MlpBlockKernel {
  static constexpr int kL = V::kLanes;
  using I = typename V::I;

  /// acc[jj] = init[jj] + sum_w dpbusd(act word w, row j0+jj word w), for J rows from `rows`.
  template <int J>
  static inline void dot_rows(const uint32_t* act, int nw, const uint32_t* rows,
                              const int32_t* init, I (&acc)[J]) {
#pragma GCC unroll 8
    for (int jj = 0; jj < J; ++jj) acc[jj] = init ? V::set1(init[jj]) : V::zero();
    for (int w = 0; w < nw; ++w) {
      const I a = V::load(act + w * kL);
#pragma GCC unroll 8
      for (int jj = 0; jj < J; ++jj) acc[jj] = V::dpbusd(acc[jj], a, rows[jj * nw + w]);
    }
  }

  /// Hidden requantization of J outputs into packed next-layer words (J/4 rounded up).
  template <int J>
  static inline void requant_hidden(const I (&acc)[J], float m, uint32_t* next) {
    I q[4 * ((J + 3) / 4)];
#pragma GCC unroll 8
    for (int jj = 0; jj < J; ++jj) {
      q[jj] = V::cvt_rne(V::clamp(V::mul(V::to_float(acc[jj]), m), 0.0f, 127.0f));
    }
#pragma GCC unroll 8
    for (int jj = J; jj < 4 * ((J + 3) / 4); ++jj) q[jj] = V::zero();
#pragma GCC unroll 2
    for (int i = 0; i < (J + 3) / 4; ++i) {
      V::store(next + i * kL, V::pack4(q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]));
    }
  }

  /// Output dequantization of J outputs: out[jj * kL + s] = clamp(f32(acc) * m, 0, 1).
  template <int J>
  static inline void dequant_output(const I (&acc)[J], float m, float* out) {
#pragma GCC unroll 8
    for (int jj = 0; jj < J; ++jj) {
      V::store_f(out + jj * kL, V::clamp(V::mul(V::to_float(acc[jj]), m), 0.0f, 1.0f));
    }
  }

  /// Rows j0 .. j0+J-1 (j0 a multiple of 4) of `layer`.
  template <int J>
  static inline void rows_block(const MlpDesc& d, int layer, int j0, const int32_t* init,
                                const uint32_t* act, uint32_t* next, float* out) {
    const int nw = words_per_row(d.widths[layer]);
    I acc[J];
    dot_rows<J>(act, nw, d.weights + d.word_offsets[layer] + j0 * nw, init ? init + j0 : nullptr,
                acc);
    const float m = d.multipliers[layer + 1];
    if (layer + 1 < d.n_layers) {
      requant_hidden<J>(acc, m, next + (j0 / 4) * kL);
    } else {
      dequant_output<J>(acc, m, out + j0 * kL);
    }
  }

  /// One layer for the whole block: 8 rows at a time (independent accumulators hide the
  /// dot-product latency), then 4, then the last 1..3.
  static void layer(const MlpDesc& d, int layer, const int32_t* init, const uint32_t* act,
                    uint32_t* next, float* out) {
    const int n_out = d.widths[layer + 1];
    int j = 0;
    for (; j + 8 <= n_out; j += 8) rows_block<8>(d, layer, j, init, act, next, out);
    if (j + 4 <= n_out) {
      rows_block<4>(d, layer, j, init, act, next, out);
      j += 4;
    }
    switch (n_out - j) {
      case 3: rows_block<3>(d, layer, j, init, act, next, out); break;
      case 2: rows_block<2>(d, layer, j, init, act, next, out); break;
      case 1: rows_block<1>(d, layer, j, init, act, next, out); break;
      default: break;
    }
  }

  /// Quantize n (<= kL) rows of x [n, n0] into word-major act with the +128 offset.
  /// `bytes` is scratch of at least kL * n0 + 4 bytes.
  static inline void quantize_input(const float* x, int n, int n0, float m0, uint32_t* act,
                                    uint8_t* bytes) {
    const int count = n * n0;
    int i = 0;
    for (; i + kL <= count; i += kL) V::quantize_offset(x + i, m0, bytes + i);
    if (i < count) {  // partial vector: go through zero-padded copies
      alignas(64) float xt[kL] = {};
      alignas(64) uint8_t bt[kL];
      std::memcpy(xt, x + i, sizeof(float) * static_cast<size_t>(count - i));
      V::quantize_offset(xt, m0, bt);
      std::memcpy(bytes + i, bt, static_cast<size_t>(count - i));
    }
    // The last row's last word may extend up to 3 bytes past `count`: those bytes meet zero
    // padding weights, so their value is irrelevant; keep them defined anyway.
    std::memset(bytes + count, 0, 4);
    const int nw = words_per_row(n0);
    for (int w = 0; w < nw; ++w) V::store(act + w * kL, V::gather_rows(bytes + 4 * w, n0, n));
  }

  /// The whole forward pass for `n_rows` samples, kL at a time (the last block masked).
  static void forward_rows(const CpuPlan& plan, const float* x, float* y, size_t n_rows) {
    const MlpDesc& d = plan.desc;
    const int n0 = d.widths[0];
    const int n_out = d.widths[d.n_layers];
    alignas(64) uint32_t act[2][kMaxWords * kL];
    alignas(64) float out[kMaxWidth * kL];
    alignas(64) uint8_t bytes[kMaxWidth * kL + 64];
    for (size_t s0 = 0; s0 < n_rows; s0 += kL) {
      const int n = n_rows - s0 < static_cast<size_t>(kL) ? static_cast<int>(n_rows - s0) : kL;
      quantize_input(x + s0 * n0, n, n0, d.multipliers[0], act[0], bytes);
      for (int l = 0; l < d.n_layers; ++l) {
        layer(d, l, l == 0 ? plan.input_bias : nullptr, act[l & 1], act[(l + 1) & 1], out);
      }
      float* ys = y + s0 * n_out;
      for (int s = 0; s < n; ++s) {
        for (int j = 0; j < n_out; ++j) ys[s * n_out + j] = out[j * kL + s];
      }
    }
  }
};

}  // namespace neumat::cpu
