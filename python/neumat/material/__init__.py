"""Material kinds and what they share (numpy + safetensors only: no torch, no device).

* :mod:`.common` — the float32 bilinear plane fetch every evaluator uses, provenance numbers,
  the recorded data source, :class:`EvalError`.
* :mod:`.relief` — the relief frame: the slope of a material's height map at any uv;
  :mod:`.visible_slope` — the visible frame of a prefiltered pixel (the slope the viewer sees).
* :mod:`.heightfield` — the tiled bilinear height field and its exact ray intersection (the
  relief the training data, the renderer's references and the fidelity suite all trace);
  :mod:`.interp` — the float64 bilinear texel lookup it and the data renderers use.
* :mod:`.triple_plane`, :mod:`.neumip` — each kind's numpy INT8 reference (the contract the
  Slang passes and the C++/CUDA backends reproduce).
* :mod:`.kinds` — what each bundle kind declares (its pass, reference, techniques, precisions,
  AOVs) and the registry :func:`kind_of`.
"""

from .common import (
    SOURCE_KEY,
    EvalError,
    bilinear_lookup_np,
    bundle_value_scale,
    positive_provenance_number,
    require_source_spec,
)
from .kinds import MaterialKind, MaterialKindError, kind_of, register_kind
from .relief import DirectionCoding, ReliefFrameError, ReliefSlope, has_relief_frame, slope_texels

__all__ = ["SOURCE_KEY", "DirectionCoding", "EvalError", "MaterialKind", "MaterialKindError", "ReliefFrameError",
           "ReliefSlope", "bilinear_lookup_np", "bundle_value_scale", "has_relief_frame", "kind_of",
           "positive_provenance_number", "register_kind", "require_source_spec", "slope_texels"]
