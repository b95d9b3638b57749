"""Build a material's :class:`~neumat.data.BtfSource` from a small JSON-able spec.

The same spec is stored in the run's config, in every checkpoint and in the exported bundle's
provenance (``provenance["source"]``), so ``neumat eval X.nmat`` can rebuild the held-out data:

* ``{"kind": "material", "name": N, "resolution": R, "seed": S, "slices": {...}}`` —
  synthetic BTF of a registry material (:func:`neumat.data.material_source`);
* ``{"kind": "maps", "path": DIR, "resolution": R, "seed": S, "slices": {...}}`` — synthetic
  BTF rendered from a folder of PBR maps (:func:`neumat.data.maps_source`);
* ``{"kind": "btf", "path": FILE}`` — a measured UBO2014 BTF (:class:`neumat.data.Ubo2014Btf`).

A ``maps`` spec also holds the loader options :data:`MAPS_OPTIONS` (``height_scale`` in UV
units, ``normal_convention``, ``allow_flat``; a spec without one — older bundles — gets the
loader's default, e.g. :data:`neumat.data.pbr_io.DEFAULT_HEIGHT_SCALE`), ``resolution`` 0 means
the files' own resolution, and :func:`recorded_spec` adds ``files`` (role -> file name read),
which :func:`make_source` compares with what it reads again.

Synthetic sources are point-sampled when the spec has ``"sampling": "points"`` (then
``points`` holds :class:`neumat.data.PointBtfConfig` fields, e.g. ``uv_space``); otherwise
(older bundles, ``source.sampling = "slices"``) ``slices`` holds the
:class:`neumat.data.SyntheticBtfConfig` fields the run sets (``uv_space``, ``resolution`` of a
slice, ``n_views``, ``n_lights``). :mod:`neumat.data` is
imported only when a source is built; this module needs no torch.

Specs are read back from files (bundle provenance, checkpoints), so :func:`make_source` trusts
none: :func:`check_spec` accepts only the fields above (:data:`SPEC_FIELDS`,
:data:`POINTS_FIELDS`, :data:`SLICES_FIELDS`), each of its type and within its bound
(:data:`MAX_TEXTURE_RESOLUTION`, :data:`MAX_SLICE_RESOLUTION`, :data:`MAX_SLICE_DIRECTIONS`,
:data:`MAX_SLICE_PIXELS`, :data:`MAX_POOL_SIZE`, :data:`MAX_SEED`); anything else (e.g. a
``cache_dir``, ``supersample`` or ``n_views=1e9`` written into a bundle) is a
:class:`SourceError`. A recorded ``path`` is only ever read, never written (rendered views
are cached under the user's cache root, never beside the data): it must be an existing folder
(kind ``"maps"``) or regular file (kind ``"btf"``). ``neumat eval X.nmat`` therefore reads the
maps or BTF file the bundle names when they exist on this machine — the usual case of one's own
bundles — and --maps/--btf name the data otherwise.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data import BtfSource
from ..data.pbr_io import NORMAL_CONVENTIONS
from ..data.slice_renderer import NORMAL_SOURCES, UV_SPACES
from .config import SourceConfig

log = logging.getLogger(__name__)

SOURCE_KINDS = ("material", "maps", "btf")
"""Spec kinds :func:`make_source` builds."""
REGISTRY_RESOLUTION = 256
"""Texels per side of registry materials when ``source.resolution`` is 0."""
CUSTOM = "custom"
"""Spec kind recorded for a source object passed in directly (cannot be rebuilt from the spec)."""
MAPS_OPTIONS = ("height_scale", "normal_convention", "allow_flat")
""":class:`SourceConfig` fields passed to :func:`neumat.data.load_pbr_maps` (kind "maps" only)."""
SPEC_FIELDS = {
    "material": ("kind", "name", "resolution", "seed", "sampling", "points", "slices"),
    "maps": ("kind", "path", "resolution", "seed", "sampling", "points", "slices", *MAPS_OPTIONS, "files"),
    "btf": ("kind", "path"),
}
"""The fields a spec of each kind may hold (what :func:`source_spec` and :func:`recorded_spec` write)."""
POINTS_FIELDS = ("uv_space", "normal_source", "pool_size", "lod_fraction")
"""The :class:`neumat.data.PointBtfConfig` fields a spec's ``points`` may hold."""
SLICES_FIELDS = ("uv_space", "resolution", "n_views", "n_lights", "normal_source")
"""The :class:`neumat.data.SyntheticBtfConfig` fields a spec's ``slices`` may hold."""
MAX_TEXTURE_RESOLUTION = 4096
"""Largest texels per tile side of a synthetic material (``resolution``; 4K texture sets): its
maps then take about 0.7 GB of float32."""
MAX_SLICE_RESOLUTION = 512
"""Largest side of a rendered slice of a slice source, pixels (UBO2014's are 400)."""
MAX_SLICE_DIRECTIONS = 151
"""Largest number of view (and of light) directions of a slice source: UBO2014's 151."""
MAX_SLICE_PIXELS = 1 << 27
"""Largest ``n_views * n_lights * resolution²`` of a slice source: 1.5 GiB of float32 RGB for
the whole BTF (e.g. 151 x 151 slices of 64², or 12 x 12 of 512²)."""
MAX_POOL_SIZE = 1 << 25
"""Largest point-sampling pool, samples (8x the default; 44 bytes each, 1.4 GiB)."""
MAX_SEED = 2**32 - 1
"""Largest source seed (numpy's seed range)."""
SAMPLINGS = ("points", "slices")
"""Values of a spec's ``sampling`` (absent: slices)."""
DEFAULT_SLICES = {"resolution": 64, "n_views": 12, "n_lights": 12}
"""The :class:`neumat.data.SyntheticBtfConfig` defaults of a ``slices`` spec without them."""


def _int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and lo <= v <= hi


def _one_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in options


def _finite_at_least_0(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v) and v >= 0


def _name_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


RULES: tuple[tuple[str, str | None, Callable[[Any], bool], str], ...] = (
    ("name", None, lambda v: isinstance(v, str) and v != "", "a registry material name"),
    ("path", None, lambda v: isinstance(v, str) and v != "", "a path"),
    ("files", None, _name_map, "a map of role -> file name"),
    ("resolution", "resolution", _int_in(0, MAX_TEXTURE_RESOLUTION),
     f"an integer number of texels in [0, {MAX_TEXTURE_RESOLUTION}] (0: the maps' own, "
     f"{REGISTRY_RESOLUTION} for registry materials)"),
    ("seed", "seed", _int_in(0, MAX_SEED), f"an integer in [0, {MAX_SEED}]"),
    ("sampling", "sampling", _one_of(SAMPLINGS), f"one of {list(SAMPLINGS)}"),
    ("height_scale", "height_scale", _finite_at_least_0, "a finite number >= 0 (UV units)"),
    ("normal_convention", "normal_convention", _one_of(NORMAL_CONVENTIONS), f"one of {list(NORMAL_CONVENTIONS)}"),
    ("allow_flat", "allow_flat", lambda v: type(v) is bool, "true or false"),
    ("points.uv_space", "uv_space", _one_of(UV_SPACES), f"one of {list(UV_SPACES)}"),
    ("points.normal_source", "normal_source", _one_of(NORMAL_SOURCES), f"one of {list(NORMAL_SOURCES)}"),
    ("points.pool_size", "pool_size", _int_in(0, MAX_POOL_SIZE),
     f"an integer number of samples in [0, {MAX_POOL_SIZE}]"),
    ("points.lod_fraction", "lod_fraction", lambda v: _finite_at_least_0(v) and v <= 1, "a fraction in [0, 1]"),
    ("slices.uv_space", "uv_space", _one_of(UV_SPACES), f"one of {list(UV_SPACES)}"),
    ("slices.normal_source", "normal_source", _one_of(NORMAL_SOURCES), f"one of {list(NORMAL_SOURCES)}"),
    ("slices.resolution", "slice_resolution", _int_in(1, MAX_SLICE_RESOLUTION),
     f"an integer number of pixels in [1, {MAX_SLICE_RESOLUTION}]"),
    ("slices.n_views", "n_views", _int_in(1, MAX_SLICE_DIRECTIONS), f"an integer in [1, {MAX_SLICE_DIRECTIONS}]"),
    ("slices.n_lights", "n_lights", _int_in(1, MAX_SLICE_DIRECTIONS), f"an integer in [1, {MAX_SLICE_DIRECTIONS}]"),
)
"""``(spec key, SourceConfig field or None, test, what is expected)`` of every value a spec may
hold: :func:`check_spec` applies them to specs, :func:`source_spec` to the config's fields."""


class SourceError(ValueError):
    """A data source spec is incomplete, or the data package cannot build it."""


def source_spec(cfg: SourceConfig) -> dict[str, Any]:
    """The spec (see the module docstring) a :class:`SourceConfig` describes.

    Raises:
        SourceError: missing name/path, or an option out of range or given for a kind it does
            not apply to.
    """
    _check_options(cfg)
    if cfg.sampling == "points":
        sampling = {"sampling": "points", "points": {"uv_space": cfg.uv_space,
                                                     "normal_source": cfg.normal_source,
                                                     "pool_size": cfg.pool_size,
                                                     "lod_fraction": cfg.lod_fraction}}
    else:
        sampling = {"slices": {"uv_space": cfg.uv_space, "resolution": cfg.slice_resolution,
                               "n_views": cfg.n_views, "n_lights": cfg.n_lights,
                               "normal_source": cfg.normal_source}}
    if cfg.kind == "material":
        if not cfg.name:
            raise SourceError("source kind 'material' needs a name (--material NAME)")
        return {"kind": "material", "name": cfg.name, "resolution": cfg.resolution or REGISTRY_RESOLUTION,
                "seed": cfg.seed,
                **sampling}
    if cfg.kind == "maps":
        if not cfg.path:
            raise SourceError("source kind 'maps' needs a folder (--maps DIR)")
        return {"kind": "maps", "path": str(Path(cfg.path).resolve()), "resolution": cfg.resolution,
                "seed": cfg.seed, **{k: getattr(cfg, k) for k in MAPS_OPTIONS}, **sampling}
    if cfg.kind == "btf":
        if not cfg.path:
            raise SourceError("source kind 'btf' needs a file (--btf PATH)")
        return {"kind": "btf", "path": str(Path(cfg.path).resolve())}
    raise SourceError(f"no data source configured; pass one of --material NAME, --maps DIR, --btf PATH "
                      f"(source.kind must be one of {list(SOURCE_KINDS)}, got {cfg.kind!r})")


def _check_options(cfg: SourceConfig) -> None:
    """Raise :class:`SourceError` for source options out of range or foreign to ``cfg.kind``
    (nothing to check without a kind: :func:`source_spec` says a source is missing)."""
    if cfg.kind not in SOURCE_KINDS:
        return
    defaults = SourceConfig()
    foreign = [k for k in MAPS_OPTIONS if cfg.kind != "maps" and getattr(cfg, k) != getattr(defaults, k)]
    checks = [(not foreign, f"source option(s) {foreign} apply to --maps only (source kind is {cfg.kind!r})")]
    seen = set()
    for _, name, ok, expected in RULES:
        if name is not None and name not in seen:
            seen.add(name)
            checks.append((ok(getattr(cfg, name)), f"source.{name} must be {expected}, got {getattr(cfg, name)!r}"))
    if cfg.sampling == "slices":
        checks.append(_slice_pixels_ok(cfg.n_views, cfg.n_lights, cfg.slice_resolution))
    bad = [msg for ok, msg in checks if not ok]
    if bad:
        raise SourceError("; ".join(bad))


def _slice_pixels_ok(n_views: Any, n_lights: Any, resolution: Any) -> tuple[bool, str]:
    """``(ok, message)`` of the :data:`MAX_SLICE_PIXELS` bound (True when a factor is out of its own
    bound: its :data:`RULES` entry reports it)."""
    directions = _int_in(1, MAX_SLICE_DIRECTIONS)
    if not (directions(n_views) and directions(n_lights) and _int_in(1, MAX_SLICE_RESOLUTION)(resolution)):
        return True, ""
    pixels = n_views * n_lights * resolution**2
    return pixels <= MAX_SLICE_PIXELS, (
        f"a slice source of {n_views} views x {n_lights} lights x {resolution}² pixels holds {pixels} pixels, "
        f"more than {MAX_SLICE_PIXELS}: use fewer directions or smaller slices")


def check_spec(spec: Any) -> dict[str, Any]:
    """``spec`` itself when it is a spec :func:`make_source` may build (module docstring): only
    the fields of its kind (:data:`SPEC_FIELDS`, :data:`POINTS_FIELDS`, :data:`SLICES_FIELDS`),
    each passing its :data:`RULES` entry (types and bounds).

    Raises:
        SourceError: not a dict, a custom or unknown kind, or every unknown or bad field, named.
    """
    if not isinstance(spec, dict):
        raise SourceError(f"a data source spec must be a JSON object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind == CUSTOM:
        raise SourceError(
            f"the data source {spec.get('name')!r} was passed in by code and cannot be rebuilt by name; "
            "pass --material/--maps/--btf"
        )
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown data source kind {kind!r}; valid kinds: {list(SOURCE_KINDS)}")
    required = "name" if kind == "material" else "path"
    bad = [f"{required!r} is missing"] if required not in spec else []
    bad += _unknown(spec, SPEC_FIELDS[kind], "")
    for section, fields in (("points", POINTS_FIELDS), ("slices", SLICES_FIELDS)):
        if section in spec:
            if isinstance(spec[section], dict):
                bad += _unknown(spec[section], fields, f"{section}.")
            else:
                bad.append(f"{section} must be an object, got {spec[section]!r}")
    flat = {k: v for k, v in spec.items() if k not in ("points", "slices")}
    flat |= {f"{s}.{k}": v for s in ("points", "slices") if isinstance(spec.get(s), dict) for k, v in spec[s].items()}
    bad += [f"{key} must be {expected}, got {flat[key]!r}" for key, _, ok, expected in RULES
            if key in flat and not ok(flat[key])]
    if "slices" in spec and isinstance(spec["slices"], dict) and spec.get("sampling") != "points":
        ok, msg = _slice_pixels_ok(*(spec["slices"].get(k, DEFAULT_SLICES[k])
                                     for k in ("n_views", "n_lights", "resolution")))
        bad += [] if ok else [msg]
    if bad:
        raise SourceError(f"invalid {kind} data source spec: " + "; ".join(bad))
    return spec


def _unknown(values: dict[str, Any], allowed: tuple[str, ...], where: str) -> list[str]:
    """Messages for the keys of ``values`` outside ``allowed``."""
    return [f"unknown field {where + str(k)!r} (valid: {list(allowed)})" for k in values if k not in allowed]


def _check_path(spec: dict[str, Any]) -> None:
    """Raise :class:`SourceError` unless a maps spec's ``path`` is an existing folder and a btf
    spec's an existing regular file (read only; see the module docstring)."""
    if spec["kind"] not in ("maps", "btf"):
        return
    path = Path(spec["path"])
    if spec["kind"] == "maps" and not path.is_dir():
        raise SourceError(f"{str(path)!r} is not an existing folder of PBR maps; pass --maps DIR to name one")
    if spec["kind"] == "btf" and not path.is_file():
        raise SourceError(f"{str(path)!r} is not an existing UBO2014 BTF file; pass --btf FILE to name one")


def recorded_spec(spec: dict[str, Any], source: BtfSource) -> dict[str, Any]:
    """``spec`` plus ``files`` (role -> file name) when ``source`` was loaded from PBR maps:
    what the run records in checkpoints and bundle provenance."""
    meta = getattr(getattr(source, "material", None), "meta", None) or {}
    if spec.get("kind") != "maps" or "files" not in meta:
        return spec
    return {**spec, "files": dict(sorted(meta["files"].items()))}


def custom_spec(source: BtfSource) -> dict[str, Any]:
    """Spec recorded for a source object built by the caller (not rebuildable by name)."""
    return {"kind": CUSTOM, "name": str(getattr(source, "name", type(source).__name__))}


def make_source(spec: dict[str, Any]) -> BtfSource:
    """Build the source a spec describes, after :func:`check_spec` and the path check of the
    module docstring.

    Raises:
        SourceError: unknown kind or fields, a value out of bounds, a missing path, or the data
            package rejects the spec (unknown material, unreadable maps or BTF file).
    """
    _check_path(check_spec(spec))
    data = importlib.import_module("neumat.data")
    kind = spec["kind"]
    try:
        if kind in ("material", "maps"):
            config = (data.PointBtfConfig(**spec.get("points", {})) if spec.get("sampling") == "points"
                      else data.SyntheticBtfConfig(**spec.get("slices", {})))
            if kind == "material":
                resolution = int(spec.get("resolution", REGISTRY_RESOLUTION))
                return data.material_source(spec["name"], resolution=resolution,
                                            seed=int(spec.get("seed", 0)), config=config)
            return _maps_source(data, spec, config)
        return data.Ubo2014Btf(spec["path"])
    except (data.DataError, OSError, TypeError) as e:
        raise SourceError(f"cannot build the {kind} data source {spec.get('name') or spec.get('path')!r}: {e}") from e


def _maps_source(data: Any, spec: dict[str, Any], config: Any) -> BtfSource:
    """The ``maps`` source of ``spec``; warns when the folder's files differ from ``spec["files"]``."""
    resolution = int(spec.get("resolution", 256))
    options = {k: spec[k] for k in MAPS_OPTIONS if k in spec}
    source = data.maps_source(spec["path"], resolution=resolution or None, seed=int(spec.get("seed", 0)),
                              config=config, **options)
    recorded, now = spec.get("files"), source.material.meta.get("files")
    if recorded is not None and recorded != now:
        log.warning("%s: the maps read now %s differ from those recorded at training %s: held-out figures "
                    "will not match", spec["path"], now, recorded)
    return source
