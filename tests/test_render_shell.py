"""The shell pass (shaders/shell.slang): base-mesh hits against closed-form ray-plane and
ray-sphere intersections, and shell segments against the brute-force numpy reference."""

from __future__ import annotations

import numpy as np

from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.passes import MASK, MAX_SEGMENTS, NORMAL, POSITION, SEGMENT_PRISMS, SEGMENTS, \
    UV, RenderContext, ShellPass
from neumat.render.passes.base import TILES, tile_pixels
from neumat.render.reference.shell import shell_reference
from neumat.render.scene import HeightSpec, Scene, shell_soup

RES = 64


def run(device, scene):
    cam = scene.camera
    return ShellPass(device, scene).execute(RenderContext(device, cam.width, cam.height), {})


def segments_of(out):
    """([H, W, S, 2, 4] segments, [H, W, S] prisms) of a shell pass output (no segment off the
    rasterized shell's tiles: its slots are undefined there)."""
    seg, prisms = out[SEGMENTS].numpy(), out[SEGMENT_PRISMS].numpy()
    if TILES in out:
        prisms[~tile_pixels(out[TILES])] = -1
    return seg.reshape(seg.shape[:2] + (MAX_SEGMENTS, 2, 4)), prisms


def test01_plane_hit_matches_closed_form(device):
    cam = Camera(eye=(0.3, -1.7, 1.1), target=(0.1, 0.2, 0.0), fov_y=50, width=RES, height=RES)
    mesh = shapes.plane(2.0, center=(0.0, 0.0, 0.0), uv_per_unit=1.5, segments=3)
    out = run(device, Scene(mesh, cam))
    o, d = cam.rays()
    t = -o[..., 2] / d[..., 2]
    p = o + t[..., None] * d
    inside = (np.abs(p[..., 0]) < 1) & (np.abs(p[..., 1]) < 1)
    mask = out[MASK].numpy()[..., 0]
    edge = (np.abs(np.abs(p[..., 0]) - 1) < 0.02) | (np.abs(np.abs(p[..., 1]) - 1) < 0.02)
    assert np.array_equal(mask[~edge] > 0, inside[~edge])
    sel = inside & ~edge
    pos, uv = out[POSITION].numpy(), out[UV].numpy()
    # float32 ray-triangle arithmetic at distances ~2: relative 1e-5
    assert np.abs(pos[sel, 3] - t[sel]).max() < 2e-5
    assert np.abs(pos[sel, :3] - p[sel]).max() < 2e-5
    assert np.abs(uv[sel, :2] - 1.5 * (p[sel, :2] + 1)).max() < 5e-5
    assert np.allclose(out[NORMAL].numpy()[sel, :3], [0, 0, 1], atol=1e-6)


def test02_sphere_hit_matches_closed_form(device):
    cam = Camera.orbit(azimuth=-60, elevation=25, distance=3.5, fov_y=40, width=RES, height=RES)
    n_lat, n_lon = 64, 128
    mesh = shapes.uv_sphere(1.0, n_lat, n_lon, uv_repeat=(1.0, 1.0))
    out = run(device, Scene(mesh, cam))
    o, d = cam.rays()
    b = np.sum(o * d, -1)
    disc = b * b - (np.sum(o * o, -1) - 1.0)
    t = -b - np.sqrt(np.maximum(disc, 0))
    p = o + t[..., None] * d
    mask = out[MASK].numpy()[..., 0] > 0
    # tessellation: the mesh lies within the sagitta 1 - cos(pi / n_lat) of the sphere
    sagitta = 1 - np.cos(np.pi / n_lat)
    clear = np.abs(np.sqrt(np.maximum(np.sum(o * o, -1) - b * b, 0)) - 1) > 2 * sagitta
    assert np.array_equal(mask[clear], (disc > 0)[clear])
    sel = mask & (disc > 0) & clear & (-d[..., :] * p).sum(-1).__gt__(0.2)  # not grazing
    pos, uv = out[POSITION].numpy(), out[UV].numpy()
    cos = np.sum(-d * p, -1)
    assert np.all(np.abs(pos[sel, 3] - t[sel]) <= sagitta / cos[sel] + 1e-5)
    u = (np.arctan2(p[..., 1], p[..., 0]) / (2 * np.pi)) % 1.0
    v = np.arccos(np.clip(p[..., 2], -1, 1)) / np.pi
    du = np.abs(uv[sel, 0] - u[sel])
    du = np.minimum(du, 1 - du)
    # UVs are linear across each triangle: error below half a facet (1 / n_lon in u)
    assert du.max() < 0.5 / n_lon and np.abs(uv[sel, 1] - v[sel]).max() < 0.5 / n_lat
    assert np.all(np.sum(out[NORMAL].numpy()[sel, :3] * p[sel], -1) > np.cos(np.pi / n_lat))


def test03_plane_segments_chain_from_top_to_bottom_cap(device):
    cam = Camera(eye=(0.2, -1.5, 1.0), target=(0.0, 0.0, 0.0), fov_y=45, width=RES, height=RES)
    spec = HeightSpec(np.zeros((4, 4), np.float32), -0.05, 0.1)
    out = run(device, Scene(shapes.plane(40.0, segments=40), cam, height=spec))
    seg, prisms = segments_of(out)
    o, d = cam.rays()
    assert np.all(prisms[..., 0] >= 0)
    t_top, t_bot = (0.1 - o[..., 2]) / d[..., 2], (-0.05 - o[..., 2]) / d[..., 2]
    assert np.abs(seg[..., 0, 0, 0] - t_top).max() < 2e-5
    assert np.allclose(seg[..., 0, 0, 3], 1.0)
    count = np.sum(prisms >= 0, axis=-1)
    last = np.take_along_axis(seg[..., 1, :], (count - 1)[..., None, None], axis=2)[..., 0, :]
    # unit prisms, steep rays: the whole path fits in MAX_SEGMENTS segments
    assert np.abs(last[..., 0] - t_bot).max() < 2e-5 and np.allclose(last[..., 3], 0.0, atol=1e-6)
    p = o + t_bot[..., None] * d
    assert np.abs(last[..., 1:3] - (p[..., :2] + 20.0)).max() < 2e-4  # float32 uv ~20
    # consecutive segments meet: exit of k = entry of k + 1 (t and uvh)
    k = np.arange(MAX_SEGMENTS - 1)
    chained = (k[None, None] < (count - 1)[..., None])
    gap = np.abs(seg[..., 1:, 0, :] - seg[..., :-1, 1, :])
    assert gap[chained].max() < 2e-4


def test04_sphere_shell_matches_numpy_reference(device):
    cam = Camera.orbit(azimuth=30, elevation=10, distance=3.2, fov_y=45, width=40, height=40)
    mesh = shapes.uv_sphere(1.0, 12, 24)
    spec = HeightSpec(np.zeros((4, 4), np.float32), -0.05, 0.15)
    seg, prisms = segments_of(run(device, Scene(mesh, cam, height=spec)))
    ref = shell_reference(cam, shell_soup(mesh, spec.d_lo, spec.d_hi), base_only=False)
    # compare the near-side path: segments up to the first that leaves through the bottom cap
    # (beyond it, crossings tie at the high-valence pole vertices and may be ordered differently)
    bottom = (ref["segments"][..., 1, 3] < 1e-6) & (ref["prisms"] >= 0)
    first_bottom = np.where(bottom.any(-1), np.argmax(bottom, axis=-1), MAX_SEGMENTS - 1)
    near = np.arange(MAX_SEGMENTS)[None, None] <= first_bottom[..., None]
    same = np.all((prisms == ref["prisms"]) | ~near, axis=-1)
    assert same.mean() > 0.99  # rays through shared edges / pole vertices may pair differently
    live = same[..., None] & near & (prisms >= 0)
    err = np.abs(seg - ref["segments"])[live]  # [N, 2, 4]
    assert np.percentile(err[..., 0], 99) < 1e-4 and err[..., 0].max() < 1e-3  # t
    assert np.percentile(err[..., 1:], 99) < 1e-4  # u, v, h01
    # silhouette rays: some paths leave through the top again (grazing), others reach the bottom
    count = np.sum(prisms >= 0, axis=-1)
    assert count.max() > 2
