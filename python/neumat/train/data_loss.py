"""The triple-plane trainer's data loss: L1 on the encoded output, plus an optional relative L2
on the decoded BTF values that makes the fit unbiased in the mean.

L1 on the encoded output ``y`` (:mod:`neumat.output_encoding`; with ``"log-v1"`` it weighs errors
relative to the value over the whole dynamic range) is minimised by the *median* of the targets
a model cannot tell apart. Where a BTF varies faster than the U plane resolves (a deep relief
seen at a grazing mirror configuration: each map texel's interpolated normals swing the GGX
lobe across the mirror direction), the targets inside one feature texel are skewed, the median
sits below the mean, and the rendered material comes out dark (basket weave's grazing mirror:
15 % dark at the exact hits, README "Fidelity").

The relative L2 term (Mueller et al. 2021, neural radiance caching) is

    (v_pred - v_target)^2 / (sg(v_pred)^2 + s_c^2)

per sample and channel, on decoded values ``v`` (the bundle's float decode, written in torch),
with ``sg`` a stop-gradient and ``s_c`` the encoding's per-channel scale. Its expected gradient
vanishes where ``v_pred`` is the mean of the targets, whatever their spread, and it weighs
errors relative to the value above ``s_c`` (absolute, in units of ``s_c``, below it), so it
stays scale-free like the L1 term.

Both terms are sums over samples and channels; the caller divides by ``3 x samples``.
"""

from __future__ import annotations

import torch

from ..output_encoding import LINEAR, LOG, Y_MAX, OutputEncoding


def decode_torch(encoding: OutputEncoding, y: torch.Tensor) -> torch.Tensor:
    """Differentiable :meth:`OutputEncoding.decode`: MLP outputs ``[..., 3]`` -> BTF values
    ``[..., 3]`` (same float operations; for training, not the bit-exact contract)."""
    s = torch.as_tensor(encoding.scale, dtype=y.dtype, device=y.device)
    if encoding.id == LINEAR:
        return y * s
    if encoding.id == LOG:
        return s * (torch.exp2(encoding.range_bits * y) - 1.0)
    yc = torch.clamp(y, max=float(Y_MAX))
    return s * yc / (1.0 - yc)


class DataLoss:
    """``L1(y) + relative_l2 * relL2(v)``, summed (module docstring); ``relative_l2`` >= 0 (0:
    the L1 term alone, as before the term existed)."""

    def __init__(self, encoding: OutputEncoding, relative_l2: float) -> None:
        if relative_l2 < 0:
            raise ValueError(f"relative_l2 must be >= 0, got {relative_l2!r}")
        self.encoding = encoding
        self.relative_l2 = float(relative_l2)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed loss of encoded predictions ``pred`` against encoded targets ``target``
        (both ``[n, 3]``, float32)."""
        loss = (pred - target).abs().sum()
        if self.relative_l2 > 0:
            v_pred = decode_torch(self.encoding, pred)
            v_target = decode_torch(self.encoding, target)
            s = torch.as_tensor(self.encoding.scale, dtype=pred.dtype, device=pred.device)
            relative = (v_pred - v_target).square() / (v_pred.detach().square() + s.square())
            loss = loss + self.relative_l2 * relative.sum()
        return loss
