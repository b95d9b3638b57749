"""The Mitsuba shadow reference (neumat.render.reference.mitsuba_shadows) on a scene with a known
answer, and the agreement measure: binary IoU at one ray per pixel, soft IoU of the coverage
with k × k rays per pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mitsuba", reason="the shadow reference is a Mitsuba 3 render")

from neumat.fidelity.reference import same_ray_available  # noqa: E402
from neumat.render.camera import Camera  # noqa: E402
from neumat.render.reference.mitsuba_shadows import ReferenceShadows, reference_shadows, shadow_agreement  # noqa: E402

OCCLUDER_HALF_WIDTH = 0.25
"""Half side of the square floating over the ground, scene units."""
OCCLUDER_HEIGHT = 0.5
"""Its height above the ground (z = 0), scene units."""


def quad(center, half: float, z: float, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions [4, 3] and two counter-clockwise faces [2, 3] (seen from +z) of an axis-aligned
    square at height ``z``, vertex indices from ``first``."""
    cx, cy = center
    pos = np.array([[cx - half, cy - half, z], [cx + half, cy - half, z], [cx + half, cy + half, z],
                    [cx - half, cy + half, z]])
    return pos, first + np.array([[0, 1, 2], [0, 2, 3]])


@pytest.mark.skipif(not same_ray_available(), reason="needs Mitsuba's llvm_ad_rgb (libLLVM >= 16)")
def test01_floating_square_casts_its_projection():
    """A ground square (side 6, z = 0) under a floating one (side 0.5, z = 0.5), uv = world xy:
    seen from above, a ground hit is shadowed exactly when the ray from it toward the light meets
    the square, i.e. when it lies in the square's projection along the light; the square's own
    hits and every hit under a light from below the ground's plane (facing away) follow too."""
    ground, ground_faces = quad((0.0, 0.0), 3.0, 0.0, 0)
    top, top_faces = quad((0.0, 0.0), OCCLUDER_HALF_WIDTH, OCCLUDER_HEIGHT, 4)
    pos = np.concatenate([ground, top])
    surface = (pos.astype(np.float32), np.concatenate([ground_faces, top_faces]).astype(np.uint32),
               pos[:, :2].astype(np.float32))
    camera = Camera.orbit(azimuth=-90, elevation=80, distance=3.0, fov_y=40, width=48, height=40)
    e, a = math.radians(40.0), math.radians(30.0)
    wi = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    above, below = reference_shadows(surface, camera, [wi, -wi], texels_per_unit=64)
    assert above.hit.all()  # the ground fills the frame
    p = above.position.astype(np.float64)
    on_top = p[..., 2] > OCCLUDER_HEIGHT / 2
    assert 50 < on_top.sum() < 0.5 * on_top.size
    np.testing.assert_allclose(p[..., 2], np.where(on_top, OCCLUDER_HEIGHT, 0.0), atol=1e-5)
    np.testing.assert_allclose(above.uv, above.position[..., :2], atol=1e-5)  # uv = world xy
    np.testing.assert_allclose(above.normal, np.broadcast_to([0.0, 0.0, 1.0], p.shape), atol=1e-6)
    # where the ray from a ground hit toward the light crosses z = OCCLUDER_HEIGHT
    cross = p[..., :2] + (OCCLUDER_HEIGHT - p[..., 2])[..., None] * wi[:2] / wi[2]
    under = ~on_top & (np.abs(cross) < OCCLUDER_HALF_WIDTH).all(axis=-1)
    margin = np.abs(np.abs(cross) - OCCLUDER_HALF_WIDTH).min(axis=-1) > 1e-4  # not on its edge
    assert under.sum() > 50
    np.testing.assert_array_equal(above.shadowed[margin], under[margin])
    assert below.shadowed.all()  # every facet faces away from a light below z = 0


def frame(shadowed: np.ndarray) -> ReferenceShadows:
    """A reference frame seeing every ray, shadowed where given."""
    h, w = shadowed.shape
    return ReferenceShadows(np.ones((h, w), bool), shadowed, np.zeros((h, w, 3), np.float32),
                            np.zeros((h, w, 2), np.float32), np.zeros((h, w, 3), np.float32))


def test02_agreement_binary_and_soft():
    """k = 1: the IoU of the masks and the shadowed fractions. k = 2 on one 2 × 4 frame (two
    pixels): neumat shadows rays {0, 1} of pixel 0 and {0} of pixel 1, Mitsuba {2, 3} and {1}
    — disjoint rays, so the binary IoU is 0 — and the coverages 2/4, 1/4 against 2/4, 1/4 agree
    (soft IoU 1); a region leaving out one ray of pixel 0 counts 3 there."""
    rng = np.random.default_rng(0)
    ours, ref = rng.random((6, 8)) < 0.4, rng.random((6, 8)) < 0.4
    got = shadow_agreement(np.ones_like(ours), ~ours, frame(ref))
    assert got["iou"] == pytest.approx((ours & ref).sum() / (ours | ref).sum())
    assert (got["ours"], got["mitsuba"], got["pixels"]) == (pytest.approx(ours.mean()), pytest.approx(ref.mean()), 48)

    # rays of pixel p: rows 0-1, columns 2p, 2p + 1, in row-major order
    ours = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], bool)
    ref = np.array([[0, 0, 0, 1], [1, 1, 0, 0]], bool)
    one = shadow_agreement(np.ones_like(ours), ~ours, frame(ref))
    assert one["iou"] == 0.0
    soft = shadow_agreement(np.ones_like(ours), ~ours, frame(ref), supersample=2)
    assert soft == {"ours": 3 / 8, "mitsuba": 3 / 8, "iou": 1.0, "pixels": 2}
    region = np.ones_like(ours)
    region[1, 1] = False  # pixel 0 counts rays 0, 1, 2: neumat 2 of 3, Mitsuba 1 of 3
    soft = shadow_agreement(np.ones_like(ours), ~ours, frame(ref), region, supersample=2)
    assert soft["iou"] == pytest.approx((1 + 1) / (2 + 1)) and soft["ours"] == pytest.approx(3 / 7)
