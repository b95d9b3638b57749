// Python bindings of the CUDA INT8 MLP: cuda_compiled, cuda_device_count,
// cuda_unavailable_reason and (when built with CUDA) the CudaMlp class.
//
// Device arrays come in through __cuda_array_interface__ (cupy arrays, torch CUDA tensors,
// numba ...): float32, C-contiguous, on the weights' device, x and y not overlapping. Work is
// enqueued on the stream given explicitly, else the one x exports (CAI v3 "stream"), else y's,
// else the legacy default stream; it first waits (an event) for every other stream x or y
// exports (cuda/launch_plan.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "array_checks.h"
#include "build_config.h"  // NEUMAT_WITH_CUDA, NEUMAT_CUDA_MISSING_REASON (generated)

#if NEUMAT_WITH_CUDA
#include "mlp_dp4a.h"
#endif

namespace neumat::bind {

#if NEUMAT_WITH_CUDA

namespace {

/// The parts of a __cuda_array_interface__ the kernel needs.
struct DeviceArray {
  std::uintptr_t ptr = 0;
  std::vector<int64_t> shape;
  bool readonly = false;
  std::optional<std::uintptr_t> stream;
};

DeviceArray device_array(const py::handle& obj, const char* name) {
  if (!py::hasattr(obj, "__cuda_array_interface__")) {
    throw py::type_error(std::string(name) +
                         " must be a CUDA device array exposing __cuda_array_interface__ (cupy "
                         "array, torch CUDA tensor), got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  const py::dict cai = obj.attr("__cuda_array_interface__");
  const std::string typestr = py::str(cai["typestr"]);
  if (typestr != "<f4" && typestr != "=f4") {
    throw std::invalid_argument(std::string(name) + " must have dtype float32 ('<f4'), got '" +
                                typestr + "'");
  }
  DeviceArray a;
  for (const auto& dim : py::tuple(cai["shape"])) a.shape.push_back(dim.cast<int64_t>());
  if (a.shape.size() != 2) {
    throw std::invalid_argument(std::string(name) + " must be 2-D, got " +
                                std::to_string(a.shape.size()) + "-D");
  }
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    const py::tuple strides(cai["strides"]);
    const bool rows_ok = a.shape[0] <= 1 || strides[0].cast<int64_t>() == 4 * a.shape[1];
    const bool cols_ok = a.shape[1] <= 1 || strides[1].cast<int64_t>() == 4;
    if (!rows_ok || !cols_ok) {
      throw std::invalid_argument(std::string(name) + " must be C-contiguous");
    }
  }
  if (cai.contains("mask") && !cai["mask"].is_none()) {
    throw std::invalid_argument(std::string(name) + " must not be masked");
  }
  const py::tuple data(cai["data"]);
  a.ptr = data[0].cast<std::uintptr_t>();
  a.readonly = data[1].cast<bool>();
  if (cai.contains("stream") && !cai["stream"].is_none()) {
    a.stream = cai["stream"].cast<std::uintptr_t>();
    if (*a.stream == 0) {
      throw std::invalid_argument(std::string(name) +
                                  "'s __cuda_array_interface__ exports stream 0, which the "
                                  "protocol (v3) disallows: 1 = legacy default stream, 2 = "
                                  "per-thread default stream, else a cudaStream_t");
    }
  }
  return a;
}

class CudaMlp {
 public:
  CudaMlp(const py::handle& weights, const py::handle& widths, const py::handle& multipliers,
          int device) {
    py::array_t<uint32_t> alive;
    const MlpDesc desc = checked_mlp(weights, widths, multipliers, &alive);
    impl_ = std::make_unique<cuda::DeviceMlp>(desc, device);
    n_in_ = desc.widths[0];
    n_out_ = desc.widths[desc.n_layers];
  }

  py::array_t<float> forward(const py::handle& x) const {
    if (!py::isinstance<py::array>(x)) {
      throw py::type_error("x must be a numpy array (float32 [N, n_0]); use forward_device for "
                           "CUDA device arrays");
    }
    size_t rows = 0;
    const py::array_t<float> xs = checked_inputs(x, n_in_, &rows);
    const auto n = static_cast<int64_t>(rows);
    py::array_t<float> y({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n_out_)});
    const float* xp = xs.data();
    float* yp = y.mutable_data();
    {
      py::gil_scoped_release release;
      impl_->forward_host(xp, yp, n);
    }
    return y;
  }

  void forward_device(const py::handle& x, const py::handle& y, const py::object& stream) const {
    const DeviceArray xa = device_array(x, "x");
    const DeviceArray ya = device_array(y, "y");
    if (xa.shape[1] != n_in_) {
      throw std::invalid_argument("x must have shape [N, " + std::to_string(n_in_) + "], got [" +
                                  std::to_string(xa.shape[0]) + ", " +
                                  std::to_string(xa.shape[1]) + "]");
    }
    if (ya.shape[0] != xa.shape[0] || ya.shape[1] != n_out_) {
      throw std::invalid_argument("y must have shape [" + std::to_string(xa.shape[0]) + ", " +
                                  std::to_string(n_out_) + "], got [" +
                                  std::to_string(ya.shape[0]) + ", " +
                                  std::to_string(ya.shape[1]) + "]");
    }
    if (ya.readonly) throw std::invalid_argument("y is read-only");
    std::optional<std::uintptr_t> requested;
    if (!stream.is_none()) requested = stream.cast<std::uintptr_t>();
    const cuda::StreamPlan plan = cuda::plan_streams(requested, xa.stream, ya.stream);
    py::gil_scoped_release release;
    impl_->forward_device(reinterpret_cast<const float*>(xa.ptr), reinterpret_cast<float*>(ya.ptr),
                          xa.shape[0], plan);
  }

  const cuda::DeviceMlp& impl() const { return *impl_; }

 private:
  std::unique_ptr<cuda::DeviceMlp> impl_;
  int n_in_ = 0;
  int n_out_ = 0;
};

std::optional<std::string> unavailable_reason() {
  std::string reason;
  if (cuda::device_count(&reason) > 0) return std::nullopt;
  return reason;
}

}  // namespace

void bind_cuda(py::module_& m) {
  using namespace pybind11::literals;
  m.attr("cuda_compiled") = true;
  m.attr("cuda_debug_checks") = static_cast<bool>(NEUMAT_CUDA_DEBUG);
  m.def(
      "cuda_device_count", [] { return cuda::device_count(nullptr); },
      "Number of usable CUDA devices (0 when there is no device or driver).");
  m.def("cuda_unavailable_reason", &unavailable_reason,
        "None when a CUDA device can run the kernel, else 'no CUDA device: <CUDA error text>'.");
  m.def("cuda_runtime_version", &cuda::runtime_version,
        "CUDA runtime version the module was built against (statically linked), e.g. '13.0'.");
  py::class_<CudaMlp>(m, "CudaMlp", R"doc(An INT8 MLP whose packed weights live on a CUDA device.

The __dp4a kernel is bit-exact with neumat.quant.reference.forward. Construction validates
the network like mlp_int8_forward (ValueError) and raises RuntimeError('no CUDA device: ...')
when no device/driver is present.)doc")
      .def(py::init<const py::handle&, const py::handle&, const py::handle&, int>(), "weights"_a,
           "widths"_a, "multipliers"_a, "device"_a = 0)
      .def("forward", &CudaMlp::forward, "x"_a,
           "numpy float32 [N, n_0] -> numpy float32 [N, n_L] (copies through the device).")
      .def("forward_device", &CudaMlp::forward_device, "x"_a, "y"_a, "stream"_a = py::none(),
           R"doc(Evaluate device arrays in place: y[N, n_L] = MLP(x[N, n_0]).

x, y: float32 C-contiguous arrays on the weights' device exposing __cuda_array_interface__;
they must not overlap (ValueError).
stream: cudaStream_t as an int (e.g. torch.cuda.current_stream().cuda_stream); default: x's
exported CAI stream, else y's, else the legacy default stream. The kernel first waits (event)
for the streams x and y export (CAI v3 "stream") when they differ from that stream, then runs
asynchronously on it: synchronize with that stream before reading y elsewhere.)doc")
      .def_property_readonly("device", [](const CudaMlp& s) { return s.impl().device(); })
      .def_property_readonly("device_name",
                             [](const CudaMlp& s) { return s.impl().device_name(); })
      .def_property_readonly("shared_bytes",
                             [](const CudaMlp& s) { return s.impl().shared_bytes(); },
                             "Dynamic shared memory per block: weights + input/output tiles.")
      .def_property_readonly("threads", [](const CudaMlp& s) { return s.impl().threads(); },
                             "Threads per block (= samples per tile).")
      .def_property_readonly(
          "resident_threads", [](const CudaMlp& s) { return s.impl().resident_threads(); },
          "Most threads the grid holds; larger batches make each block loop over tiles.");
}

#else  // built without CUDA

void bind_cuda(py::module_& m) {
  m.attr("cuda_compiled") = false;
  m.attr("cuda_debug_checks") = false;
  m.def(
      "cuda_device_count", [] { return 0; }, "Always 0: this module was built without CUDA.");
  m.def(
      "cuda_unavailable_reason",
      [] { return std::optional<std::string>(NEUMAT_CUDA_MISSING_REASON); },
      "Why CUDA is unavailable: this module was built without it.");
}

#endif

}  // namespace neumat::bind
