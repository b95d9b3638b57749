"""A PBR material as texture maps over one UV tile: the input of the synthetic BTF renderer.

Conventions (as in :mod:`neumat.data.source`): every map is an array ``[row = v, col = u]`` of
R×R texels, texel (r, c) centred at uv = ((c + .5) / R, (r + .5) / R); the tile spans 1×1 UV
units and repeats. The displaced surface is ``z(u, v) = height_scale * height(u, v)`` (UV
units, +z = macro normal), so ``height_scale`` is also the thickness of the material's shell.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

ALPHA_MIN = 0.02
"""Smallest GGX alpha used for shading. Lobes narrower than this are sub-pixel at BTF slice
resolutions (64–400 px) and cannot be learnt by the planes; clamping keeps renders stable."""

DIELECTRIC_F0 = 0.04
"""Normal-incidence reflectance of non-metals (index of refraction ≈ 1.5)."""


@dataclass
class PbrMaterial:
    """Metallic-roughness PBR maps of one tileable material. All arrays float32, C-contiguous.

    The BRDF these maps define is in :mod:`neumat.data.brdf` (``(1-metallic)·albedo/π`` plus a
    GGX specular lobe with ``F0 = mix(0.04, albedo, metallic)``).
    """

    name: str
    """Identifier used in cache keys and provenance."""
    albedo: np.ndarray
    """[R, R, 3] linear Rec.709 base colour in [0, 1]."""
    height: np.ndarray
    """[R, R] height in [0, 1]; the displacement is ``height * height_scale`` UV units."""
    roughness: np.ndarray
    """[R, R] perceptual roughness in [0, 1]; GGX alpha = roughness² (clamped to ALPHA_MIN)."""
    metallic: np.ndarray
    """[R, R] metalness in [0, 1]."""
    height_scale: float = 0.03
    """Displacement of height 1 in UV units (the tile is 1×1): 0.03 = 3 % of the tile width."""
    normal: np.ndarray | None = None
    """Optional [R, R, 3] unit tangent-space normals in the local frame (+x = u, +y = v,
    +z = macro normal). ``None``: shading normals come from the height-field gradient."""
    meta: dict = field(default_factory=dict)
    """Provenance (source files, generator parameters); not used for rendering."""

    def __post_init__(self) -> None:
        self.albedo = _as_map(self.albedo, "albedo", 3)
        r = self.albedo.shape[0]
        if self.albedo.shape[1] != r:
            raise DataError(f"material {self.name!r}: maps must be square, albedo is "
                            f"{self.albedo.shape[0]}x{self.albedo.shape[1]}")
        self.height = _as_map(self.height, "height", None, r)
        self.roughness = _as_map(self.roughness, "roughness", None, r)
        self.metallic = _as_map(self.metallic, "metallic", None, r)
        for key in ("albedo", "height", "roughness", "metallic"):
            arr = getattr(self, key)
            if arr.min() < 0.0 or arr.max() > 1.0:
                raise DataError(f"material {self.name!r}: {key} must lie in [0, 1], got "
                                f"[{arr.min():.4g}, {arr.max():.4g}]")
        if self.normal is not None:
            n = _as_map(self.normal, "normal", 3, r)
            length = np.linalg.norm(n, axis=-1)
            if np.any(n[..., 2] <= 0.0) or np.any(np.abs(length - 1.0) > 1e-3):
                raise DataError(f"material {self.name!r}: normal map must hold unit vectors "
                                "with z > 0 (decode it with neumat.data.pbr_io)")
            self.normal = n
        if not (np.isfinite(self.height_scale) and self.height_scale >= 0.0):
            raise DataError(f"material {self.name!r}: height_scale must be finite and >= 0, "
                            f"got {self.height_scale}")
        self.height_scale = float(self.height_scale)

    @property
    def resolution(self) -> int:
        """R, the number of texels along each side of the tile."""
        return int(self.albedo.shape[0])

    def shading_maps(self) -> dict[str, np.ndarray]:
        """Per-texel BRDF parameters, interpolated bilinearly by every renderer (ours and the
        Mitsuba reference alike): ``kd`` [R,R,3] = (1-metallic)·albedo, ``f0`` [R,R,3] =
        mix(0.04, albedo, metallic), ``alpha`` [R,R] = max(roughness², ALPHA_MIN)."""
        m = self.metallic[..., None]
        return {
            "kd": ((1.0 - m) * self.albedo).astype(np.float32),
            "f0": ((1.0 - m) * DIELECTRIC_F0 + m * self.albedo).astype(np.float32),
            "alpha": np.maximum(self.roughness**2, ALPHA_MIN).astype(np.float32),
        }

    def resized(self, resolution: int) -> PbrMaterial:
        """A copy resampled to ``resolution``² texels (bilinear, anti-aliased when shrinking,
        wrapping at the tile border; normals renormalized). Needs scikit-image."""
        if resolution == self.resolution:
            return self
        from skimage.transform import resize

        def fit(a):
            return resize(a, (resolution, resolution) + a.shape[2:], order=1, mode="wrap",
                          anti_aliasing=resolution < self.resolution).astype(np.float32)

        normal = None
        if self.normal is not None:
            normal = fit(self.normal)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        return PbrMaterial(name=self.name, albedo=fit(self.albedo), height=fit(self.height),
                           roughness=fit(self.roughness), metallic=fit(self.metallic),
                           height_scale=self.height_scale, normal=normal,
                           meta={**self.meta, "resized_from": self.resolution})

    def content_hash(self) -> str:
        """SHA-256 (hex) of every map and parameter that affects rendering (not ``meta``)."""
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.height_scale!r}|".encode())
        for key in ("albedo", "height", "roughness", "metallic", "normal"):
            arr = getattr(self, key)
            h.update(key.encode())
            if arr is not None:
                h.update(str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
        return h.hexdigest()


def _as_map(arr, key: str, channels: int | None, res: int | None = None) -> np.ndarray:
    """Validate one map's shape and finiteness; return it as C-contiguous float32."""
    a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
    want = (channels is None and a.ndim == 2) or (
        channels is not None and a.ndim == 3 and a.shape[2] == channels)
    if not want:
        shape = "[R, R]" if channels is None else f"[R, R, {channels}]"
        raise DataError(f"{key} map must have shape {shape}, got {list(a.shape)}")
    if res is not None and a.shape[:2] != (res, res):
        raise DataError(f"{key} map is {a.shape[0]}x{a.shape[1]} but the albedo is {res}x{res}")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{key} map holds NaN or infinite values")
    return a


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding of colour values in [0, 1] to linear Rec.709 (same shape)."""
    c = np.asarray(c)
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)
