// Entry points of the per-ISA CPU kernels (one translation unit each, compiled with that
// ISA's flags) and the per-call plan they share.
#pragma once

#include <cstddef>
#include <cstdint>

#include "build_config.h"  // NEUMAT_HAVE_{AVX512VNNI,AVXVNNI,AVX2} (generated)
#include "mlp_desc.h"

namespace neumat::cpu {

/// What the kernels need beyond the description.
///
/// vpdpbusd (emulated on AVX2 / scalar) multiplies *unsigned* bytes by signed bytes, but
/// layer 0's activations are signed ([-127, 127]). Every path therefore stores layer-0
/// activations as u = q + 128 (in [1, 255]) and starts the accumulator of output j at
/// input_bias[j] = -128 * sum_k W_0[j, k], so that sum_k u_k W_jk + input_bias[j] =
/// sum_k q_k W_jk exactly (all terms fit in int32). Hidden activations are already in
/// [0, 127] and need no offset.
struct CpuPlan {
  MlpDesc desc;
  int32_t input_bias[kMaxWidth] = {};
};

/// Fill `input_bias` from the layer-0 weights of a validated (host-memory) description.
CpuPlan make_cpu_plan(const MlpDesc& desc);

/// Evaluate `n_rows` consecutive samples: x float32 [n_rows, n_0] -> y float32 [n_rows, n_L],
/// both row-major. Single-threaded; callers split the batch.
using ForwardRowsFn = void (*)(const CpuPlan& plan, const float* x, float* y, size_t n_rows);

void forward_rows_scalar(const CpuPlan& plan, const float* x, float* y, size_t n_rows);
#if NEUMAT_HAVE_AVXVNNI
void forward_rows_avxvnni(const CpuPlan& plan, const float* x, float* y, size_t n_rows);
#endif
#if NEUMAT_HAVE_AVX2
void forward_rows_avx2(const CpuPlan& plan, const float* x, float* y, size_t n_rows);
#endif
#if NEUMAT_HAVE_AVX512VNNI
void forward_rows_avx512vnni(const CpuPlan& plan, const float* x, float* y, size_t n_rows);
#endif

}  // namespace neumat::cpu
