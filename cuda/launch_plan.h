// Launch decisions of the CUDA INT8 MLP that need no CUDA: which stream the kernel runs on,
// which streams it must wait for first, and the x/y aliasing check. Plain C++ (no CUDA
// headers), so the launcher (mlp_dp4a.cu), the bindings and the host tests
// (cuda/host_emulation.cpp) share one definition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace neumat::cuda {

/// cudaStreamLegacy, the legacy default stream, as __cuda_array_interface__ v3 spells it (1;
/// 2 is cudaStreamPerThread). Stream handle 0 means the same stream in this module (it is not
/// built with --default-stream per-thread), so 0 is normalized to 1.
constexpr std::uintptr_t kLegacyStream = 1;

/// Where the kernel is enqueued and what it waits for (stream handles as integers).
struct StreamPlan {
  std::uintptr_t launch = kLegacyStream;  ///< the kernel runs here
  std::uintptr_t waits[2] = {0, 0};       ///< streams whose pending work on x / y comes first
  int n_waits = 0;                        ///< used entries of `waits`
};

inline std::uintptr_t normalized_stream(std::uintptr_t s) { return s == 0 ? kLegacyStream : s; }

/// The plan for one launch.
///
/// `requested`: the caller's stream (a cudaStream_t as an integer, 0 = legacy default), if any.
/// `x_stream`, `y_stream`: the "stream" entries of x's and y's __cuda_array_interface__ (v3:
/// the stream on which the producer may still have work using the array; absent/None: no
/// ordering needed; 0 is disallowed by the protocol and refused by the bindings).
/// The kernel runs on `requested`, else x's stream, else y's, else the legacy default stream;
/// it waits (cudaStreamWaitEvent) for every exported stream other than that one.
inline StreamPlan plan_streams(std::optional<std::uintptr_t> requested,
                               std::optional<std::uintptr_t> x_stream,
                               std::optional<std::uintptr_t> y_stream) {
  StreamPlan plan;
  plan.launch = normalized_stream(requested   ? *requested
                                  : x_stream ? *x_stream
                                  : y_stream ? *y_stream
                                             : kLegacyStream);
  for (const auto& s : {x_stream, y_stream}) {
    if (!s) continue;
    const std::uintptr_t w = normalized_stream(*s);
    if (w == plan.launch || (plan.n_waits == 1 && plan.waits[0] == w)) continue;
    plan.waits[plan.n_waits++] = w;
  }
  return plan;
}

/// Throw std::invalid_argument (Python ValueError) when the byte ranges [x, x + x_bytes) and
/// [y, y + y_bytes) share a byte: the kernel's blocks read x while other blocks write y, so
/// in-place evaluation would read outputs as inputs.
inline void require_disjoint(std::uintptr_t x, size_t x_bytes, std::uintptr_t y, size_t y_bytes) {
  if (x_bytes == 0 || y_bytes == 0) return;
  if (x < y + y_bytes && y < x + x_bytes) {
    std::ostringstream msg;
    msg << "x and y overlap in device memory (x: " << x_bytes << " bytes at 0x" << std::hex << x
        << ", y: " << std::dec << y_bytes << " bytes at 0x" << std::hex << y
        << "); in-place evaluation is not supported: pass a separate output array";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace neumat::cuda
