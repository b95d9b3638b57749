"""Where neumat's Slang modules live (``mlp_int8.slang``, ``rusinkiewicz.slang``, ...), and the
one cache of the compute kernels compiled from them (render passes and the MLP backend).

A wheel installs them inside the package (``neumat/slang_shaders``); an editable or source
checkout keeps them in the repository's top-level ``shaders/`` folder. Both slangpy devices
(:func:`neumat.device.create`) and Falcor scripts add this folder to their include paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import slangpy as spy


def shader_dir() -> Path:
    """The folder holding neumat's ``.slang`` modules.

    Returns ``<package>/slang_shaders`` when it exists (wheel install), else the repository's
    ``shaders/`` (editable / development checkout).

    Raises:
        FileNotFoundError: neither folder exists (a broken install); the message names both.
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "slang_shaders", package.parents[1] / "shaders")
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        "neumat's Slang shaders were not found in "
        + " or ".join(str(c) for c in candidates)
        + "; reinstall neumat (pip install .) or run from a source checkout"
    )


def shader_path(name: str) -> Path:
    """Full path of the shader module ``name`` (e.g. ``"mlp_int8.slang"``); FileNotFoundError
    if it is missing."""
    path = shader_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"Slang module {name!r} not found in {path.parent}")
    return path


_kernels: dict[tuple, object] = {}


def compute_kernel(device: spy.Device, shader: str, entry: str, type_args: tuple[str, ...] = (),
                   link: tuple[str, str] | None = None) -> spy.ComputeKernel:
    """The compute kernel ``entry`` of ``shader`` (a module in the device's include path, e.g.
    ``"infer.slang"``), its generic parameters specialized to the Slang types ``type_args`` and
    linked with the module ``link = (name, source)`` when given. Compiled once per device and
    arguments — the one kernel cache of the render passes and the MLP backend (llvmpipe's JIT
    takes seconds per kernel)."""
    import slangpy as spy

    key = (device, shader, entry, tuple(type_args), link)
    if key not in _kernels:
        modules = [device.load_module(shader)]
        if link is not None:
            modules.append(device.load_module_from_source(*link))
        point = modules[0].entry_point(entry)
        if type_args:
            point = point.specialize([spy.SpecializationArg.from_type(t) for t in type_args])
        _kernels[key] = device.create_compute_kernel(device.link_program(modules, [point]))
    return _kernels[key]
