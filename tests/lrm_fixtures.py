"""A synthetic LRM data set shared by the LRM test modules: the stone variants of
:mod:`neumat.lrm.synthetic` (16² texels) rendered by the frame renderer at 32² pixels along the
81-frame trajectory video and the 81 cross-joined frames. Written once per test session (about
2.5 s per material) into a session temporary folder."""

from __future__ import annotations

from pathlib import Path

from neumat.lrm.synthetic import stone_variants, write_synthetic_set

TEXELS, SIZE = 16, 32
"""Texture side of the rendered materials and frame side, pixels."""
_WRITTEN: dict[int, Path] = {}


def synthetic_set(tmp_path_factory, count: int) -> Path:
    """The data-set folder of the first ``count`` stone variants (written on first use)."""
    if count not in _WRITTEN:
        root = tmp_path_factory.mktemp(f"lrm_set{count}")
        write_synthetic_set(root, stone_variants(count, TEXELS), SIZE)
        _WRITTEN[count] = root
    return _WRITTEN[count]
