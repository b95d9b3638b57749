// Dispatch to the per-ISA kernels and split the batch over std::threads.
#include "mlp_cpu.h"

#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mlp_kernels.h"

namespace neumat::cpu {

CpuPlan make_cpu_plan(const MlpDesc& desc) {
  CpuPlan plan;
  plan.desc = desc;
  const int nw = words_per_row(desc.widths[0]);
  for (int j = 0; j < desc.widths[1]; ++j) {
    int32_t sum = 0;
    for (int w = 0; w < nw; ++w) {
      const uint32_t word = desc.weights[desc.word_offsets[0] + j * nw + w];
      for (int b = 0; b < 4; ++b) sum += static_cast<int8_t>((word >> (8 * b)) & 0xffu);
    }
    plan.input_bias[j] = -128 * sum;
  }
  return plan;
}

namespace {

ForwardRowsFn kernel_for(Isa isa) {
  switch (isa) {
#if NEUMAT_HAVE_AVX512VNNI
    case Isa::kAvx512Vnni: return forward_rows_avx512vnni;
#endif
#if NEUMAT_HAVE_AVXVNNI
    case Isa::kAvxVnni: return forward_rows_avxvnni;
#endif
#if NEUMAT_HAVE_AVX2
    case Isa::kAvx2: return forward_rows_avx2;
#endif
    case Isa::kScalar: return forward_rows_scalar;
    default: break;
  }
  throw std::invalid_argument(std::string("isa '") + isa_name(isa) +
                              "' is not compiled into this build");
}

/// Joins every started thread even if starting a later one throws.
struct ThreadGroup {
  std::vector<std::thread> threads;
  ~ThreadGroup() {
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
};

}  // namespace

void mlp_forward_cpu(const MlpDesc& desc, const float* x, float* y, size_t n, Isa isa,
                     int threads) {
  if (n == 0) return;
  const ForwardRowsFn fn = kernel_for(isa);
  const CpuPlan plan = make_cpu_plan(desc);
  size_t n_threads = threads > 0 ? static_cast<size_t>(threads)
                                 : static_cast<size_t>(std::thread::hardware_concurrency());
  if (n_threads == 0) n_threads = 1;
  const size_t by_size = (n + kMinRowsPerThread - 1) / kMinRowsPerThread;
  if (n_threads > by_size) n_threads = by_size;
  // Chunks are multiples of 16 samples so only the very last block of the batch is partial.
  size_t chunk = (n + n_threads - 1) / n_threads;
  chunk = (chunk + 15) / 16 * 16;
  const size_t n0 = static_cast<size_t>(desc.widths[0]);
  const size_t n_out = static_cast<size_t>(desc.widths[desc.n_layers]);
  ThreadGroup group;
  for (size_t begin = chunk; begin < n; begin += chunk) {
    const size_t rows = n - begin < chunk ? n - begin : chunk;
    group.threads.emplace_back(fn, std::cref(plan), x + begin * n0, y + begin * n_out, rows);
  }
  fn(plan, x, y, n < chunk ? n : chunk);  // the first chunk runs on the calling thread
}

}  // namespace neumat::cpu
