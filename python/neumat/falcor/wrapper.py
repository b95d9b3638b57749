"""Entry-point parameters -> a Slang wrapper with global parameters (what Falcor can bind).

neumat's kernels take their arguments as ``uniform`` entry-point parameters (slangpy binds them
by name). Falcor's Python ``ComputePass`` exposes only the program's global root
(``pass.root_var``), not the entry-point parameter block, and compiles non-generic entry points
only (no specialization argument in its Python ``ProgramDesc``). So each kernel runs through a
generated wrapper module: the kernel's own module source with its entry-point attributes
(``[shader("compute")]``, ``[numthreads(...)]``) removed — calling a function that still carries
them crashed slangpy's lavapipe pipeline — followed by one global per parameter and a
non-generic entry point calling the kernel function::

    export static const int MLP_UNROLL_DOTS = 4;   // the kernel's link module, if any
    <infer.slang, entry attributes stripped>
    import render_types; ...                        // modules it imports, transitively
    uniform InferFrame arg_frame;                   // one global per uniform parameter
    ...
    [shader("compute")] [numthreads(8, 8, 1)]
    void neumat_falcor_main(uint3 tid : SV_DispatchThreadID)
    { infer_int8<Int8Mlp<...>>(tid, arg_frame, ...); }

The parameter list (names and Slang types) comes from slangpy reflection of the specialized
kernel (:func:`entry_parameters`); the source itself is pure text (:func:`wrapper_source`).
The same wrapper compiles and runs through slangpy on lavapipe (tests compare it bit for bit
with the pass's own kernel), so only Falcor's compilation of it (its bundled Slang version) and
its binding are unverified here.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

WRAPPER_ENTRY = "neumat_falcor_main"
"""Entry point of every wrapper module."""
PREFIX = "arg_"
"""Prefix of the wrapper's globals (avoids clashes with the imported module's names)."""


@dataclass(frozen=True)
class SlangType:
    """The reflected type of one parameter or field (enough to bind a value to it)."""

    name: str
    """Slang type name, e.g. ``vector<float,3>``, ``CameraParams``,
    ``StructuredBuffer<vector<float,4>, DefaultDataLayout>``."""
    kind: str
    """``"scalar"``, ``"vector"``, ``"struct"``, ``"resource"`` (or another reflection kind)."""
    scalar: str = ""
    """Element scalar of a scalar / vector: ``"float"``, ``"int"``, ``"uint"``, ``"bool"``."""
    count: int = 1
    """Components of a vector (1 for a scalar)."""
    element_size: int = 0
    """Bytes per element of a structured buffer (0 for other types)."""
    fields: dict[str, SlangType] = field(default_factory=dict)
    """Struct members by name (empty for other types)."""


@dataclass(frozen=True)
class EntryPoint:
    """A kernel to wrap: module, entry point, generic arguments, link module, parameters."""

    shader: str
    """Module file name in ``shaders/``, e.g. ``"compose.slang"``."""
    entry: str
    """Entry-point function name."""
    type_args: tuple[str, ...] = ()
    """Slang types specializing a generic entry point (e.g. ``("Int8Mlp<24, ...>",)``)."""
    link_source: str = ""
    """Source of the link-time constant module the kernel is linked with ('' for none)."""
    thread_param: str = "tid"
    """The ``SV_DispatchThreadID`` parameter (always the first, ``uint3``)."""
    params: dict[str, SlangType] = field(default_factory=dict)
    """Uniform parameters in declaration order."""
    group_size: tuple[int, int, int] = (8, 8, 1)
    """Threads per group (the kernel's ``[numthreads]``)."""
    imports: tuple[str, ...] = ()
    """Modules the shader imports, transitively (their types name parameters, e.g.
    ``CameraParams`` of ``render_types``); the wrapper imports them too."""


_SCALARS = {"float32": "float", "int32": "int", "uint32": "uint", "bool": "bool"}


def slang_type(type_layout) -> SlangType:
    """A :class:`SlangType` from a slangpy ``TypeLayoutReflection``."""
    kind = type_layout.kind.name
    t = type_layout.type
    if kind == "struct":
        return SlangType(t.full_name, kind, fields={f.name: slang_type(f.type_layout) for f in type_layout.fields})
    if kind in ("scalar", "vector"):
        scalar = _SCALARS.get(t.scalar_type.name, t.scalar_type.name)
        return SlangType(t.full_name, kind, scalar=scalar, count=int(t.col_count) if kind == "vector" else 1)
    if kind == "resource":
        element = type_layout.element_type_layout
        return SlangType(t.full_name, kind, element_size=int(element.size) if element is not None else 0)
    return SlangType(t.full_name, kind)


_IMPORT = re.compile(r"^\s*(?:__exported\s+)?import\s+([\w.]+)\s*;", re.MULTILINE)


_ENTRY_ATTRIBUTES = re.compile(r'\[\s*shader\s*\(\s*"compute"\s*\)\s*\]|\[\s*numthreads\s*\([^)]*\)\s*\]')


def strip_entry_attributes(source: str) -> str:
    """``source`` without ``[shader("compute")]`` / ``[numthreads(...)]`` attributes (its entry
    points become plain functions the wrapper calls)."""
    return _ENTRY_ATTRIBUTES.sub("", source)


def module_imports(shader: str) -> tuple[str, ...]:
    """The modules ``shader`` (a file in neumat's ``shaders/``) imports, transitively, in first-seen
    order (modules outside ``shaders/`` are listed but not followed)."""
    from ..slang_kernels import shader_dir

    seen: list[str] = []
    todo = [shader.removesuffix(".slang")]
    while todo:
        path = shader_dir() / f"{todo.pop(0).replace('.', '/')}.slang"
        if not path.is_file():
            continue
        for name in _IMPORT.findall(path.read_text()):
            if name not in seen:
                seen.append(name)
                todo.append(name)
    return tuple(seen)


def entry_parameters(device, shader: str, entry: str, type_args: tuple[str, ...] = (),
                     link_source: str = "") -> EntryPoint:
    """Reflect ``entry`` of ``shader`` (specialized to ``type_args``) on a slangpy ``device``."""
    import slangpy as spy

    modules = [device.load_module(shader)]
    if link_source:
        modules.append(device.load_module_from_source(f"neumat_falcor_link_{zlib.crc32(link_source.encode()):08x}", link_source))
    point = modules[0].entry_point(entry)
    if type_args:
        point = point.specialize([spy.SpecializationArg.from_type(t) for t in type_args])
    layout = device.link_program(modules, [point]).layout.entry_points[0]
    params = list(layout.parameters)
    group = tuple(int(x) for x in layout.compute_thread_group_size)
    return EntryPoint(shader, entry, tuple(type_args), link_source, params[0].name,
                      {p.name: slang_type(p.type_layout) for p in params[1:]}, group, module_imports(shader))


def wrapper_source(ep: EntryPoint, module_source: str | None = None) -> str:
    """The wrapper module of ``ep`` (module docstring): ``module_source`` (default: the text of
    ``shaders/<ep.shader>``) with its entry-point attributes stripped, globals ``arg_<name>`` of
    the reflected types and one non-generic compute entry point :data:`WRAPPER_ENTRY` calling
    ``ep.entry``."""
    if module_source is None:
        from ..slang_kernels import shader_path

        module_source = shader_path(ep.shader).read_text()
    callee = ep.entry + (f"<{', '.join(ep.type_args)}>" if ep.type_args else "")
    lines = [f"// generated by neumat.falcor.wrapper: {ep.shader} {callee}"]
    if ep.link_source:
        lines.append(ep.link_source.rstrip("\n"))
    lines += [strip_entry_attributes(module_source).rstrip("\n"), f"// ---- wrapper of {callee}"]
    lines += [f"import {m};" for m in ep.imports]
    lines += [f"uniform {t.name} {PREFIX}{name};" for name, t in ep.params.items()]
    args = ", ".join([ep.thread_param] + [f"{PREFIX}{name}" for name in ep.params])
    gx, gy, gz = ep.group_size
    lines += ['[shader("compute")]', f"[numthreads({gx}, {gy}, {gz})]",
              f"void {WRAPPER_ENTRY}(uint3 {ep.thread_param} : SV_DispatchThreadID)",
              "{", f"    {callee}({args});", "}"]
    return "\n".join(lines) + "\n"


def wrapper_globals(params: dict) -> dict:
    """A pass's dispatch arguments renamed to the wrapper's globals (``name`` -> ``arg_name``)."""
    return {f"{PREFIX}{k}": v for k, v in params.items()}
