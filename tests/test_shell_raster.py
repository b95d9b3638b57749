"""The shell pass's rasterized visibility (passes/shell_raster.py, shaders/shell_raster.slang)
against its BVH walk: the same segments, prisms and g-buffer to the bit on the tiles it lists
(every pixel the walk sees the shell in; off them its slots are undefined), on curved and flat
meshes, grazing and close views, a camera whose near plane cuts the shell's box (triangles
straddling it cover the frame), and with candidate lists so short that most pixels fall back to the walk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neumat.render.passes.shell_raster as shell_raster
from neumat.bundle import load_bundle
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.passes import RenderContext, ShellPass
from neumat.render.passes.base import TILES, tile_pixels
from neumat.render.renderer import Renderer
from neumat.render.scene import HeightSpec, Scene

W, H = 96, 80
SHIPPED_LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"

VIEWS = {
    "framed": Camera.orbit(azimuth=-60, elevation=35, distance=4.0, width=W, height=H),
    "grazing": Camera.orbit(azimuth=10, elevation=4, distance=3.0, width=W, height=H),
    "close": Camera.orbit(azimuth=100, elevation=70, distance=1.2, width=W, height=H),
    "box_behind_eye": Camera(eye=(0.5, -0.6, 0.7), target=(-0.2, 0.3, 0.0), width=W, height=H),
}


def both(device, scene, gbuffer=True):
    """{slot: array} of the BVH walk and of the rasterized pass on the pixels of the raster
    pass's tiles (off them its slots are undefined, but for a mask of 0; the tile list is
    checked to hold every pixel the walk sees the shell in), and the raster pass."""
    ctx = RenderContext(device, W, H)
    walk = ShellPass(device, scene, gbuffer=gbuffer, visibility="bvh").execute(ctx, {})
    assert TILES not in walk  # only the raster pass lists tiles
    raster = ShellPass(device, scene, gbuffer=gbuffer, visibility="raster")
    out = raster.execute(ctx, {})
    tiles = out.pop(TILES)
    walk, out = {k: v.numpy() for k, v in walk.items()}, {k: v.numpy() for k, v in out.items()}
    listed = tiles.buffer.to_numpy().view(np.uint32)[: 1 + tiles.count]
    assert listed[0] == tiles.count and len(set(listed[1:])) == tiles.count
    on_tiles = tile_pixels(tiles)
    assert on_tiles[walk["segment_prisms"][..., 0] >= 0].all()  # every pixel of the shell is listed
    if "mask" in out:
        assert not out["mask"][~on_tiles].any()
    return {k: v[on_tiles] for k, v in walk.items()}, {k: v[on_tiles] for k, v in out.items()}, raster


def assert_same(walk, raster):
    from neumat.render.passes import SEGMENT_PRISMS, SEGMENTS

    assert walk.keys() == raster.keys()
    assert np.array_equal(walk[SEGMENT_PRISMS], raster[SEGMENT_PRISMS])
    used = np.repeat(walk[SEGMENT_PRISMS] >= 0, 8, axis=-1)  # unused segment values are undefined
    assert np.array_equal(walk[SEGMENTS][used], raster[SEGMENTS][used])
    for slot in walk.keys() - {SEGMENTS, SEGMENT_PRISMS}:
        assert np.array_equal(walk[slot], raster[slot]), slot


@pytest.fixture(scope="module")
def cloth_height():
    return load_bundle(SHIPPED_LEATHER)


@pytest.mark.parametrize("view", VIEWS)
def test01_shell_segments_match_the_bvh_walk(device, cloth_height, view):
    mesh = shapes.draped_sheet()
    scene = Scene(mesh, VIEWS[view], height=HeightSpec.from_bundle(cloth_height, mesh))
    walk, raster, shell = both(device, scene, gbuffer=False)
    assert_same(walk, raster)
    assert (walk["segment_prisms"][..., 0] >= 0).sum() > 200  # the shell is in view (pixels of the tiles)
    assert shell.raster.last_fallback < 0.05 * W * H  # the lists certify most pixels
    if view == "box_behind_eye":  # near-plane triangles widened to the frame
        near, far = shell_raster.depth_range(VIEWS[view], shell.bvh.bounds[0, :3], shell.bvh.bounds[0, 3:])
        assert near == pytest.approx(1e-4 * far)


@pytest.mark.parametrize("view", ["framed", "close"])
def test02_base_mesh_gbuffer_matches_the_bvh_walk(device, view):
    walk, raster, _ = both(device, Scene(shapes.uv_sphere(1.0), VIEWS[view]))
    assert_same(walk, raster)
    assert walk["mask"].sum() > 200


def test03_short_lists_fall_back_to_the_walk(device, cloth_height, monkeypatch):
    monkeypatch.setattr(shell_raster, "CANDIDATES", 2)
    mesh = shapes.draped_sheet()
    scene = Scene(mesh, VIEWS["framed"], height=HeightSpec.from_bundle(cloth_height, mesh))
    walk, raster, shell = both(device, scene, gbuffer=False)
    assert_same(walk, raster)
    covered = (walk["segment_prisms"][..., 0] >= 0).sum()
    assert shell.raster.last_fallback > 0.5 * covered  # a ray through a shell crosses >= 2


def test04_depth_range_brackets_the_box():
    cam = Camera(eye=(0.0, -5.0, 0.0), target=(0.0, 0.0, 0.0), width=8, height=8)
    near, far = shell_raster.depth_range(cam, np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]))
    assert near == pytest.approx(shell_raster.NEAR_FRACTION * 4.0)
    assert far == pytest.approx(6.0 * 1.01)
    inside = Camera(eye=(0.0, 0.0, 0.0), target=(0.0, 1.0, 0.0), width=8, height=8)
    near, far = shell_raster.depth_range(inside, np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]))
    assert far == pytest.approx(1.01) and near == pytest.approx(1e-4 * far)


def test05_unknown_visibility_is_refused(device):
    with pytest.raises(ValueError, match="unknown shell visibility"):
        ShellPass(device, Scene(shapes.plane(1.0), VIEWS["framed"]), visibility="rays")


def test06_rendered_frame_is_identical(device):
    """Every pass after the shell (hf_trace with its continuation rounds, shadows, synthesis,
    infer, compose) sees the same input: the same image to the bit."""
    r = Renderer(SHIPPED_LEATHER, "cloth", (W, H), device=device)
    cam = VIEWS["framed"]
    a = r.render(cam, visibility="bvh", aovs=("uv", "depth", "normal"))
    b = r.render(cam, visibility="raster", aovs=("uv", "depth", "normal"))
    assert np.array_equal(a.image, b.image)
    for k in a.aovs:
        assert np.array_equal(a.aovs[k], b.aovs[k]), k


def test07_shared_walls_are_drawn_once(device, cloth_height):
    """The two copies of each wall two neighbouring prisms share (byte-identical rows) pair up;
    the candidate pass draws one of each pair (test01 checks the lists still hold both)."""
    mesh = shapes.draped_sheet()
    shell = ShellPass(device, Scene(mesh, VIEWS["framed"], height=HeightSpec.from_bundle(cloth_height, mesh)),
                      gbuffer=False, visibility="raster")
    rows = shell.raster.copies.to_numpy().view(np.int32)
    tri = shell.bvh.order.shape[0]
    paired = np.flatnonzero(rows >= 0)
    assert np.array_equal(rows[rows[paired]], paired)  # a copy's copy is the triangle itself
    pos = shell.soup.positions
    assert np.array_equal(pos[paired], pos[rows[paired]]) and (shell.soup.prism[paired] != shell.soup.prism[rows[paired]]).all()
    # a 32x32-quad sheet: every interior edge's wall (2 triangles) is shared
    assert shell.raster.drawn == tri - len(paired) // 2 and len(paired) > 0.5 * tri


def test08_triangle_copies_pairs_only():
    a, b, c = (np.arange(12, dtype=np.float32).reshape(3, 4) + v for v in (0.0, 0.5, 0.25))
    rows = np.concatenate([a, b, a, c, b, a[::-1]])  # triangles: a, b, a, c, b, a's rows reversed
    assert shell_raster.triangle_copies(rows).tolist() == [2, 4, 0, -1, 1, -1]
    three = np.concatenate([a, a, a, b])  # a group of three is left alone
    assert shell_raster.triangle_copies(three).tolist() == [-1, -1, -1, -1]
