// Portable scalar path of the INT8 MLP (one sample per "vector"); runs on any CPU.
// Uses the same u8 x s8 dot-product convention as the VNNI paths (see CpuPlan).
#include <cmath>

#include "mlp_kernel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#endif

namespace neumat::cpu {

namespace {

struct ScalarLanes {
  static constexpr int kLanes = 1;
  using I = int32_t;
  using F = float;

  static I zero() { return 0; }
  static I set1(int32_t v) { return v; }
  static I load(const uint32_t* p) { return static_cast<I>(*p); }
  static void store(uint32_t* p, I v) { *p = static_cast<uint32_t>(v); }

  static I dpbusd(I acc, I u8, uint32_t w) {
    const uint32_t a = static_cast<uint32_t>(u8);
    for (int b = 0; b < 4; ++b) {
      acc += static_cast<int32_t>((a >> (8 * b)) & 0xffu) *
             static_cast<int32_t>(static_cast<int8_t>((w >> (8 * b)) & 0xffu));
    }
    return acc;
  }

  static F to_float(I v) { return static_cast<float>(v); }  // exact: |v| < 2^24
  static F mul(F v, float m) { return v * m; }
  static F clamp(F v, float lo, float hi) {
    v = lo > v ? lo : v;
    return hi < v ? hi : v;
  }
  /// Round half to even in the current (default: nearest-even) rounding mode.
  static I cvt_rne(F v) {
#if defined(__x86_64__) || defined(_M_X64)
    return _mm_cvtss_si32(_mm_set_ss(v));
#else
    return static_cast<I>(std::nearbyint(v));
#endif
  }
  static void store_f(float* p, F v) { *p = v; }
  static I pack4(I q0, I q1, I q2, I q3) {
    return static_cast<I>(static_cast<uint32_t>(q0) | static_cast<uint32_t>(q1) << 8 |
                          static_cast<uint32_t>(q2) << 16 | static_cast<uint32_t>(q3) << 24);
  }
  static void quantize_offset(const float* x, float m0, uint8_t* dst) {
    *dst = static_cast<uint8_t>(cvt_rne(clamp(mul(*x, m0), -127.0f, 127.0f)) + 128);
  }
  static I gather_rows(const uint8_t* base, int /*stride*/, int n) {
    uint32_t v = 0;
    if (n > 0) std::memcpy(&v, base, sizeof(v));  // little-endian: byte 0 = first input
    return static_cast<I>(v);
  }
};

}  // namespace

void forward_rows_scalar(const CpuPlan& plan, const float* x, float* y, size_t n_rows) {
  MlpBlockKernel<ScalarLanes>::forward_rows(plan, x, y, n_rows);
}

}  // namespace neumat::cpu
