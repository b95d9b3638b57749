// AVX-512 VNNI path of the INT8 MLP: 16 samples per zmm, vpdpbusd with broadcast weights.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (this file only); called only
// after isa.cpp confirmed the CPU and OS support it.
#include <immintrin.h>

#include "mlp_kernel.h"

namespace neumat::cpu {

namespace {

struct Avx512VnniLanes {
  static constexpr int kLanes = 16;
  using I = __m512i;
  using F = __m512;

  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I load(const uint32_t* p) { return _mm512_load_si512(p); }
  static void store(uint32_t* p, I v) { _mm512_store_si512(p, v); }
  static I dpbusd(I acc, I u8, uint32_t w) {
    return _mm512_dpbusd_epi32(acc, u8, _mm512_set1_epi32(static_cast<int>(w)));
  }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static F mul(F v, float m) { return _mm512_mul_ps(v, _mm512_set1_ps(m)); }
  static F clamp(F v, float lo, float hi) {
    // maxps(a, b) = a > b ? a : b and minps(a, b) = a < b ? a : b: numpy clip's order.
    v = _mm512_max_ps(_mm512_set1_ps(lo), v);
    return _mm512_min_ps(_mm512_set1_ps(hi), v);
  }
  static I cvt_rne(F v) { return _mm512_cvtps_epi32(v); }  // MXCSR default: nearest-even
  static void store_f(float* p, F v) { _mm512_store_ps(p, v); }
  static I pack4(I q0, I q1, I q2, I q3) {
    const I lo = _mm512_or_si512(q0, _mm512_slli_epi32(q1, 8));
    const I hi = _mm512_or_si512(_mm512_slli_epi32(q2, 16), _mm512_slli_epi32(q3, 24));
    return _mm512_or_si512(lo, hi);
  }
  static void quantize_offset(const float* x, float m0, uint8_t* dst) {
    const I q = cvt_rne(clamp(mul(_mm512_loadu_ps(x), m0), -127.0f, 127.0f));
    const I u = _mm512_add_epi32(q, _mm512_set1_epi32(128));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(u));
  }
  static I gather_rows(const uint8_t* base, int stride, int n) {
    const I idx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(stride));
    const __mmask16 valid = static_cast<__mmask16>((1u << n) - 1u);
    return _mm512_mask_i32gather_epi32(zero(), valid, idx, base, 1);
  }
};

}  // namespace

void forward_rows_avx512vnni(const CpuPlan& plan, const float* x, float* y, size_t n_rows) {
  MlpBlockKernel<Avx512VnniLanes>::forward_rows(plan, x, y, n_rows);
}

}  // namespace neumat::cpu
