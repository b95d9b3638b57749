"""The in-memory bundle: everything training hands to rendering, and its invariants.

Array conventions (numpy, C-order; the file stores them little-endian):

``planes[name]``
    float16 or float32 ``[rows, cols, C]``, channel-last. Column ``c`` samples the first
    texture coordinate at its texel centre ``(c + 0.5) / cols``, row ``r`` the second at
    ``(r + 0.5) / rows``. For spatial planes that is ``[row = v, col = u, channel]``: texture
    ``x = u`` runs along a row, ``y = v`` down the rows, and row 0 (first in memory) is
    ``v = 0`` — the *top* row of the image as displayed, exactly where D3D/Vulkan/Falcor/slangpy
    texture addressing puts ``v = 0``. Angular planes use the same layout with (x, y) = the
    first/second coordinate of the angle parameterization named by :attr:`Bundle.angle_param`.

    * ``triple_plane``: ``"U"`` (spatial), ``"H"`` (half-angle), ``"D"`` (difference-angle).
    * ``neumip``: ``"offset"`` (offset texture ``T_off``) and ``"rgb"`` (neural texture
      ``T_rgb``), both spatial.

``mlps[name]``
    :class:`neumat.quant.Int8MLP` (packed int8 weights + float32 scales, the INT8 contract).
    ``triple_plane``: ``"rgb"`` (features -> linear Rec.709 RGB, 3 outputs). ``neumip``:
    ``"offset"`` (``T_off[u] || wo`` -> offset) and ``"rgb"`` (``T_rgb[u + du] || wi || wo``
    -> linear RGB, 3 outputs).

``inputs[network]``
    The MLP's input vector as ordered segments ``(source, width)``: a plane name (width = its
    channel count, channels in plane order) or, for ``neumip`` only, a direction feature
    ``"wi"``/``"wo"`` encoded as :attr:`Bundle.angle_param` says. The widths sum to the MLP's
    input width. ``triple_plane`` uses each of U, H, D exactly once, in any order.

``height``
    Optional float32 ``[rows, cols]`` in [0, 1], same axes as the U plane. The displacement
    along the normal is ``h_min + height * (h_max - h_min)`` with ``(h_min, h_max) =
    height_range`` (``h_min < h_max``) in :attr:`Bundle.height_units`: ``"uv"`` (1.0 = the
    surface length of one UV repeat) or ``"world"`` (scene units). No height map, no range.

``u_levels``
    Optional (``triple_plane`` only) learned coarse levels 1..L of the U plane for feature LoD,
    float16 or float32 ``[rows >> l, cols >> l, C]`` with the U plane's axes (tensors
    ``plane.U.level.<l>``): read by renderers in place of the box mip chain
    (:func:`neumat.material.mips.u_chain`; provenance ``u_filter``). () for bundles without.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..angles import PLANE_PARAMETERIZATION

from ..quant import MAX_WIDTH, Int8MLP
from .checksum import content_checksum
from .errors import BundleError

TRIPLE_PLANE = "triple_plane"
NEUMIP = "neumip"


@dataclass(frozen=True)
class KindLayout:
    """What a bundle of one model kind holds: its planes and networks, exactly."""

    planes: tuple[str, ...]
    """Planes the kind holds, exactly."""
    network_planes: dict[str, tuple[str, ...]]
    """Its networks and the planes each reads, each exactly once (in an order chosen by
    ``inputs``)."""
    directions: bool = False
    """True: its networks may also read the encoded directions :data:`DIRECTION_SOURCES`."""

    @property
    def networks(self) -> tuple[str, ...]:
        """MLPs the kind holds, exactly."""
        return tuple(self.network_planes)


LAYOUTS: dict[str, KindLayout] = {
    TRIPLE_PLANE: KindLayout(("U", "H", "D"), {"rgb": ("U", "H", "D")}),
    NEUMIP: KindLayout(("offset", "rgb"), {"offset": ("offset",), "rgb": ("rgb",)}, directions=True),
}
"""Model kinds a bundle may hold, by ``kind``; a new kind adds its layout with
:func:`register_layout` (and its declaration with :func:`neumat.material.register_kind`)."""


def register_layout(kind: str, layout: KindLayout) -> KindLayout:
    """Let bundles of model kind ``kind`` load, validate and save; returns ``layout``."""
    LAYOUTS[kind] = layout
    return layout


def kind_layout(kind: Any) -> KindLayout:
    """The layout of model kind ``kind``; :class:`BundleError` for an unknown one."""
    if not isinstance(kind, str) or kind not in LAYOUTS:
        raise BundleError(f"unknown model kind {kind!r}; this neumat supports {list(LAYOUTS)}")
    return LAYOUTS[kind]


DIRECTION_SOURCES = ("wi", "wo")
"""Non-plane input sources (neumip only): encoded incident / outgoing directions."""
MAX_DIRECTION_WIDTH = 16
"""Largest width of one encoded direction feature."""
RGB_OUTPUTS = 3
"""Output width of every ``"rgb"`` network (linear Rec.709 RGB)."""

COLOUR_SPACES = ("linear-rec709",)
"""Colour spaces a bundle may declare (linear Rec.709 primaries, no transfer curve)."""
HEIGHT_UNITS = ("uv", "world")
"""Units of ``height_range``: UV repeats or scene units."""
DEFAULT_ANGLE_PARAM = PLANE_PARAMETERIZATION
"""Angle parameterization id carried by default (defined in :mod:`neumat.angles`)."""
MAX_PLANE_RES = 16384
"""Largest rows/cols of a plane or height map (a GPU texture limit)."""

PLANE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")

HEIGHT_TENSOR = "height"
"""Tensor name of the height map."""


def plane_tensor(plane: str) -> str:
    """Tensor name of a plane: ``"plane.<name>"``."""
    return f"plane.{plane}"


U_LEVEL_PREFIX = "plane.U.level."
"""Tensor name prefix of the stored coarse U levels: ``"plane.U.level.<l>"``, l = 1, 2, ..."""


def u_level_tensor(level: int) -> str:
    """Tensor name of stored U level ``level`` (>= 1): ``"plane.U.level.<level>"``."""
    return f"{U_LEVEL_PREFIX}{level}"


def weight_tensor(network: str, layer: int) -> str:
    """Tensor name of one layer's packed weights: ``"mlp.<network>.weight.<layer>"``."""
    return f"mlp.{network}.weight.{layer}"


def scales_tensor(network: str) -> str:
    """Tensor name of a network's scales ``[sa_0, sw_0, ...]``: ``"mlp.<network>.scales"``."""
    return f"mlp.{network}.scales"


@dataclass(eq=False)
class Bundle:
    """A neural material as shipped: planes, INT8 MLPs, optional height map and metadata.

    See the module docstring for every array's shape, dtype and axes. Construct directly or
    with :meth:`triple_plane` / :meth:`neumip`; :meth:`validate` (run by :meth:`save` and by
    every loader) raises :class:`BundleError` on any inconsistency.
    """

    kind: str
    """``"triple_plane"`` or ``"neumip"``."""
    planes: dict[str, np.ndarray]
    """Plane name -> float16/float32 ``[rows, cols, C]``."""
    mlps: dict[str, Int8MLP]
    """Network name -> quantized MLP."""
    inputs: dict[str, tuple[tuple[str, int], ...]]
    """Network name -> ordered input segments ``(source, width)``."""
    height: np.ndarray | None = None
    """Optional float32 ``[rows, cols]`` height in [0, 1] of ``height_range``."""
    height_range: tuple[float, float] | None = None
    """``(h_min, h_max)`` in ``height_units``; set iff ``height`` is."""
    height_units: str = "uv"
    """``"uv"`` (UV repeats) or ``"world"`` (scene units)."""
    angle_param: str = DEFAULT_ANGLE_PARAM
    """Id of the angle parameterization the H/D planes and direction features use."""
    colour_space: str = COLOUR_SPACES[0]
    """Colour space of the RGB outputs."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON-serializable training record: git commit, config, timestamps, metrics."""
    u_levels: tuple[np.ndarray, ...] = ()
    """Optional (triple-plane only) learned coarse levels 1..L of the U plane, float16/float32
    ``[rows >> l, cols >> l, C]`` (level l halves level l-1 while both sides are even, as
    :func:`neumat.material.mips.mip_chain`), read with feature LoD in place of the box chain
    (:func:`neumat.material.mips.u_chain`, provenance ``u_filter``); () for bundles without."""

    @classmethod
    def triple_plane(
        cls,
        u: np.ndarray,
        h: np.ndarray,
        d: np.ndarray,
        mlp: Int8MLP,
        order: tuple[str, ...] = ("U", "H", "D"),
        **extras: Any,
    ) -> Bundle:
        """A triple-plane bundle; the MLP reads the planes' channels concatenated in ``order``.

        ``extras`` are the remaining fields (``height``, ``height_range``, ``provenance``, ...).
        """
        planes = {"U": u, "H": h, "D": d}
        inputs = {"rgb": tuple((p, int(np.shape(planes[p])[-1]) if p in planes else 0) for p in order)}
        return cls(TRIPLE_PLANE, planes, {"rgb": mlp}, inputs, **extras)

    @classmethod
    def neumip(
        cls,
        offset_texture: np.ndarray,
        rgb_texture: np.ndarray,
        offset_mlp: Int8MLP,
        rgb_mlp: Int8MLP,
        direction_width: int = 2,
        **extras: Any,
    ) -> Bundle:
        """A NeuMIP bundle: ``offset`` reads ``T_off || wo``, ``rgb`` reads ``T_rgb || wi || wo``;
        each direction is encoded in ``direction_width`` values."""
        planes = {"offset": offset_texture, "rgb": rgb_texture}
        inputs = {
            "offset": (("offset", int(np.shape(offset_texture)[-1])), ("wo", direction_width)),
            "rgb": (
                ("rgb", int(np.shape(rgb_texture)[-1])),
                ("wi", direction_width),
                ("wo", direction_width),
            ),
        }
        return cls(NEUMIP, planes, {"offset": offset_mlp, "rgb": rgb_mlp}, inputs, **extras)

    def feature_order(self, network: str) -> tuple[str, ...]:
        """Input sources of ``network`` in the order its MLP reads them (e.g. ``("U", "H", "D")``)."""
        return tuple(source for source, _ in self.inputs[network])

    def tensors(self) -> dict[str, np.ndarray]:
        """Every array under its file name (see :func:`plane_tensor` etc.), C-contiguous."""
        out = {plane_tensor(p): np.ascontiguousarray(a) for p, a in self.planes.items()}
        for net, mlp in self.mlps.items():
            for layer, packed in enumerate(mlp.packed):
                out[weight_tensor(net, layer)] = np.ascontiguousarray(packed, dtype=np.uint32)
            out[scales_tensor(net)] = np.ascontiguousarray(mlp.scales, dtype=np.float32)
        if self.height is not None:
            out[HEIGHT_TENSOR] = np.ascontiguousarray(self.height)
        for level, plane in enumerate(self.u_levels, start=1):
            out[u_level_tensor(level)] = np.ascontiguousarray(plane)
        return out

    def checksum(self) -> str:
        """Content checksum ``"sha256:<hex>"`` of :meth:`tensors` alone (see :mod:`.checksum`);
        a saved file's checksum seals the manifest to it (:func:`.manifest.manifest_checksum`)."""
        return content_checksum(self.tensors())

    def validate(self) -> None:
        """Raise :class:`BundleError` unless every invariant of the module docstring holds."""
        layout = kind_layout(self.kind)
        _check_names("plane", self.planes, layout.planes, self.kind)
        _check_names("network", self.mlps, layout.networks, self.kind)
        _check_names("input list", self.inputs, layout.networks, self.kind)
        for name, plane in self.planes.items():
            _check_plane(name, plane)
        for name, mlp in self.mlps.items():
            if not isinstance(mlp, Int8MLP):
                raise BundleError(
                    f"network {name!r} must be a neumat.quant.Int8MLP, got {type(mlp).__name__}"
                )
            self._check_inputs(name, mlp, layout)
        if "rgb" in self.mlps and self.mlps["rgb"].n_outputs != RGB_OUTPUTS:
            raise BundleError(
                f"network 'rgb' must output {RGB_OUTPUTS} values (linear RGB), "
                f"its widths are {self.mlps['rgb'].widths}"
            )
        self._check_height()
        self._check_u_levels()
        if not isinstance(self.angle_param, str) or not _ID.fullmatch(self.angle_param):
            raise BundleError(
                f"angle_param must be an id like {DEFAULT_ANGLE_PARAM!r} "
                f"(letters, digits, '._+-', <= 64 chars), got {self.angle_param!r}"
            )
        if self.colour_space not in COLOUR_SPACES:
            raise BundleError(
                f"colour space {self.colour_space!r} is not supported; use one of {list(COLOUR_SPACES)}"
            )
        if not isinstance(self.provenance, dict) or not all(isinstance(k, str) for k in self.provenance):
            raise BundleError(
                "provenance must be a dict with string keys (git commit, config, timestamps, metrics)"
            )

    def _check_inputs(self, network: str, mlp: Int8MLP, layout: KindLayout) -> None:
        segments = self.inputs[network]
        where = f"network {network!r} inputs"
        if not isinstance(segments, (tuple, list)) or not segments:
            raise BundleError(f"{where} must be a non-empty list of (source, width) pairs, got {segments!r}")
        seen: list[str] = []
        total = 0
        for seg in segments:
            if (
                not isinstance(seg, (tuple, list))
                or len(seg) != 2
                or not isinstance(seg[0], str)
                or not isinstance(seg[1], (int, np.integer))
                or isinstance(seg[1], bool)
            ):
                raise BundleError(f"{where}: each entry must be a (source name, width) pair, got {seg!r}")
            source, width = seg[0], int(seg[1])
            if source in seen:
                raise BundleError(f"{where}: source {source!r} appears twice")
            seen.append(source)
            if source in self.planes:
                channels = int(self.planes[source].shape[-1])
                if width != channels:
                    raise BundleError(
                        f"{where}: plane {source!r} has {channels} channels "
                        f"but the input list gives width {width}"
                    )
            elif layout.directions and source in DIRECTION_SOURCES:
                if not 1 <= width <= MAX_DIRECTION_WIDTH:
                    raise BundleError(
                        f"{where}: direction {source!r} width must be in "
                        f"[1, {MAX_DIRECTION_WIDTH}], got {width}"
                    )
            else:
                allowed = list(self.planes) + (list(DIRECTION_SOURCES) if layout.directions else [])
                raise BundleError(f"{where}: unknown source {source!r}; allowed sources: {allowed}")
            total += width
        want = layout.network_planes[network]
        used = sorted(s for s in seen if s in self.planes)
        if used != sorted(want):
            raise BundleError(f"{where}: must read the planes {list(want)} exactly once each, reads {used}")
        if total != mlp.n_inputs:
            raise BundleError(
                f"{where} add up to {total} values ({', '.join(f'{s}:{int(w)}' for s, w in segments)}) "
                f"but the MLP's input width is {mlp.n_inputs} (widths {mlp.widths}); "
                "the plane channel counts and the first layer must agree"
            )

    def _check_u_levels(self) -> None:
        if not self.u_levels:
            return
        if self.kind != TRIPLE_PLANE:
            raise BundleError(f"stored U levels belong to {TRIPLE_PLANE!r} bundles, this one is {self.kind!r}")
        rows, cols, channels = self.planes["U"].shape
        for level, plane in enumerate(self.u_levels, start=1):
            _check_plane(f"U level {level}", plane)
            if rows % (1 << level) or cols % (1 << level):
                raise BundleError(f"U level {level}: the U plane {rows}x{cols} has only {level - 1} coarser levels "
                                  "(each halves both sides while they are even); drop the extra levels")
            want = (rows >> level, cols >> level, channels)
            if plane.shape != want:
                raise BundleError(f"U level {level} must have shape {want} (the U plane halved {level} times), "
                                  f"got {plane.shape}")

    def _check_height(self) -> None:
        if self.height is None:
            if self.height_range is not None:
                raise BundleError(
                    "height_range is set but there is no height map; drop the range or add the map"
                )
            return
        h = self.height
        if not isinstance(h, np.ndarray) or h.dtype != np.float32 or h.ndim != 2:
            raise BundleError(
                f"height map must be a float32 [rows, cols] array, got "
                f"{getattr(h, 'dtype', type(h).__name__)} {getattr(h, 'shape', '')}"
            )
        if not all(1 <= n <= MAX_PLANE_RES for n in h.shape):
            raise BundleError(f"height map shape {h.shape} must have sides in [1, {MAX_PLANE_RES}]")
        if not np.all(np.isfinite(h)) or h.min() < 0.0 or h.max() > 1.0:
            raise BundleError(
                "height map values must be finite and in [0, 1] (fractions of height_range); "
                "normalize as (h - h_min) / (h_max - h_min) and store (h_min, h_max) in height_range"
            )
        r = self.height_range
        if (
            not isinstance(r, (tuple, list))
            or len(r) != 2
            or not all(is_finite_number(x) for x in r)
            or not float(r[0]) < float(r[1])
        ):
            raise BundleError(
                f"height_range must be two finite numbers (h_min, h_max) with h_min < h_max, got {r!r}"
            )
        if self.height_units not in HEIGHT_UNITS:
            raise BundleError(f"height_units must be one of {list(HEIGHT_UNITS)}, got {self.height_units!r}")


def is_finite_number(x: Any) -> bool:
    """True for a finite real number (bool excluded); False for ints too large for a float."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _check_names(what: str, items: Mapping, expected: tuple[str, ...], kind: str) -> None:
    if not isinstance(items, Mapping):
        raise BundleError(f"{what}s must be a dict keyed by name, got {type(items).__name__}")
    names = sorted(str(k) for k in items)
    if names != sorted(expected):
        raise BundleError(f"a {kind!r} bundle holds the {what}s {list(expected)}, this one has {names}")


def _check_plane(name: str, plane: Any) -> None:
    if not isinstance(plane, np.ndarray) or plane.dtype not in PLANE_DTYPES or plane.ndim != 3:
        raise BundleError(
            f"plane {name!r} must be a float16 or float32 [rows, cols, channels] array, got "
            f"{getattr(plane, 'dtype', type(plane).__name__)} {getattr(plane, 'shape', '')}"
        )
    rows, cols, channels = plane.shape
    if not (1 <= rows <= MAX_PLANE_RES and 1 <= cols <= MAX_PLANE_RES and 1 <= channels <= MAX_WIDTH):
        raise BundleError(
            f"plane {name!r} shape {plane.shape}: rows/cols must be in [1, {MAX_PLANE_RES}], "
            f"channels in [1, {MAX_WIDTH}]"
        )
    if not np.all(np.isfinite(plane)):
        bad = int(np.count_nonzero(~np.isfinite(plane)))
        raise BundleError(f"plane {name!r} holds {bad} NaN/inf values; fix the training run or its export")
