"""Render BTF slices of a PBR material with true displacement (numpy reference renderer).

One *slice* is the image of the tile under one (ωi, ωo) configuration, pixel (r, c) holding
the BTF value at uv = ((c + .5) / S, (r + .5) / S) (see :mod:`neumat.data.source`):

* ``uv_space="reference"``: the camera ray along -ωo enters the top of the material's shell,
  z = ``height_scale``, at uv and is traced down to the first hit on the displaced surface
  (parallax and masking are in the data, as in a rectified measured BTF). Every ray hits: the
  tiled surface is closed from above.
* ``uv_space="surface"``: the shaded point is the surface point above uv itself (parallax
  removed). If the surface hides that point from ωo (masking) the value is **NaN**: a renderer
  that traces the height field never asks for an invisible point, so the value is undefined
  there and :class:`~neumat.data.slices.SliceBtfSource` drops such samples from training.

Value = f(ωi, ωo)·max(0, n·ωi)·V(ωi): the BRDF of :mod:`neumat.data.brdf` with the shading
normal n at the hit point, times the cosine, times the self-shadowing test V toward ωi
(a ray along ωi that meets the surface below the shell top casts shadow). Unit irradiance at
normal incidence, so the value is the radiance toward ωo — what Mitsuba renders for a
directional emitter of irradiance 1 (tests/test_data_mitsuba.py).

Views are the unit of work: the camera rays of one ωo are traced once and shaded for all the
lights of the view (the UBO2014 acquisition order).
"""

from __future__ import annotations

import warnings

import numpy as np

from .brdf import eval_brdf_cos
from .errors import DataError
from ..material.heightfield import SURFACE_EPS, HeightField
from ..material.interp import bilinear
from .pbr import PbrMaterial

UV_SPACES = ("reference", "surface")
NORMAL_SOURCES = ("height", "map")


class SliceRenderer:
    """Renders slices of one material. Construction precomputes the height field and maps.

    Args:
        material: the PBR material (its ``height_scale`` is the shell thickness).
        normal_source: ``"height"`` — shading normals from central differences of the height
            field (consistent with the displaced geometry); ``"map"`` — the material's decoded
            normal map (requires ``material.normal``).
    """

    def __init__(self, material: PbrMaterial, normal_source: str = "height") -> None:
        if normal_source not in NORMAL_SOURCES:
            raise DataError(f"normal_source must be one of {NORMAL_SOURCES}, got "
                            f"{normal_source!r}")
        if normal_source == "map" and material.normal is None:
            raise DataError(f"material {material.name!r} has no normal map; use "
                            "normal_source='height'")
        self.material = material
        texel_normals = material.normal if normal_source == "map" else None
        self.field = HeightField(material.height, material.height_scale, texel_normals)
        self.maps = {k: v.astype(np.float64) for k, v in material.shading_maps().items()}

    def render_view(self, wo: np.ndarray, lights: np.ndarray, resolution: int,
                    uv_space: str = "reference", supersample: int = 1,
                    shadows: bool = True) -> np.ndarray:
        """Slices of one view under several lights.

        Args:
            wo: [3] unit view direction (z > 0, local frame).
            lights: [L, 3] unit light directions (z > 0).
            resolution: S, slice side in pixels.
            uv_space: ``"reference"`` or ``"surface"`` (module docstring).
            supersample: n; each pixel averages an n×n grid of sub-pixel samples (1 = the point
                value at the pixel centre, the BTF value at that uv; > 1 = box-filtered, for
                comparison with a renderer that integrates over pixels). NaN (masked) sub-samples
                are left out of the average; a pixel with no visible sub-sample is NaN.
            shadows: trace self-shadowing rays toward each light (``False``: V = 1).

        Returns:
            [L, S, S, 3] float32 BTF values (linear RGB).
        """
        if resolution < 1 or supersample < 1:
            raise DataError(f"resolution and supersample must be >= 1, got {resolution}, "
                            f"{supersample}")
        s, ss = resolution, supersample
        values = self.render_points(sample_grid(s, ss), wo, lights, uv_space, shadows)
        out = np.empty((values.shape[0], s, s, 3), dtype=np.float32)
        for j, value in enumerate(values):
            value = value.reshape(s, ss, s, ss, 3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (fully masked) pixels
                out[j] = np.nanmean(value, axis=(1, 3)) if ss > 1 else value[:, 0, :, 0]
        return out

    def render_points(self, uv: np.ndarray, wo: np.ndarray, lights: np.ndarray,
                      uv_space: str = "reference", shadows: bool = True) -> np.ndarray:
        """BTF values at arbitrary texture coordinates.

        Args:
            uv: [N, 2] texture coordinates (any real values; the tile repeats).
            wo: [3] unit view direction; lights: [L, 3] unit light directions (z > 0).
            uv_space, shadows: as in :meth:`render_view`.

        Returns:
            [L, N, 3] float64 values; NaN where a ``"surface"`` point is masked from ωo.
        """
        wo = np.asarray(wo, dtype=np.float64)
        lights = np.atleast_2d(np.asarray(lights, dtype=np.float64))
        uv = np.asarray(uv, dtype=np.float64)
        p, visible, texels = self._shading_points(uv, np.broadcast_to(wo, (uv.shape[0], 3)), uv_space)
        out = np.empty((lights.shape[0], uv.shape[0], 3))
        for j, wi in enumerate(lights):
            out[j] = self._shade(p, visible, texels, np.broadcast_to(wi, p.shape), wo, shadows)
        return out

    def render_samples(self, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray,
                       uv_space: str = "surface", shadows: bool = True) -> np.ndarray:
        """BTF values of samples that each have their own directions (point-sampled training).

        Args:
            uv: [N, 2] texture coordinates; wi, wo: [N, 3] unit light / view directions
                (z > 0, local frame, pointing away from the surface).
            uv_space, shadows: as in :meth:`render_view`.

        Returns:
            [N, 3] float64 values; NaN where a ``"surface"`` point is masked from its ωo.
        """
        uv, wi, wo = (np.asarray(a, dtype=np.float64) for a in (uv, wi, wo))
        p, visible, texels = self._shading_points(uv, wo, uv_space)
        return self._shade(p, visible, texels, wi, wo, shadows)

    def _shading_points(self, uv: np.ndarray, wo: np.ndarray, uv_space: str):
        """(hit points [N, 3] unwrapped, visible [N] bool, shading inputs at the hits) of the
        camera rays of ``uv`` seen from ``wo`` [N, 3] in ``uv_space``."""
        if uv_space not in UV_SPACES:
            raise DataError(f"uv_space must be one of {UV_SPACES}, got {uv_space!r}")
        if uv_space == "reference":
            p, visible = self.trace_reference(uv, wo), np.ones(uv.shape[0], dtype=bool)
        else:
            p = np.concatenate([uv, self.field.height_at(uv)[:, None]], axis=1)
            visible = ~self.field.occluded(p + SURFACE_EPS * wo, wo)
        uv_hit = p[:, :2] % 1.0
        texels = {"normal": self.field.normal_at(uv_hit),
                  **{k: bilinear(self.maps[k], uv_hit) for k in ("kd", "f0", "alpha")}}
        return p, visible, texels

    def _shade(self, p: np.ndarray, visible: np.ndarray, texels: dict, wi: np.ndarray,
               wo: np.ndarray, shadows: bool) -> np.ndarray:
        """[N, 3] BRDF·cos (× the shadow test toward ``wi`` [N, 3]); NaN where not ``visible``."""
        value = eval_brdf_cos(texels["kd"], texels["f0"], texels["alpha"], texels["normal"], wi, wo)
        if shadows:
            lit = ~self.field.occluded(p + SURFACE_EPS * wi, wi)
            value *= lit[:, None]
        value[~visible] = np.nan
        return value

    def trace_reference(self, uv: np.ndarray, wo: np.ndarray) -> np.ndarray:
        """[N, 3] surface points seen by reference-space samples: the camera ray along -ωo
        ([3] or [N, 3]) entering the shell top z = height_scale at uv, traced to its first hit
        (unwrapped coordinates; take ``% 1`` for texture lookups)."""
        n = uv.shape[0]
        origin = np.concatenate([uv, np.full((n, 1), self.field.scale)], axis=1)
        t = self.field.first_hit(origin, np.broadcast_to(-wo, origin.shape))
        if not np.all(np.isfinite(t)):  # cannot happen for a tiled field; guard anyway
            raise DataError("a camera ray missed the height field (internal error)")
        return origin - t[:, None] * wo


def sample_grid(resolution: int, supersample: int = 1) -> np.ndarray:
    """[(S·n)², 2] float64 uv of an n×n sub-pixel grid in every pixel of an S×S image, ordered
    so that ``reshape(S, n, S, n)`` gives (pixel row, sub-row, pixel col, sub-col); for n = 1
    the pixel centres ((c + .5) / S, (r + .5) / S)."""
    m = resolution * supersample
    coords = (np.arange(m) + 0.5) / m
    u, v = np.meshgrid(coords, coords)
    return np.stack([u.ravel(), v.ravel()], axis=1)
