"""Relief self-shadowing on curved meshes against Mitsuba 3 (issue 12's table).

Per scene (:data:`SCENES`: the plane, the rounded cube's flat faces, the UV sphere and its
equator band / polar caps, the draped cloth) and light elevation (30 / 50 / 70°, azimuth 30°,
directional): neumat's shell → hf_trace → shadow passes with the material's tiled height map
(synthesis off), and :mod:`neumat.render.reference.mitsuba_shadows` (the truly displaced mesh,
4 vertices per texel, neumat's camera rays, one shadow ray per pixel centre). Reported per
row: % of pixels shadowed (neumat, Mitsuba) over the pixels both see where the base mesh faces
the light (n·ωi > 0; attached shadows, trivially dark in both, are left out), and the IoU of the
two shadow masks there; and per region the texels between neumat's hit uv and Mitsuba's
(the exact prism map), median and 90th percentile, and the median angle between neumat's relief
normal and the displaced mesh's facet normal at the hits. Both include the curtains of the UV
sphere's pole row (faces with two coincident corners, displaced into vertical sheets:
``shaders/prism.slang``).

With ``--supersample K`` (K > 1) both renderers also trace K × K rays per pixel (a camera at K
times the resolution: sub-pixel centres on a regular grid, the same rays for both) and each
row adds the shadowed fractions of those rays and the soft IoU of the per-pixel shadowed
coverage (:func:`~neumat.render.reference.mitsuba_shadows.shadow_agreement`). One ray per
pixel point-samples the shadow pattern: where a pixel spans many texels (near the UV sphere's
poles, tens of u texels) the binary masks compare aliasing; the coverage compares what a
pixel shows.

Run: ``python -m neumat.bench.shadow_fidelity [--size 256] [--material assets/materials/gravel.nmat]
[--shadow-mode prisms|march] [--supersample 4]``
(prints a markdown table; most of the time goes to building Mitsuba's BVH of the displaced
meshes, ~10 s each, and to neumat's passes at K² times the pixels).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..render import shapes
from ..render.camera import Camera
from ..render.lights import DirectionalLight
from ..render.passes import MASK, NORMAL, POSITION, UV, HfTracePass, RenderContext, ShellPass
from ..render.passes.hf_trace import RELIEF_NORMAL
from ..render.passes.shadow import DEFAULT_MODE, MODES, SHADOW, ShadowPass
from ..render.reference.mitsuba_shadows import VERTICES_PER_TEXEL, displaced_surface, \
    reference_shadows, shadow_agreement
from ..assets import ASSETS, DEMO_MESH
from ..render.scene import HeightSpec, Scene

ELEVATIONS = (30.0, 50.0, 70.0)
"""Light elevations above the world xy plane, degrees."""
AZIMUTH = 30.0
"""Light azimuth, degrees from +x toward +y."""


@dataclass
class FidelityScene:
    """One mesh and view; ``regions`` name masks [H, W] of (position, normal) of Mitsuba's
    hits / neumat's mesh normals."""

    name: str
    mesh: Callable[[], shapes.Mesh]
    camera: Callable[[int], Camera]
    regions: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]


def _all(p, n):
    return np.ones(p.shape[:2], bool)


SCENES = {
    "plane": FidelityScene("plane", lambda: shapes.plane(2.0, segments=8),
                           lambda s: Camera.orbit(azimuth=-60, elevation=50, distance=2.6, fov_y=40, width=s, height=s),
                           {"plane": _all}),
    "cube": FidelityScene("cube", lambda: shapes.rounded_cube(0.8),
                          lambda s: Camera.orbit(azimuth=-60, elevation=35, distance=3.6, fov_y=40, width=s, height=s),
                          {"cube, flat faces": lambda p, n: np.abs(n).max(-1) > 0.9999}),
    "sphere": FidelityScene("sphere", lambda: shapes.uv_sphere(1.0),
                            lambda s: Camera.orbit(azimuth=-60, elevation=40, distance=3.4, fov_y=40, width=s, height=s),
                            {"sphere": _all,
                             "sphere, equator band (|lat| < 30°)": lambda p, n: np.abs(p[..., 2]) < 0.5 * np.linalg.norm(p, axis=-1),
                             "sphere, polar cap (|lat| > 60°)": lambda p, n: np.abs(p[..., 2]) > math.sqrt(0.75) * np.linalg.norm(p, axis=-1)}),
    "cloth": FidelityScene("cloth", lambda: shapes.load_mesh(DEMO_MESH),
                           lambda s: Camera.orbit(azimuth=-60, elevation=45, distance=3.4, fov_y=40, width=s, height=s),
                           {"draped cloth": _all}),
}


def light_direction(elevation: float, azimuth: float = AZIMUTH) -> np.ndarray:
    """Unit world direction toward a light at ``elevation`` / ``azimuth`` degrees (z up)."""
    e, a = math.radians(elevation), math.radians(azimuth)
    return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


def neumat_shadows(device, mesh, spec: HeightSpec, camera: Camera, directions,
                   shadow_mode: str = DEFAULT_MODE) -> dict[str, np.ndarray]:
    """neumat's g-buffer ``mask`` [H, W] bool, ``normal`` [H, W, 3], ``position`` [H, W, 3],
    ``uv`` [H, W, 2], ``relief_normal`` [H, W, 3] and ``lit`` [L, H, W] bool (shell → hf_trace →
    shadow in ``shadow_mode``, tiled height map)."""
    scene = Scene(mesh, camera, height=spec)
    ctx = RenderContext(device, camera.width, camera.height)
    shell = ShellPass(device, scene)
    trace = HfTracePass(device, scene, shell=shell)
    gbuffer = trace.execute(ctx, shell.execute(ctx, {}))
    shadow = ShadowPass(device, trace, mode=shadow_mode)
    shadow.lights = [DirectionalLight(tuple(d), (1.0, 1.0, 1.0)) for d in directions]
    vis = shadow.execute(ctx, gbuffer)[SHADOW].numpy()
    return {"mask": gbuffer[MASK].numpy()[..., 0] > 0.5, "normal": gbuffer[NORMAL].numpy()[..., :3],
            "position": gbuffer[POSITION].numpy()[..., :3], "uv": gbuffer[UV].numpy()[..., :2],
            "relief_normal": gbuffer[RELIEF_NORMAL].numpy()[..., :3], "lit": np.moveaxis(vis[..., : len(directions)] > 0.5, -1, 0)}


def measure_scene(device, bundle, key: str, size: int, elevations=ELEVATIONS,
                  vertices_per_texel: float = VERTICES_PER_TEXEL, shadow_mode: str = DEFAULT_MODE,
                  supersample: int = 1) -> list[dict]:
    """Rows ``{region, elevation, ours, mitsuba, iou, pixels}`` of one scene, one ray per pixel
    centre, with the hit geometry (module docstring); with ``supersample`` k > 1 also
    ``ss_ours``, ``ss_mitsuba``, ``soft_iou`` and ``ss_pixels`` from k × k rays per pixel."""
    fs = SCENES[key]
    mesh = fs.mesh()
    spec = HeightSpec.from_bundle(bundle, mesh)
    surface = displaced_surface(mesh, spec, vertices_per_texel)
    directions = [light_direction(e) for e in elevations]

    def frame(k: int) -> tuple[dict, list, Callable[[str, int], dict]]:
        """neumat's and Mitsuba's frames at k × k rays per pixel, and their agreement per
        (region, light index)."""
        camera = fs.camera(size * k)
        ours = neumat_shadows(device, mesh, spec, camera, directions, shadow_mode)
        refs = reference_shadows(surface, camera, directions, spec.height.shape[0])

        def agreement(region: str, light: int) -> dict:
            facing = np.sum(ours["normal"] * directions[light], axis=-1) > 0
            counted = fs.regions[region](refs[0].position, ours["normal"]) & facing
            return shadow_agreement(ours["mask"], ours["lit"][light], refs[light], counted, supersample=k)

        return ours, refs, agreement

    ours, refs, agreement = frame(1)
    uv_error = hit_uv_error(ours["uv"], refs[0].uv, spec.height.shape[0])
    rows = []
    for region, select in fs.regions.items():
        both = select(refs[0].position, ours["normal"]) & ours["mask"] & refs[0].hit
        err = uv_error[both]
        cos = np.sum(ours["relief_normal"][both] * refs[0].normal[both], axis=-1)
        geometry = {"uv_median": float(np.median(err)), "uv_p90": float(np.percentile(err, 90)),
                    "normal_median_deg": float(np.degrees(np.median(np.arccos(np.clip(cos, -1.0, 1.0)))))}
        rows += [{"region": region, "elevation": e, **agreement(region, i), **geometry}
                 for i, e in enumerate(elevations)]
    if supersample > 1:
        _, _, agreement = frame(supersample)
        for row in rows:
            ss = agreement(row["region"], elevations.index(row["elevation"]))
            row.update(ss_ours=ss["ours"], ss_mitsuba=ss["mitsuba"], soft_iou=ss["iou"], ss_pixels=ss["pixels"],
                       supersample=supersample)
    return rows


def hit_uv_error(ours: np.ndarray, reference: np.ndarray, res: int) -> np.ndarray:
    """[H, W] texels between neumat's hit uv and the reference's (the larger of |du|, |dv|, u
    and v taken modulo 1: the map tiles), ``res`` texels per UV unit."""
    delta = (ours.astype(np.float64) - reference + 0.5) % 1.0 - 0.5
    return np.abs(delta).max(axis=-1) * res


def markdown(rows: list[dict]) -> str:
    """The issue's table layout: one line per region, the elevations side by side; with
    supersampled rows also their fractions and the soft IoU of the coverage."""
    k = rows[0].get("supersample")
    ss = f" | {k}×{k} rays: neumat % | {k}×{k} rays: Mitsuba % | soft IoU of the coverage" if k else ""
    lines = ["| shape | light elevation | neumat % shadowed | Mitsuba % shadowed | IoU of the shadow masks" + ss
             + " | hit uv error, texels (median / p90) | relief normal vs mesh, median ° |",
             "|---|---|---|---|---|" + ("---|---|---|" if k else "") + "---|---|"]
    for region in dict.fromkeys(r["region"] for r in rows):
        sel = [r for r in rows if r["region"] == region]
        cells = [" / ".join(f"{r['elevation']:.0f}" for r in sel) + "°"]
        cells += [" / ".join(f"{100 * r[key]:.1f}" for r in sel) for key in ("ours", "mitsuba")]
        cells.append(" / ".join(f"{r['iou']:.2f}" for r in sel))
        if k:
            cells += [" / ".join(f"{100 * r[key]:.1f}" for r in sel) for key in ("ss_ours", "ss_mitsuba")]
            cells.append(" / ".join(f"{r['soft_iou']:.2f}" for r in sel))
        cells += [f"{sel[0]['uv_median']:.3f} / {sel[0]['uv_p90']:.3f}", f"{sel[0]['normal_median_deg']:.1f}"]
        lines.append(f"| {region} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    from ..bundle import load_bundle
    from ..device import default_device

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--material", default=str(ASSETS / "materials" / "gravel.nmat"))
    ap.add_argument("--size", type=int, default=256, help="image side, pixels")
    ap.add_argument("--scenes", default=",".join(SCENES), help=f"comma-separated, of {list(SCENES)}")
    ap.add_argument("--vertices-per-texel", type=float, default=VERTICES_PER_TEXEL,
                    help="density of Mitsuba's displaced mesh")
    ap.add_argument("--shadow-mode", choices=MODES, default=DEFAULT_MODE,
                    help="the shadow pass's ray walk (render/passes/shadow.py)")
    ap.add_argument("--supersample", type=int, default=1,
                    help="also compare the shadowed coverage of K x K rays per pixel (1: off)")
    args = ap.parse_args(argv)
    device, bundle = default_device(), load_bundle(args.material)
    rows = [r for key in args.scenes.split(",")
            for r in measure_scene(device, bundle, key, args.size, vertices_per_texel=args.vertices_per_texel,
                                  shadow_mode=args.shadow_mode, supersample=args.supersample)]
    print(markdown(rows))


if __name__ == "__main__":
    main()
