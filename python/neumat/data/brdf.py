"""The BRDF of a :class:`~neumat.data.pbr.PbrMaterial` texel, evaluated with the cosine.

``f(ωi, ωo) = kd/π + D(h)·G1(ωi)·G1(ωo)·F0 / (4 cosθi cosθo)`` in the frame of the shading
normal n, with ``kd = (1-metallic)·albedo``, ``F0 = mix(0.04, albedo, metallic)`` a *constant*
Fresnel term (no Schlick angle dependence), D the isotropic GGX (Trowbridge–Reitz) distribution
and G1 the separable Smith masking of GGX. The constant-F0 choice is what Mitsuba 3 reproduces
exactly: ``blendbsdf(weight=0.5, diffuse(2·kd), roughconductor(ggx, material="none",
specular_reflectance=2·F0))`` — see tests/test_data_mitsuba.py — so the renderer is validated
term by term rather than against an approximation.

Mitsuba's conventions are followed to the letter: zero when cosθi <= 0 or cosθo <= 0 in the
shading frame, G1 = 0 when the microfacet normal is on the wrong side of a direction, D = 0
when ``D·cosθh <= 1e-20``.
"""

from __future__ import annotations

import numpy as np

INV_PI = 1.0 / np.pi


def ggx_d(cos_h: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Isotropic GGX distribution of microfacet normals D(h) [1/sr], normalized so that
    ∫ D(h) cosθh dωh = 1, for ``cos_h = n·h`` [N] and GGX ``alpha`` [N] (float64)."""
    a2 = alpha * alpha
    c2 = cos_h * cos_h
    denom = np.pi * a2 * (c2 + (1.0 - c2) / a2) ** 2
    with np.errstate(divide="ignore"):
        d = 1.0 / denom
    return np.where(d * cos_h > 1e-20, d, 0.0)


def smith_g1(cos_v: np.ndarray, v_dot_h: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Smith masking G1 of GGX for a direction with ``cos_v = n·v`` and ``v_dot_h = v·h``."""
    c2 = np.maximum(cos_v * cos_v, 1e-300)
    tan2_alpha2 = alpha * alpha * np.maximum(1.0 - c2, 0.0) / c2
    g = 2.0 / (1.0 + np.sqrt(1.0 + tan2_alpha2))
    return np.where(v_dot_h * cos_v <= 0.0, 0.0, g)


def eval_brdf_cos(kd: np.ndarray, f0: np.ndarray, alpha: np.ndarray, normal: np.ndarray,
                  wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """BRDF × cosθi (shading frame): the BTF value of an unshadowed point under unit irradiance.

    Args:
        kd, f0: [N, 3] diffuse albedo and normal-incidence specular reflectance (linear RGB).
        alpha: [N] GGX roughness (alpha = roughness²).
        normal: [N, 3] unit shading normals in the local frame (+z = macro normal).
        wi, wo: [N, 3] or [3] unit light / view directions pointing away from the surface.

    Returns:
        [N, 3] float64 ``f(ωi, ωo)·max(0, n·ωi)``, zero where n·ωi <= 0 or n·ωo <= 0.
    """
    wi = np.broadcast_to(wi, normal.shape)
    wo = np.broadcast_to(wo, normal.shape)
    cos_i = np.einsum("nk,nk->n", normal, wi)
    cos_o = np.einsum("nk,nk->n", normal, wo)
    front = (cos_i > 0.0) & (cos_o > 0.0)
    h = wi + wo
    h = h / np.linalg.norm(h, axis=-1, keepdims=True)
    cos_h = np.einsum("nk,nk->n", normal, h)
    d = ggx_d(cos_h, alpha)
    g = (smith_g1(cos_i, np.einsum("nk,nk->n", wi, h), alpha)
         * smith_g1(cos_o, np.einsum("nk,nk->n", wo, h), alpha))
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = np.where(front, d * g / (4.0 * cos_o), 0.0)
    diffuse = np.where(front, cos_i * INV_PI, 0.0)
    return kd * diffuse[:, None] + f0 * spec[:, None]
