"""Parsers of the CLI's compound options (``--size WxH``, comma-separated numbers): a value or
:class:`typer.BadParameter` (exit 2) naming the option."""

from __future__ import annotations

import contextlib
import math

import typer

from ..render.camera import MAX_IMAGE_SIDE, check_image_size


def parse_floats(text: str, name: str, counts: tuple[int, ...]) -> list[float]:
    """``"a,b[,c]"`` -> finite floats, as many as one of ``counts``; ``name`` is the option."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise typer.BadParameter(f"{name} must be {' or '.join(str(c) for c in counts)} comma-separated numbers, got {text!r}")
    return values


def parse_size(text: str, name: str = "--size") -> tuple[int, int]:
    """``"800x600"`` -> (800, 600): whole pixels, 1 to :data:`MAX_IMAGE_SIDE` per side."""
    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        with contextlib.suppress(ValueError):
            return check_image_size((int(parts[0]), int(parts[1])))
    raise typer.BadParameter(f"{name} must look like 512x512, at most {MAX_IMAGE_SIDE} pixels per side, got {text!r}")
