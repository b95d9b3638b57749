// NEUMAT_CUDA_CHECK(call): throw std::runtime_error("<file>:<line>: <call> failed: <error
// name>: <cudaGetErrorString>") when a CUDA runtime call does not return cudaSuccess.
// NEUMAT_CUDA_DEBUG (0 unless the build defines it: CMake option NEUMAT_CUDA_DEBUG, on in
// Debug builds): the launcher synchronizes after each launch and checks the kernel's errors.
#pragma once

#ifndef NEUMAT_CUDA_DEBUG
#define NEUMAT_CUDA_DEBUG 0
#endif

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace neumat::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file,
                                          int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

}  // namespace neumat::cuda

#define NEUMAT_CUDA_CHECK(call)                                                  \
  do {                                                                           \
    const cudaError_t neumat_err_ = (call);                                      \
    if (neumat_err_ != cudaSuccess) {                                            \
      ::neumat::cuda::throw_cuda_error(neumat_err_, #call, __FILE__, __LINE__);  \
    }                                                                            \
  } while (0)
