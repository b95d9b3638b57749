"""BTF data: sources of (u, v, ωi, ωo) -> linear RGB samples behind one interface.

* :class:`BtfSource` / :class:`BtfBatch` — the interface and conventions (:mod:`.source`).
* :class:`PointBtf` — a :class:`PbrMaterial` rendered with true displacement at every
  sample's own (uv, ωi, ωo) (:mod:`.points`, the training default);
* :class:`SyntheticBtf` — slices of a :class:`PbrMaterial` rendered with true displacement
  (:mod:`.render`), cached on disk; materials from :func:`make_material` (procedural and
  scikit-image photos) or :func:`load_pbr_maps` (downloaded texture sets).
* :class:`Ubo2014Btf` — measured BTFs from UBO2014 files (:mod:`.ubo2014_format`).

Imports numpy, safetensors and rich only; scikit-image / imageio are imported by the functions
that need them (photo materials, image loading).
"""

from .directions import DirectionSet, ubo_like_directions
from .errors import DataError, PbrLoadError, Ubo2014FormatError
from .materials import MATERIALS, make_material
from .pbr import PbrMaterial
from .pbr_io import find_pbr_maps, load_pbr_maps
from .points import HELDOUT_PAIRS, PointBtf, PointBtfConfig
from .slice_renderer import SliceRenderer
from .slices import SliceBtfSource
from .source import BtfBatch, BtfSource, held_out_split
from .synthetic import SyntheticBtf, SyntheticBtfConfig, maps_source, material_source
from .ubo2014 import Ubo2014Btf, Ubo2014Config
from .ubo2014_format import factorize_frames, read_ubo2014, write_ubo2014

__all__ = [
    "HELDOUT_PAIRS",
    "MATERIALS",
    "BtfBatch",
    "BtfSource",
    "DataError",
    "DirectionSet",
    "PbrLoadError",
    "PbrMaterial",
    "PointBtf",
    "PointBtfConfig",
    "SliceBtfSource",
    "SliceRenderer",
    "SyntheticBtf",
    "SyntheticBtfConfig",
    "Ubo2014Btf",
    "Ubo2014Config",
    "Ubo2014FormatError",
    "factorize_frames",
    "find_pbr_maps",
    "held_out_split",
    "load_pbr_maps",
    "make_material",
    "maps_source",
    "material_source",
    "read_ubo2014",
    "ubo_like_directions",
    "write_ubo2014",
]
