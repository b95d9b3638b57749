"""The JSON manifest of a ``.nmat`` file: what it holds, checked against what it holds.

Stored as a JSON string under the safetensors metadata key ``"neumat"``. Version 2::

    {
      "format": "neumat.nmat", "version": 2,
      "kind": "triple_plane" | "neumip" | a registered kind (neumat.bundle.bundle.LAYOUTS),
      "plane_axes": ["v", "u", "channel"],          # every plane is [row=v, col=u, channel]
      "tensors": {"<name>": {"dtype": "float16|float32|uint32", "shape": [...]}, ...},
      "networks": {"<net>": {"widths": [n0, ..., nL],
                             "inputs": [["U", 8], ["H", 8], ["D", 8]],   # MLP input order
                             "weight_layout": "int8x4-packed-uint32-le",
                             "activation": "relu", "output": "clamp01"}},
      "angle_param": "rusinkiewicz-concentric-v1", "colour_space": "linear-rec709",
      "height": null | {"range": [h_min, h_max], "units": "uv" | "world"},
      "provenance": {...free-form...},
      "checksum": "sha256:<hex>"       # the manifest and the tensors, see manifest_checksum
    }

A bundle is self-validating: the version-2 checksum seals every other key of the manifest
(provenance and its value scale, height range and units, widths, input order, tensor table,
...) together with the tensor bytes, so an edited manifest is a :class:`BundleError` on load.
Version 1 has the same keys, but its checksum covers the tensors only; version-1 files (the
shipped ones among them) still load, with that weaker check — re-export to get version 2.

Tensor names are fixed by :mod:`.model`: ``plane.<p>`` (float16/float32 ``[rows, cols, C]``),
``mlp.<net>.weight.<l>`` (uint32 ``[n_{l+1}, ceil4(n_l)/4]``, the packed words of
:class:`neumat.quant.Int8MLP`: 4 int8 per word, first in the low byte, rows padded with zero
bytes), ``mlp.<net>.scales`` (float32 ``[2L]`` = ``[sa_0, sw_0, sa_1, sw_1, ...]``) and
``height`` (float32 ``[rows, cols]`` in [0, 1]) and, optionally, the learned coarse U levels
``plane.U.level.<l>`` (l = 1..L, consecutive; :attr:`neumat.bundle.Bundle.u_levels`; their count
is read from the tensor table, so older files without them load unchanged). Unknown keys are errors, not ignored.
:func:`check_declared_model` bounds every declared shape by the model limits (:mod:`.limits`)
before a tensor byte is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..quant import MAX_LAYERS, Int8MLP, QuantSpecError
from .checksum import sealed_checksum
from .container import TensorEntry
from .errors import BundleError
from .limits import HEIGHT_LIMIT, PLANE_LIMIT, SCALES_LIMIT, WEIGHT_LIMIT, ShapeLimit
from .bundle import (
    HEIGHT_TENSOR,
    Bundle,
    is_finite_number,
    U_LEVEL_PREFIX,
    kind_layout,
    plane_tensor,
    u_level_tensor,
    scales_tensor,
    weight_tensor,
)

FORMAT_NAME = "neumat.nmat"
"""Value of the manifest's ``"format"`` key."""
FORMAT_VERSION = 2
"""Version this neumat writes."""
CHECKSUM_SCOPES = {
    1: "version 1: tensors only; re-export to cover the manifest",
    2: "manifest and tensors",
}
"""Each version this neumat reads -> what its ``"checksum"`` covers (see :func:`manifest_checksum`)."""
SUPPORTED_VERSIONS = tuple(CHECKSUM_SCOPES)
"""Versions this neumat reads."""
METADATA_KEY = "neumat"
"""safetensors metadata key holding the manifest JSON."""
PLANE_AXES = ["v", "u", "channel"]
NETWORK_CONSTANTS = {"weight_layout": "int8x4-packed-uint32-le", "activation": "relu", "output": "clamp01"}
"""Fixed per-network fields of every version (the INT8 contract of neumat.quant.spec)."""
TOP_KEYS = (
    "format",
    "version",
    "kind",
    "plane_axes",
    "tensors",
    "networks",
    "angle_param",
    "colour_space",
    "height",
    "provenance",
    "checksum",
)


def build_manifest(bundle: Bundle, tensors: dict[str, np.ndarray], tensor_checksum: str) -> dict[str, Any]:
    """The version-:data:`FORMAT_VERSION` manifest of a validated ``bundle`` whose file tensors
    are ``tensors`` with :func:`~neumat.bundle.checksum.content_checksum` ``tensor_checksum``;
    its ``"checksum"`` is :func:`manifest_checksum` (the manifest sealed to the tensors)."""
    height = None
    if bundle.height is not None:
        assert bundle.height_range is not None  # validate() guarantees it
        height = {"range": [float(x) for x in bundle.height_range], "units": bundle.height_units}
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": bundle.kind,
        "plane_axes": list(PLANE_AXES),
        "tensors": {
            n: {"dtype": a.dtype.name, "shape": [int(s) for s in a.shape]} for n, a in sorted(tensors.items())
        },
        "networks": {
            net: {
                "widths": list(mlp.widths),
                "inputs": [[s, int(w)] for s, w in bundle.inputs[net]],
                **NETWORK_CONSTANTS,
            }
            for net, mlp in sorted(bundle.mlps.items())
        },
        "angle_param": bundle.angle_param,
        "colour_space": bundle.colour_space,
        "height": height,
        "provenance": bundle.provenance,
    }
    manifest["checksum"] = manifest_checksum(manifest, tensor_checksum)
    return manifest


def manifest_checksum(manifest: dict[str, Any], tensor_checksum: str) -> str:
    """The ``"checksum"`` a manifest of its ``"version"`` must carry, given its tensors'
    :func:`~neumat.bundle.checksum.content_checksum` ``tensor_checksum``.

    Version 1: ``tensor_checksum`` itself (tensors only: an edited manifest goes unnoticed).
    Version 2: :func:`~neumat.bundle.checksum.sealed_checksum` of the canonical JSON
    (:func:`encode_manifest`) of every key but ``"checksum"``, sealed to ``tensor_checksum``.
    Raises :class:`BundleError` for a manifest that is not strict JSON or an unknown version.
    """
    version = manifest.get("version")
    if checksum_scope(version) is None:
        raise BundleError(
            f"{FORMAT_NAME} version {version!r} has no checksum rule; "
            f"known versions {list(SUPPORTED_VERSIONS)}"
        )
    if version == 1:
        return tensor_checksum
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return sealed_checksum(encode_manifest(body), tensor_checksum)


def checksum_scope(version: Any) -> str | None:
    """What the checksum of a manifest of ``version`` covers (:data:`CHECKSUM_SCOPES`), or None
    for a version this neumat does not read."""
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        return None
    return CHECKSUM_SCOPES[version]


def encode_manifest(manifest: dict[str, Any]) -> str:
    """Canonical strict JSON text of ``manifest``: sorted keys, no whitespace, ASCII (other
    characters ``\\u``-escaped). NaN/inf or non-JSON values (in provenance) are an error."""
    try:
        return json.dumps(manifest, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise BundleError(
            f"manifest is not strict JSON ({e}); provenance must hold only str/int/float/bool/None, "
            "lists and str-keyed dicts, with finite numbers"
        ) from e


def decode_manifest(metadata: dict[str, str]) -> dict[str, Any]:
    """Parse the manifest from safetensors metadata; check format, version and top-level keys."""
    if METADATA_KEY not in metadata:
        raise BundleError(
            f"no '{METADATA_KEY}' manifest in the safetensors metadata: this is not a neumat bundle; "
            "write bundles with neumat.bundle.save_bundle or `neumat export`"
        )
    try:
        m = json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError) as e:
        raise BundleError(f"manifest is not valid JSON ({e}); the file is corrupt, re-export it") from e
    if not isinstance(m, dict):
        raise BundleError(f"manifest must be a JSON object, got {type(m).__name__}")
    if m.get("format") != FORMAT_NAME:
        raise BundleError(
            f"manifest format is {m.get('format')!r}, expected {FORMAT_NAME!r}: not a neumat bundle"
        )
    version = m.get("version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"{FORMAT_NAME} version {version!r} is not supported; this neumat reads versions "
            f"{list(SUPPORTED_VERSIONS)}: upgrade neumat or re-export the bundle"
        )
    missing = [k for k in TOP_KEYS if k not in m]
    extra = sorted(set(m) - set(TOP_KEYS))
    if missing or extra:
        raise BundleError(
            f"manifest keys wrong: missing {missing}, unexpected {extra}; expected exactly {list(TOP_KEYS)}"
        )
    kind_layout(m["kind"])
    if m["plane_axes"] != PLANE_AXES:
        raise BundleError(
            f"plane_axes {m['plane_axes']!r} is not {PLANE_AXES}; version {version} fixes the plane layout"
        )
    if not isinstance(m["checksum"], str):
        raise BundleError("manifest checksum must be a string 'sha256:<hex>'")
    return m


def check_tensor_table(manifest: dict[str, Any], entries: dict[str, TensorEntry]) -> None:
    """The manifest's ``tensors`` table must list exactly the file's tensors, dtypes and shapes."""
    table = manifest["tensors"]
    if not isinstance(table, dict):
        raise BundleError("manifest 'tensors' must be an object: name -> {dtype, shape}")
    missing = sorted(set(table) - set(entries))
    extra = sorted(set(entries) - set(table))
    if missing:
        raise BundleError(
            f"manifest lists tensors missing from the file: {missing}; the file is incomplete, re-export it"
        )
    if extra:
        raise BundleError(
            f"file holds tensors the manifest does not list: {extra}; the file was edited, re-export it"
        )
    for name, e in entries.items():
        rec = table[name]
        if (
            not isinstance(rec, dict)
            or rec.get("dtype") != e.dtype
            or rec.get("shape") != list(e.shape)
            or len(rec) != 2
        ):
            raise BundleError(
                f"tensor {name!r}: manifest says {rec!r}, the file holds {e.dtype} {list(e.shape)}"
            )


@dataclass(frozen=True)
class _Declared:
    """The model a manifest describes, before its tensors are read."""

    widths: dict[str, list[int]]
    """Network -> MLP widths ``[n0, ..., nL]``."""
    height: tuple[tuple[float, float], str] | None
    """``((h_min, h_max), units)``, or None without a height map."""
    limits: dict[str, ShapeLimit]
    """Every tensor the model needs, by file name, with its shape limit."""
    u_levels: int = 0
    """Stored coarse U levels (``plane.U.level.1`` .. ``plane.U.level.<u_levels>``)."""


def check_declared_model(manifest: dict[str, Any], entries: dict[str, TensorEntry]) -> None:
    """Before any tensor byte is read: the file must declare exactly the tensors of the model the
    manifest describes (kind, networks, widths, height), each within its
    :class:`~.limits.ShapeLimit`.

    With :data:`~neumat.bundle.container.MAX_TENSOR_BYTES` this bounds what a load allocates,
    whatever the header declares. Raises :class:`BundleError` naming the tensor, its declared
    shape and bytes, and the limit.
    """
    model = _declared(manifest)
    _check_tensor_names(manifest["kind"], set(model.limits), set(entries))
    for name, e in entries.items():
        limit = model.limits[name]
        if not limit.allows(e.shape):
            raise BundleError(
                f"tensor {name!r} declares shape {list(e.shape)} ({e.end - e.begin} bytes), beyond the model "
                f"limits: {limit.what} with sides at most {list(limit.sides)}; nothing was read — "
                "the header is corrupt or was edited, re-export or re-download the bundle"
            )


def bundle_from_manifest(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Bundle:
    """Assemble and validate the :class:`Bundle` a checked manifest describes from its arrays."""
    kind = manifest["kind"]
    layout = kind_layout(kind)
    model = _declared(manifest)
    _check_tensor_names(kind, set(model.limits), set(arrays))
    widths, height = model.widths, model.height
    networks = manifest["networks"]
    mlps = {}
    for net, w in widths.items():
        packed = [arrays[weight_tensor(net, layer)] for layer in range(len(w) - 1)]
        scales = arrays[scales_tensor(net)]
        if any(p.dtype != np.uint32 for p in packed) or scales.dtype != np.float32:
            raise BundleError(f"network {net!r}: weights must be uint32 (packed int8x4) and scales float32")
        try:
            with np.errstate(all="ignore"):
                mlps[net] = Int8MLP(tuple(w), tuple(packed), scales)
        except QuantSpecError as e:
            raise BundleError(f"network {net!r} breaks the INT8 MLP contract (neumat.quant.spec): {e}") from e
    inputs = {net: _inputs(net, rec.get("inputs")) for net, rec in networks.items()}
    if not isinstance(manifest["provenance"], dict):
        raise BundleError("manifest 'provenance' must be a JSON object")
    bundle = Bundle(
        kind=kind,
        planes={p: arrays[plane_tensor(p)] for p in layout.planes},
        mlps=mlps,
        inputs=inputs,
        height=arrays.get(HEIGHT_TENSOR) if height is not None else None,
        height_range=height[0] if height is not None else None,
        height_units=height[1] if height is not None else "uv",
        u_levels=tuple(arrays[u_level_tensor(level)] for level in range(1, model.u_levels + 1)),
        angle_param=manifest["angle_param"],
        colour_space=manifest["colour_space"],
        provenance=manifest["provenance"],
    )
    bundle.validate()
    return bundle


def _declared(manifest: dict[str, Any]) -> _Declared:
    kind = manifest["kind"]
    layout = kind_layout(kind)
    networks = manifest["networks"]
    if not isinstance(networks, dict) or sorted(networks) != sorted(layout.networks):
        names = sorted(networks) if isinstance(networks, dict) else networks
        raise BundleError(
            f"a {kind!r} bundle holds the networks {list(layout.networks)}, the manifest lists {names!r}"
        )
    widths = {net: _network_widths(net, rec) for net, rec in networks.items()}
    height = _height_record(manifest["height"])
    limits = {plane_tensor(p): PLANE_LIMIT for p in layout.planes}
    for net, w in widths.items():
        limits |= {weight_tensor(net, layer): WEIGHT_LIMIT for layer in range(len(w) - 1)}
        limits[scales_tensor(net)] = SCALES_LIMIT
    if height is not None:
        limits[HEIGHT_TENSOR] = HEIGHT_LIMIT
    tensors = manifest["tensors"] if isinstance(manifest["tensors"], dict) else {}
    u_levels = sum(1 for name in tensors if isinstance(name, str) and name.startswith(U_LEVEL_PREFIX))
    limits |= {u_level_tensor(level): PLANE_LIMIT for level in range(1, u_levels + 1)}
    return _Declared(widths, height, limits, u_levels)


def _check_tensor_names(kind: str, expected: set[str], present: set[str]) -> None:
    missing, unexpected = sorted(expected - present), sorted(present - expected)
    if missing or unexpected:
        parts = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {unexpected}"] if unexpected else []
        )
        raise BundleError(
            f"tensors do not match the {kind!r} model the manifest describes: {', '.join(parts)}; "
            "the file was edited or written by a broken exporter, re-export it"
        )


def _network_widths(net: str, rec: Any) -> list[int]:
    keys = sorted(["widths", "inputs", *NETWORK_CONSTANTS])
    if not isinstance(rec, dict) or sorted(rec) != keys:
        raise BundleError(f"network {net!r}: record must have exactly the keys {keys}")
    for key, value in NETWORK_CONSTANTS.items():
        if rec[key] != value:
            raise BundleError(
                f"network {net!r}: {key} {rec[key]!r} is not supported (every version uses {value!r})"
            )
    w = rec["widths"]
    if (
        not isinstance(w, list)
        or not 2 <= len(w) <= MAX_LAYERS + 1
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in w)
    ):
        raise BundleError(
            f"network {net!r}: widths must be a list of 2..{MAX_LAYERS + 1} integers, got {w!r}"
        )
    return w


def _inputs(net: str, segments: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(segments, list) or not all(
        isinstance(s, list)
        and len(s) == 2
        and isinstance(s[0], str)
        and isinstance(s[1], int)
        and not isinstance(s[1], bool)
        for s in segments
    ):
        raise BundleError(
            f"network {net!r}: inputs must be a list of [source, width] pairs, got {segments!r}"
        )
    return tuple((s[0], s[1]) for s in segments)


def _height_record(rec: Any) -> tuple[tuple[float, float], str] | None:
    if rec is None:
        return None
    if not isinstance(rec, dict) or sorted(rec) != ["range", "units"]:
        raise BundleError(
            'manifest \'height\' must be null or {"range": [h_min, h_max], "units": "uv"|"world"}'
        )
    r = rec["range"]
    if not isinstance(r, list) or len(r) != 2 or not all(is_finite_number(x) for x in r):
        raise BundleError(f"height range must be two finite numbers [h_min, h_max], got {r!r}")
    if not isinstance(rec["units"], str):
        raise BundleError(f"height units must be a string, got {rec['units']!r}")
    return (float(r[0]), float(r[1])), rec["units"]
