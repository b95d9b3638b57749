"""Export / import a triple-plane bundle as an InstantNeuralMaterial (Falcor) directory.

Files written for ``name`` (all binary files raw little-endian float32, no header):

==========================  ==========================================================
``PlaneInfo_<name>.bin``    ``[U_res, U_layers, H_res, H_layers, D_res, D_layers]`` —
                            what INM's ``NBTF::loadFeature`` reads.
``PlaneMeta_<name>.bin``    same values: the name the seed-003 replication's loader reads.
``UPlane_<name>.bin`` etc.  ``[layers][res][res][4]``: channel ``c`` in layer ``c // 4``,
                            component ``c % 4`` (zero-padded); texture x = column = u
                            (first angle coordinate for H/D), y = row = v, row 0 = v 0.
``ModelInfo_<name>.bin``    ``[L, in_0, out_0, in_1, out_1, ...]`` of the INM-ordered
                            network, every width rounded up to a multiple of 4 (the Slang
                            float MLP needs that; the CUDA kernel ignores this file).
``Weight_int8_<name>.bin``  INT8 weights as float32 integers, read by ``MLPCuda::loadInt8``
                            (see :mod:`.inm_layout`): input columns in INM order H, U, D.
``Scales_<name>.bin``       ``[sa_0, sw_0, sa_1, sw_1, ...]``, the neumat spec's stored
                            scales (seed 003 §4.1.5). INM itself reads no scales file: paste
                            ``inm_cuda_scales`` from the ModelInfo JSON into its
                            ``ModelInfo::scales[8]``.
``Weight_<name>.bin``,      dequantized float weights in 4x4 blocks and zero biases for
``Bias_<name>.bin``         INM's Slang float path (``MLP.cpp``); not read back.
``Height_<name>.bin``       height map ``[rows, cols]`` in [0, 1] (only with a height map;
                            INM loads height maps as images from ``heightmaps/``: convert,
                            and set its HF offset/scale to the JSON's ``inm_hf_offset`` /
                            ``inm_hf_scale``).
``PlaneMeta_<name>.json``,  dims, dtypes, packing, axis conventions, input ordering, colour
``ModelInfo_<name>.json``   space, angle parameterization, format version, provenance —
                            needed by :func:`import_inm` to rebuild the bundle exactly.
==========================  ==========================================================

Feature LoD: INM reads level 0 of the U plane only, so a bundle's stored learned U levels
(:attr:`neumat.bundle.Bundle.u_levels`) are not exported (level 0 is; renders whose pixels
cover at most one U texel are unaffected), and :func:`import_inm` rebuilds the bundle without
them (a renderer then falls back to the box chain of level 0).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_bytes
from ..quant import MAX_LAYERS, MAX_WIDTH, Int8MLP
from .errors import BundleError
from .inm_files import read_f32, read_json
from .inm_layout import (
    INM_CUDA_WIDTHS,
    INM_INPUT_ORDER,
    float_weight_blocks,
    from_inm_mlp,
    inm_columns,
    inm_cuda_scales,
    int8_stream,
    int8_stream_sizes,
    mlp_from_int8_stream,
    model_info_values,
    plane_from_layers,
    plane_to_layers,
    to_inm_mlp,
)
from .bundle import HEIGHT_UNITS, MAX_PLANE_RES, PLANE_DTYPES, TRIPLE_PLANE, Bundle, is_finite_number

INM_FORMAT = "neumat.inm"
INM_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_FILES = {
    "plane_info": "PlaneInfo_{}.bin",
    "plane_meta_bin": "PlaneMeta_{}.bin",
    "U": "UPlane_{}.bin",
    "H": "HPlane_{}.bin",
    "D": "DPlane_{}.bin",
    "model_info": "ModelInfo_{}.bin",
    "weight_int8": "Weight_int8_{}.bin",
    "scales": "Scales_{}.bin",
    "weight_fp32": "Weight_{}.bin",
    "bias": "Bias_{}.bin",
    "height": "Height_{}.bin",
    "plane_meta": "PlaneMeta_{}.json",
    "model_info_json": "ModelInfo_{}.json",
}


def inm_file_names(name: str) -> dict[str, str]:
    """Role -> file name of every file :func:`export_inm` may write for ``name``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BundleError(
            f"INM material name {name!r} must be letters, digits, '_', '.', '-' (no path separators)"
        )
    return {role: pattern.format(name) for role, pattern in _FILES.items()}


def export_inm(bundle: Bundle, directory: str | Path, name: str) -> dict[str, Path]:
    """Write ``bundle`` (triple_plane, square planes) in the INM layout; returns role -> path.

    Each file is written atomically; the directory is created if needed.
    """
    files = inm_file_names(name)
    bundle.validate()
    if bundle.kind != TRIPLE_PLANE:
        raise BundleError(f"the INM layout holds triple-plane materials only, this bundle is {bundle.kind!r}")
    for p, plane in bundle.planes.items():
        if plane.shape[0] != plane.shape[1]:
            raise BundleError(
                f"INM planes are square textures; plane {p!r} is {plane.shape[0]}x{plane.shape[1]}"
            )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    segments = tuple(bundle.inputs["rgb"])
    columns = inm_columns(segments)
    inm_mlp = to_inm_mlp(bundle.mlps["rgb"], columns)
    layers = {p: plane_to_layers(bundle.planes[p]) for p in INM_INPUT_ORDER}
    plane_info = [float(v) for p in ("U", "H", "D") for v in (layers[p].shape[1], layers[p].shape[0])]
    weights_fp32, biases = float_weight_blocks(inm_mlp)
    blobs: dict[str, bytes] = {
        "plane_info": _f32(plane_info),
        "plane_meta_bin": _f32(plane_info),
        **{p: _f32(layers[p]) for p in INM_INPUT_ORDER},
        "model_info": _f32(model_info_values(inm_mlp.widths)),
        "weight_int8": _f32(int8_stream(inm_mlp)),
        "scales": _f32(bundle.mlps["rgb"].scales),
        "weight_fp32": _f32(weights_fp32),
        "bias": _f32(biases),
    }
    if bundle.height is not None:
        blobs["height"] = _f32(bundle.height)
    plane_meta = _plane_meta(bundle, files, layers, plane_info)
    model_info = _model_info(bundle, files, segments, inm_mlp, layers)
    for role, obj in (("plane_meta", plane_meta), ("model_info_json", model_info)):
        try:
            blobs[role] = json.dumps(obj, indent=2, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise BundleError(f"INM metadata is not strict JSON ({e}); check the bundle's provenance") from e
    return {role: atomic_write_bytes(directory / files[role], data) for role, data in blobs.items()}


def import_inm(directory: str | Path, name: str) -> Bundle:
    """Rebuild the bundle :func:`export_inm` wrote to ``directory`` for ``name``.

    Every file's size is checked against the JSON metadata before it is read, and every
    value against the bundle's invariants. Raises :class:`BundleError` (only) if a file is
    missing, short, long or inconsistent.
    """
    files = inm_file_names(name)
    try:
        return _import(Path(directory), files)
    except BundleError:
        raise
    except Exception as e:  # a bug, not a file problem: keep the one-exception contract, say so
        raise BundleError(
            f"{directory}: internal error while importing ({type(e).__name__}: {e}); please report this"
        ) from e


def _import(d: Path, files: dict[str, str]) -> Bundle:
    meta = read_json(d / files["plane_meta"])
    info = read_json(d / files["model_info_json"])
    for where, m in (("plane meta", meta), ("model info", info)):
        if m.get("format") != INM_FORMAT or m.get("version") != INM_VERSION:
            raise BundleError(
                f"{where} JSON is not {INM_FORMAT} version {INM_VERSION}; "
                "re-export with `neumat export --layout inm`"
            )
    planes = _import_planes(d, files, meta)
    segments = _segments(info.get("inputs"))
    mlp = _import_mlp(d, files, info, segments)
    extras = _height(d, files, meta.get("height"))
    if not isinstance(info.get("provenance"), dict):
        raise BundleError(f"{files['model_info_json']}: 'provenance' must be an object")
    bundle = Bundle.triple_plane(
        planes["U"],
        planes["H"],
        planes["D"],
        mlp,
        order=tuple(s for s, _ in segments),
        angle_param=meta.get("angle_param"),
        colour_space=meta.get("colour_space"),
        provenance=info["provenance"],
        **extras,
    )
    if bundle.inputs["rgb"] != segments:
        raise BundleError(
            f"{files['model_info_json']}: input widths {segments} do not match the planes' channels"
        )
    bundle.validate()
    return bundle


def _import_planes(d: Path, files: dict[str, str], meta: dict) -> dict[str, np.ndarray]:
    """The U, H, D planes ``PlaneMeta_<name>.json`` describes, read from their layer files and
    checked against ``PlaneInfo`` (and ``PlaneMeta`` binary, when present)."""
    plane_recs = meta.get("planes")
    if not isinstance(plane_recs, dict) or sorted(plane_recs) != ["D", "H", "U"]:
        raise BundleError(f"{files['plane_meta']}: 'planes' must describe exactly U, H and D")
    planes, plane_info = {}, []
    for p in ("U", "H", "D"):
        rec = plane_recs[p]
        res = _int(rec, "res", 1, MAX_PLANE_RES, p)
        n_layers = _int(rec, "layers", 1, 32, p)
        channels = _int(rec, "channels", 4 * n_layers - 3, 4 * n_layers, p)
        dtype = rec.get("dtype")
        if dtype not in [dt.name for dt in PLANE_DTYPES]:
            raise BundleError(
                f"{files['plane_meta']}: plane {p} dtype must be float16 or float32, got {dtype!r}"
            )
        raw = read_f32(d / files[p], n_layers * res * res * 4).reshape(n_layers, res, res, 4)
        planes[p] = plane_from_layers(raw, channels, np.dtype(dtype))
        plane_info += [float(res), float(n_layers)]
    for role in ("plane_info", "plane_meta_bin"):
        path = d / files[role]
        if role == "plane_info" or path.exists():
            if read_f32(path, 6).tolist() != plane_info:
                raise BundleError(f"{path} disagrees with {files['plane_meta']} (expected {plane_info})")
    return planes


def _import_mlp(d: Path, files: dict[str, str], info: dict, segments: list[tuple[str, int]]) -> Int8MLP:
    """The INT8 MLP ``ModelInfo_<name>.json`` describes, read from the INM weight stream and
    scales and mapped back from INM's padded input columns to the bundle's ``segments``."""
    widths = info.get("widths")
    if (
        not isinstance(widths, list)
        or not 2 <= len(widths) <= MAX_LAYERS + 1
        or not all(type(w) is int and 1 <= w <= MAX_WIDTH for w in widths)
    ):
        raise BundleError(
            f"{files['model_info_json']}: 'widths' must be 2..{MAX_LAYERS + 1} integers "
            f"in [1, {MAX_WIDTH}], got {widths!r}"
        )
    if sum(w for _, w in segments) != widths[0]:
        raise BundleError(
            f"{files['model_info_json']}: inputs {segments} do not add up to the input width {widths[0]}"
        )
    columns = inm_columns(segments)
    inm_widths = (int(columns.size), *widths[1:])
    if info.get("inm_widths") != list(inm_widths):
        raise BundleError(
            f"{files['model_info_json']}: inm_widths {info.get('inm_widths')!r} differ from "
            f"{list(inm_widths)} implied by the inputs"
        )
    if (
        read_f32(d / files["model_info"], 2 * len(widths) - 1).tolist()
        != model_info_values(inm_widths).tolist()
    ):
        raise BundleError(f"{files['model_info']} disagrees with {files['model_info_json']}")
    scales = read_f32(d / files["scales"], 2 * (len(widths) - 1))
    used, padded = int8_stream_sizes(inm_widths)
    stream = read_f32(d / files["weight_int8"], (used, padded))
    inm_mlp = mlp_from_int8_stream(stream, inm_widths, scales)
    return from_inm_mlp(inm_mlp, columns, sum(w for _, w in segments))


def _plane_meta(bundle: Bundle, files: dict[str, str], layers: dict, plane_info: list[float]) -> dict:
    """Content of ``PlaneMeta_<name>.json``: plane dims, dtypes, packing, axes, height."""
    height = None
    if bundle.height is not None:
        assert bundle.height_range is not None  # validate() guarantees it
        h_min, h_max = (float(x) for x in bundle.height_range)
        height = {
            "file": files["height"],
            "shape": list(bundle.height.shape),
            "range": [h_min, h_max],
            "units": bundle.height_units,
            "inm_hf_offset": h_min,
            "inm_hf_scale": h_max - h_min,
        }
    return {
        "format": INM_FORMAT,
        "version": INM_VERSION,
        "layout": "float32 little-endian [layer][row][col][rgba]; texture x = col, y = row",
        "plane_axes": ["v", "u", "channel"],
        "axis_note": "row 0 = v 0 (top row); H/D planes: col = first, row = second angle coordinate",
        "channel_packing": "channel c -> layer c // 4, component c % 4; unused components are 0",
        "planes": {
            p: {
                "file": files[p],
                "res": int(layers[p].shape[1]),
                "layers": int(layers[p].shape[0]),
                "channels": int(bundle.planes[p].shape[2]),
                "dtype": bundle.planes[p].dtype.name,
            }
            for p in ("U", "H", "D")
        },
        "plane_info": plane_info,
        "height": height,
        "angle_param": bundle.angle_param,
        "colour_space": bundle.colour_space,
    }


def _model_info(
    bundle: Bundle, files: dict[str, str], segments: tuple, inm_mlp: Int8MLP, layers: dict
) -> dict:
    """Content of ``ModelInfo_<name>.json``: widths, input orders, encodings, scales, provenance."""
    words, file_values = int8_stream_sizes(inm_mlp.widths)
    return {
        "format": INM_FORMAT,
        "version": INM_VERSION,
        "kind": TRIPLE_PLANE,
        "network": "rgb",
        "widths": list(bundle.mlps["rgb"].widths),
        "inputs": [[s, int(w)] for s, w in segments],
        "inm_input_order": [[p, int(layers[p].shape[0]) * 4] for p in INM_INPUT_ORDER],
        "inm_widths": list(inm_mlp.widths),
        "inm_cuda_kernel_compatible": tuple(inm_mlp.widths) == INM_CUDA_WIDTHS,
        "model_info": [float(v) for v in model_info_values(inm_mlp.widths)],
        "activation": "relu",
        "output": "clamp01 in neumat; INM's CUDA kernel applies ReLU without the upper clamp",
        "weight_int8": {
            "file": files["weight_int8"],
            "weight_values": words,
            "file_values": file_values,
            "encoding": "float32 integers in [-127, 127]; 4 consecutive values = one dp4a word, first in "
            "the low byte; rows padded to a multiple of 4 inputs; layer after layer; zero tail",
        },
        "scales": {"file": files["scales"], "order": "[sa_0, sw_0, sa_1, sw_1, ...]"},
        "inm_cuda_scales": [float(v) for v in inm_cuda_scales(bundle.mlps["rgb"].scales)],
        "float_weights": {
            "file": files["weight_fp32"],
            "bias_file": files["bias"],
            "layout": "per layer: [in block][out block] 4x4 row-major blocks, dequantized",
        },
        "colour_space": bundle.colour_space,
        "angle_param": bundle.angle_param,
        "provenance": bundle.provenance,
    }


def _f32(values: Any) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _int(rec: Any, key: str, lo: int, hi: int, plane: str) -> int:
    v = rec.get(key) if isinstance(rec, dict) else None
    if type(v) is not int or not lo <= v <= hi:
        raise BundleError(f"INM plane {plane}: {key!r} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _segments(raw: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, list) or not all(
        isinstance(s, list)
        and len(s) == 2
        and isinstance(s[0], str)
        and type(s[1]) is int
        and 1 <= s[1] <= MAX_WIDTH
        for s in raw
    ):
        raise BundleError(f"INM model info 'inputs' must be [[plane, channels], ...], got {raw!r}")
    if sorted(s[0] for s in raw) != ["D", "H", "U"]:
        raise BundleError(f"INM model info 'inputs' must name U, H and D once each, got {raw!r}")
    return tuple((s[0], s[1]) for s in raw)


def _height(d: Path, files: dict[str, str], rec: Any) -> dict[str, Any]:
    if rec is None:
        return {}
    shape, r = (rec.get("shape"), rec.get("range")) if isinstance(rec, dict) else (None, None)
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(type(n) is int and 1 <= n <= MAX_PLANE_RES for n in shape)
    ):
        raise BundleError(f"{files['plane_meta']}: height 'shape' must be [rows, cols], got {shape!r}")
    if not (isinstance(r, list) and len(r) == 2 and all(is_finite_number(x) for x in r)):
        raise BundleError(f"{files['plane_meta']}: height 'range' must be [h_min, h_max], got {r!r}")
    if rec.get("units") not in HEIGHT_UNITS:
        raise BundleError(f"{files['plane_meta']}: height 'units' must be one of {list(HEIGHT_UNITS)}")
    height = read_f32(d / files["height"], shape[0] * shape[1]).reshape(shape)
    return {"height": height, "height_range": (float(r[0]), float(r[1])), "height_units": rec["units"]}
