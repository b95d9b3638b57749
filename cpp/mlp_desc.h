// neumat INT8 MLP: the network description every native backend (CPU, CUDA) consumes.
//
// Layout and units follow python/neumat/quant/spec.py exactly:
//  * widths[0..n_layers]: n_0 inputs, ..., n_L outputs, each in [1, kMaxWidth];
//  * weights: one flat uint32 stream (Int8MLP.flat_weights()); layer l starts at
//    word_offsets[l] and holds n_{l+1} rows of ceil4(n_l)/4 little-endian words, word w of
//    row j packing W_l[j, 4w+b] in byte b (signed int8), padding bytes zero;
//  * multipliers[0..n_layers]: float32 m_0 (input quantization), m_1..m_{L-1} (hidden
//    requantization), m_L (output dequantization), derived once in Python.
// This header is plain C++ (no CUDA, no pybind11) so both g++ and nvcc include it.
#pragma once

#include <cstddef>
#include <cstdint>

// Functions marked NEUMAT_HD are callable from CUDA device code too.
#if defined(__CUDACC__)
#define NEUMAT_HD __host__ __device__
#else
#define NEUMAT_HD
#endif

namespace neumat {

constexpr int kMaxWidth = 128;  ///< largest layer width (spec.MAX_WIDTH)
constexpr int kMaxLayers = 8;   ///< most linear layers (spec.MAX_LAYERS)
constexpr int kMaxWords = kMaxWidth / 4;  ///< most packed uint32 words per weight row

/// Packed words per row of a layer with `n_in` inputs: ceil4(n_in) / 4. (static: internal
/// linkage, so ISA-flagged translation units never share an out-of-line copy.)
NEUMAT_HD static constexpr int words_per_row(int n_in) { return (n_in + 3) / 4; }

/// A validated INT8 MLP. `weights` is borrowed (host or device memory, as the user decides).
struct MlpDesc {
  int n_layers = 0;                       ///< L, in [1, kMaxLayers]
  int widths[kMaxLayers + 1] = {};        ///< n_0 .. n_L
  int word_offsets[kMaxLayers + 1] = {};  ///< start of layer l in `weights`; [L] = total words
  float multipliers[kMaxLayers + 1] = {}; ///< m_0 .. m_L (float32, finite, > 0)
  const uint32_t* weights = nullptr;      ///< flat packed weight stream

  int n_inputs() const { return widths[0]; }
  int n_outputs() const { return widths[n_layers]; }
  int total_words() const { return word_offsets[n_layers]; }
};

/// Build and validate a description from raw host arrays.
///
/// Checks layer count, widths, multiplier count/finiteness/positivity, that `n_words` equals
/// the packed size implied by `widths`, and that every padding byte of `weights` is zero.
/// Throws std::invalid_argument (Python ValueError) with a message naming the problem.
MlpDesc make_mlp_desc(const int32_t* widths, size_t n_widths, const float* multipliers,
                      size_t n_multipliers, const uint32_t* weights, size_t n_words);

}  // namespace neumat
