// Host launcher of the CUDA INT8 MLP kernel (mlp_dp4a.cu). Plain C++: no CUDA headers, so the
// pybind11 bindings (compiled by the host compiler) include it directly.
//
// Every function reports CUDA failures by throwing std::runtime_error whose message holds the
// file:line, the failing call and cudaGetErrorString(...); a missing device or driver reads
// "no CUDA device: <reason>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "launch_plan.h"
#include "mlp_desc.h"

namespace neumat::cuda {

/// Number of usable CUDA devices. On failure returns 0 and, if `reason` is given, sets it to
/// "no CUDA device: <cudaGetErrorString text>" (e.g. no driver on this machine).
int device_count(std::string* reason);

/// The CUDA runtime version this module was built against, e.g. "13.0".
std::string runtime_version();

/// An INT8 MLP whose packed weights live on one CUDA device.
///
/// Kernel (mlp_dp4a_kernel.cuh): one thread per sample, blocks of threads() samples per tile,
/// the packed weights and an input/output tile in dynamic shared memory (global memory is read
/// and written coalesced), __dp4a dot products, rounding pinned with __fmul_rn /
/// __float2int_rn (bit-exact with neumat.quant.reference.forward). Built with --fmad=false.
/// Builds with NEUMAT_CUDA_DEBUG=1 synchronize the device after every launch and report the
/// kernel's own (asynchronous) errors there.
class DeviceMlp {
 public:
  /// Copy the validated description's (host) weights to `device`. Throws std::runtime_error
  /// ("no CUDA device: ..." if there is none, or the weights do not fit in shared memory).
  DeviceMlp(const MlpDesc& host_desc, int device);
  ~DeviceMlp();
  DeviceMlp(const DeviceMlp&) = delete;
  DeviceMlp& operator=(const DeviceMlp&) = delete;

  /// y[n, n_L] = MLP(x[n, n_0]) on device pointers (float32, C-contiguous, on this device,
  /// not overlapping: std::invalid_argument otherwise), enqueued on plan.launch after waiting
  /// (an event per stream) for plan.waits. Asynchronous; n == 0 launches nothing.
  void forward_device(const float* x, float* y, int64_t n, const StreamPlan& plan) const;

  /// Same on host pointers: copies in, runs, copies out and synchronizes.
  void forward_host(const float* x, float* y, int64_t n) const;

  int device() const { return device_; }
  std::string device_name() const;
  /// Dynamic shared memory per block (packed weights + input/output tiles), in bytes.
  size_t shared_bytes() const { return smem_bytes_; }
  /// Threads per block = samples per tile.
  int threads() const { return threads_; }
  /// Threads the grid holds at most (resident blocks x threads()): larger batches make each
  /// block loop over several tiles.
  int64_t resident_threads() const { return resident_blocks_ * threads_; }

 private:
  MlpDesc desc_;           // weights points to device memory owned by this object
  int device_ = 0;
  int threads_ = 0;        // pick_threads(desc_, the device's shared memory per block)
  size_t smem_bytes_ = 0;  // tile_layout(desc_, threads_).bytes()
  int64_t resident_blocks_ = 1;  // blocks that fit on the device at once (grid size cap)
};

}  // namespace neumat::cuda
