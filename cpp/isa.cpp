// Run-time ISA detection. __builtin_cpu_supports also checks that the OS saves the wide
// register state (XCR0), so a "supported" path is safe to execute.
#include "isa.h"

#include <stdexcept>

#include "mlp_kernels.h"

namespace neumat::cpu {

namespace {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#if NEUMAT_HAVE_AVX512VNNI
    case Isa::kAvx512Vnni:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
#if NEUMAT_HAVE_AVXVNNI
    case Isa::kAvxVnni:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
#endif
#if NEUMAT_HAVE_AVX2
    case Isa::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2");
#endif
    default:
      return false;  // not compiled into this binary
  }
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAvxVnni: return "avxvnni";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: return "scalar";
  }
  return "unknown";
}

std::vector<Isa> all_isas() { return {Isa::kAvx512Vnni, Isa::kAvxVnni, Isa::kAvx2, Isa::kScalar}; }

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  if (NEUMAT_HAVE_AVX512VNNI) out.push_back(Isa::kAvx512Vnni);
  if (NEUMAT_HAVE_AVXVNNI) out.push_back(Isa::kAvxVnni);
  if (NEUMAT_HAVE_AVX2) out.push_back(Isa::kAvx2);
  out.push_back(Isa::kScalar);
  return out;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : all_isas()) {
    if (cpu_has(isa)) out.push_back(isa);
  }
  return out;
}

Isa resolve_isa(const std::string& request) {
  const std::vector<Isa> ok = supported_isas();
  if (request == "auto") return ok.front();
  std::string names;
  for (Isa isa : ok) names += std::string(names.empty() ? "" : ", ") + isa_name(isa);
  for (Isa isa : all_isas()) {
    if (request != isa_name(isa)) continue;
    for (Isa s : ok) {
      if (s == isa) return isa;
    }
    throw std::invalid_argument("isa '" + request +
                                "' is not supported by this CPU or build (supported: " + names +
                                ")");
  }
  throw std::invalid_argument("unknown isa '" + request +
                              "'; valid: auto, avx512vnni, avxvnni, avx2, scalar "
                              "(supported here: " + names + ")");
}

}  // namespace neumat::cpu
