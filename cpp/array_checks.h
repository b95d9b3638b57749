// Argument checks shared by the bindings: numpy arrays with the exact dtype, rank and
// C-contiguity a kernel needs. Failures raise ValueError (TypeError for non-arrays) whose
// message names the argument and the mistake; nothing is converted silently.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>

#include "mlp_desc.h"

namespace neumat::bind {

namespace py = pybind11;

/// `obj` as a numpy array of dtype T (float32 / int32 / uint32), `ndim` dimensions,
/// C-contiguous. `name` is the Python argument name used in error messages.
template <class T>
py::array_t<T> checked_array(const py::handle& obj, const char* name, int ndim);

/// The MLP description from the binding arguments (weights, widths, multipliers as numpy
/// arrays: uint32 [W], int32 [L+1], float32 [L+1]). The returned desc borrows the weights
/// array's memory: keep `weights` alive while using it.
MlpDesc checked_mlp(const py::handle& weights, const py::handle& widths,
                    const py::handle& multipliers, py::array_t<uint32_t>* weights_keepalive);

/// Check a float32 [N, n_inputs] C-contiguous input batch `x`, returning it and N.
py::array_t<float> checked_inputs(const py::handle& x, int n_inputs, size_t* n);

}  // namespace neumat::bind
