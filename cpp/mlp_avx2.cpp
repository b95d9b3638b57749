// AVX2 path of the INT8 MLP for CPUs without VNNI (Haswell, Skylake client, Zen 1-3):
// 8 samples per ymm, the u8 x s8 4-byte dot product emulated exactly with two vpmaddwd.
// Compiled with -mavx2 (this file only); called only after isa.cpp confirmed CPU support.
#include "mlp_kernel.h"
#include "simd_avx2.h"

namespace neumat::cpu {

namespace {

struct Avx2Lanes : Avx2Base {
  /// acc += sum_b u8_b * s8_b exactly: even bytes (0, 2) and odd bytes (1, 3) of each lane
  /// become 16-bit values, multiplied by the matching sign-extended weight bytes with
  /// vpmaddwd (16 x 16 -> 32-bit pair sums, no saturation possible).
  static I dpbusd(I acc, I u8, uint32_t w) {
    const I a_even = _mm256_and_si256(u8, _mm256_set1_epi16(0x00ff));
    const I a_odd = _mm256_srli_epi16(u8, 8);
    const uint32_t w_even = sext16(w) | sext16(w >> 16) << 16;
    const uint32_t w_odd = sext16(w >> 8) | sext16(w >> 24) << 16;
    const I even = _mm256_madd_epi16(a_even, _mm256_set1_epi32(static_cast<int>(w_even)));
    const I odd = _mm256_madd_epi16(a_odd, _mm256_set1_epi32(static_cast<int>(w_odd)));
    return _mm256_add_epi32(acc, _mm256_add_epi32(even, odd));
  }
  /// The low byte of `v` as a sign-extended 16-bit pattern.
  static uint32_t sext16(uint32_t v) {
    return static_cast<uint16_t>(static_cast<int16_t>(static_cast<int8_t>(v & 0xffu)));
  }
};

}  // namespace

void forward_rows_avx2(const CpuPlan& plan, const float* x, float* y, size_t n_rows) {
  MlpBlockKernel<Avx2Lanes>::forward_rows(plan, x, y, n_rows);
}

}  // namespace neumat::cpu
