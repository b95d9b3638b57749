"""Capture what a neumat pass dispatches, and bind it to a Falcor ``ShaderVar``.

Capture: :func:`capture_dispatches` runs a slangpy pass's ``execute`` with its compute kernels
swapped for recorders, so the pass builds every argument exactly as it does for slangpy (same
code, no copy of its parameter logic) and nothing is dispatched. Each record names the kernel
(module, entry, specialization, link module: the key of :func:`neumat.slang_kernels.compute_kernel`'s
cache) and holds its keyword arguments: ints, floats, lists (vectors), nested dicts (structs)
and slangpy buffers.

Bind: :func:`bind` walks those arguments against the wrapper's reflected types
(:mod:`.wrapper`) and assigns them through ``var[name] = value`` — Python ints / floats as is
(Falcor converts by reflection), vectors as ``falcor.float3(...)`` etc., structs member by
member, buffers through a caller's ``buffer_for(spy_buffer, SlangType)`` (the driver uploads a
buffer once, ``Buffer.from_numpy``, and maps each output back to its Falcor twin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .wrapper import PREFIX, EntryPoint, SlangType


@dataclass
class Dispatch:
    """One captured kernel dispatch."""

    shader: str
    entry: str
    type_args: tuple[str, ...]
    link_source: str
    thread_count: tuple[int, int, int]
    """Threads in x, y, z (pixels: width, height, 1)."""
    params: dict = field(default_factory=dict)
    """Keyword arguments as the pass gave them (names of the entry point's parameters)."""


class _Recorder:
    """Stands in for a slangpy ``ComputeKernel``: ``dispatch`` records instead of running."""

    def __init__(self, key: tuple, sink: list[Dispatch]) -> None:
        self.key, self.sink = key, sink

    def dispatch(self, thread_count, vars=None, **kwargs) -> None:  # noqa: A002 (slangpy's name)
        if vars:
            raise ValueError("captured kernels bind entry-point parameters only (vars= was given)")
        _, shader, entry, type_args, link = self.key
        self.sink.append(Dispatch(shader, entry, tuple(type_args), link[1] if link else "",
                                  tuple(int(x) for x in thread_count), dict(kwargs)))


def _kernel_keys() -> dict[int, tuple]:
    """id(kernel) -> cache key of every kernel compiled so far (module, entry, args, link)."""
    from .. import slang_kernels

    return {id(k): key for key, k in slang_kernels._kernels.items()}  # the one kernel cache


def capture_dispatches(render_pass, ctx, inputs: dict) -> tuple[dict, list[Dispatch]]:
    """Run ``render_pass.execute(ctx, inputs)`` with every compute kernel it holds (attributes
    and dicts of kernels, e.g. InferPass's per-precision kernels) recording instead of
    dispatching; returns (its outputs — allocated, never written — and the dispatches in order).
    A kernel the pass compiles on first use inside ``execute`` runs for real that once; the
    capture is then repeated with it swapped too. A pass that does host work on kernel results
    (the native infer backend) cannot be captured: pick the ``slang`` backend first."""
    from .. import slang_kernels

    for _ in range(3):
        compiled = len(slang_kernels._kernels)
        outputs, sink = _capture_once(render_pass, ctx, inputs)
        if len(slang_kernels._kernels) == compiled:
            return outputs, sink
    raise RuntimeError(f"{type(render_pass).__name__} keeps compiling kernels inside execute; cannot capture it")


def _capture_once(render_pass, ctx, inputs: dict) -> tuple[dict, list[Dispatch]]:
    keys = _kernel_keys()
    sink: list[Dispatch] = []
    swapped: list[tuple[object, object, object]] = []  # (container, key, original)
    for name, value in list(vars(render_pass).items()):
        if id(value) in keys:
            swapped.append((render_pass, name, value))
            setattr(render_pass, name, _Recorder(keys[id(value)], sink))
        elif isinstance(value, dict):
            for k, v in list(value.items()):
                if id(v) in keys:
                    swapped.append((value, k, v))
                    value[k] = _Recorder(keys[id(v)], sink)
    try:
        outputs = render_pass.execute(ctx, inputs)
    finally:
        for container, key, original in reversed(swapped):
            if isinstance(container, dict):
                container[key] = original
            else:
                setattr(container, key, original)
    return outputs, sink


def vector_value(falcor, t: SlangType, value):
    """``falcor.<scalar><n>(...)`` (e.g. ``float3``) from a list / tuple / array of ``t.count``."""
    v = np.asarray(value).ravel()
    if v.size != t.count:
        raise ValueError(f"{t.name} needs {t.count} values, got {v.size}")
    cast = float if t.scalar == "float" else bool if t.scalar == "bool" else int
    return getattr(falcor, f"{t.scalar}{t.count}")(*(cast(x) for x in v))


def is_buffer(value) -> bool:
    """True for a device buffer argument (anything with ``to_numpy``, e.g. ``slangpy.Buffer``)."""
    return hasattr(value, "to_numpy") and not isinstance(value, np.ndarray)


def bind(var, params: dict, types: dict[str, SlangType], falcor, buffer_for: Callable) -> list[str]:
    """Assign ``params`` to ``var`` (a Falcor ``ShaderVar``, or anything with ``__setitem__`` /
    ``__getitem__``) by the reflected ``types``; returns the dotted names of every leaf bound.

    Raises:
        KeyError: a parameter the types do not declare; ValueError: a value that does not fit
        its type (wrong vector length, a dict for a non-struct).
    """
    bound: list[str] = []
    for name, value in params.items():
        if name not in types:
            raise KeyError(f"parameter {name!r} is not declared (have {sorted(types)})")
        t = types[name]
        if t.kind == "struct":
            if not isinstance(value, dict):
                raise ValueError(f"{name}: struct {t.name} needs a dict, got {type(value).__name__}")
            bound += [f"{name}.{leaf}" for leaf in bind(var[name], value, t.fields, falcor, buffer_for)]
            continue
        if t.kind == "resource":
            if not is_buffer(value):
                raise ValueError(f"{name}: {t.name} needs a buffer, got {type(value).__name__}")
            var[name] = buffer_for(value, t)
        elif t.kind == "vector":
            var[name] = vector_value(falcor, t, value)
        elif t.kind == "scalar":
            var[name] = float(value) if t.scalar == "float" else bool(value) if t.scalar == "bool" else int(value)
        else:
            raise ValueError(f"{name}: cannot bind a parameter of kind {t.kind!r} ({t.name})")
        bound.append(name)
    return bound


def declared_leaves(types: dict[str, SlangType], prefix: str = "") -> list[str]:
    """Dotted names of every bindable leaf the reflected ``types`` declare (struct members
    expanded): what :func:`bind` must have bound for a complete dispatch."""
    out: list[str] = []
    for name, t in types.items():
        if t.kind == "struct":
            out += declared_leaves(t.fields, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def bind_dispatch(root_var, dispatch: Dispatch, ep: EntryPoint, falcor, buffer_for: Callable) -> list[str]:
    """Bind one captured dispatch to a wrapper program's root (globals ``arg_<name>``,
    :mod:`.wrapper`); returns the bound leaves without the prefix. ValueError naming any
    declared parameter the pass did not give (it would run with stale or zero data)."""
    types = {f"{PREFIX}{k}": t for k, t in ep.params.items()}
    params = {f"{PREFIX}{k}": v for k, v in dispatch.params.items()}
    bound = [b.removeprefix(PREFIX) for b in bind(root_var, params, types, falcor, buffer_for)]
    missing = sorted(set(declared_leaves(ep.params)) - set(bound))
    if missing:
        raise ValueError(f"{dispatch.shader}:{dispatch.entry} dispatched without {missing}")
    return bound
