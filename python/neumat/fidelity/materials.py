"""The suite's materials: PBR texture sets written to disk with real-world file names.

Every material is generated at run time by deterministic numpy code (procedural ones here,
photo-based ones from :mod:`neumat.data.materials`) and written as the texture set a user
downloads, so training and ground truth go through the loader users hit
(:func:`neumat.data.pbr_io.load_pbr_maps`). Three naming styles, as the sites ship them:

* ``ambientcg``: ``HammeredCopper001_1K-PNG_Color.png``, ``_NormalGL``, ``_NormalDX``,
  ``_Roughness``, ``_Metalness``, ``_Displacement``, ``_AmbientOcclusion`` and an
  ``HammeredCopper001.png`` preview (resolution token ``1K``; ``64PX`` below 1K);
* ``polyhaven``: ``basket_weave_diff_1k.png``, ``_rough_1k``, ``_disp_1k``, ``_nor_gl_1k``,
  ``_nor_dx_1k``, ``_metal_1k``, ``_arm_1k`` (R = occlusion, G = roughness, B = metal),
  ``_ao_1k``;
* ``matsynth``: ``basecolor.png``, ``diffuse.png``, ``height.png``, ``displacement.png``,
  ``roughness.png``, ``metallic.png``, ``normal.png``, ``specular.png``.

Encodings: colour 8-bit sRGB; height/displacement 16-bit grey; roughness, metalness and
occlusion 8-bit linear grey; normal maps 8-bit, from the height-field gradient at the
material's ``height_scale`` (OpenGL: green toward row 0; DirectX: green toward the bottom).
The loader reads the quantized files back; the ground truth is rendered from what it loaded.

=================== =========== ======================================================= =====
material            style       what it tests                                           hs
=================== =========== ======================================================= =====
hammered_copper     ambientcg   glossy metal (metallic 1, roughness 0.15–0.3), dents     0.010
rough_plaster       polyhaven   rough dielectric, soft relief                            0.020
basket_weave        polyhaven   deep relief, strong self-shadowing and masking           0.060
checker_tiles       matsynth    fine high-contrast texture, thin recessed grout          0.008
brushed_steel       ambientcg   anisotropic-looking streaks on glossy metal              0.004
woven_fabric        matsynth    woven threads (:func:`neumat.data.materials.fabric`)     0.015
gravel_photo        polyhaven   photograph-based (``skimage.data.gravel``)               0.040
brick_photo         ambientcg   photograph-based (``skimage.data.brick``)                0.030
=================== =========== ======================================================= =====

``hs`` is the intended ``height_scale`` (UV units per height unit; the tile is 1×1). Texture
sets do not record it; the suite trains with ``source.height_scale = hs``, and the ground truth
always uses the height scale recorded in the evaluated bundle (:mod:`neumat.fidelity.run`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import materials as data_materials
from ..data.errors import DataError
from ..material.heightfield import HeightField
from ..data.pbr import PbrMaterial
from ..data.procedural import fbm, normalize01, periodic_noise, smoothstep, texel_grid, voronoi

STYLES = ("ambientcg", "polyhaven", "matsynth")
"""File-naming styles :func:`write_texture_set` writes."""
STAMP = "fidelity_set.json"
"""File beside the maps recording what generated them (regenerated when it differs)."""
GENERATOR_VERSION = 1
"""Bump when a generator's output changes, so cached sets are rewritten."""


def hammered_copper(res: int, seed: int) -> PbrMaterial:
    """Copper hammered into overlapping round dents (concave caps meeting at sharp ridges)."""
    rng = np.random.default_rng(seed)
    f1, f2, cell = voronoi(res, 90, rng, jitter=0.9)
    dent = np.clip(f1 / np.maximum(0.5 * (f1 + f2), 1e-6), 0.0, 1.0) ** 2
    depth = rng.uniform(0.7, 1.0, cell.max() + 1)[cell]
    height = normalize01(depth * dent + 0.05 * fbm(res, 0.05, rng, octaves=3), 0.5, 99.5)
    tarnish = 0.5 + 0.5 * fbm(res, 0.3, rng)
    albedo = np.array([0.95, 0.64, 0.54]) * (0.9 + 0.1 * tarnish)[..., None]
    roughness = 0.15 + 0.15 * np.clip(tarnish, 0.0, 1.0) + 0.05 * (1.0 - dent)
    return _material("hammered_copper", albedo, height, roughness, np.ones((res, res)), 0.010, seed)


def rough_plaster(res: int, seed: int) -> PbrMaterial:
    """Off-white trowelled plaster: blotchy flattened lumps over fine grain, very rough."""
    rng = np.random.default_rng(seed)
    lumps = np.clip(fbm(res, 0.25, rng), -0.6, 1.5)  # flattened tops where the trowel passed
    grain = periodic_noise(res, 0.01, rng)
    height = normalize01(lumps + 0.15 * grain, 0.5, 99.5)
    tone = 0.9 + 0.08 * fbm(res, 0.15, rng)
    albedo = np.array([0.74, 0.72, 0.67]) * tone[..., None]
    roughness = 0.95 - 0.12 * smoothstep(0.6, 1.0, height)
    return _material("rough_plaster", albedo, height, roughness, None, 0.020, seed)


def basket_weave(res: int, seed: int) -> PbrMaterial:
    """Flat reed strips woven two-over-two-under (8 per tile each way) with deep gaps."""
    rng = np.random.default_rng(seed)
    n, half_width = 8, 0.40  # strips per tile; strip half-width in strip spacings
    u, v = texel_grid(res)
    xu, xv = (u * n) % 1.0 - 0.5, (v * n) % 1.0 - 0.5
    iu, iv = np.floor(u * n), np.floor(v * n)
    prof_u = np.sqrt(np.clip(1.0 - (xu / half_width) ** 2, 0.0, 1.0)) ** 0.5
    prof_v = np.sqrt(np.clip(1.0 - (xv / half_width) ** 2, 0.0, 1.0)) ** 0.5
    lift_u = 0.5 + 0.5 * np.cos(np.pi * (v * n / 2.0 + iu / 2.0))  # 2-over-2-under along v
    lift_v = 0.5 + 0.5 * np.cos(np.pi * (u * n / 2.0 + iv / 2.0 + 1.0))
    h_u = prof_u * (0.45 + 0.55 * lift_u) + 0.03 * periodic_noise(res, 0.004, rng)
    h_v = prof_v * (0.45 + 0.55 * lift_v) + 0.03 * periodic_noise(res, 0.004, rng)
    height = normalize01(np.maximum(h_u, h_v), 0.5, 99.5)
    on_u = h_u >= h_v
    streak = 0.85 + 0.15 * np.where(on_u, np.sin(2 * np.pi * 37 * v), np.sin(2 * np.pi * 37 * u))
    straw = np.where(on_u[..., None], [0.46, 0.33, 0.17], [0.40, 0.27, 0.12])
    albedo = straw * (streak * (0.35 + 0.65 * height))[..., None]
    roughness = 0.55 + 0.25 * (1.0 - height)
    return _material("basket_weave", albedo, height, roughness, None, 0.060, seed)


def checker_tiles(res: int, seed: int) -> PbrMaterial:
    """Black and white glazed tiles (8×8 per tile side) in thin recessed grey grout."""
    rng = np.random.default_rng(seed)
    n, grout = 8, 0.06  # tiles per side; grout width in tile widths
    u, v = texel_grid(res)
    fu, fv = (u * n) % 1.0, (v * n) % 1.0
    white = (np.floor(u * n) + np.floor(v * n)) % 2 == 0
    edge = np.minimum(np.minimum(fu, 1.0 - fu), np.minimum(fv, 1.0 - fv))
    tile = smoothstep(0.5 * grout, 0.5 * grout + 0.02, edge)
    height = 0.2 + 0.75 * tile + 0.05 * tile * periodic_noise(res, 0.05, rng)
    colour = np.where(white[..., None], [0.80, 0.79, 0.76], [0.025, 0.025, 0.03])
    albedo = tile[..., None] * colour + (1.0 - tile[..., None]) * [0.30, 0.29, 0.27]
    roughness = 0.2 + 0.7 * (1.0 - tile)
    return _material("checker_tiles", albedo, normalize01(height), roughness, None, 0.008, seed)


def brushed_steel(res: int, seed: int) -> PbrMaterial:
    """Steel brushed along u: fine streaks in height, roughness and tone, long along u."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(res)
    white = rng.standard_normal((res, res))
    along = np.exp(-2.0 * (np.pi * res / 6.0) ** 2 * k**2)  # σ = 1/6 tile along u (rows)
    across = np.exp(-2.0 * (np.pi * 0.6) ** 2 * k**2)  # σ = 0.6 texel across
    streaks = np.fft.ifft2(np.fft.fft2(white) * across[:, None] * along[None, :]).real
    streaks = (streaks - streaks.mean()) / max(streaks.std(), 1e-12)
    height = normalize01(streaks + 0.3 * fbm(res, 0.2, rng, octaves=2), 0.5, 99.5)
    albedo = np.array([0.56, 0.57, 0.58]) * (0.92 + 0.04 * np.clip(streaks, -2, 2))[..., None]
    roughness = 0.32 + 0.06 * np.clip(streaks, -2, 2)
    return _material("brushed_steel", albedo, height, roughness, np.ones((res, res)), 0.004, seed)


@dataclass(frozen=True)
class SuiteMaterial:
    """One material of the suite and how it is written to disk."""

    name: str
    """Suite name (folder name under the materials directory)."""
    style: str
    """File-naming style, one of :data:`STYLES`."""
    asset_name: str
    """Name in the files (``HammeredCopper001``, ``basket_weave``; unused by ``matsynth``)."""
    make: Callable[[int, int], PbrMaterial]
    """``(resolution, seed) -> PbrMaterial``."""
    height_scale: float
    """Intended displacement of height 1, UV units."""


def _registry(name: str, height_scale: float) -> Callable[[int, int], PbrMaterial]:
    def make(res: int, seed: int) -> PbrMaterial:
        mat = data_materials.make_material(name, res, seed)
        mat.height_scale = height_scale
        return mat
    return make


SUITE: dict[str, SuiteMaterial] = {m.name: m for m in (
    SuiteMaterial("hammered_copper", "ambientcg", "HammeredCopper001", hammered_copper, 0.010),
    SuiteMaterial("rough_plaster", "polyhaven", "rough_plaster", rough_plaster, 0.020),
    SuiteMaterial("basket_weave", "polyhaven", "basket_weave", basket_weave, 0.060),
    SuiteMaterial("checker_tiles", "matsynth", "", checker_tiles, 0.008),
    SuiteMaterial("brushed_steel", "ambientcg", "MetalBrushed002", brushed_steel, 0.004),
    SuiteMaterial("woven_fabric", "matsynth", "", _registry("fabric", 0.015), 0.015),
    SuiteMaterial("gravel_photo", "polyhaven", "gravel_floor", _registry("gravel", 0.040), 0.040),
    SuiteMaterial("brick_photo", "ambientcg", "Bricks059", _registry("brick", 0.030), 0.030),
)}
"""Every suite material by name (module docstring table)."""


def select(names: str | None) -> list[SuiteMaterial]:
    """The suite materials named in a comma-separated list (None or "": all, in table order).

    Raises:
        DataError: an unknown name (the message lists the valid ones).
    """
    if not names:
        return list(SUITE.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SUITE]
    if unknown:
        raise DataError(f"unknown fidelity material(s) {unknown}; choose from {list(SUITE)}")
    return [SUITE[n] for n in wanted]


def write_texture_set(spec: SuiteMaterial, directory: str | Path, resolution: int,
                      seed: int = 0) -> Path:
    """Generate ``spec`` at ``resolution``² texels and write its texture set into
    ``directory`` (created), unless the set there was written by the same generator,
    resolution and seed already. Returns the directory."""
    directory = Path(directory)
    stamp = {"material": spec.name, "style": spec.style, "resolution": resolution, "seed": seed,
             "generator_version": GENERATOR_VERSION}
    stamp_path = directory / STAMP
    if stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
        return directory
    if spec.style not in STYLES:
        raise DataError(f"{spec.name}: unknown naming style {spec.style!r}; one of {STYLES}")
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    mat = spec.make(resolution, seed)
    encoded = _encode(mat, spec.height_scale)
    for role, filename in _file_names(spec, resolution).items():
        _write_png(directory / filename, encoded[role])
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return directory


def _file_names(spec: SuiteMaterial, res: int) -> dict[str, str]:
    """Encoded role (see :func:`_encode`) -> file name, in ``spec.style``."""
    if spec.style == "ambientcg":
        prefix = f"{spec.asset_name}_{res // 1024}K-PNG" if res % 1024 == 0 else \
            f"{spec.asset_name}_{res}PX-PNG"
        names = {"color": "Color", "normal_gl": "NormalGL", "normal_dx": "NormalDX",
                 "roughness": "Roughness", "metallic": "Metalness", "height": "Displacement",
                 "ao": "AmbientOcclusion"}
        files = {role: f"{prefix}_{suffix}.png" for role, suffix in names.items()}
        files["preview"] = f"{spec.asset_name}.png"
        return files
    if spec.style == "polyhaven":
        tag = f"{res // 1024}k" if res % 1024 == 0 else f"{res}px"
        names = {"color": "diff", "roughness": "rough", "height": "disp", "normal_gl": "nor_gl",
                 "normal_dx": "nor_dx", "metallic": "metal", "arm": "arm", "ao": "ao"}
        return {role: f"{spec.asset_name}_{suffix}_{tag}.png" for role, suffix in names.items()}
    return {"color": "basecolor.png", "diffuse": "diffuse.png", "height": "height.png",
            "height16": "displacement.png", "roughness": "roughness.png",
            "metallic": "metallic.png", "normal_gl": "normal.png", "specular": "specular.png"}


def _encode(mat: PbrMaterial, height_scale: float) -> dict[str, np.ndarray]:
    """Every file's pixels (uint8 / uint16 arrays) by encoded role."""
    normal = HeightField(mat.height, height_scale).gradient_normals()
    gl = normal * [1.0, -1.0, 1.0]  # OpenGL maps: green toward the top row (-v)
    height16 = np.round(mat.height * 65535.0).astype(np.uint16)
    ao = np.clip(0.6 + 0.4 * mat.height, 0.0, 1.0)
    kd = (1.0 - mat.metallic[..., None]) * mat.albedo
    return {
        "color": _u8(linear_to_srgb(mat.albedo)), "diffuse": _u8(linear_to_srgb(kd)),
        "preview": _u8(linear_to_srgb(mat.albedo * (0.3 + 0.7 * normal[..., 2:]))),
        "height": height16, "height16": height16,
        "roughness": _u8(mat.roughness), "metallic": _u8(mat.metallic), "ao": _u8(ao),
        "arm": _u8(np.stack([ao, mat.roughness, mat.metallic], axis=-1)),
        "normal_gl": _u8(0.5 * gl + 0.5), "normal_dx": _u8(0.5 * normal + 0.5),
        "specular": _u8(np.full(mat.height.shape, 0.5)),
    }


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values (clipped to [0, 1]; inverse of
    :func:`neumat.data.pbr.srgb_to_linear`)."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    import imageio.v3 as iio
    iio.imwrite(path, np.ascontiguousarray(pixels), plugin="pillow")


def _material(name, albedo, height, roughness, metallic, height_scale, seed) -> PbrMaterial:
    res = height.shape[0]
    return PbrMaterial(
        name=name, albedo=np.clip(albedo, 0.0, 1.0), height=np.clip(height, 0.0, 1.0),
        roughness=np.clip(roughness, 0.0, 1.0),
        metallic=np.zeros((res, res)) if metallic is None else np.clip(metallic, 0.0, 1.0),
        height_scale=height_scale, meta={"generator": f"neumat.fidelity.materials.{name}",
                                         "resolution": res, "seed": seed})
