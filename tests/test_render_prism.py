"""The curved shell prisms (neumat.render.prism): the exact map's inverse and which faces hf_trace
marches in pieces. The shader twin (shaders/prism.slang) is checked end to end against Mitsuba's
exact map in tests/test_render_curved_shadows.py (hit uv within 0.01 texel, median)."""

from __future__ import annotations

import numpy as np

from neumat.render import shapes
from neumat.render.prism import CURVED_SUBSEGMENTS, prism_coordinates, prism_corners, subsegments
from neumat.render.scene import HeightSpec

HEIGHT = np.zeros((8, 8), np.float32)


def test01_coordinates_invert_the_prism_map():
    mesh = shapes.uv_sphere(1.0, 8, 16)
    spec = HeightSpec(HEIGHT, -0.05, 0.2, vertex_scale=np.linspace(0.5, 1.5, mesh.positions.shape[0]))
    bottom, extrusion = prism_corners(mesh, spec)
    rng = np.random.default_rng(0)
    faces = rng.choice(np.flatnonzero(subsegments(extrusion.astype(np.float32), mesh.positions[mesh.faces]) > 1), 500)
    b = rng.dirichlet(np.ones(3), faces.size)
    h = rng.uniform(0.0, 1.0, faces.size)
    corners = bottom[faces] + h[:, None, None] * extrusion[faces]  # A_i(h)
    x = np.einsum("nc,ncx->nx", b, corners)
    uv = mesh.uvs[mesh.faces][faces]
    guess = np.clip(h + rng.uniform(-0.1, 0.1, h.size), 0, 1)  # hf_trace guesses the linear h01
    got = prism_coordinates(bottom[faces], extrusion[faces], uv, x, guess)
    assert np.abs(got[:, 2] - h).max() < 1e-9
    assert np.abs(got[:, :2] - np.einsum("nc,ncx->nx", b, uv)).max() < 1e-9


def test02_affine_prisms_are_one_piece():
    plane = shapes.plane(2.0, segments=4)
    spec = HeightSpec(HEIGHT, 0.0, 0.1)
    _, extrusion = prism_corners(plane, spec)
    assert np.all(subsegments(extrusion.astype(np.float32), plane.positions[plane.faces]) == 1)
    sphere = shapes.uv_sphere(1.0, 8, 16)
    _, extrusion = prism_corners(sphere, spec)
    pieces = subsegments(extrusion.astype(np.float32), sphere.positions[sphere.faces])
    p = sphere.positions[sphere.faces]
    degenerate = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1) < 1e-12
    assert degenerate.any() and np.all(pieces[degenerate] == 1)  # the pole rows' collapsed triangles
    assert np.all(pieces[~degenerate] == CURVED_SUBSEGMENTS)
