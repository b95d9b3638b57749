"""INT8 quantization-aware training that simulates :mod:`neumat.quant.spec` in torch.

Symmetric per-tensor fake quantization (seed 003, section 4.1.3): every bias-free linear
layer quantizes its input activations with a scale ``s_a = amax / 127`` from an EMA of the
observed ``max|x|``, and its weights with ``s_w = max|W| / 127``. Values are replaced by
``s * rne(clamp(x / s, lo, hi))`` (``lo = -127`` for the signed network input, ``0`` after a
ReLU) and gradients pass straight through inside the clamp range (STE).

Phases (:class:`QatMode`): ``FLOAT`` (plain FP32), ``OBSERVE`` (FP32 forward, ranges
recorded), ``QUANTIZE`` (fake quantization; observers keep updating in training mode unless
frozen). The exported network (:func:`export_int8`) uses exactly these scales, so the numpy
INT8 reference reproduces the fake-quantized forward up to float rounding of the multipliers.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import torch
from torch import nn

from ..quant import QMAX, Int8MLP


class QatMode(str, Enum):
    """Which forward a QAT module runs."""

    FLOAT = "float"
    OBSERVE = "observe"
    QUANTIZE = "quantize"


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, lo: float, hi: float = QMAX) -> torch.Tensor:
    """``scale * rne(clamp(x / scale, lo, hi))`` with a straight-through gradient inside the range."""
    v = torch.clamp(x / scale, lo, hi)
    return (v + (torch.round(v) - v).detach()) * scale


class ActivationObserver(nn.Module):
    """EMA of ``max|x|`` of an activation tensor (per tensor), and its fake quantization.

    Args:
        signed: True for the network input (range [-127, 127]); False after a ReLU ([0, 127]).
        momentum: EMA weight of a new batch's maximum (0.01 = slow, smooths outliers).
    """

    def __init__(self, signed: bool, momentum: float = 0.01) -> None:
        super().__init__()
        self.signed = signed
        self.momentum = momentum
        self.frozen = False
        self.register_buffer("amax", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def observe(self, x: torch.Tensor) -> None:
        """Fold this batch's ``max|x|`` into the EMA (the first batch initializes it)."""
        if self.frozen:
            return
        batch_max = x.detach().abs().max().to(self.amax.dtype)
        if not bool(self.initialized):
            self.amax.copy_(batch_max)
            self.initialized.fill_(True)
        else:
            self.amax.lerp_(batch_max, self.momentum)

    def scale(self) -> torch.Tensor:
        """Current activation scale ``amax / 127`` (guarded away from zero)."""
        return torch.clamp(self.amax, min=1e-8) / QMAX

    def forward(self, x: torch.Tensor, mode: QatMode) -> torch.Tensor:
        if mode is QatMode.FLOAT:
            return x
        if self.training:
            self.observe(x)
        if mode is QatMode.OBSERVE:
            return x
        return fake_quantize(x, self.scale(), -QMAX if self.signed else 0.0)


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    """Per-tensor symmetric weight scale ``max|W| / 127`` (guarded away from zero)."""
    return torch.clamp(w.detach().abs().max(), min=1e-12) / QMAX


class QatMlp(nn.Module):
    """Bias-free MLP with ReLU between layers and a [0, 1] clamp at the end, QAT-wrapped.

    Args:
        widths: ``(n_0, ..., n_L)``; float32 inputs ``[N, n_0]`` -> outputs ``[N, n_L]``.
    """

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.layers = nn.ModuleList(
            nn.Linear(self.widths[i], self.widths[i + 1], bias=False) for i in range(len(self.widths) - 1)
        )
        self.observers = nn.ModuleList(ActivationObserver(signed=(i == 0)) for i in range(len(self.layers)))
        self.mode = QatMode.FLOAT

    def extra_repr(self) -> str:
        return f"widths={self.widths}, mode={self.mode.value}"

    def set_mode(self, mode: QatMode | str) -> None:
        """Switch between float, observe and quantize forward passes."""
        self.mode = QatMode(mode)

    def freeze_observers(self, frozen: bool = True) -> None:
        """Stop (or resume) updating activation ranges, e.g. for a quantized fine-tuning phase."""
        for obs in self.observers:
            obs.frozen = frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quantize = self.mode is QatMode.QUANTIZE
        for i, (layer, obs) in enumerate(zip(self.layers, self.observers)):
            x = obs(x, self.mode)
            w = fake_quantize(layer.weight, weight_scale(layer.weight), -QMAX) if quantize else layer.weight
            x = torch.nn.functional.linear(x, w)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return self.clamp_output(x)

    def clamp_output(self, x: torch.Tensor) -> torch.Tensor:
        """The spec's output clamp to [0, 1] (subclasses may change its gradient, not its values)."""
        return torch.clamp(x, 0.0, 1.0)


def export_int8(mlp: QatMlp) -> Int8MLP:
    """Freeze the observed scales and quantize the weights into an :class:`Int8MLP`.

    Raises ValueError if an activation range was never observed (train in OBSERVE first).
    """
    weights, scales = [], []
    for i, (layer, obs) in enumerate(zip(mlp.layers, mlp.observers)):
        if not bool(obs.initialized):
            raise ValueError(f"layer {i}: activation range never observed; run OBSERVE/QUANTIZE batches first")
        w = layer.weight.detach().double().cpu()
        sw = weight_scale(layer.weight).double().cpu()
        q = torch.round(torch.clamp(w / sw.float().double(), -QMAX, QMAX)).to(torch.int8)
        weights.append(q.numpy())
        scales += [float(obs.scale().float()), float(sw.float())]
    return Int8MLP.from_int8(weights, np.asarray(scales, dtype=np.float32))
