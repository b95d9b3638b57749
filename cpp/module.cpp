// The neumat._native extension module: CPU INT8 MLP (bind_cpu.cpp), CUDA INT8 MLP
// (bind_cuda.cpp) and build_info, a dict describing how the module was built.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "build_config.h"  // NEUMAT_CUDA_OPTION, NEUMAT_CUDA_ARCHS (generated)
#include "isa.h"

namespace neumat::bind {
namespace py = pybind11;
void bind_cpu(py::module_& m);
void bind_cuda(py::module_& m);
}  // namespace neumat::bind

PYBIND11_MODULE(_native, m) {
  namespace py = pybind11;
  m.doc() = "neumat native kernels: INT8 MLP on the CPU (AVX-512 VNNI / AVX-VNNI / AVX2 / "
            "scalar) and CUDA (__dp4a), bit-exact with neumat.quant.reference.forward.";
  neumat::bind::bind_cpu(m);
  neumat::bind::bind_cuda(m);
  py::dict info;
  info["cuda_option"] = NEUMAT_CUDA_OPTION;  // the NEUMAT_CUDA CMake option: AUTO, ON or OFF
  info["cuda_compiled"] = m.attr("cuda_compiled");
  info["cuda_architectures"] = NEUMAT_CUDA_ARCHS;
  info["cuda_runtime"] = m.attr("cuda_compiled").cast<bool>() ? py::object(py::str("static"))
                                                                : py::object(py::none());
  std::vector<std::string> compiled;
  for (auto isa : neumat::cpu::compiled_isas()) compiled.emplace_back(neumat::cpu::isa_name(isa));
  info["cpu_isas_compiled"] = compiled;
  m.attr("build_info") = info;
}
