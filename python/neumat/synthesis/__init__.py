"""ACF-guided dual-tiling texture synthesis: numpy reference of ``shaders/acf_synthesis.slang``.

* :mod:`.acf` — autocovariance of the guide (U) plane and the curved-ACF offset pdf;
* :mod:`.offsets` — integer hash + inverse-CDF tables: deterministic per-tile texel shifts;
* :mod:`.histogram` — per-channel Gaussianization and the inverse-histogram LUT;
* :mod:`.tiling` — the two half-tile-offset grids, windows, wrap-around bilinear fetch;
* :mod:`.prefilter` — feature LoD: the Gaussianized planes' mip chains and per-level LUTs;
* :mod:`.relief` — the synthesized relief's slope (the relief frame), at level 0 and prefiltered;
* :mod:`.synthesizer` — :class:`Synthesizer`: all of it for a bundle's U plane and height.

numpy only (no scipy, no torch, no GPU device): it runs at bundle load in a render-only install.
"""

from .acf import OffsetPdf, autocovariance, central_lobe, local_maxima, offset_pdf
from .histogram import GaussianizedPlane, gaussianize, inverse_histogram
from .offsets import OffsetTables, hash32, tile_uniforms
from .prefilter import PrefilteredPlane
from .synthesizer import BLENDS, SynthesisConfig, SynthesisResult, Synthesizer
from .tiling import SINGULARITY_WEIGHT, DualTileSample, bilinear_wrap, dual_tile_sample

__all__ = [
    "BLENDS",
    "SINGULARITY_WEIGHT",
    "DualTileSample",
    "GaussianizedPlane",
    "OffsetPdf",
    "OffsetTables",
    "PrefilteredPlane",
    "SynthesisConfig",
    "SynthesisResult",
    "Synthesizer",
    "autocovariance",
    "bilinear_wrap",
    "central_lobe",
    "dual_tile_sample",
    "gaussianize",
    "hash32",
    "inverse_histogram",
    "local_maxima",
    "offset_pdf",
    "tile_uniforms",
]
