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
"""

from __future__ import annotations

import importlib
import logging
import math
from pathlib import Path
from typing import Any

from ..data import BtfSource
from ..data.pbr_io import NORMAL_CONVENTIONS
from ..data.slice_renderer import NORMAL_SOURCES
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
                                                     "pool_size": cfg.pool_size}}
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
    checks = [
        (not foreign, f"source option(s) {foreign} apply to --maps only (source kind is {cfg.kind!r})"),
        (math.isfinite(cfg.height_scale) and cfg.height_scale >= 0,
         f"source.height_scale must be a finite number >= 0 (UV units), got {cfg.height_scale}"),
        (cfg.normal_convention in NORMAL_CONVENTIONS,
         f"source.normal_convention must be one of {list(NORMAL_CONVENTIONS)}, got {cfg.normal_convention!r}"),
        (cfg.normal_source in NORMAL_SOURCES,
         f"source.normal_source must be one of {list(NORMAL_SOURCES)}, got {cfg.normal_source!r}"),
        (cfg.resolution >= 0,
         f"source.resolution must be >= 0 texels (0: the maps' own, {REGISTRY_RESOLUTION} for registry "
         f"materials), got {cfg.resolution}"),
    ]
    bad = [msg for ok, msg in checks if not ok]
    if bad:
        raise SourceError("; ".join(bad))


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
    """Build the source a spec describes.

    Raises:
        SourceError: unknown kind, missing fields, or the data package rejects the spec
            (unknown material, unreadable maps or BTF file).
    """
    data = importlib.import_module("neumat.data")
    kind = spec.get("kind")
    try:
        if kind in ("material", "maps"):
            config = (data.PointBtfConfig(**spec.get("points", {})) if spec.get("sampling") == "points"
                      else data.SyntheticBtfConfig(**spec.get("slices", {})))
            if kind == "material":
                resolution = int(spec.get("resolution", REGISTRY_RESOLUTION))
                return data.material_source(spec["name"], resolution=resolution,
                                            seed=int(spec.get("seed", 0)), config=config)
            return _maps_source(data, spec, config)
        if kind == "btf":
            return data.Ubo2014Btf(spec["path"])
    except KeyError as e:
        raise SourceError(f"data source spec {spec!r} lacks {e}") from e
    except (data.DataError, OSError, TypeError) as e:
        raise SourceError(f"cannot build the {kind} data source {spec.get('name') or spec.get('path')!r}: {e}") from e
    if kind == CUSTOM:
        raise SourceError(
            f"the data source {spec.get('name')!r} was passed in by code and cannot be rebuilt by name; "
            "pass --material/--maps/--btf"
        )
    raise SourceError(f"unknown data source kind {kind!r}; valid kinds: {list(SOURCE_KINDS)}")


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
