// AVX-VNNI path of the INT8 MLP: 8 samples per ymm, VEX-encoded vpdpbusd (Alder Lake+,
// Sapphire Rapids+, Zen 5). Compiled with -mavx2 -mavxvnni (this file only); called only
// after isa.cpp confirmed the CPU and OS support it.
#include "mlp_kernel.h"
#include "simd_avx2.h"

namespace neumat::cpu {

namespace {

struct AvxVnniLanes : Avx2Base {
  static I dpbusd(I acc, I u8, uint32_t w) {
    return _mm256_dpbusd_avx_epi32(acc, u8, _mm256_set1_epi32(static_cast<int>(w)));
  }
};

}  // namespace

void forward_rows_avxvnni(const CpuPlan& plan, const float* x, float* y, size_t n_rows) {
  MlpBlockKernel<AvxVnniLanes>::forward_rows(plan, x, y, n_rows);
}

}  // namespace neumat::cpu
