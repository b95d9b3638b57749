// Batched, multi-threaded CPU evaluation of the INT8 MLP with run-time ISA dispatch.
#pragma once

#include <cstddef>

#include "isa.h"
#include "mlp_desc.h"

namespace neumat::cpu {

/// y[N, n_L] = INT8 MLP(x[N, n_0]), both float32 row-major host arrays, bit-exact with
/// neumat.quant.reference.forward. `desc.weights` must be host memory.
///
/// `threads` <= 0 means std::thread::hardware_concurrency(); small batches use fewer threads
/// (each thread gets at least kMinRowsPerThread samples). Call without holding the GIL.
void mlp_forward_cpu(const MlpDesc& desc, const float* x, float* y, size_t n, Isa isa,
                     int threads);

/// Smallest share of the batch worth a thread of its own (samples).
constexpr size_t kMinRowsPerThread = 2048;

}  // namespace neumat::cpu
