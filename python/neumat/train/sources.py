"""Build a material's :class:`~neumat.data.BtfSource` from a small JSON-able spec.

The same spec is stored in the run's config, in every checkpoint and in the exported bundle's
provenance (``provenance["source"]``), so ``neumat eval X.nmat`` can rebuild the held-out data:

* ``{"kind": "material", "name": N, "resolution": R, "seed": S, "slices": {...}}`` —
  synthetic BTF of a registry material (:func:`neumat.data.material_source`);
* ``{"kind": "maps", "path": DIR, "resolution": R, "seed": S, "slices": {...}}`` — synthetic
  BTF rendered from a folder of PBR maps (:func:`neumat.data.maps_source`);
* ``{"kind": "btf", "path": FILE}`` — a measured UBO2014 BTF (:class:`neumat.data.Ubo2014Btf`).

``slices`` holds the :class:`neumat.data.SyntheticBtfConfig` fields the run sets
(``uv_space``, ``resolution`` of a slice, ``n_views``, ``n_lights``). :mod:`neumat.data` is
imported only when a source is built; this module needs no torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..data import BtfSource
from .config import SourceConfig

SOURCE_KINDS = ("material", "maps", "btf")
"""Spec kinds :func:`make_source` builds."""
CUSTOM = "custom"
"""Spec kind recorded for a source object passed in directly (cannot be rebuilt from the spec)."""


class SourceError(ValueError):
    """A data source spec is incomplete, or the data package cannot build it."""


def source_spec(cfg: SourceConfig) -> dict[str, Any]:
    """The spec (see the module docstring) a :class:`SourceConfig` describes."""
    slices = {"uv_space": cfg.uv_space, "resolution": cfg.slice_resolution, "n_views": cfg.n_views,
              "n_lights": cfg.n_lights}
    if cfg.kind == "material":
        if not cfg.name:
            raise SourceError("source kind 'material' needs a name (--material NAME)")
        return {"kind": "material", "name": cfg.name, "resolution": cfg.resolution, "seed": cfg.seed,
                "slices": slices}
    if cfg.kind == "maps":
        if not cfg.path:
            raise SourceError("source kind 'maps' needs a folder (--maps DIR)")
        return {"kind": "maps", "path": str(Path(cfg.path).resolve()), "resolution": cfg.resolution,
                "seed": cfg.seed, "slices": slices}
    if cfg.kind == "btf":
        if not cfg.path:
            raise SourceError("source kind 'btf' needs a file (--btf PATH)")
        return {"kind": "btf", "path": str(Path(cfg.path).resolve())}
    raise SourceError(f"no data source configured; pass one of --material NAME, --maps DIR, --btf PATH "
                      f"(source.kind must be one of {list(SOURCE_KINDS)}, got {cfg.kind!r})")


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
            slices = data.SyntheticBtfConfig(**spec.get("slices", {}))
            key = "name" if kind == "material" else "path"
            build = data.material_source if kind == "material" else data.maps_source
            return build(spec[key], resolution=int(spec.get("resolution", 256)), seed=int(spec.get("seed", 0)),
                         config=slices)
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
