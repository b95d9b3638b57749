"""Materials made here, without downloads: procedural ones and ones built from the texture photos
shipped with scikit-image. Every generator is ``(resolution, seed) -> PbrMaterial``, tileable,
deterministic for a given (resolution, seed), parameters in the code below.

Photo-based materials (``brick``, ``gravel``, ``grass``: 512×512 greyscale photos in
``skimage.data``) follow one documented heuristic, :func:`photo_material`:

1. resample to R×R (area-averaged) and make tileable (:func:`~.procedural.make_seamless`);
2. decode sRGB to linear luminance ``L``;
3. **height** = high-pass of the slightly blurred luminance — ``blur(L, 0.75 px) -
   blur(L, R/16 px)`` — mapped from its 1st..99th percentiles to [0, 1]: in a photo lit from
   roughly the front, crevices are dark and tops are bright ("dark is deep"); the high-pass
   removes lighting gradients across the photo;
4. **albedo** = a per-material linear tint × ``L / mean(L)`` clipped to [0, 1];
5. **roughness** = ``r_top + (r_deep - r_top)·(1 - height)`` (worn tops smoother than
   crevices); metallic = 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import DataError
from .pbr import PbrMaterial, srgb_to_linear
from .procedural import (fbm, make_seamless, normalize01, periodic_blur, periodic_noise,
                         smoothstep, texel_grid, voronoi)


def leather(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Grained leather: domed Voronoi cells between creases, wrinkles, fine pores."""
    rng = np.random.default_rng(seed)
    f1, f2, _ = voronoi(resolution, 48, rng)
    edge = f2 - f1
    dome = np.sqrt(smoothstep(0.0, 0.06, edge))
    wrinkles = 1.0 - np.abs(fbm(resolution, 0.35, rng, octaves=3)) / 2.5
    pores = periodic_noise(resolution, 0.012, rng)
    height = normalize01(0.7 * dome + 0.25 * wrinkles + 0.04 * pores, 0.5, 99.5)
    tone = 0.85 + 0.15 * fbm(resolution, 0.25, rng)
    crease = 1.0 - smoothstep(0.0, 0.02, edge)
    base = np.array([0.16, 0.075, 0.035])
    albedo = base * (tone * (1.0 - 0.45 * crease))[..., None]
    roughness = 0.45 + 0.25 * crease + 0.05 * np.clip(pores, -2, 2)
    return _material("leather", albedo, height, roughness, None, 0.02, seed)


def fabric(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Plain-weave fabric: warp threads along v and weft threads along u crossing over and
    under each other (16 threads per tile), with fibre streaks along each thread."""
    rng = np.random.default_rng(seed)
    n = 16  # threads per tile; even, so the over/under pattern repeats with the tile
    u, v = texel_grid(resolution)
    width = 0.42  # thread half-width, fraction of the thread spacing
    xu, xv = (u * n) % 1.0 - 0.5, (v * n) % 1.0 - 0.5
    iu, iv = np.floor(u * n), np.floor(v * n)
    warp_profile = np.sqrt(np.clip(1.0 - (xu / width) ** 2, 0.0, 1.0))
    weft_profile = np.sqrt(np.clip(1.0 - (xv / width) ** 2, 0.0, 1.0))
    warp_lift = 0.5 + 0.5 * np.cos(np.pi * (v * n - 0.5 + iu))
    weft_lift = 0.5 + 0.5 * np.cos(np.pi * (u * n - 0.5 + iv + 1.0))
    streaks_warp = _streaks(rng.standard_normal((resolution, resolution)), axis=0)
    streaks_weft = _streaks(rng.standard_normal((resolution, resolution)), axis=1)
    warp_h = warp_profile * (0.55 + 0.45 * warp_lift) + 0.04 * streaks_warp
    weft_h = weft_profile * (0.55 + 0.45 * weft_lift) + 0.04 * streaks_weft
    height = normalize01(np.maximum(warp_h, weft_h), 0.5, 99.5)
    warp_top = warp_h >= weft_h
    warp_col, weft_col = np.array([0.05, 0.08, 0.20]), np.array([0.55, 0.48, 0.36])
    shade = (0.8 + 0.2 * height)[..., None]
    albedo = np.where(warp_top[..., None], warp_col, weft_col) * shade
    roughness = np.where(warp_top, 0.75, 0.85) - 0.05 * height
    return _material("fabric", albedo, height, roughness, None, 0.015, seed)


def stone_tiles(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Stone tiles in running bond (4 rows × 2 tiles per tile of UV), bevelled, each with its
    own height, tilt and colour, in rough recessed mortar."""
    rng = np.random.default_rng(seed)
    rows, cols, mortar = 4, 2, 0.035
    u, v = texel_grid(resolution)
    row = np.floor(v * rows)
    uu = (u * cols + 0.5 * (row % 2)) % cols
    col = np.floor(uu)
    fu, fv = uu - col, (v * rows) % 1.0
    tile_id = (row * cols + col).astype(np.int64)
    n_tiles = rows * cols
    lift = rng.uniform(0.65, 0.9, n_tiles)[tile_id]
    tilt_u, tilt_v = (rng.uniform(-0.08, 0.08, (2, n_tiles)))[:, tile_id]
    edge = np.minimum(np.minimum(fu, 1 - fu) / cols, np.minimum(fv, 1 - fv) / rows)
    bevel = smoothstep(mortar * 0.5, mortar * 1.6, edge)
    surface = lift + tilt_u * (fu - 0.5) + tilt_v * (fv - 0.5) + 0.05 * fbm(resolution, 0.2, rng)
    mortar_h = 0.12 + 0.03 * periodic_noise(resolution, 0.03, rng)
    height = np.clip(mortar_h + bevel * (surface - mortar_h), 0.0, 1.0)
    tint = rng.uniform(0.75, 1.15, (n_tiles, 1)) * np.array([0.32, 0.29, 0.25])
    speckle = 0.9 + 0.1 * fbm(resolution, 0.05, rng)
    albedo = (bevel[..., None] * tint[tile_id] + (1 - bevel[..., None]) * [0.42, 0.41, 0.39])
    albedo = albedo * speckle[..., None]
    roughness = 0.9 - 0.3 * bevel + 0.03 * np.clip(speckle - 0.9, -0.3, 0.3)
    return _material("stone_tiles", albedo, height, roughness, None, 0.025, seed)


def photo_material(name: str, image: np.ndarray, resolution: int, tint, roughness_top: float,
                   roughness_deep: float, height_scale: float, seed: int) -> PbrMaterial:
    """A PBR material from a greyscale sRGB photo, by the heuristic in the module docstring.

    Args:
        image: [H, W] uint8 sRGB photo (H, W >= resolution is best; it is area-resampled).
        tint: linear RGB mean albedo of the material.
        roughness_top, roughness_deep: roughness at height 1 and height 0.
        seed: picks the crop offset (the photo is rolled by a seeded amount before making it
            seamless), so different seeds give different tiles of the same material.
    """
    rng = np.random.default_rng(seed)
    img = np.asarray(image, dtype=np.float64) / 255.0
    img = np.roll(img, tuple(rng.integers(0, s) for s in img.shape[:2]), axis=(0, 1))
    side = min(img.shape[:2])
    img = _resample(img[:side, :side], resolution)
    lum = make_seamless(srgb_to_linear(img))
    height = normalize01(periodic_blur(lum, 0.75) - periodic_blur(lum, resolution / 16), 1, 99)
    albedo = np.asarray(tint, dtype=np.float64) * (lum / max(lum.mean(), 1e-6))[..., None]
    roughness = roughness_top + (roughness_deep - roughness_top) * (1.0 - height)
    return _material(name, albedo, height, roughness, None, height_scale, seed)


def brick(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Brick wall from ``skimage.data.brick()``."""
    from skimage import data
    return photo_material("brick", data.brick(), resolution, [0.30, 0.12, 0.07], 0.7, 0.95,
                          0.03, seed)


def gravel(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Gravel from ``skimage.data.gravel()``."""
    from skimage import data
    return photo_material("gravel", data.gravel(), resolution, [0.22, 0.20, 0.17], 0.55, 0.9,
                          0.04, seed)


def grass(resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """Grass from ``skimage.data.grass()``."""
    from skimage import data
    return photo_material("grass", data.grass(), resolution, [0.07, 0.15, 0.03], 0.45, 0.8,
                          0.035, seed)


MATERIALS: dict[str, Callable[[int, int], PbrMaterial]] = {
    "leather": leather,
    "fabric": fabric,
    "stone_tiles": stone_tiles,
    "brick": brick,
    "gravel": gravel,
    "grass": grass,
}
"""Every material made here, by name: ``MATERIALS[name](resolution, seed)``."""


def make_material(name: str, resolution: int = 256, seed: int = 0) -> PbrMaterial:
    """The material ``name`` of :data:`MATERIALS` at ``resolution``² texels.

    Raises:
        DataError: unknown name (the message lists the valid ones) or resolution < 8.
    """
    if name not in MATERIALS:
        raise DataError(f"unknown material {name!r}; choose one of {sorted(MATERIALS)}")
    if resolution < 8:
        raise DataError(f"resolution must be >= 8 texels, got {resolution}")
    return MATERIALS[name](resolution, seed)


def _streaks(noise: np.ndarray, axis: int) -> np.ndarray:
    """Fibre streaks: noise averaged along ``axis`` (the thread direction), unit variance."""
    res = noise.shape[0]
    k = np.fft.fftfreq(res)
    gain = np.exp(-2.0 * (np.pi * 12.0) ** 2 * k**2)  # σ = 12 texels along the thread
    spec = np.fft.fft(noise, axis=axis) * (gain[:, None] if axis == 0 else gain[None, :])
    s = np.fft.ifft(spec, axis=axis).real
    return (s - s.mean()) / max(s.std(), 1e-12)


def _resample(img: np.ndarray, resolution: int) -> np.ndarray:
    """Area-averaged (anti-aliased) resampling of a square image to ``resolution``²."""
    from skimage.transform import resize
    return resize(img, (resolution, resolution), order=1, anti_aliasing=True, mode="wrap")


def _material(name, albedo, height, roughness, metallic, height_scale, seed) -> PbrMaterial:
    res = height.shape[0]
    return PbrMaterial(
        name=name,
        albedo=np.clip(albedo, 0.0, 1.0),
        height=np.clip(height, 0.0, 1.0),
        roughness=np.clip(roughness, 0.0, 1.0),
        metallic=np.zeros((res, res)) if metallic is None else np.clip(metallic, 0.0, 1.0),
        height_scale=height_scale,
        meta={"generator": f"neumat.data.materials.{name}", "resolution": res, "seed": seed},
    )
