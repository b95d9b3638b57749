// Argument checks shared by the bindings (see array_checks.h).
#include "array_checks.h"

#include <stdexcept>
#include <string>

namespace neumat::bind {

namespace {

template <class T>
const char* dtype_name();
template <>
const char* dtype_name<float>() { return "float32"; }
template <>
const char* dtype_name<int32_t>() { return "int32"; }
template <>
const char* dtype_name<uint32_t>() { return "uint32"; }

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    s += (i ? ", " : "") + std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

}  // namespace

template <class T>
py::array_t<T> checked_array(const py::handle& obj, const char* name, int ndim) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(name) + " must be a numpy array (" + dtype_name<T>() +
                         "), got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().equal(py::dtype::of<T>())) {
    throw std::invalid_argument(std::string(name) + " must have dtype " + dtype_name<T>() +
                                ", got " + std::string(py::str(a.dtype())));
  }
  if (a.ndim() != ndim) {
    throw std::invalid_argument(std::string(name) + " must be " + std::to_string(ndim) +
                                "-D, got shape " + shape_text(a));
  }
  if (!(a.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(name) +
                                " must be C-contiguous (use numpy.ascontiguousarray)");
  }
  if (!a.attr("flags").attr("aligned").cast<bool>()) {
    throw std::invalid_argument(std::string(name) +
                                " must be aligned to its dtype (use numpy.ascontiguousarray)");
  }
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

template py::array_t<float> checked_array<float>(const py::handle&, const char*, int);
template py::array_t<int32_t> checked_array<int32_t>(const py::handle&, const char*, int);
template py::array_t<uint32_t> checked_array<uint32_t>(const py::handle&, const char*, int);

MlpDesc checked_mlp(const py::handle& weights, const py::handle& widths,
                    const py::handle& multipliers, py::array_t<uint32_t>* weights_keepalive) {
  auto w = checked_array<uint32_t>(weights, "weights", 1);
  auto n = checked_array<int32_t>(widths, "widths", 1);
  auto m = checked_array<float>(multipliers, "multipliers", 1);
  MlpDesc d = make_mlp_desc(n.data(), static_cast<size_t>(n.size()), m.data(),
                            static_cast<size_t>(m.size()), w.data(), static_cast<size_t>(w.size()));
  *weights_keepalive = w;
  return d;
}

py::array_t<float> checked_inputs(const py::handle& x, int n_inputs, size_t* n) {
  auto a = checked_array<float>(x, "x", 2);
  if (a.shape(1) != n_inputs) {
    throw std::invalid_argument("x must have shape [N, " + std::to_string(n_inputs) +
                                "] (n_0 = widths[0]), got " + shape_text(a));
  }
  *n = static_cast<size_t>(a.shape(0));
  return a;
}

}  // namespace neumat::bind
