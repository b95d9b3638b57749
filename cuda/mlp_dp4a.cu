// Host launcher of the CUDA INT8 MLP (see mlp_dp4a.h); the kernel is in mlp_dp4a_kernel.cuh.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda_check.h"
#include "mlp_dp4a.h"
#include "mlp_dp4a_kernel.cuh"

namespace neumat::cuda {

namespace {

using KernelFn = void (*)(const MlpDesc, const float*, float*, int64_t);

/// The instantiation for kernel_words(d).
KernelFn kernel_for(const MlpDesc& d) {
  switch (kernel_words(d)) {
    case 8: return mlp_dp4a_kernel<8>;
    case 16: return mlp_dp4a_kernel<16>;
    default: return mlp_dp4a_kernel<kMaxWords>;
  }
}

/// Make `device` current for a scope, restoring the caller's device afterwards.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    NEUMAT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) NEUMAT_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceScope() { cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

/// cudaMalloc'd bytes freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { NEUMAT_CUDA_CHECK(cudaMalloc(&ptr_, bytes ? bytes : 1)); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

/// A timing-free CUDA event destroyed on scope exit (a pending wait on it stays valid).
class Event {
 public:
  Event() { NEUMAT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

void require_device_pointer(const void* p, int device, const char* name) {
  cudaPointerAttributes attr{};
  NEUMAT_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    throw std::invalid_argument(std::string(name) + " is not CUDA device memory");
  }
  if (attr.device != device) {
    throw std::invalid_argument(std::string(name) + " is on CUDA device " +
                                std::to_string(attr.device) + " but the weights are on device " +
                                std::to_string(device));
  }
}

}  // namespace

int device_count(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
    if (reason) *reason = std::string("no CUDA device: ") + cudaGetErrorString(err);
    return 0;
  }
  if (count == 0 && reason) *reason = "no CUDA device: the CUDA runtime found 0 devices";
  return count;
}

std::string runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

DeviceMlp::DeviceMlp(const MlpDesc& host_desc, int device) : desc_(host_desc), device_(device) {
  std::string reason;
  const int count = device_count(&reason);
  if (count == 0) throw std::runtime_error(reason);
  if (device < 0 || device >= count) {
    throw std::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (" +
                                std::to_string(count) + " device(s))");
  }
  DeviceScope scope(device);
  int optin = 0;
  NEUMAT_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (optin <= 0) {  // devices without an opt-in carve-out: the plain per-block limit
    NEUMAT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlock, device));
  }
  threads_ = pick_threads(host_desc, static_cast<size_t>(optin));
  if (threads_ == 0) {
    throw std::runtime_error(
        "the packed weights (" + std::to_string(sizeof(uint32_t) * host_desc.total_words()) +
        " bytes) and one warp's input/output tile need " +
        std::to_string(tile_layout(host_desc, kMinThreadsPerBlock).bytes()) +
        " bytes of shared memory; CUDA device " + std::to_string(device) + " allows " +
        std::to_string(optin) + " per block");
  }
  smem_bytes_ = tile_layout(host_desc, threads_).bytes();
  // Allow the device maximum (not just this network's size): the attribute is per kernel, so
  // a smaller network constructed later must not shrink what a larger one needs.
  const KernelFn kernel = kernel_for(host_desc);
  NEUMAT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  int per_sm = 0;
  NEUMAT_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads_, smem_bytes_));
  int sms = 0;
  NEUMAT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  resident_blocks_ = static_cast<int64_t>(sms) * (per_sm > 0 ? per_sm : 1);
  const size_t weight_bytes = sizeof(uint32_t) * static_cast<size_t>(host_desc.total_words());
  uint32_t* weights = nullptr;
  NEUMAT_CUDA_CHECK(cudaMalloc(&weights, weight_bytes ? weight_bytes : 4));
  const cudaError_t copied =
      cudaMemcpy(weights, host_desc.weights, weight_bytes, cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    cudaFree(weights);
    NEUMAT_CUDA_CHECK(copied);
  }
  desc_.weights = weights;
}

DeviceMlp::~DeviceMlp() {
  int previous = 0;
  if (cudaGetDevice(&previous) == cudaSuccess) {
    cudaSetDevice(device_);
    cudaFree(const_cast<uint32_t*>(desc_.weights));
    cudaSetDevice(previous);
  }
}

std::string DeviceMlp::device_name() const {
  cudaDeviceProp prop{};
  NEUMAT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  return prop.name;
}

void DeviceMlp::forward_device(const float* x, float* y, int64_t n, const StreamPlan& plan) const {
  if (n <= 0) return;
  require_disjoint(reinterpret_cast<std::uintptr_t>(x),
                   sizeof(float) * static_cast<size_t>(n) * desc_.n_inputs(),
                   reinterpret_cast<std::uintptr_t>(y),
                   sizeof(float) * static_cast<size_t>(n) * desc_.n_outputs());
  DeviceScope scope(device_);
  require_device_pointer(x, device_, "x");
  require_device_pointer(y, device_, "y");
  const auto stream = reinterpret_cast<cudaStream_t>(plan.launch);
  for (int i = 0; i < plan.n_waits; ++i) {
    // The producer's pending work on x (or y) first: record on its stream, wait on ours.
    Event ready;
    NEUMAT_CUDA_CHECK(cudaEventRecord(ready.get(), reinterpret_cast<cudaStream_t>(plan.waits[i])));
    NEUMAT_CUDA_CHECK(cudaStreamWaitEvent(stream, ready.get(), 0));
  }
  const KernelFn kernel = kernel_for(desc_);
  // Enough blocks to fill the GPU once; each stages the weights once, then grid-strides.
  const int64_t needed = (n + threads_ - 1) / threads_;
  const auto blocks =
      static_cast<unsigned>(needed < resident_blocks_ ? needed : resident_blocks_);
  kernel<<<blocks, static_cast<unsigned>(threads_), smem_bytes_, stream>>>(desc_, x, y, n);
  NEUMAT_CUDA_CHECK(cudaGetLastError());
#if NEUMAT_CUDA_DEBUG
  // Debug builds: the kernel's own errors (illegal address, ...) surface here, at this call,
  // instead of at some later unrelated CUDA call.
  NEUMAT_CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

void DeviceMlp::forward_host(const float* x, float* y, int64_t n) const {
  if (n <= 0) return;
  DeviceScope scope(device_);
  const size_t x_bytes = sizeof(float) * static_cast<size_t>(n) * desc_.widths[0];
  const size_t y_bytes = sizeof(float) * static_cast<size_t>(n) * desc_.widths[desc_.n_layers];
  DeviceBuffer xd(x_bytes), yd(y_bytes);
  NEUMAT_CUDA_CHECK(cudaMemcpy(xd.as<float>(), x, x_bytes, cudaMemcpyHostToDevice));
  forward_device(xd.as<float>(), yd.as<float>(), n, StreamPlan{});
  NEUMAT_CUDA_CHECK(cudaMemcpy(y, yd.as<float>(), y_bytes, cudaMemcpyDeviceToHost));
}

}  // namespace neumat::cuda
