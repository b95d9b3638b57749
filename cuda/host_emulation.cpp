// Host emulation of the CUDA kernel's per-sample code, for tests on machines without a GPU.
//
// Not part of the extension: tests/test_cuda_mlp.py compiles this file with the host C++
// compiler (plus cpp/mlp_desc.cpp) into a small shared library and checks
// neumat_emulated_forward bit-exact against the numpy reference. It runs the very
// forward_sample<MW> of mlp_dp4a_kernel.cuh, with the CUDA intrinsics it uses defined by
// their documented semantics (__dp4a: signed 4-byte dot + accumulate; __fmul_rn: IEEE
// round-to-nearest-even multiply; __float2int_rn: round half to even; __int2float_rn).
// What it cannot check: launch configuration, shared-memory staging, streams.
#include <cmath>
#include <cstdint>

#define __device__
#define __global__
#define __shared__
#define __forceinline__ inline
#define __launch_bounds__(threads)

namespace {
struct Dim3 {
  unsigned x = 0;
};
Dim3 threadIdx, blockIdx, blockDim, gridDim;
void __syncthreads() {}
int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) {
    c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  }
  return c;
}
float __fmul_rn(float a, float b) { return a * b; }
int __float2int_rn(float v) { return static_cast<int>(std::nearbyint(v)); }
float __int2float_rn(int v) { return static_cast<float>(v); }
}  // namespace

#include "mlp_dp4a_kernel.cuh"

/// y[n, n_L] = MLP(x[n, n_0]) through forward_sample with the MW the launcher picks.
/// Arguments as neumat._native.mlp_int8_forward (validated by make_mlp_desc, which throws
/// on invalid networks: callers pass valid ones). Returns the MW used.
extern "C" int neumat_emulated_forward(const int32_t* widths, int n_widths, const float* mult,
                                       const uint32_t* weights, int n_words, const float* x,
                                       float* y, int64_t n) {
  using namespace neumat;
  const MlpDesc d = make_mlp_desc(widths, n_widths, mult, n_widths, weights, n_words);
  const int mw = cuda::kernel_words(d);
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = x + s * d.widths[0];
    float* ys = y + s * d.widths[d.n_layers];
    if (mw == 8) {
      cuda::forward_sample<8>(d, weights, xs, ys);
    } else if (mw == 16) {
      cuda::forward_sample<16>(d, weights, xs, ys);
    } else {
      cuda::forward_sample<kMaxWords>(d, weights, xs, ys);
    }
  }
  return mw;
}
