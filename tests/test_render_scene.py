"""Scene building blocks: shapes and their tangent frames, mesh I/O, the camera's rays, lights,
the shell soup and the BVH (pure numpy; no device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumat.bundle import make_random_bundle
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight
from neumat.render.scene import HeightSpec, boundary_edge_count, build_bvh, merge_meshes, shell_soup

DEMO = Path(__file__).resolve().parents[1] / "assets" / "meshes" / "draped_cloth.obj"


def frames_ok(mesh: shapes.Mesh) -> None:
    n, t = mesh.normals.astype(np.float64), mesh.tangents.astype(np.float64)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(t[:, :3], axis=1), 1, atol=1e-5)
    assert np.abs(np.sum(n * t[:, :3], axis=1)).max() < 1e-5
    assert set(np.unique(t[:, 3])) <= {-1.0, 1.0}


@pytest.mark.parametrize("make", [shapes.plane, shapes.uv_sphere, shapes.rounded_cube, shapes.draped_sheet])
def test01_shapes_have_unit_orthogonal_frames_and_outward_faces(make):
    mesh = make()
    frames_ok(mesh)
    p, f = mesh.positions.astype(np.float64), mesh.faces
    fn = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    big = np.linalg.norm(fn, axis=1) > 1e-9
    vn = mesh.normals[f].mean(axis=1)
    assert np.all(np.sum(fn[big] * vn[big], axis=1) > 0)  # counter-clockwise from outside


def test02_tangent_follows_du_and_handedness_dv():
    plane = shapes.plane(2.0, uv_per_unit=3.0)
    assert np.allclose(plane.tangents, [1, 0, 0, 1], atol=1e-6)
    assert plane.uv_to_world() == pytest.approx(1 / 3.0)
    sphere = shapes.uv_sphere(1.0, 16, 32)
    p, t = sphere.positions.astype(np.float64), sphere.tangents
    ring = (np.abs(p[:, 2]) < 0.5) & (np.hypot(p[:, 0], p[:, 1]) > 0.5)
    east = np.stack([-p[ring, 1], p[ring, 0], 0 * p[ring, 0]], 1)  # dP/dphi direction
    east /= np.linalg.norm(east, axis=1, keepdims=True)
    # per-face chords of a 16 x 32 facet sphere tilt the averaged tangent by a few degrees
    assert np.all(np.sum(t[ring, :3] * east, axis=1) > np.cos(np.radians(4)))
    # bitangent = w * n x t points along dP/dv (towards the south pole: v grows with theta)
    b = t[ring, 3:4] * np.cross(sphere.normals[ring], t[ring, :3])
    assert np.all(b[:, 2] < 0)


def test03_obj_round_trip(tmp_path):
    mesh = shapes.draped_sheet(segments=8)
    shapes.save_mesh(mesh, tmp_path / "m.obj")
    back = shapes.load_mesh(tmp_path / "m.obj")
    assert np.array_equal(back.faces, mesh.faces)
    assert np.abs(back.positions - mesh.positions).max() < 1e-6
    assert np.abs(back.uvs - mesh.uvs).max() < 1e-6
    # trimesh recomputes normals (angle-weighted instead of area-weighted)
    assert np.all(np.sum(back.normals * mesh.normals, axis=1) > 0.99)
    frames_ok(back)


def test04_demo_mesh_is_the_generated_draped_sheet():
    back = shapes.load_mesh(DEMO)
    ref = shapes.draped_sheet(size=2.0, segments=32, uv_repeat=2.0)
    assert DEMO.stat().st_size < 200_000
    assert np.abs(back.positions - ref.positions).max() < 1e-6
    assert np.abs(back.uvs - ref.uvs).max() < 1e-6


def test05_camera_rays_and_orbit():
    cam = Camera.orbit(target=(1.0, 2.0, 0.5), azimuth=90, elevation=0, distance=3, fov_y=60, width=5, height=3)
    assert np.allclose(cam.eye, (1.0, 5.0, 0.5))
    o, d = cam.rays()
    f, r, u = cam.basis()
    assert np.allclose(d[1, 2], f) and np.allclose(f, [0, -1, 0])
    assert np.allclose(r, [-1, 0, 0]) and np.allclose(u, [0, 0, 1])  # looking along -y
    top = d[0, 2] / (d[0, 2] @ f)
    assert top @ u == pytest.approx(2 / 3 * np.tan(np.radians(30)))  # row 0 centre, 3 rows
    assert d[0, 2] @ u > 0 and d[1, 4] @ r > 0  # row 0 at the top, column 0 on the left
    assert cam.spread_angle == pytest.approx(2 * np.tan(np.radians(30)) / 3)


def test06_lights():
    sun = DirectionalLight(direction=(0, 0, 2), radiance=(1, 2, 3))
    wi, e = sun.wi(np.zeros((2, 3)))
    assert np.allclose(wi, [0, 0, 1]) and np.allclose(e, [[1, 2, 3]] * 2)
    lamp = PointLight(position=(0, 0, 2), intensity=(4, 4, 4))
    wi, e = lamp.wi(np.array([[0.0, 0.0, 0.0]]))
    assert np.allclose(wi, [[0, 0, 1]]) and np.allclose(e, 1.0)


def test07_shell_prisms_are_closed_and_bvh_covers_them():
    for mesh in (shapes.plane(segments=3), shapes.uv_sphere(1.0, 8, 16)):
        soup = shell_soup(mesh, -0.1, 0.2)
        assert soup.positions.shape[0] == 8 * mesh.faces.shape[0]  # 2 caps + 3 walls x 2
        for face in (0, mesh.faces.shape[0] // 2):  # each prism is a closed polyhedron
            _, weld = np.unique(np.round(soup.positions[soup.prism == face].reshape(-1, 3), 5),
                                axis=0, return_inverse=True)
            tri = weld.reshape(-1, 3)
            edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
            edges = edges[edges[:, 0] != edges[:, 1]]  # degenerate (pole) triangles
            _, counts = np.unique(edges, axis=0, return_counts=True)
            assert np.all(counts % 2 == 0)
        bvh = build_bvh(soup.positions)
        assert np.array_equal(np.sort(bvh.order), np.arange(soup.positions.shape[0]))
        leaf = bvh.link[:, 1] > 0
        for node in np.flatnonzero(leaf):
            first, count = bvh.link[node]
            tris = soup.positions[bvh.order[first:first + count]]
            assert np.all(tris.min(axis=(0, 1)) >= bvh.bounds[node, :3])
            assert np.all(tris.max(axis=(0, 1)) <= bvh.bounds[node, 3:])
    assert boundary_edge_count(shapes.uv_sphere(1.0, 8, 16)) == 0  # the UV seam is welded
    assert boundary_edge_count(shapes.plane(segments=3)) == 12


def test08_height_spec_from_bundle_and_merge():
    bundle = make_random_bundle(np.random.default_rng(0))
    mesh = shapes.plane(2.0, uv_per_unit=0.5)
    spec = HeightSpec.from_bundle(bundle, mesh)
    lo, hi = bundle.height_range
    # uv units: scaled per vertex by the local scene units per UV unit (2 everywhere here)
    assert (spec.d_lo, spec.d_hi) == pytest.approx((lo, hi))
    assert np.allclose(spec.scale_of(mesh), 2.0, rtol=1e-6)
    assert HeightSpec.from_bundle(bundle, mesh, height_scale=1.0).d_hi == pytest.approx(hi)
    both = merge_meshes([mesh, shapes.uv_sphere(1.0, 4, 8)])
    assert both.faces.max() == both.positions.shape[0] - 1
