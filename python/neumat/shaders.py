"""Where neumat's Slang modules live (``mlp_int8.slang``, ``rusinkiewicz.slang``, ...).

A wheel installs them inside the package (``neumat/slang_shaders``; not ``shaders``, which
would clash with this module); an editable or source checkout
keeps them in the repository's top-level ``shaders/`` folder. Both slangpy devices
(:func:`neumat.render.device.create`) and Falcor scripts add this folder to their include paths.
"""

from __future__ import annotations

from pathlib import Path


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
