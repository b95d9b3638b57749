"""Material kinds: what each kind of bundle declares to the renderer, eval and the viewer
(numpy-free declarations; no torch, no device).

A :class:`MaterialKind` says which inference pass renders the kind (an import path, loaded
only by the renderer), which numpy INT8 reference evaluates it (``neumat eval``, the held-out
figures), which techniques apply to it (height-field tracing with traced shadows,
ACF synthesis), which MLP precisions its pass runs and which extra AOVs it writes. The
renderer asks :func:`kind_of` instead of testing ``bundle.kind``; a new kind is one
:func:`register_kind` call next to its pass.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..bundle import NEUMIP, TRIPLE_PLANE


class MaterialKindError(ValueError):
    """A bundle of a kind no module has registered."""


@dataclass(frozen=True)
class MaterialKind:
    """Declaration of one bundle kind (``Bundle.kind``)."""

    name: str
    """The ``kind`` of the bundles it describes."""
    inference_pass: str
    """``"module:Class"`` of the render pass that shades it (graph node ``infer``); the class
    takes ``(device, bundle, debug=False)`` and has the ``btf`` / ``irradiance`` / ``shaded``
    outputs compose reads."""
    reference: str
    """``"module:function"`` of its numpy INT8 reference, ``f(bundle, uv, wi, wo)`` ->
    float32 ``[B, 3]`` BTF values (``uv`` float32 ``[B, 2]``, ``wi``/``wo`` float32 ``[B, 3]``
    unit directions in the local shading frame)."""
    height_tracing: bool
    """True: the renderer traces the bundle's height field (relief, silhouettes, shadows)."""
    synthesis: bool
    """True: ACF synthesis of the U plane applies."""
    precisions: tuple[str, ...]
    """MLP precisions the pass runs (``"int8"`` first: the bit-exact contract)."""
    extra_aovs: tuple[str, ...] = ()
    """AOVs only this kind writes (e.g. NeuMIP's ``offset``)."""
    debug_slots: tuple[str, ...] = ()
    """Debug slots of its pass beyond ``features`` / ``directions``."""
    infer_backends: tuple[str, ...] = ("slang",)
    """Where its pass can evaluate the MLP (``"slang"`` first: in the pass's own kernel on the
    render device; ``"native"``: the C++ CPU INT8 MLP between a gather and a decode kernel,
    :mod:`neumat.render.passes.infer_native`; ``"cuda"``: the same split around the dp4a CUDA MLP
    on a CUDA render device's own buffers, :mod:`neumat.render.passes.infer_cuda`)."""

    def load_pass(self) -> type:
        """The inference pass class (imported on first use)."""
        return _load(self.inference_pass)

    def load_reference(self) -> Callable[..., np.ndarray]:
        """The numpy INT8 reference function (imported on first use)."""
        return _load(self.reference)


def _load(path: str) -> Any:
    """The object at ``"module:name"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_KINDS: dict[str, MaterialKind] = {}


def register_kind(kind: MaterialKind) -> MaterialKind:
    """Add (or replace) the declaration of ``kind.name``; returns it."""
    _KINDS[kind.name] = kind
    return kind


def kind_of(bundle) -> MaterialKind:
    """The declaration of ``bundle``'s kind; :class:`MaterialKindError` if none is registered."""
    try:
        return _KINDS[bundle.kind]
    except KeyError:
        raise MaterialKindError(f"no material kind {bundle.kind!r} is registered; known: "
                                f"{', '.join(sorted(_KINDS))}") from None


TRIPLE_PLANE_KIND = register_kind(MaterialKind(
    TRIPLE_PLANE, "neumat.render.passes.infer:InferPass", "neumat.material.triple_plane:render_int8",
    height_tracing=True, synthesis=True, precisions=("int8", "fp32", "fp16"),
    infer_backends=("slang", "native", "cuda")))
"""Triple-plane features + INT8 MLP (:mod:`.triple_plane`, ``shaders/infer.slang``)."""

NEUMIP_KIND = register_kind(MaterialKind(
    NEUMIP, "neumat.render.passes.neumip:NeuMipPass", "neumat.material.neumip:render_neumip_int8",
    height_tracing=False, synthesis=False,
    precisions=("int8", "fp32"), extra_aovs=("offset",), debug_slots=("offset_features",)))
"""NeuMIP: the offset network learns the parallax itself, so the height field is never traced,
and the synthesis of its two textures at offset coordinates is not done (:mod:`.neumip`). Its MLPs
run in the pass's kernel only: the offset network's output decides where the rgb network's
features are read, so a host MLP would take two round trips per frame."""
