"""neumat.angles (numpy definition) against closed forms and identities, and
shaders/rusinkiewicz.slang against neumat.angles.

Tolerances (Slang runs in float32, the reference in float64 on the same float32 inputs):
theta_h, theta_d: 1e-5 rad everywhere. phi_h, phi_d: 1e-5 rad (circular difference, so 0 and
2 pi agree) where they are well conditioned, sin(theta_h) >= 0.05 (and sin(theta_d) >= 0.05
for phi_d): the azimuth of a vector near the pole is ill-conditioned, and phi_d is measured in
the frame of phi_h. Everywhere, including near the poles, the Slang angles must reproduce
(wi, wo) through the float64 inverse within 1e-5. Exactly degenerate inputs (h on the normal,
wi = wo) have phi defined as 0 in both implementations and are checked explicitly.
The minimal-rotation difference vector ("minrot-concentric-v2") has no ill-conditioned
azimuth: its Slang vectors and plane coordinates are compared everywhere, within 1e-5, and so
are those of the relief frame ("relief-minrot-concentric-v3", random slopes up to 45 degrees).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neumat.angles import (
    LEGACY_PLANE_PARAMETERIZATION,
    MINROT_PLANE_PARAMETERIZATION,
    PLANE_PARAMETERIZATION,
    PLANE_PARAMETERIZATIONS,
    RELIEF_SLOPE_PLANE_PARAMETERIZATION,
    AngleParamError,
    from_minrot,
    from_rusinkiewicz,
    from_spherical,
    hemisphere_to_square,
    interpolates_normals,
    minrot_difference,
    normalize,
    plane_coords,
    relief_frame,
    rotate_to_pole,
    rusinkiewicz,
    square_to_hemisphere,
    to_spherical,
    wrap_azimuth,
)

TAU = 2 * np.pi


def circular_diff(a, b):
    """|a - b| on the circle (radians)."""
    d = np.mod(np.asarray(a, np.float64) - np.asarray(b, np.float64), TAU)
    return np.minimum(d, TAU - d)


def random_hemisphere(rng, n, dtype=np.float64):
    """n unit vectors in the upper hemisphere, [n, 3]."""
    v = rng.normal(size=(n, 3))
    v[:, 2] = np.abs(v[:, 2])
    return normalize(v).astype(dtype)


def reflect_normal(w):
    """Mirror direction about the normal +z."""
    return w * np.array([-1.0, -1.0, 1.0], dtype=w.dtype)


# ---- numpy definition -------------------------------------------------------------------


def test01_spherical_round_trip_and_conventions():
    rng = np.random.default_rng(1)
    theta = rng.uniform(0.01, np.pi - 0.01, 1000)
    phi = rng.uniform(0, TAU, 1000)
    t2, p2 = to_spherical(from_spherical(theta, phi))
    assert np.max(np.abs(t2 - theta)) < 1e-12 and np.max(circular_diff(p2, phi)) < 1e-12
    assert np.all((p2 >= 0) & (p2 < TAU))
    assert to_spherical(np.array([0.0, 0.0, 1.0])) == (0.0, 0.0)  # undefined azimuth -> 0
    assert to_spherical(np.array([0.0, -1.0, 0.0]))[1] == pytest.approx(1.5 * np.pi)
    w = wrap_azimuth(np.array([-1e-20, TAU, -np.pi, 7.0], dtype=np.float32))
    assert w.dtype == np.float32 and np.all((w >= 0) & (w < np.float32(TAU)))


def test02_closed_form_example():
    """wi at (60 deg, 0), wo at (60 deg, 90 deg): h at azimuth 45 deg; cos^2 theta_d = (1 +
    wi.wo) / 2 = 0.625; d lies along -y of the h frame (phi_d = 270 deg)."""
    wi = from_spherical(np.pi / 3, 0.0)
    wo = from_spherical(np.pi / 3, np.pi / 2)
    th, ph, td, pd = rusinkiewicz(wi, wo)
    assert th == pytest.approx(np.arctan(np.sqrt(1.5)), abs=1e-12)
    assert ph == pytest.approx(np.pi / 4, abs=1e-12)
    assert td == pytest.approx(np.arccos(np.sqrt(0.625)), abs=1e-12)
    assert pd == pytest.approx(1.5 * np.pi, abs=1e-12)


def test03_identities():
    rng = np.random.default_rng(3)
    wi, wo = random_hemisphere(rng, 5000), random_hemisphere(rng, 5000)
    th, ph, td, pd = rusinkiewicz(wi, wo)
    assert np.all((th >= 0) & (th <= np.pi / 2 + 1e-12) & (td >= 0) & (td <= np.pi / 2 + 1e-12))
    # Mirror configuration: h is exactly the normal; d is wi itself.
    mh, mph, mtd, mpd = rusinkiewicz(wi, reflect_normal(wi))
    ti, pi_ = to_spherical(wi)
    assert np.all(mh == 0) and np.all(mph == 0)
    assert np.max(np.abs(mtd - ti)) < 1e-12 and np.max(circular_diff(mpd, pi_)) < 1e-9
    # wi = wo: theta_d = 0 and h = wi.
    sh, sph_, std, _ = rusinkiewicz(wi, wi)
    assert np.max(std) < 1e-7 and np.max(np.abs(sh - ti)) < 1e-12
    # Reciprocity: swapping keeps theta_h, phi_h, theta_d; phi_d turns by pi.
    rh, rph, rtd, rpd = rusinkiewicz(wo, wi)
    assert np.max(np.abs(rh - th)) < 1e-12 and np.max(circular_diff(rph, ph)) < 1e-12
    assert np.max(np.abs(rtd - td)) < 1e-12
    assert np.max(circular_diff(rpd, pd + np.pi) * np.sin(td)) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test04_inverse_round_trip(dtype):
    rng = np.random.default_rng(4)
    wi, wo = random_hemisphere(rng, 10000, dtype), random_hemisphere(rng, 10000, dtype)
    angles = rusinkiewicz(wi, wo)
    assert all(a.dtype == dtype for a in angles)
    wi2, wo2 = from_rusinkiewicz(*angles)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert wi2.dtype == dtype and np.max(np.abs(wi2 - wi)) < tol and np.max(np.abs(wo2 - wo)) < tol


def test05_batch_shapes():
    rng = np.random.default_rng(5)
    wi = random_hemisphere(rng, 30).reshape(2, 5, 3, 3)
    wo = random_hemisphere(rng, 30).reshape(2, 5, 3, 3)
    assert all(a.shape == (2, 5, 3) for a in rusinkiewicz(wi, wo))
    h_uv, d_uv = plane_coords(wi, wo)
    assert h_uv.shape == d_uv.shape == (2, 5, 3, 2)


unit_hemisphere = st.tuples(
    st.floats(0.0, np.pi / 2, allow_nan=False), st.floats(0.0, TAU, allow_nan=False)
).map(lambda a: from_spherical(*a))


@settings(max_examples=300, deadline=None)
@given(unit_hemisphere, unit_hemisphere)
def test06_property_round_trip_and_reciprocity(wi, wo):
    if np.dot(wi, wo) < -1 + 1e-9:
        return  # wi = -wo (both on the horizon): h undefined, documented as the normal
    angles = rusinkiewicz(wi, wo)
    wi2, wo2 = from_rusinkiewicz(*angles)
    assert np.allclose(wi2, wi, atol=1e-9) and np.allclose(wo2, wo, atol=1e-9)
    swapped = rusinkiewicz(wo, wi)
    assert abs(swapped[0] - angles[0]) < 1e-9 and abs(swapped[2] - angles[2]) < 1e-9
    assert circular_diff(swapped[3], angles[3] + np.pi) * np.sin(angles[2]) < 1e-9


def test07_plane_map_centre_border_round_trip():
    assert np.allclose(hemisphere_to_square(0.0, np.linspace(0, TAU, 9)), 0.5)
    rng = np.random.default_rng(7)
    phi = rng.uniform(0, TAU, 1000)
    rim = hemisphere_to_square(np.pi / 2, phi)
    assert np.allclose(np.max(np.abs(2 * rim - 1), axis=-1), 1.0)  # horizon -> square border
    theta = rng.uniform(0, np.pi / 2, 10000)
    phi = rng.uniform(0, TAU, 10000)
    uv = hemisphere_to_square(theta, phi)
    assert np.all((uv >= 0) & (uv <= 1))
    t2, p2 = square_to_hemisphere(uv)
    assert np.max(np.abs(t2 - theta)) < 1e-12 and np.max(circular_diff(p2, phi) * theta) < 1e-12
    st_ = rng.uniform(0, 1, (10000, 2))
    assert np.max(np.abs(hemisphere_to_square(*square_to_hemisphere(st_)) - st_)) < 1e-12


def test08_plane_map_is_continuous():
    """Nearby directions land nearby, across the phi = 0 / 2 pi seam and at the pole."""
    rng = np.random.default_rng(8)
    v = random_hemisphere(rng, 20000)
    v[:200, 1] = 1e-9 * rng.normal(size=200)  # on the phi seam
    v[200:400, :2] *= 1e-6  # near the pole
    v = normalize(v)
    w = normalize(v + 1e-6 * rng.normal(size=v.shape))
    eps = np.linalg.norm(w - v, axis=-1)  # ~ angle between them
    move = np.linalg.norm(hemisphere_to_square(*to_spherical(w)) - hemisphere_to_square(*to_spherical(v)), axis=-1)
    assert np.max(move / eps) < 2.0  # Lipschitz bound of the map (equidistant + concentric)


def test12_minrot_identities_and_inverse():
    """d = R(h) wi: d = wi at the mirror configuration (R = I), |d| = 1, d_z = cos theta_d of
    Rusinkiewicz (the two d differ by a turn about n for theta_h > 0), and from_minrot inverts."""
    rng = np.random.default_rng(12)
    wi, wo = random_hemisphere(rng, 10000), random_hemisphere(rng, 10000)
    h, d = minrot_difference(wi, wo)
    assert np.max(np.abs(np.linalg.norm(d, axis=-1) - 1)) < 1e-12
    assert np.max(np.abs(np.arccos(np.clip(d[:, 2], -1, 1)) - rusinkiewicz(wi, wo)[2])) < 1e-6
    mh, md = minrot_difference(wi, reflect_normal(wi))
    assert np.all(mh[:, :2] == 0) and np.max(np.abs(mh[:, 2] - 1)) < 1e-15 and np.max(np.abs(md - wi)) < 1e-15
    assert np.allclose(minrot_difference(wi, wi)[1], [0, 0, 1], atol=1e-12)  # wi = wo: d = n
    wi2, wo2 = from_minrot(h, d)
    assert np.max(np.abs(wi2 - wi)) < 1e-12 and np.max(np.abs(wo2 - wo)) < 1e-12
    # Bijective through the plane coordinates too: (H, D) -> (h, d) -> (wi, wo).
    hc, dc = plane_coords(wi, wo, PLANE_PARAMETERIZATION)
    wi3, wo3 = from_minrot(from_spherical(*square_to_hemisphere(hc)), from_spherical(*square_to_hemisphere(dc)))
    assert np.max(np.abs(wi3 - wi)) < 1e-9 and np.max(np.abs(wo3 - wo)) < 1e-9


def test13_plane_coords_ids():
    rng = np.random.default_rng(13)
    wi, wo = random_hemisphere(rng, 1000), random_hemisphere(rng, 1000)
    h1, d1 = plane_coords(wi, wo, LEGACY_PLANE_PARAMETERIZATION)
    h2, d2 = plane_coords(wi, wo, MINROT_PLANE_PARAMETERIZATION)
    assert PLANE_PARAMETERIZATION == "relief-minrot-concentric-v4"
    assert RELIEF_SLOPE_PLANE_PARAMETERIZATION == "relief-minrot-concentric-v3"
    assert PLANE_PARAMETERIZATIONS == (LEGACY_PLANE_PARAMETERIZATION, MINROT_PLANE_PARAMETERIZATION,
                                       RELIEF_SLOPE_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION)
    for relief in (RELIEF_SLOPE_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION):
        h3, d3 = plane_coords(wi, wo, relief)  # no relief: v2, bit for bit
        assert np.array_equal(h3, h2) and np.array_equal(d3, d2)
        h3, d3 = plane_coords(wi, wo, relief, np.zeros((len(wi), 2)))  # flat texels too
        assert np.array_equal(h3, h2) and np.array_equal(d3, d2)
    slope = random_slopes(rng, len(wi))  # v3 and v4 differ in how the slope is interpolated only
    h3, d3 = plane_coords(wi, wo, RELIEF_SLOPE_PLANE_PARAMETERIZATION, slope)
    h4, d4 = plane_coords(wi, wo, PLANE_PARAMETERIZATION, slope)
    assert np.array_equal(h3, h4) and np.array_equal(d3, d4)
    assert interpolates_normals(PLANE_PARAMETERIZATION) and not interpolates_normals(RELIEF_SLOPE_PLANE_PARAMETERIZATION)
    assert np.max(np.abs(h1 - h2)) < 1e-12  # the H plane is the same
    assert np.max(np.abs(d1 - d2)) > 0.1  # the D planes are not
    th, ph, td, pd = rusinkiewicz(wi, wo)
    assert np.array_equal(d1, hemisphere_to_square(td, pd))  # v1 is exactly the old definition
    with pytest.raises(AngleParamError, match="unknown H/D plane parameterization 'nope'"):
        plane_coords(wi, wo, "nope")


def _rotate_by(rng, w, angle):
    """``w`` [n, 3] turned by ``angle`` [n] radians about random axes perpendicular to it."""
    axis = normalize(np.cross(w, rng.normal(size=w.shape)))
    return normalize(w * np.cos(angle)[:, None] + axis * np.sin(angle)[:, None])


def random_slopes(rng, n, max_tilt_deg=45.0):
    """n relief slopes [n, 2] whose normals tilt uniformly up to ``max_tilt_deg`` degrees."""
    tilt = np.radians(rng.uniform(0, max_tilt_deg, n))
    phi = rng.uniform(0, TAU, n)
    return np.tan(tilt)[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)


def test16_relief_frame():
    """v3 measures directions in the frame of the relief normal n = normalize(-s, 1): it is v2
    of the directions turned by the minimal rotation taking n to +z — a rotation (angles between
    directions kept), n itself goes to +z, and a mirror pair about n has its half vector at the
    H plane's centre, whatever the tilt."""
    rng = np.random.default_rng(16)
    n = 5000
    slope = random_slopes(rng, n)
    normal = normalize(np.concatenate([-slope, np.ones((n, 1))], axis=-1))
    assert np.max(np.abs(rotate_to_pole(normal, normal) - [0, 0, 1])) < 1e-12
    wi, wo = random_hemisphere(rng, n), random_hemisphere(rng, n)
    ri, ro = relief_frame(wi, slope), relief_frame(wo, slope)
    assert np.max(np.abs(np.sum(ri * ro, -1) - np.sum(wi * wo, -1))) < 1e-12
    assert np.max(np.abs(np.linalg.norm(ri, axis=-1) - 1)) < 1e-12
    h3, d3 = plane_coords(wi, wo, PLANE_PARAMETERIZATION, slope)
    h2, d2 = plane_coords(ri, ro, MINROT_PLANE_PARAMETERIZATION)
    assert np.array_equal(h3, h2) and np.array_equal(d3, d2)
    mirror = 2 * np.sum(wi * normal, -1, keepdims=True) * normal - wi  # wi reflected about n
    above = (wi @ [0, 0, 1] > 0) & (mirror @ [0, 0, 1] > 0) & (np.sum(wi * normal, -1) > 0)
    h_mirror, _ = plane_coords(wi[above], mirror[above], PLANE_PARAMETERIZATION, slope[above])
    assert above.sum() > 1000 and np.max(np.abs(h_mirror - 0.5)) < 1e-7
    h_macro, _ = plane_coords(wi[above], mirror[above], MINROT_PLANE_PARAMETERIZATION)
    assert np.median(np.abs(h_macro - 0.5)) > 0.05  # in the macro frame the highlight wanders


D_LIPSCHITZ = 0.75
"""Bound of |Δ(s, t)| of the v2 D plane per radian of direction change (|Δwi| + |Δwo|), i.e.
0.013 of the plane's width per degree; measured max 0.57 (near wi = -wo at the horizon)."""


def test14_d_plane_is_continuous_everywhere():
    """Over the whole domain of pairs — random pairs, exact mirror configurations (theta_h = 0),
    their 1e-4 rad neighbours, and grazing near-opposite pairs (theta_d -> 90 deg) — turning wi
    or wo by 1e-6..1e-2 rad moves the v2 D coordinate by <= D_LIPSCHITZ per radian, and so does
    v3's at any relief slope (up to 45 degrees; pairs above the facet's horizon). v1 breaks
    any such bound at theta_h -> 0 (that is why v2 exists): there it moves > 1000x as much."""
    rng = np.random.default_rng(14)
    n = 40000
    wi, wo = random_hemisphere(rng, n), random_hemisphere(rng, n)
    q = n // 5
    wo[:q] = reflect_normal(wi[:q])  # theta_h = 0 exactly
    wo[q:2 * q] = _rotate_by(rng, reflect_normal(wi[q:2 * q]), np.full(q, 1e-4))  # theta_h ~ 1e-4
    phi = rng.uniform(0, TAU, q)
    wi[2 * q:3 * q] = from_spherical(np.pi / 2 - 10 ** rng.uniform(-4, -1, q), phi)
    wo[2 * q:3 * q] = from_spherical(np.pi / 2 - 10 ** rng.uniform(-4, -1, q), phi + np.pi + 1e-2 * rng.normal(size=q))
    near_mirror = np.zeros(n, bool)
    near_mirror[:2 * q] = True
    slope = random_slopes(rng, n)
    facing = (relief_frame(wi, slope)[:, 2] > 0) & (relief_frame(wo, slope)[:, 2] > 0)
    assert facing.mean() > 0.5
    for moved in ("wi", "wo"):
        step = 10 ** rng.uniform(-6, -2, n)
        wi2 = _rotate_by(rng, wi, step) if moved == "wi" else wi
        wo2 = _rotate_by(rng, wo, step) if moved == "wo" else wo
        keep = (wi2[:, 2] > 0) & (wo2[:, 2] > 0)
        assert keep.mean() > 0.9
        dist = np.linalg.norm(wi2 - wi, axis=-1) + np.linalg.norm(wo2 - wo, axis=-1)
        ratio = {}
        for p in PLANE_PARAMETERIZATIONS:
            d0, d1 = plane_coords(wi, wo, p, slope)[1], plane_coords(wi2, wo2, p, slope)[1]
            ratio[p] = np.linalg.norm(d1 - d0, axis=-1)[keep] / dist[keep]
        assert np.max(ratio[MINROT_PLANE_PARAMETERIZATION]) <= D_LIPSCHITZ, moved
        assert np.max(ratio[PLANE_PARAMETERIZATION][facing[keep]]) <= D_LIPSCHITZ, moved
        assert np.max(ratio[LEGACY_PLANE_PARAMETERIZATION][near_mirror[keep]]) > 1000 * D_LIPSCHITZ, moved


# ---- Slang vs numpy -----------------------------------------------------------------------

KERNELS = Path(__file__).with_name("test_angles.slang")


@pytest.fixture(scope="module")
def run():
    """run(entry, n, out_width, uniforms=None, **float32 inputs) -> float32 [n, out_width] from
    Slang; ``uniforms``: scalar kernel parameters."""
    from neumat.device import DeviceError, default_device

    try:
        device = default_device()
    except DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")
    import slangpy as spy

    module = device.load_module_from_source("neumat_test_angles", KERNELS.read_text(), path=str(KERNELS))

    def dispatch(entry, n, out_width, uniforms=None, **inputs):
        kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point(entry)]))
        buffers = {
            name: device.create_buffer(
                usage=spy.BufferUsage.shader_resource,
                data=np.ascontiguousarray(a, dtype=np.float32).reshape(-1),
            )
            for name, a in inputs.items()
        }
        result = device.create_buffer(usage=spy.BufferUsage.unordered_access, size=4 * n * out_width)
        kernel.dispatch(thread_count=[n, 1, 1], result=result, count=n, **(uniforms or {}), **buffers)
        return result.to_numpy().view(np.float32).reshape(n, out_width)

    return dispatch


def slang_test_pairs(rng, n):
    """n random float32 pairs plus exact degenerate ones: mirror, wi = wo, normal, grazing."""
    wi, wo = random_hemisphere(rng, n, np.float32), random_hemisphere(rng, n, np.float32)
    special_i = random_hemisphere(rng, 64, np.float32)
    wi = np.vstack([wi, special_i, special_i, [[0, 0, 1]], [[1, 0, 0]]]).astype(np.float32)
    wo = np.vstack([wo, reflect_normal(special_i), special_i, [[0, 0, 1]], [[0, 1, 0]]]).astype(np.float32)
    return wi, wo, slice(n, n + 64), slice(n + 64, n + 128)


def test09_slang_forward_matches(run):
    rng = np.random.default_rng(9)
    wi, wo, mirror, same = slang_test_pairs(rng, 20000)
    got = run("angles_forward", len(wi), 4, wi=wi, wo=wo).astype(np.float64)
    ref = np.stack(rusinkiewicz(wi.astype(np.float64), wo.astype(np.float64)), axis=-1)
    assert np.max(np.abs(got[:, 0] - ref[:, 0])) < 1e-5
    assert np.max(np.abs(got[:, 2] - ref[:, 2])) < 1e-5
    ok_h = np.sin(ref[:, 0]) >= 0.05
    ok_d = ok_h & (np.sin(ref[:, 2]) >= 0.05)
    assert ok_h.mean() > 0.9 and ok_d.mean() > 0.8
    assert np.max(circular_diff(got[ok_h, 1], ref[ok_h, 1])) < 1e-5
    assert np.max(circular_diff(got[ok_d, 3], ref[ok_d, 3])) < 1e-5
    # Everywhere: the Slang angles describe the same pair of directions.
    wi2, wo2 = from_rusinkiewicz(*got.T)
    assert np.max(np.abs(wi2 - wi)) < 1e-5 and np.max(np.abs(wo2 - wo)) < 1e-5
    # Degenerate configurations, defined identically.
    assert np.all(got[mirror, 0] == 0) and np.all(got[mirror, 1] == 0)
    assert np.max(got[same, 2]) < 1e-5
    assert got[-2].tolist() == [0.0, 0.0, 0.0, 0.0]  # wi = wo = n


def test10_slang_inverse_matches(run):
    rng = np.random.default_rng(10)
    wi, wo = random_hemisphere(rng, 20000), random_hemisphere(rng, 20000)
    angles = np.stack(rusinkiewicz(wi, wo), axis=-1).astype(np.float32)
    got = run("angles_inverse", len(angles), 6, angles=angles)
    ref_i, ref_o = from_rusinkiewicz(*angles.astype(np.float64).T)
    assert np.max(np.abs(got[:, :3] - ref_i)) < 1e-5 and np.max(np.abs(got[:, 3:] - ref_o)) < 1e-5


@pytest.mark.parametrize("parameterization", PLANE_PARAMETERIZATIONS)
def test11_slang_plane_coords_match(run, parameterization):
    """Plane coordinates within 1e-5 (= 0.0005 texels of a 50^2 plane). The H plane is
    continuous at the pole, so it is compared everywhere, and so is the v2 D plane. The v1 D
    plane inherits phi_h's ill-conditioning near theta_h = 0 (phi_d is measured in the phi_h
    frame), so it is compared where sin(theta_h) >= 0.05 and at the exact mirror configurations.
    Every pair has a random relief slope (read by v3 only)."""
    rng = np.random.default_rng(11)
    wi, wo, mirror, _ = slang_test_pairs(rng, 20000)
    slope = random_slopes(rng, len(wi)).astype(np.float32)
    selector = {"parameterization": PLANE_PARAMETERIZATIONS.index(parameterization)}
    got = run("angles_planes", len(wi), 4, uniforms=selector, wi=wi, wo=wo, slope=slope)
    h_uv, d_uv = plane_coords(wi.astype(np.float64), wo.astype(np.float64), parameterization, slope.astype(np.float64))
    assert np.max(np.abs(got[:, :2] - h_uv)) < 1e-5
    theta_h = rusinkiewicz(wi.astype(np.float64), wo.astype(np.float64))[0]
    ok = np.sin(theta_h) >= 0.05 if parameterization == LEGACY_PLANE_PARAMETERIZATION else np.ones(len(wi), bool)
    ok[mirror] = True
    assert np.max(np.abs(got[ok, 2:] - d_uv[ok])) < 1e-5
    st_ = rng.uniform(0, 1, (20000, 2)).astype(np.float32)
    back = run("angles_square_to_hemisphere", len(st_), 2, st=st_).astype(np.float64)
    theta, phi = square_to_hemisphere(st_.astype(np.float64))
    assert np.max(np.abs(back[:, 0] - theta)) < 1e-5
    assert np.max(circular_diff(back[:, 1], phi) * np.sin(theta)) < 1e-5


def test15_slang_minrot_matches(run):
    """minRotDifference and fromMinRot against the float64 definition, everywhere (random,
    mirror, wi = wo, normal, horizon pairs), within 1e-5 per component."""
    rng = np.random.default_rng(15)
    wi, wo, mirror, same = slang_test_pairs(rng, 20000)
    got = run("angles_minrot", len(wi), 6, wi=wi, wo=wo).astype(np.float64)
    h, d = minrot_difference(wi.astype(np.float64), wo.astype(np.float64))
    assert np.max(np.abs(got[:, :3] - h)) < 1e-5 and np.max(np.abs(got[:, 3:] - d)) < 1e-5
    assert np.all(got[mirror, :2] == 0) and np.max(np.abs(got[mirror, 3:] - wi[mirror])) < 1e-6
    back = run("angles_minrot_inverse", len(wi), 6, h=h.astype(np.float32), d=d.astype(np.float32))
    ref_i, ref_o = from_minrot(h.astype(np.float32).astype(np.float64), d.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(back[:, :3] - ref_i)) < 1e-5 and np.max(np.abs(back[:, 3:] - ref_o)) < 1e-5
