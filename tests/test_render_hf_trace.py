"""The hf_trace pass (shaders/hf_trace.slang) on analytic height fields over a plane, against
the exact intersector of neumat.material.heightfield (in world space and per shell segment), and
the max mip chain's bound."""

from __future__ import annotations

import numpy as np
import pytest

from neumat.material.heightfield import HeightField
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.passes import MASK, MAX_SEGMENTS, NORMAL, POSITION, SEGMENT_PRISMS, SEGMENTS, \
    TANGENT, UV, HfTracePass, RenderContext, ShellPass
from neumat.render.passes.base import TILES, tile_pixels
from neumat.render.passes.hf_trace import RELIEF_NORMAL, max_mip_chain
from neumat.render.reference.hf_trace import hf_segment_reference
from neumat.render.scene import HeightSpec, Scene
from height_fields import R, sinusoid, steps

RES = 64
SCALE = 0.12
"""Relief depth (UV = scene units on these planes)."""


def render(device, height, cam):
    """shell + hf_trace of a big plane z = 0 with u = x + 10, v = y + 10 (so UV = scene units)."""
    scene = Scene(shapes.plane(20.0, segments=20), cam, height=HeightSpec(height, 0.0, SCALE))
    ctx = RenderContext(device, cam.width, cam.height)
    shell = ShellPass(device, scene).execute(ctx, {})
    return shell, HfTracePass(device, scene).execute(ctx, shell)


CAMERAS = [
    Camera(eye=(0.5, -0.4, 0.9), target=(0.5, 0.5, 0.0), fov_y=40, width=RES, height=RES),
    Camera(eye=(0.1, -0.9, 0.35), target=(0.6, 0.6, 0.0), fov_y=35, width=RES, height=RES),  # grazing
]


@pytest.mark.parametrize("make_height", [sinusoid, steps])
@pytest.mark.parametrize("cam", CAMERAS, ids=["oblique", "grazing"])
def test01_hits_match_exact_intersection(device, make_height, cam):
    height = make_height()
    _, out = render(device, height, cam)
    o, d = cam.rays()
    t = HeightField(height, SCALE).first_hit(o.reshape(-1, 3), d.reshape(-1, 3)).reshape(RES, RES)
    p = o + np.where(np.isfinite(t), t, 0)[..., None] * d
    mask = out[MASK].numpy()[..., 0] > 0
    # the exact field is infinite, the plane ends at |x|, |y| = 10
    assert np.array_equal(mask, np.isfinite(t) & np.all(np.abs(p[..., :2]) < 10, axis=-1))
    uv, pos = out[UV].numpy(), out[POSITION].numpy()
    err_texels = np.abs(uv[mask, :2] - (p[mask, :2] + 10.0)).max(axis=1) * R
    # stated bound: 99% of pixels within 1/4 texel, all within 1 texel
    assert np.percentile(err_texels, 99) < 0.25 and err_texels.max() < 1.0
    assert np.abs(uv[mask, 2] * SCALE - p[mask, 2]).max() < 0.02 * SCALE + 1e-4
    assert np.percentile(np.abs(pos[mask, 3] - t[mask]), 99) < 1e-3


def test02_segment_parameter_matches_reference(device):
    cam = CAMERAS[1]
    height = sinusoid()
    shell, out = render(device, height, cam)
    seg = shell[SEGMENTS].numpy().reshape(RES, RES, MAX_SEGMENTS, 2, 4)
    prisms = shell[SEGMENT_PRISMS].numpy()
    if TILES in shell:  # the rasterized shell: no segment off its tiles (the slots are undefined)
        prisms[~tile_pixels(shell[TILES])] = -1
    k, s = hf_segment_reference(height, seg, prisms)
    hit = k >= 0
    assert np.array_equal(hit, out[MASK].numpy()[..., 0] > 0)
    ends = np.take_along_axis(seg, np.maximum(k, 0)[..., None, None, None], axis=2)[..., 0, :, :]
    ref_uv = ends[..., 0, 1:3] + s[..., None] * (ends[..., 1, 1:3] - ends[..., 0, 1:3])
    err = np.abs(out[UV].numpy()[hit, :2] - ref_uv[hit]).max(axis=1) * R
    assert np.percentile(err, 99) < 0.05 and err.max() < 0.5


def test03_normals_follow_the_height_gradient(device):
    cam = CAMERAS[0]
    height = sinusoid()
    _, out = render(device, height, cam)
    mask = out[MASK].numpy()[..., 0] > 0
    uv = out[UV].numpy()[mask, :2].astype(np.float64)
    expect = HeightField(height, SCALE).normal_at(uv % 1.0)
    got = out[RELIEF_NORMAL].numpy()[mask, :3]
    assert np.abs(got - expect).max() < 2e-4
    # the shading frame stays the mesh's (the BTF's directions are measured in it)
    assert np.allclose(out[NORMAL].numpy()[mask, :3], [0, 0, 1], atol=1e-6)
    assert np.allclose(out[TANGENT].numpy()[mask], [1, 0, 0, 1], atol=1e-6)


def test04_flat_height_gives_the_mesh_frame(device):
    cam = CAMERAS[0]
    _, out = render(device, np.full((R, R), 0.5, np.float32), cam)
    mask = out[MASK].numpy()[..., 0] > 0
    assert mask.all()
    assert np.allclose(out[NORMAL].numpy()[mask, :3], [0, 0, 1], atol=1e-6)
    assert np.allclose(out[UV].numpy()[mask, 2], 0.5, atol=1e-5)


@pytest.mark.parametrize("wrap", [True, False], ids=["periodic", "clamped"])
def test05_max_mip_chain_bounds_every_bilinear_patch(wrap):
    """Periodic (tiled map) or clamped (baked synthesized relief, any rows x cols) chains."""
    rng = np.random.default_rng(3)
    rows, cols = (12, 12) if wrap else (7, 13)  # not powers of two
    h = rng.uniform(0, 1, (rows, cols)).astype(np.float32)
    chain = max_mip_chain(h, wrap=wrap)
    assert chain[-1].shape == (1, 1) and chain[-1][0, 0] == h.max()
    g = rng.uniform(0, 1, (2000, 2)) * (cols, rows)  # points in texel-centre coordinates
    from neumat.material.interp import bilinear
    vals = bilinear(h, (g + 0.5) / (cols, rows), wrap=wrap)
    for level, m in enumerate(chain):
        cell = np.minimum(np.floor(g).astype(int) >> level, np.array(m.shape)[::-1] - 1)
        assert np.all(vals <= m[cell[:, 1], cell[:, 0]] + 1e-6)


def outline_band(mask: np.ndarray) -> np.ndarray:
    """Pixels within 1 pixel (8-neighbourhood) of the 4-neighbour outline of ``mask``."""
    edge = np.zeros_like(mask)
    for axis in (0, 1):
        diff = np.diff(mask, axis=axis)
        lead = [slice(None)] * 2
        trail = [slice(None)] * 2
        lead[axis], trail[axis] = slice(1, None), slice(None, -1)
        edge[tuple(lead)] |= diff
        edge[tuple(trail)] |= diff
    band = edge.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            band |= np.roll(np.roll(edge, dy, 0), dx, 1)
    return band


@pytest.mark.parametrize("n_lat", [16, 64])  # 64: pole fans need continuation rounds
def test06_displaced_sphere_silhouette_matches_mitsuba(device, n_lat):
    mi = pytest.importorskip("mitsuba", reason="the silhouette reference is a Mitsuba 3 render")
    if mi.variant() is None:
        mi.set_variant("scalar_rgb")
    from neumat.material.interp import bilinear

    res, lo, hi, repeat = 80, 0.0, 0.15, (2.0, 1.0)
    height = sinusoid()
    cam = Camera.orbit(target=(0.1, 0.0, 0.05), azimuth=20, elevation=15, distance=3.0, fov_y=50,
                       width=res, height=res)
    # the truly displaced mesh: 256 x 512 vertices moved along their normals
    fine = shapes.uv_sphere(1.0, 256, 512, uv_repeat=repeat)
    disp = lo + (hi - lo) * bilinear(height, fine.uvs.astype(np.float64) % 1.0, wrap=True)
    mesh = mi.Mesh("displaced", fine.positions.shape[0], fine.faces.shape[0])
    params = mi.traverse(mesh)
    pos = fine.positions + disp[:, None] * fine.normals
    params["vertex_positions"] = type(params["vertex_positions"])(pos.astype(np.float32).ravel())
    params["faces"] = type(params["faces"])(fine.faces.astype(np.uint32).ravel())
    params.update()
    scene = mi.load_dict({
        "type": "scene", "displaced": mesh, "integrator": {"type": "direct"},
        "sensor": {
            "type": "perspective", "fov": cam.fov_y, "fov_axis": "y",
            "to_world": mi.ScalarTransform4f().look_at(origin=list(cam.eye), target=list(cam.target), up=list(cam.up)),
            "film": {"type": "hdrfilm", "width": res, "height": res, "rfilter": {"type": "box"}, "pixel_format": "rgba"},
            "sampler": {"type": "stratified", "sample_count": 64},
        },
    })
    reference = np.array(mi.render(scene))[..., 3] >= 0.5  # alpha = pixel coverage
    ours_scene = Scene(shapes.uv_sphere(1.0, n_lat, 2 * n_lat, uv_repeat=repeat), cam,
                       height=HeightSpec(height, lo, hi))
    ctx = RenderContext(device, res, res)
    shell = ShellPass(device, ours_scene)
    out = HfTracePass(device, ours_scene, shell=shell).execute(ctx, shell.execute(ctx, {}))
    ours = out[MASK].numpy()[..., 0] > 0
    wrong = ours != reference
    assert not np.any(wrong & ~outline_band(reference))  # every mismatch within 1 px of the outline
    assert wrong.sum() < 0.05 * outline_band(reference).sum()
    # the relief matters: the undisplaced base sphere's outline is several pixels inside
    base = ShellPass(device, Scene(ours_scene.mesh, cam)).execute(ctx, {})[MASK].numpy()[..., 0] > 0
    assert np.sum(base != reference) > 5 * wrong.sum()


def test07_passes_reflect_their_slots_and_check_inputs(device):
    cam = Camera(width=8, height=8)
    scene = Scene(shapes.plane(), cam, height=HeightSpec(sinusoid(), 0.0, SCALE))
    shell, hf = ShellPass(device, scene), HfTracePass(device, scene)
    for p in (shell, hf):
        assert set(p.reflect()) == set(p.INPUTS) | set(p.OUTPUTS)
    assert shell.reflect()[SEGMENTS].channels == 8 * MAX_SEGMENTS
    with pytest.raises(ValueError, match="missing inputs"):
        hf.execute(RenderContext(device, 8, 8), {})
    with pytest.raises(ValueError, match="height field"):
        HfTracePass(device, Scene(shapes.plane(), cam))
    out = shell.execute(RenderContext(device, 8, 8), {})
    assert out[UV].numpy().shape == (8, 8, 4) and out[SEGMENT_PRISMS].numpy().dtype == np.int32
