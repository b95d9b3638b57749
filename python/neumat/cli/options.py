"""Parsers of the CLI's compound options (``--size WxH``, comma-separated numbers): a value or
:class:`typer.BadParameter` (exit 2) naming the option; the shared ``--device`` option of the
commands that render (:data:`DeviceOption`, :func:`open_device`)."""

from __future__ import annotations

import contextlib
import math
from typing import Annotated

import typer

from ..device import DEVICE_CHOICES, DEVICE_ENV
from ..render.camera import MAX_IMAGE_SIDE, check_image_size

DEVICE_HELP = (f"Render device type: {', '.join(DEVICE_CHOICES)} (auto: a Vulkan GPU, else CUDA, else Vulkan on "
               f"lavapipe; default: ${DEVICE_ENV} if set, else auto). A type this machine lacks is an error.")
DeviceOption = Annotated[str | None, typer.Option("--device", help=DEVICE_HELP)]
"""``--device vulkan|cuda|auto`` of ``render``, ``view``, ``doctor`` (one value) and ``bench frames``
(repeatable there: ``list[str]`` with the same help)."""


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


def check_device_choice(choice: str | None) -> str | None:
    """``--device`` as a :func:`neumat.device.create` ``prefer`` (``auto`` -> None); None when not
    given (then ``$NEUMAT_DEVICE`` decides). :class:`typer.BadParameter` for other words."""
    if choice is None:
        return None
    if choice not in DEVICE_CHOICES:
        raise typer.BadParameter(f"--device must be one of {list(DEVICE_CHOICES)}, got {choice!r}")
    return None if choice == "auto" else choice


def open_device(choice: str | None):
    """The process-wide slangpy device ``--device`` asks for (:func:`neumat.device.shared_device`;
    not given: :func:`~neumat.device.default_device`); exit 1 with a one-line error when this
    machine has no device of that type."""
    from ..device import DeviceError, default_device, shared_device

    prefer = check_device_choice(choice)
    try:
        return default_device() if choice is None else shared_device(prefer)
    except DeviceError as e:
        typer.echo(f"error: --device {choice or 'auto'}: {e}", err=True)
        raise typer.Exit(1) from None
