// CPU instruction-set paths of the INT8 MLP and their run-time detection.
#pragma once

#include <string>
#include <vector>

namespace neumat::cpu {

/// One compiled kernel path, fastest first in `kAllIsas`.
enum class Isa {
  kAvx512Vnni,  ///< 512-bit vpdpbusd (AVX512F/BW/VL + AVX512_VNNI), 16 samples per vector
  kAvxVnni,     ///< 256-bit VEX vpdpbusd (AVX2 + AVX-VNNI), 8 samples per vector
  kAvx2,        ///< 256-bit, dot products emulated exactly with vpmaddwd, 8 samples per vector
  kScalar,      ///< portable C++, one sample at a time
};

/// Name used in the Python API: "avx512vnni", "avxvnni", "avx2" or "scalar".
const char* isa_name(Isa isa);

/// Every path in preference order (fastest first).
std::vector<Isa> all_isas();

/// Paths compiled into this binary (whatever the running CPU supports), fastest first.
std::vector<Isa> compiled_isas();

/// Paths both compiled into this binary and supported by the running CPU/OS, fastest first.
/// Always ends with kScalar.
std::vector<Isa> supported_isas();

/// Resolve a user request ("auto" = fastest supported) to a path.
/// Throws std::invalid_argument naming the valid / supported choices.
Isa resolve_isa(const std::string& request);

}  // namespace neumat::cpu
