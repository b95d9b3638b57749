// Validation of the INT8 MLP description (see mlp_desc.h and python/neumat/quant/spec.py).
#include "mlp_desc.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace neumat {

namespace {

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument(what); }

std::string widths_text(const int32_t* widths, size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(widths[i]);
  return s + ")";
}

}  // namespace

MlpDesc make_mlp_desc(const int32_t* widths, size_t n_widths, const float* multipliers,
                      size_t n_multipliers, const uint32_t* weights, size_t n_words) {
  if (n_widths < 2 || n_widths > static_cast<size_t>(kMaxLayers) + 1) {
    invalid("widths must hold 2.." + std::to_string(kMaxLayers + 1) +
            " entries (1.." + std::to_string(kMaxLayers) + " layers), got " +
            std::to_string(n_widths));
  }
  MlpDesc d;
  d.n_layers = static_cast<int>(n_widths) - 1;
  for (size_t i = 0; i < n_widths; ++i) {
    if (widths[i] < 1 || widths[i] > kMaxWidth) {
      invalid("every width must be in [1, " + std::to_string(kMaxWidth) + "], got " +
              widths_text(widths, n_widths));
    }
    d.widths[i] = widths[i];
  }
  d.word_offsets[0] = 0;
  for (int l = 0; l < d.n_layers; ++l) {
    d.word_offsets[l + 1] = d.word_offsets[l] + d.widths[l + 1] * words_per_row(d.widths[l]);
  }
  if (n_multipliers != n_widths) {
    invalid("multipliers must hold L + 1 = " + std::to_string(n_widths) + " float32 values, got " +
            std::to_string(n_multipliers));
  }
  for (size_t i = 0; i < n_multipliers; ++i) {
    if (!std::isfinite(multipliers[i]) || !(multipliers[i] > 0.0f)) {
      invalid("multiplier " + std::to_string(i) + " must be finite and > 0, got " +
              std::to_string(multipliers[i]));
    }
    d.multipliers[i] = multipliers[i];
  }
  if (n_words != static_cast<size_t>(d.total_words())) {
    invalid("weights must hold " + std::to_string(d.total_words()) +
            " packed uint32 words for widths " + widths_text(widths, n_widths) + ", got " +
            std::to_string(n_words));
  }
  for (int l = 0; l < d.n_layers; ++l) {
    const int pad = 4 * words_per_row(d.widths[l]) - d.widths[l];  // padding bytes per row
    if (pad == 0) continue;
    const int nw = words_per_row(d.widths[l]);
    const uint32_t pad_mask = ~0u << (8 * (4 - pad));  // high `pad` bytes of the last word
    for (int j = 0; j < d.widths[l + 1]; ++j) {
      if (weights[d.word_offsets[l] + j * nw + nw - 1] & pad_mask) {
        invalid("layer " + std::to_string(l) + " row " + std::to_string(j) +
                ": padding bytes of the packed weights must be zero");
      }
    }
  }
  d.weights = weights;
  return d;
}

}  // namespace neumat
