"""The shadow pass in both modes (``prisms``: shaders/shadow_prisms.slang through the shell
prisms; ``march``: shaders/shadow.slang's traceShadow) on analytic height fields over a plane,
against the exact shadow test of the data's slice renderer
(:meth:`neumat.material.heightfield.HeightField.occluded`) at the traced hit points, and free of
self-shadow acne on a relief nothing can shadow; the march also against its float64 curved-path
reference on a sphere. Curved meshes against Mitsuba 3: tests/test_render_curved_shadows.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neumat.material.heightfield import SURFACE_EPS, HeightField
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight
from neumat.render.passes import MASK, UV, HfTracePass, RenderContext, ShellPass
from neumat.render.passes.shadow import MODES, SHADOW, ShadowPass
from neumat.render.scene import HeightSpec, Scene
from height_fields import R, sinusoid, steps

RES = 64
SCALE = 0.12
"""Relief depth (UV = scene units on this plane)."""
MISMATCH_BOUND = 0.02
"""Fraction of pixels whose shadow bit may differ from the exact test: the traced hit is within
1/4 texel of the exact one (tests/test_render_hf_trace.py), so pixels on a shadow boundary
may flip. Measured: at most 0.5% (sinusoid 0.49% / 0.29%, steps 0%)."""
CAM = Camera(eye=(0.5, -0.4, 0.9), target=(0.5, 0.5, 0.0), fov_y=40, width=RES, height=RES)


def light_at(theta: float, phi: float) -> DirectionalLight:
    t, p = math.radians(theta), math.radians(phi)
    return DirectionalLight((math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)), (1.0, 1.0, 1.0))


def render_shadow(device, scene: Scene, lights, mode: str):
    """shell + hf_trace + shadow (``mode``) of ``scene``; g-buffer and visibility."""
    ctx = RenderContext(device, scene.camera.width, scene.camera.height)
    shell = ShellPass(device, scene)
    trace = HfTracePass(device, scene, shell=shell)
    gbuffer = trace.execute(ctx, shell.execute(ctx, {}))
    shadow = ShadowPass(device, trace, mode=mode)
    shadow.lights = lights
    return gbuffer, shadow.execute(ctx, gbuffer)[SHADOW].numpy()


def plane_scene(height: np.ndarray, scale: float = SCALE) -> Scene:
    """A plane z = 0 (u = x + 10, v = y + 10) under ``height``, seen by CAM."""
    return Scene(shapes.plane(20.0, segments=20), CAM, height=HeightSpec(height, 0.0, scale))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make_height", [sinusoid, steps])
def test01_shadow_mask_matches_exact_test(device, make_height, mode):
    height = make_height()
    lights = [light_at(75.0, 30.0), light_at(82.0, 200.0)]
    gbuffer, vis = render_shadow(device, plane_scene(height), lights, mode)
    mask = gbuffer[MASK].numpy()[..., 0] > 0.5
    uv = gbuffer[UV].numpy()[mask, :2].astype(np.float64)
    field = HeightField(height, SCALE)
    p = np.concatenate([uv, field.height_at(uv)[:, None]], axis=1)
    for i, light in enumerate(lights):
        wi = np.broadcast_to(np.asarray(light.direction), p.shape)
        lit = ~field.occluded(p + SURFACE_EPS * wi, wi)
        got = vis[mask, i]
        assert set(np.unique(got)) <= {0.0, 1.0}
        differ = np.mean((got > 0.5) != lit)
        print(f"{make_height.__name__} light {i}: shadowed {1 - lit.mean():.3f}, differing {differ:.4f}")
        assert 0.05 < 1 - lit.mean() < 0.95  # the configuration does cast shadows
        assert differ < MISMATCH_BOUND
    assert np.all(vis[mask, 2:] == 1.0)  # unused light slots
    assert np.all(vis[~mask] == 0.0)


@pytest.mark.parametrize("mode", MODES)
def test02_flat_relief_and_light_below_horizon(device, mode):
    gbuffer, vis = render_shadow(device, plane_scene(np.full((R, R), 0.5, np.float32)),
                                 [light_at(80.0, 10.0), DirectionalLight((0.3, 0.2, -0.5))], mode)
    mask = gbuffer[MASK].numpy()[..., 0] > 0.5
    assert mask.all()
    assert np.all(vis[..., 0] == 1.0)  # nothing casts a shadow on a flat surface
    assert np.all(vis[..., 1] == 0.0)  # below the horizon


def isolated_dark(visibility: np.ndarray) -> np.ndarray:
    """Pixels shadowed (0) while at least 6 of their 8 neighbours are lit: speckles."""
    lit = visibility > 0.5
    neighbours = sum(np.roll(np.roll(lit, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    inner = np.zeros_like(lit)
    inner[1:-1, 1:-1] = True
    return inner & ~lit & (neighbours >= 6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("res", [16, 128])
def test03_no_acne_on_a_smooth_relief(device, res, mode):
    """A smooth relief whose every bilinear facet is less steep than the light: nothing can
    occlude it, so any shadowed pixel is self-shadow acne (the ray re-meeting the surface it
    starts on). Lights at 45° and 68° from the normal (the latter: rays 1.1x steeper than the
    steepest facet, a near-grazing start)."""
    x = (np.arange(res) + 0.5) / res
    height = (0.5 + 0.5 * np.sin(2 * np.pi * x)[None, :] * np.cos(4 * np.pi * x)[:, None]).astype(np.float32)
    steepest = 1.0 / math.tan(math.radians(68.0)) / 1.1  # facet slope (UV units) the rays clear
    edge = max(np.abs(np.diff(height, axis=a, append=height.take([0], axis=a))).max() for a in (0, 1))
    scale = steepest / (math.sqrt(2.0) * edge * res)  # bilinear gradient <= sqrt(2) * edge difference * R
    gbuffer, vis = render_shadow(device, plane_scene(height, scale), [light_at(45.0, 30.0), light_at(68.0, 200.0)], mode)
    mask = gbuffer[MASK].numpy()[..., 0] > 0.5
    assert mask.all()
    for i in range(2):
        assert isolated_dark(vis[..., i]).sum() == 0
        assert np.all(vis[..., i] == 1.0)


def test04_curved_mesh_matches_the_numpy_path(device):
    """On a sphere (UV-unit relief scaled per vertex, 12 % of the radius deep) the march marches
    the same curved path as the float64 reference (neumat.render.reference.shadow: osculating
    circle, the hit face's metric, exact bilinear intersections per chord): pixels may differ
    only where float32 rounding flips a grazing contact. Measured: none differ (the same
    reference without the curvature differs on 3.7 % / 3.2 % of the pixels)."""
    from neumat.render.metric import vertex_uv_scale
    from neumat.render.passes.base import DPDU, DPDV, NORMAL, SHAPE, TANGENT
    from neumat.render.reference.shadow import shadow_reference

    mesh = shapes.uv_sphere(1.0, 24, 48)
    height = sinusoid()
    cam = Camera.orbit(azimuth=-60, elevation=40, distance=3.2, fov_y=40, width=RES, height=RES)
    scene = Scene(mesh, cam, height=HeightSpec(height, 0.0, 0.04, vertex_uv_scale(mesh)))
    lights = [light_at(60.0, 30.0), light_at(40.0, 200.0)]
    gbuffer, vis = render_shadow(device, scene, lights, "march")
    host = {s: gbuffer[s].numpy() for s in (UV, NORMAL, TANGENT, MASK, DPDU, DPDV, SHAPE)}
    ref = shadow_reference(height, host, [light.direction for light in lights])
    mask = host[MASK][..., 0] > 0.5
    for i in range(len(lights)):
        got = vis[..., i] > 0.5
        differ = np.mean(got[mask] != ref[i][mask])
        print(f"light {i}: shadowed {1 - ref[i][mask].mean():.3f}, differing {differ:.4f}")
        assert 0.2 < 1 - ref[i][mask].mean() < 0.9
        assert differ < MISMATCH_BOUND


def test05_mode_errors(device):
    """An unknown mode, and the prism walk without the shell pass's prisms, are clear errors."""
    scene = plane_scene(sinusoid())
    with_shell = HfTracePass(device, scene, shell=ShellPass(device, scene))
    with pytest.raises(ValueError, match="unknown shadow mode 'cone'"):
        ShadowPass(device, with_shell, mode="cone")
    with pytest.raises(ValueError, match="walks the shell pass's prisms"):
        ShadowPass(device, HfTracePass(device, scene), mode="prisms")


def test06_prisms_see_other_parts_of_the_mesh_up_to_a_point_light(device):
    """A floor under a ceiling (one mesh, flat relief): the prism walk lets the ceiling shadow
    the floor from a light above it (the march sees only the relief under its own pixel), and a
    point light between the two lights the floor (what lies beyond the light casts nothing)."""
    from neumat.render.passes.base import POSITION

    floor = shapes.plane(4.0, segments=4)
    ceiling = shapes.plane(4.0, center=(0.0, 0.0, 0.6), segments=4)
    mesh = shapes.Mesh(np.concatenate([floor.positions, ceiling.positions]),
                       np.concatenate([floor.normals, -ceiling.normals]),
                       np.concatenate([floor.uvs, ceiling.uvs]),
                       np.concatenate([floor.faces, ceiling.faces[:, ::-1] + len(floor.positions)]))
    cam = Camera(eye=(0.0, -1.2, 0.3), target=(0.0, 0.6, 0.0), fov_y=40, width=32, height=32)
    scene = Scene(mesh, cam, height=HeightSpec(np.full((R, R), 0.5, np.float32), 0.0, 0.02))
    lights = [DirectionalLight((0.2, 0.1, 1.0)), PointLight((0.0, 0.3, 0.3), (1.0, 1.0, 1.0))]
    for mode, lit_above in (("prisms", 0.0), ("march", 1.0)):
        gbuffer, vis = render_shadow(device, scene, lights, mode)
        on_floor = (gbuffer[MASK].numpy()[..., 0] > 0.5) & (gbuffer[POSITION].numpy()[..., 2] < 0.1)
        assert on_floor.mean() > 0.3
        assert np.all(vis[on_floor, 0] == lit_above), mode
        assert np.all(vis[on_floor, 1] == 1.0), mode
