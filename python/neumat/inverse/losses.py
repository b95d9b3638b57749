"""MVInverse's supervision (seed 002 §3.2 eq. 2-5, supplementary §7 eq. 7-8), one function per
term.

The seed's equations are missing from its text (only their numbers survive); these are the
formulations of the works it follows — MegaDepth (Li & Snavely 2018) and CGIntrinsics (Li &
Snavely 2018) for MSE + multi-scale gradient, Careaga & Aksoy ("Colorful Diffuse Intrinsic
Image Decomposition") for the per-channel least-squares albedo scale and the masking — written
out in each docstring. Every loss takes ``[N, C, H, W]`` prediction and target and a
``[N, 1, H, W]`` bool mask of the pixels that count (``N`` = scenes x views), and averages over
the valid pixels of the whole batch (and the channels); with no valid pixel it is 0, still
attached to the graph.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .batch import InverseBatch
from .intrinsics import SPECS, Intrinsic

EPS = 1e-8
"""Guard of the least-squares scale's denominator (a prediction that is 0 on the mask gets s = 0)."""
VARIANCE_FLOOR = 1e-4
"""Added to each view's albedo variance in :func:`relative_mse` (linear albedo squared: views
flatter than this, ~40 dB PSNR of their mean colour, weigh no more than one at it)."""


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``[N, C, H, W]`` over the pixels of ``mask`` ``[N, 1, H, W]`` and the
    channels; 0 (attached to the graph) when the mask is empty."""
    m = mask.to(values.dtype)
    count = m.sum() * values.shape[1]
    return (values * m).sum() / count.clamp(min=1)


def reliable_albedo(target: torch.Tensor, low: float = 0.01, high: float = 0.99) -> torch.Tensor:
    """The seed's mask of informative albedo targets (§7, after Careaga & Aksoy): a pixel is
    dropped when its albedo is below ``low`` or above ``high`` — read here as *every* channel
    below ``low`` (near-black: Hypersim's mirrors and glass) or every channel above ``high``
    (near-white: Structured3D's), so saturated colours with one dark channel stay.

    Args:
        target: ``[..., 3, H, W]`` ground-truth albedo in [0, 1].
    Returns:
        ``[..., 1, H, W]`` bool, True where the pixel supervises.
    """
    dark = (target < low).all(dim=-3, keepdim=True)
    bright = (target > high).all(dim=-3, keepdim=True)
    return ~(dark | bright)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``L_mse = 1/n Σ_i (x̂_i - x_i)²`` over the ``n`` valid pixels (and channels)."""
    return _masked_mean((pred - target) ** 2, mask)


def msg_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Eq. 3, the multi-scale gradient loss (MegaDepth's, on the residual ``R = x̂ - x``):

    ``L_msg = Σ_{k=0}^{scales-1} 1/n_k Σ_i (|∇_x R^k_i| + |∇_y R^k_i|)``

    where ``R^k`` is ``R`` subsampled every ``2^k`` pixels (``R[..., ::2^k, ::2^k]``),
    ``∇_x R^k_i`` the difference of horizontally adjacent pixels of ``R^k`` (``∇_y``
    vertically), counted only where both pixels are valid, and ``n_k`` the number of valid
    differences (both directions, times the channels) at scale ``k``. Penalizes edges the
    prediction adds or misses, not its offset.
    """
    residual, total = pred - target, pred.new_zeros(())
    for k in range(scales):
        step = 2 ** k
        r, m = residual[..., ::step, ::step], mask[..., ::step, ::step].to(residual.dtype)
        gx, mx = (r[..., :, 1:] - r[..., :, :-1]).abs(), m[..., :, 1:] * m[..., :, :-1]
        gy, my = (r[..., 1:, :] - r[..., :-1, :]).abs(), m[..., 1:, :] * m[..., :-1, :]
        count = (mx.sum() + my.sum()) * r.shape[1]
        total = total + ((gx * mx).sum() + (gy * my).sum()) / count.clamp(min=1)
    return total


def albedo_scale(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 7: the per-channel least-squares scale of each map,
    ``s* = argmin_s Σ_{i ∈ mask} ||s ⊙ Â_i - A_i||²``, i.e. per channel
    ``s_c = Σ_i Â_ic A_ic / Σ_i Â_ic²``.

    Returns:
        ``[N, C, 1, 1]`` (one scale vector per view; differentiable in ``pred``).
    """
    m = mask.to(pred.dtype)
    num = (pred * target * m).sum(dim=(-2, -1), keepdim=True)
    den = (pred * pred * m).sum(dim=(-2, -1), keepdim=True)
    return num / den.clamp(min=EPS)


def scale_invariant_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``L_si = 1/n Σ_i ||s* ⊙ Â_i - A_i||²`` with ``s*`` of :func:`albedo_scale`; unchanged
    when the prediction is scaled per channel and view by any positive factor."""
    return mse_loss(albedo_scale(pred, target, mask) * pred, target, mask)


def relative_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 floor: float = VARIANCE_FLOOR) -> torch.Tensor:
    """Per view, the MSE over the valid pixels (and channels) divided by the variance of the
    target there (about each channel's mean; not differentiated) plus ``floor``, then the mean
    over views: ``1/N Σ_v MSE_v / (Var_v + floor)``, the fraction of each view's albedo variance
    left unexplained (1 for the view's mean colour, the scale-aligned constant). Every view
    weighs by its contrast, as the per-view PSNR of :mod:`.evaluate` does (``10 log10`` of this
    ratio is the PSNR lost to the constant); a view without valid pixels adds 0."""
    m = mask.to(pred.dtype)
    count = (m.sum(dim=(1, 2, 3)) * pred.shape[1]).clamp(min=1)
    err = (((pred - target) ** 2) * m).sum(dim=(1, 2, 3)) / count
    with torch.no_grad():
        mean = (target * m).sum(dim=(-2, -1), keepdim=True) / m.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
        var = (((target - mean) ** 2) * m).sum(dim=(1, 2, 3)) / count
    return (err / (var + floor)).mean()


def cosine_normal_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``L_n = 1/n Σ_i (1 - n̂_i · n_i)`` over the valid pixels, both normals made unit
    length first (so only their directions count); 0 for equal directions, 2 for opposite.
    ``pred``, ``target``: ``[N, 3, H, W]``."""
    cos = (F.normalize(pred, dim=1, eps=1e-6) * F.normalize(target, dim=1, eps=1e-6)).sum(dim=1, keepdim=True)
    return _masked_mean(1.0 - cos, mask)


def map_loss(kind: Intrinsic, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             scale_invariant: bool = False, scales: int = 4, relative: bool = False) -> torch.Tensor:
    """The loss of one map: cosine (eq. 4) for normals; MSE + multi-scale gradient (eq. 2 + 3)
    for the others, on the aligned prediction ``s* ⊙ Â`` (eq. 7) when ``scale_invariant`` (the
    albedo after its MSE warm-up: eq. 8 and its gradient term, so the whole term ignores a
    per-channel scale); ``relative``: :func:`relative_mse` in place of the MSE."""
    if SPECS[kind].loss == "cosine":
        return cosine_normal_loss(pred, target, mask)
    if scale_invariant:
        pred = albedo_scale(pred, target, mask) * pred
    return (relative_mse if relative else mse_loss)(pred, target, mask) + msg_loss(pred, target, mask, scales)


def total_loss(pred: Mapping[Intrinsic, torch.Tensor], batch: InverseBatch, weights: Mapping[Intrinsic, float],
               scale_invariant_albedo: bool, scales: int = 4, albedo_range: tuple[float, float] = (0.01, 0.99),
               relative_albedo: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 5: ``L = Σ_k λ_k L_k`` over the maps ``batch`` supervises.

    Args:
        pred: the network's ``{map: [B, V, C, H, W]}``.
        batch: targets and the sets' masks (:class:`~.batch.InverseBatch`).
        weights: λ per map (seed: all 1).
        scale_invariant_albedo: albedo by eq. 8 (after the warm-up) rather than plain MSE.
        scales: of the gradient loss.
        albedo_range: ``(low, high)`` of :func:`reliable_albedo`, applied to the albedo targets.
        relative_albedo: the albedo's MSE term by :func:`relative_mse` (per-view variance).
    Returns:
        ``(loss, {map name: its unweighted term})``.
    """
    loss, parts = None, {}
    for kind, target in batch.targets.items():
        p = pred[kind].flatten(0, 1)
        t = target.to(p.dtype).flatten(0, 1)
        given = batch.masks.get(kind)
        mask = torch.ones_like(t[:, :1], dtype=torch.bool) if given is None else given.flatten(0, 1).bool()
        if kind == Intrinsic.ALBEDO:
            mask = mask & reliable_albedo(t, *albedo_range)
        albedo = kind == Intrinsic.ALBEDO
        term = map_loss(kind, p, t, mask, scale_invariant_albedo and albedo, scales, relative_albedo and albedo)
        parts[kind.value] = float(term.detach())
        weighted = weights[kind] * term
        loss = weighted if loss is None else loss + weighted
    if loss is None:
        raise ValueError("the batch supervises no map: give at least one target")
    return loss, parts
