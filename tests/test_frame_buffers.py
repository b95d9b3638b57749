"""Passes keep their output and scratch buffers from frame to frame (RenderPass.frame_buffer):
a frame must not depend on what an earlier frame left in them, a graph runs a pass as one node
only, and a new frame size or device gets new buffers.

The frame-order test renders the shipped leather on the cloth (every technique: the shell's
tiles, hf_trace, prism shadows, synthesis, INT8 infer) at 96x80 from a framed view, then
from two other views (grazing, close; one with the height field off), then the framed view
again: the last frame must equal the first bit for bit, image and AOVs (its passes rewrite
every value they read; stale segments, lists or g-buffer slots would show).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumat.render.camera import Camera
from neumat.render.graph import RenderGraph
from neumat.render.lights import DirectionalLight
from neumat.render.passes.base import RenderContext, RenderPass, SlotSpec
from neumat.render.renderer import Renderer

LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"
SIZE = (96, 80)
AOVS = ("uv", "depth", "mask", "height", "normal", "btf")


def _frame(renderer: Renderer, camera: Camera, hf: bool = True):
    return renderer.render(camera, [DirectionalLight()], hf=hf, aovs=AOVS)


def test01_frame_does_not_read_earlier_frames(device):
    r = Renderer(LEATHER, "cloth", SIZE, device=device)
    framed = r.default_camera()
    first = _frame(r, framed)
    assert first.aovs["mask"].mean() > 0.1, "the framed view must see the material"
    _frame(r, Camera.orbit(azimuth=10, elevation=8, distance=3, width=SIZE[0], height=SIZE[1]))
    _frame(r, Camera.orbit(azimuth=100, elevation=70, distance=1.2, width=SIZE[0], height=SIZE[1]), hf=False)
    again = _frame(r, framed)
    np.testing.assert_array_equal(again.image, first.image)
    for name in AOVS:
        np.testing.assert_array_equal(again.aovs[name], first.aovs[name], err_msg=name)


def test02_buffers_kept_per_size_and_device(device):
    p = RenderPass()
    small, large = RenderContext(device, 8, 4), RenderContext(device, 16, 4)
    a = p.frame_buffer(small, "x", 4 * 32)
    assert p.frame_buffer(small, "x", 4 * 32) is a, "same size: the same buffer"
    assert p.frame_buffer(small, "y", 4 * 32) is not a, "another name: another buffer"
    b = p.frame_buffer(large, "x", 4 * 64)
    assert b is not a and b.size >= 4 * 64, "a new size gets a new buffer"
    out = p.allocate_output(large, "slot", SlotSpec("float32", 4))
    assert (out.width, out.height) == (16, 4) and out.buffer.size >= 4 * 4 * 64
    assert p.allocate_output(large, "slot", SlotSpec("float32", 4)).buffer is out.buffer


def test03_graph_runs_a_pass_once():
    class Source(RenderPass):
        OUTPUTS = ("value",)

        def reflect(self):
            return {"value": SlotSpec("float32", 1)}

    p = Source()
    g = RenderGraph().add("a", p)
    with pytest.raises(ValueError, match="already runs as node 'a'"):
        g.add("b", p)
    g.add("b", Source())  # another instance is fine
