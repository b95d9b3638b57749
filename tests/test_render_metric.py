"""The per-face UV metric (neumat.render.metric) against the UV sphere's closed forms, the
per-vertex height scale of UV-unit bundles, and the surface slots the visibility passes write."""

from __future__ import annotations

import numpy as np

from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.metric import face_metric, vertex_uv_scale
from neumat.render.passes import MASK, RenderContext, ShellPass
from neumat.render.passes.base import DPDU, DPDV, SHAPE
from neumat.render.scene import HeightSpec, Scene


def face_centres(mesh):
    """[F, 3] unit direction from the origin to each face's centroid."""
    c = mesh.positions[mesh.faces].mean(axis=1).astype(np.float64)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def test01_sphere_metric_matches_closed_form():
    n_lat, n_lon, r = 32, 64, 1.5
    mesh = shapes.uv_sphere(r, n_lat, n_lon, uv_repeat=(2.0, 1.0))
    dpdu, dpdv, second = face_metric(mesh)
    c = face_centres(mesh)
    keep = np.hypot(c[:, 0], c[:, 1]) > np.sin(2 * np.pi / n_lat)  # away from the pole fans
    # u = 2 φ / 2π, v = θ / π: |dP/dv| = π r (to the facets' chord-vs-arc error, relative
    # (π / n)² / 6 ~ 0.2 %); |dP/du| = π r sin θ (θ of a face's ring; not orthogonal to dP/dv on
    # the triangles of a quad, whose v edge is a diagonal)
    assert np.allclose(np.linalg.norm(dpdv[keep], axis=1), np.pi * r, rtol=2e-3)
    # a face's u edge lies on one of its two latitude rings: π r sin θ of one of them
    ring = np.hypot(mesh.positions[mesh.faces][..., 0], mesh.positions[mesh.faces][..., 1]) / r
    du = np.linalg.norm(dpdu, axis=1) / (np.pi * r)
    ok = (du >= ring.min(1) * (1 - 1e-3)) & (du <= ring.max(1) * (1 + 1e-3))
    assert np.all(ok[keep])
    # II = I / r (unit normals N = (P - centre) / r): curvature 1 / r along every direction
    first = np.stack([np.sum(dpdu * dpdu, 1), np.sum(dpdu * dpdv, 1), np.sum(dpdv * dpdv, 1)], 1)
    assert np.allclose(second[keep], first[keep] / r, rtol=1e-4, atol=1e-4)


def test02_flat_faces_have_no_curvature_and_uv_scale_is_local():
    cube = shapes.rounded_cube(0.8, radius=0.2, segments=16)
    dpdu, dpdv, second = face_metric(cube)
    flat = np.all(np.abs(np.abs(cube.normals[cube.faces]).max(-1) - 1) < 1e-6, axis=1)
    assert flat.sum() > 100 and np.abs(second[flat]).max() < 1e-5
    # the flat part of a face spans 2·(0.8 - 0.2) scene units over 12 of the 16 UV steps of 1/16:
    # 1.6 scene units per UV unit along u and v (the mesh-wide uv_to_world says otherwise)
    assert np.allclose(np.linalg.norm(dpdu[flat], axis=1), 1.6, rtol=1e-4)
    assert np.allclose(np.linalg.norm(dpdv[flat], axis=1), 1.6, rtol=1e-4)
    assert abs(cube.uv_to_world() - 1.6) > 0.05
    # a plane stretched 3:1 in u: the per-vertex scale is sqrt(area / UV area) = sqrt(3 * 1)
    p = shapes.plane(2.0, segments=4)
    stretched = shapes.Mesh(p.positions, p.normals, p.uvs * [1 / 3.0, 1.0], p.faces)
    assert np.allclose(vertex_uv_scale(stretched), np.sqrt(3.0), rtol=1e-5)
    # a sphere's vertices near the pole carry less relief than at the equator (sin θ)
    sphere = shapes.uv_sphere(1.0, 32, 64)
    s = vertex_uv_scale(sphere)
    z = np.abs(sphere.positions[:, 2])
    assert s[z < 0.1].mean() > 3 * s[(z > 0.99) & (z < 1.0)].mean()


def test03_shell_pass_writes_the_hit_faces_metric(device):
    mesh = shapes.uv_sphere(1.0, 16, 32)
    cam = Camera.orbit(azimuth=30, elevation=20, distance=3.0, fov_y=40, width=32, height=32)
    spec = HeightSpec(np.zeros((4, 4), np.float32), 0.0, 0.05, vertex_uv_scale(mesh))
    out = ShellPass(device, Scene(mesh, cam)).execute(RenderContext(device, 32, 32), {})
    mask = out[MASK].numpy()[..., 0] > 0.5
    dpdu, dpdv, second = face_metric(mesh)
    got_u, got_v, got_s = (out[s].numpy()[mask] for s in (DPDU, DPDV, SHAPE))
    # every pixel's slots are one face's rows (the face its ray hits)
    faces = np.argmin(np.linalg.norm(got_u[:, None, :3] - dpdu[None], axis=-1)
                      + np.linalg.norm(got_v[:, None, :3] - dpdv[None], axis=-1), axis=1)
    assert np.allclose(got_u[:, :3], dpdu[faces], atol=1e-6) and np.allclose(got_v[:, :3], dpdv[faces], atol=1e-6)
    assert np.allclose(got_s[:, :3], second[faces], atol=1e-6)
    assert np.all(got_s[:, 3] == 0.0)  # no height field: no thickness
    assert np.all(out[DPDU].numpy()[~mask] == 0.0)
    # with a height field the thickness is s·(d_hi - d_lo) averaged over the face's corners
    shell = ShellPass(device, Scene(mesh, cam, height=spec)).execute(RenderContext(device, 32, 32), {})
    thick = shell[SHAPE].numpy()[shell[MASK].numpy()[..., 0] > 0.5, 3]
    s = vertex_uv_scale(mesh)[mesh.faces].mean(axis=1) * 0.05
    assert thick.min() >= s.min() - 1e-7 and thick.max() <= s.max() + 1e-7 and thick.min() > 0


def test04_relief_normal_follows_the_anisotropic_metric(device):
    """A plane whose u is stretched 3:1 (dP/du = 3, dP/dv = 1 scene units per UV unit) under a
    sinusoid relief: the relief normal is the displaced surface's, slope (x, y) = span · R ·
    (dH/dg_x / 3, dH/dg_y) per texel (central differences), texel normals interpolated
    bilinearly as neumat.material.heightfield.HeightField.normal_at. One mesh-wide scale (sqrt 3)
    would tilt it wrongly along both axes."""
    from neumat.material.heightfield import HeightField
    from neumat.render.passes import NORMAL, UV, HfTracePass
    from neumat.render.passes.hf_trace import RELIEF_NORMAL
    from height_fields import R, sinusoid

    height, span = sinusoid(), 0.05
    p = shapes.plane(2.0, segments=4)
    mesh = shapes.Mesh(p.positions, p.normals, p.uvs * np.float32([1 / 3.0, 1.0]), p.faces)
    cam = Camera(eye=(0.2, -0.3, 1.6), target=(0.0, 0.0, 0.0), fov_y=40, width=48, height=48)
    scene = Scene(mesh, cam, height=HeightSpec(height, 0.0, span))
    ctx = RenderContext(device, 48, 48)
    out = HfTracePass(device, scene).execute(ctx, ShellPass(device, scene).execute(ctx, {}))
    mask = out[MASK].numpy()[..., 0] > 0.5
    assert mask.mean() > 0.9
    h = height.astype(np.float64)
    gx = 0.5 * (np.roll(h, -1, 1) - np.roll(h, 1, 1))
    gy = 0.5 * (np.roll(h, -1, 0) - np.roll(h, 1, 0))
    texel = np.stack([-span * R * gx / 3.0, -span * R * gy, np.ones_like(h)], -1)
    texel /= np.linalg.norm(texel, axis=-1, keepdims=True)
    uv = out[UV].numpy()[mask, :2].astype(np.float64)
    expect = HeightField(height, span, texel_normals=texel).normal_at(uv % 1.0)
    got = out[RELIEF_NORMAL].numpy()[mask, :3]
    assert np.abs(got - expect).max() < 2e-4
    assert np.allclose(out[NORMAL].numpy()[mask, :3], [0, 0, 1], atol=1e-6)
    isotropic = np.stack([-span * R * gx / np.sqrt(3.0), -span * R * gy / np.sqrt(3.0), np.ones_like(h)], -1)
    wrong = HeightField(height, span, texel_normals=isotropic / np.linalg.norm(isotropic, axis=-1, keepdims=True))
    assert np.abs(got - wrong.normal_at(uv % 1.0)).max() > 50 * 2e-4  # the test tells them apart
