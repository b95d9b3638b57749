"""Material kinds and what they share (numpy + safetensors only: no torch, no device).

* :mod:`.common` — the float32 bilinear plane fetch every evaluator uses.
* :mod:`.kinds` — what each bundle kind declares (its pass, techniques, precisions, AOVs).
* :mod:`.relief` — the relief frame: the slope of a material's height map at any uv.
"""

from .common import bilinear_lookup_np
from .kinds import MaterialKind, MaterialKindError, kind_of, register_kind
from .relief import DirectionCoding, ReliefFrameError, ReliefSlope, has_relief_frame, slope_texels

__all__ = ["MaterialKind", "MaterialKindError", "kind_of", "register_kind", "DirectionCoding", "ReliefFrameError", "ReliefSlope", "bilinear_lookup_np", "has_relief_frame", "slope_texels"]
