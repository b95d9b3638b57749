// 8-lane AVX2 building blocks shared by the AVX-VNNI and AVX2 kernel paths: everything of
// mlp_kernel.h's vector-traits interface except dpbusd, which each path adds.
//
// Included only by files compiled with at least -mavx2. The anonymous namespace gives every
// including file its own copy, so no out-of-line function is shared across ISA flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace neumat::cpu {
namespace {

struct Avx2Base {
  static constexpr int kLanes = 8;
  using I = __m256i;
  using F = __m256;

  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I load(const uint32_t* p) { return _mm256_load_si256(reinterpret_cast<const I*>(p)); }
  static void store(uint32_t* p, I v) { _mm256_store_si256(reinterpret_cast<I*>(p), v); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
  static F mul(F v, float m) { return _mm256_mul_ps(v, _mm256_set1_ps(m)); }
  static F clamp(F v, float lo, float hi) {
    // maxps(a, b) = a > b ? a : b and minps(a, b) = a < b ? a : b: numpy clip's order.
    v = _mm256_max_ps(_mm256_set1_ps(lo), v);
    return _mm256_min_ps(_mm256_set1_ps(hi), v);
  }
  static I cvt_rne(F v) { return _mm256_cvtps_epi32(v); }  // MXCSR default: nearest-even
  static void store_f(float* p, F v) { _mm256_store_ps(p, v); }
  static I pack4(I q0, I q1, I q2, I q3) {
    const I lo = _mm256_or_si256(q0, _mm256_slli_epi32(q1, 8));
    const I hi = _mm256_or_si256(_mm256_slli_epi32(q2, 16), _mm256_slli_epi32(q3, 24));
    return _mm256_or_si256(lo, hi);
  }
  static void quantize_offset(const float* x, float m0, uint8_t* dst) {
    const I q = cvt_rne(clamp(mul(_mm256_loadu_ps(x), m0), -127.0f, 127.0f));
    const I u = _mm256_add_epi32(q, _mm256_set1_epi32(128));  // in [1, 255]
    // Byte 0 of each dword, per 128-bit half, then join the two halves' 4 bytes.
    const I sel = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                   0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const I b = _mm256_shuffle_epi8(u, sel);
    const __m128i joined =
        _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), joined);
  }
  static I gather_rows(const uint8_t* base, int stride, int n) {
    const I lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const I idx = _mm256_mullo_epi32(lane, _mm256_set1_epi32(stride));
    const I valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    return _mm256_mask_i32gather_epi32(zero(), reinterpret_cast<const int*>(base), idx, valid, 1);
  }
};

}  // namespace
}  // namespace neumat::cpu
