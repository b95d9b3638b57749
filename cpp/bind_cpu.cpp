// Python bindings of the CPU INT8 MLP: mlp_int8_forward, cpu_isa, cpu_supported_isas.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "array_checks.h"
#include "isa.h"
#include "mlp_cpu.h"

namespace neumat::bind {

namespace {

py::array_t<float> mlp_int8_forward(const py::handle& x, const py::handle& weights,
                                    const py::handle& widths, const py::handle& multipliers,
                                    const std::string& isa, int threads) {
  py::array_t<uint32_t> weights_alive;
  const MlpDesc desc = checked_mlp(weights, widths, multipliers, &weights_alive);
  size_t n = 0;
  const py::array_t<float> xs = checked_inputs(x, desc.widths[0], &n);
  const cpu::Isa chosen = cpu::resolve_isa(isa);
  const auto n_out = static_cast<py::ssize_t>(desc.widths[desc.n_layers]);
  py::array_t<float> y({static_cast<py::ssize_t>(n), n_out});
  const float* xp = xs.data();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::mlp_forward_cpu(desc, xp, yp, n, chosen, threads);
  }
  return y;
}

std::vector<std::string> supported_names() {
  std::vector<std::string> out;
  for (cpu::Isa isa : cpu::supported_isas()) out.emplace_back(cpu::isa_name(isa));
  return out;
}

}  // namespace

void bind_cpu(py::module_& m) {
  using namespace pybind11::literals;
  m.def("mlp_int8_forward", &mlp_int8_forward, "x"_a, "weights"_a, "widths"_a, "multipliers"_a,
        "isa"_a = "auto", "threads"_a = 0,
        R"doc(Evaluate the INT8 MLP on the CPU, bit-exact with neumat.quant.reference.forward.

Args:
    x: float32 [N, n_0] C-contiguous inputs.
    weights: uint32 [W] packed weight stream (Int8MLP.flat_weights()).
    widths: int32 [L + 1] layer widths (n_0 .. n_L), each in [1, 128], 1 <= L <= 8.
    multipliers: float32 [L + 1] requantization multipliers (Int8MLP.multipliers()).
    isa: "auto" (fastest supported), "avx512vnni", "avxvnni", "avx2" or "scalar".
    threads: worker threads; 0 = all hardware threads (small batches use fewer).

Returns:
    float32 [N, n_L] outputs in [0, 1].

Raises ValueError naming the argument on a wrong dtype / shape / layout, an invalid network,
or an ISA this CPU or build does not support. The GIL is released while computing.)doc");
  m.def(
      "cpu_isa", [] { return std::string(cpu::isa_name(cpu::resolve_isa("auto"))); },
      "The ISA path isa='auto' uses on this CPU.");
  m.def("cpu_supported_isas", &supported_names,
        "ISA paths compiled in and supported by this CPU, fastest first (always ends with "
        "'scalar').");
  std::vector<std::string> all;
  for (cpu::Isa isa : cpu::all_isas()) all.emplace_back(cpu::isa_name(isa));
  m.attr("CPU_ISAS") = py::cast(all);
}

}  // namespace neumat::bind
