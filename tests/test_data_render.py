"""The synthetic BTF renderer: exact intersection, closed forms for shading, parallax, masking
and self-shadowing, the reference/surface uv-space relation, and speed."""

import time

import numpy as np
import pytest

from neumat.data import DataError, PbrMaterial, SliceRenderer, make_material
from neumat.data.brdf import INV_PI, eval_brdf_cos
from neumat.data.directions import spherical_to_vector
from neumat.material.heightfield import HeightField
from neumat.data.slice_renderer import sample_grid


def direction(theta_deg, phi_deg):
    return spherical_to_vector(np.radians(theta_deg), np.radians(phi_deg))


def const_material(height, albedo=(0.5, 0.3, 0.2), roughness=0.5, metallic=0.0, scale=0.05,
                   res=None):
    height = np.asarray(height, dtype=np.float32)
    if height.ndim == 0:
        height = np.full((res or 16, res or 16), height, dtype=np.float32)
    r = height.shape[0]
    albedo = np.asarray(albedo, np.float32)
    if albedo.ndim == 1:
        albedo = np.broadcast_to(albedo, (r, r, 3))
    return PbrMaterial(name="test", albedo=albedo, height=height,
                       roughness=np.full((r, r), roughness), metallic=np.full((r, r), metallic),
                       height_scale=scale)


def ridge_material(res=64, scale=0.1):
    """Height 1 on texels 16..47 (u in [0.25, 0.75)), 0 elsewhere; uniform along v."""
    h = np.zeros((res, res), np.float32)
    h[:, res // 4: 3 * res // 4] = 1.0
    return const_material(h, scale=scale)


def test_first_hit_is_exact():
    """Against a brute-force march with 1e4 steps: within one step, residual ~1e-16."""
    res = 48
    u = (np.arange(res) + 0.5) / res
    uu, vv = np.meshgrid(u, u)
    h = 0.5 + 0.3 * np.sin(2 * np.pi * 3 * uu) * np.cos(2 * np.pi * 2 * vv) \
        + 0.2 * np.sin(2 * np.pi * 5 * vv + 1)
    field = HeightField((h - h.min()) / np.ptp(h), 0.05)
    rng = np.random.default_rng(1)
    n = 256
    origin = np.concatenate([rng.random((n, 2)), np.full((n, 1), 0.05)], axis=1)
    wo = direction(68, 37)
    t = field.first_hit(origin, np.broadcast_to(-wo, origin.shape))
    steps = np.linspace(0, 0.05 / wo[2], 10001)
    pts = origin[:, None, :] - steps[None, :, None] * wo
    z = field.height_at(pts[..., :2].reshape(-1, 2)).reshape(pts.shape[:2])
    brute = steps[np.argmax(pts[..., 2] <= z, axis=1)]
    assert np.all(np.abs(brute - t) <= steps[1] + 1e-12)
    hit = origin - t[:, None] * wo
    assert np.abs(hit[:, 2] - field.height_at(hit[:, :2])).max() < 1e-12


def test_flat_closed_form_both_spaces():
    """Flat material: every pixel = kd/π·cosθi + F0·D·G/(4 cosθo)·... written out by hand."""
    for metallic, alpha in ((0.0, 0.25), (1.0, 0.49)):
        mat = const_material(0.4, roughness=np.sqrt(alpha), metallic=metallic)
        albedo = np.array([0.5, 0.3, 0.2])
        f0 = albedo if metallic else np.full(3, 0.04)
        kd = (1 - metallic) * albedo
        for (ti, pi, to, po) in ((0, 0, 0, 0), (35, 20, 50, 200), (70, 300, 15, 80)):
            wi, wo = direction(ti, pi), direction(to, po)
            h = (wi + wo) / np.linalg.norm(wi + wo)
            a2 = alpha**2
            d = a2 / (np.pi * (h[2] ** 2 * (a2 - 1) + 1) ** 2)

            def g1(w, a2=a2):
                return 2 / (1 + np.sqrt(1 + a2 * (1 - w[2] ** 2) / w[2] ** 2))

            expected = (kd * INV_PI + f0 * d * g1(wi) * g1(wo) / (4 * wi[2] * wo[2])) * wi[2]
            for space in ("reference", "surface"):
                out = SliceRenderer(mat).render_view(wo, wi[None], 8, uv_space=space)[0]
                np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), rtol=1e-5)


def test_brdf_reciprocity_and_backfacing():
    rng = np.random.default_rng(0)
    n = 200
    normal = np.tile([0.1, -0.2, 1.0], (n, 1)) / np.linalg.norm([0.1, -0.2, 1.0])
    wi = spherical_to_vector(rng.uniform(0, 1.3, n), rng.uniform(0, 6.28, n))
    wo = spherical_to_vector(rng.uniform(0, 1.3, n), rng.uniform(0, 6.28, n))
    kd, f0, alpha = rng.random((n, 3)), rng.random((n, 3)), rng.uniform(0.05, 1, n)
    a = eval_brdf_cos(kd, f0, alpha, normal, wi, wo) / (normal * wi).sum(1, keepdims=True)
    b = eval_brdf_cos(kd, f0, alpha, normal, wo, wi) / (normal * wo).sum(1, keepdims=True)
    front = ((normal * wi).sum(1) > 0) & ((normal * wo).sum(1) > 0)
    np.testing.assert_allclose(a[front], b[front], rtol=1e-10)
    assert np.all(a[~front] == 0)


def test_parallax_shift_is_exact():
    """Flat surface at height c under a shell of thickness s: the reference-space value at uv
    is the surface-space value at uv - s(1-c)·tanθo·(cosφo, sinφo)."""
    rng = np.random.default_rng(2)
    albedo = rng.random((16, 16, 3)).astype(np.float32)
    mat = const_material(0.25, albedo=albedo, scale=0.08)
    r = SliceRenderer(mat)
    wo, wi = direction(60, 30), direction(20, 250)
    uv = rng.random((300, 2))
    shift = 0.08 * 0.75 * np.tan(np.radians(60)) * np.array([np.cos(np.radians(30)),
                                                             np.sin(np.radians(30))])
    ref = r.render_points(uv, wo, wi[None], "reference")[0]
    surf = r.render_points(uv - shift, wo, wi[None], "surface")[0]
    np.testing.assert_allclose(ref, surf, rtol=1e-9, atol=1e-12)


def test_reference_value_is_surface_value_at_the_hit_point():
    """What a reference-space sample sees is a visible surface point with the same value: the
    two uv spaces describe one BTF (the triple-plane renderer relies on it)."""
    mat = make_material("leather", 64, seed=0)
    r = SliceRenderer(mat)
    rng = np.random.default_rng(3)
    uv = rng.random((500, 2))
    wo, lights = direction(65, 120), np.stack([direction(30, 10), direction(75, 200)])
    hit = r.trace_reference(uv, wo)
    ref = r.render_points(uv, wo, lights, "reference")
    surf = r.render_points(hit[:, :2], wo, lights, "surface")
    visible = np.all(np.isfinite(surf), axis=(0, 2))
    assert visible.mean() > 0.99  # a hair-thin set at grazing silhouettes may flip
    np.testing.assert_allclose(ref[:, visible], surf[:, visible], rtol=1e-7, atol=1e-9)


def test_self_shadowing_closed_form():
    """Point on the floor at u = 0.1 in front of a ridge (ramp ends at u = 16.5/64, top 0.1):
    shadowed iff tanθi > (16.5/64 - 0.1) / 0.1 = 1.578, i.e. θi > 57.6°."""
    r = SliceRenderer(ridge_material())
    uv = np.array([[0.1, 0.3]])
    wo = direction(0, 0)
    for theta, lit in ((50, True), (57, True), (58.5, False), (75, False)):
        value = r.render_points(uv, wo, direction(theta, 0)[None], "surface")[0, 0]
        unshadowed = r.render_points(uv, wo, direction(theta, 0)[None], "surface",
                                     shadows=False)[0, 0]
        assert unshadowed.min() > 0
        np.testing.assert_array_equal(value, unshadowed if lit else 0.0)


def test_masking_closed_form():
    """Surface space: the floor point at u = 0.1 is hidden from views toward +u with
    θo > 57.6° (same geometry as the shadow test) and is then NaN."""
    r = SliceRenderer(ridge_material())
    uv = np.array([[0.1, 0.3]])
    wi = direction(0, 0)[None]
    assert np.all(np.isfinite(r.render_points(uv, direction(55, 0), wi, "surface")))
    assert np.all(np.isnan(r.render_points(uv, direction(60, 0), wi, "surface")))
    assert np.all(np.isfinite(r.render_points(uv, direction(60, 180), wi, "surface")))
    assert np.all(np.isfinite(r.render_points(uv, direction(60, 0), wi, "reference")))


def test_slice_pixels_are_values_at_pixel_centres():
    mat = make_material("stone_tiles", 32, seed=0)
    r = SliceRenderer(mat)
    wo, wi = direction(40, 80), direction(55, 300)
    img = r.render_view(wo, wi[None], 16)[0]
    uv = sample_grid(16)
    np.testing.assert_allclose(img.reshape(-1, 3), r.render_points(uv, wo, wi[None])[0],
                               rtol=1e-6)
    assert uv[1, 0] == pytest.approx(1.5 / 16) and uv[16, 1] == pytest.approx(1.5 / 16)


def test_normal_map_source():
    mat = make_material("leather", 32, seed=0)
    with pytest.raises(DataError, match="no normal map"):
        SliceRenderer(mat, normal_source="map")
    field = HeightField(mat.height, mat.height_scale)
    mat.normal = field.gradient_normals().astype(np.float32)
    a = SliceRenderer(mat, "map").render_view(direction(30, 0), direction(40, 90)[None], 16)
    b = SliceRenderer(mat, "height").render_view(direction(30, 0), direction(40, 90)[None], 16)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_speed_64px_slice_with_shadows():
    mat = make_material("leather", 256, seed=0)
    r = SliceRenderer(mat)
    lights = np.stack([direction(t, p) for t, p in ((20, 0), (45, 90), (60, 180), (75, 270))])
    r.render_view(direction(60, 45), lights[:1], 64)  # warm-up
    t0 = time.perf_counter()
    r.render_view(direction(60, 45), lights, 64)
    per_slice = (time.perf_counter() - t0) / len(lights)
    assert per_slice < 0.25, f"{per_slice * 1e3:.1f} ms per 64x64 slice"
