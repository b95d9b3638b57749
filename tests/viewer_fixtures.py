"""Shared pieces of the viewer tests: a private Xvfb display, the viewer window on the leather
bundle, and the viewer's default framing computed independently of :mod:`neumat.viewer`."""

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from neumat.render.camera import Camera
from neumat.render.renderer import resolve_mesh
from neumat.viewer.xvfb import XvfbDisplay, xvfb_binary

ROOT = Path(__file__).resolve().parents[1]
LEATHER = ROOT / "assets" / "materials" / "leather.nmat"
GRAVEL = ROOT / "assets" / "materials" / "gravel.nmat"
CLOTH = ROOT / "assets" / "meshes" / "draped_cloth.obj"
PANEL = 330
VIEW_W, VIEW_H = 128, 96
TOLERANCE_LEVELS = 0
"""Max |viewport − Renderer image| in 8-bit levels: the viewport blits the sRGB bytes 1:1 with
nearest filtering and the Renderer is deterministic, so they must be equal."""


@pytest.fixture(scope="module")
def display():
    """A private Xvfb for this module (DISPLAY set while it runs)."""
    if xvfb_binary() is None:  # try to install it (root + apt), as `make setup` does
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_display.sh")], check=False, timeout=600)
    if xvfb_binary() is None:
        pytest.skip("Xvfb is not installed and scripts/ensure_display.sh could not install it "
                    "(needs root and apt: apt-get install xvfb libgl1-mesa-dri libgl1 libegl1)")
    with XvfbDisplay() as name:
        yield name


@pytest.fixture
def app(display, device):
    from neumat.viewer.app import App

    with App([LEATHER], mesh="sphere", window_size=(PANEL + VIEW_W, VIEW_H), visible=False, device=device,
             reload_interval_s=0.0, panel_width=PANEL) as a:
        a.capture_frames = True
        yield a


def direction(azimuth, elevation):
    a, e = math.radians(azimuth), math.radians(elevation)
    return (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e))


def framed_camera(mesh, azimuth, elevation, width=VIEW_W, height=VIEW_H):
    """The viewer's framing of ``mesh`` (shape name or file), computed here from the mesh bounds:
    target at the box centre, distance = 1.05 · half-diagonal / sin(fov/2) with fov 40°."""
    pos = resolve_mesh(mesh).positions
    lo, hi = pos.min(0), pos.max(0)
    dist = 1.05 * float(np.linalg.norm(hi - lo) / 2) / math.sin(math.radians(20.0))
    return Camera.orbit(tuple((lo + hi) / 2), azimuth, elevation, dist, width=width, height=height)


def sphere_camera(azimuth, elevation, width=VIEW_W, height=VIEW_H):
    """:func:`framed_camera` of the built-in unit sphere."""
    return framed_camera("sphere", azimuth, elevation, width, height)


def max_diff(a, b):
    """Max |a − b| of two uint8 images of the same shape, in levels."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
