"""The NeuMIP neural material (seed 000, §4.1; the Raghavan 2025 variant), in torch.

Per material, two learnable feature textures; shared ("universal") by all materials, two
INT8-QAT decoders (:class:`neumat.models.qat.QatMlp`)::

    o  = M_off(T_off[u] || ωo.xy)                  # 12 + 2 -> 64 x 4 -> 2, output in [0, 1]
    Δu = (2 o - 1) · max_offset                    # UV units
    f  = M_rgb(T_rgb[u + Δu] || ωi.xy || ωo.xy)     # 12 + 2 + 2 -> 64 x 4 -> 3, in [0, 1]

``f`` is the BTF value divided by the material's ``value_scale`` (see :mod:`neumat.material.neumip`, the
contract the exported ``.nmat`` follows bit for bit). ``u`` is in the data's ``"reference"``
uv space (where the view ray crosses the top of the material), directions are unit vectors in
the local shading frame (+z = normal), both pointing away from the surface.

* Textures are float32 ``[res, res, C]`` parameters (``[row = v, col = u, channel]``, the
  bundle layout), looked up with :func:`neumat.models.triple_plane.bilinear_lookup` and
  **wrap** addressing; the lookup is differentiable in the coordinate (through the bilinear
  weights), which is how the offset network learns.
* :class:`NeuMipDecoders` holds the two networks as separate modules so they can be
  pretrained over many materials, shared and frozen (texture-only fitting). The offset
  network is an :class:`OffsetQatMlp`: same forward values, but its output clamp leaks a
  little gradient so offsets pushed past the clamp can come back.
* :class:`NeuMipField` holds one or more materials' textures and one decoder pair. Samples of
  several materials are evaluated in **one** decoder call (contiguous segments, ``sizes``), so
  the activation observers see one batch per step.
* ``zero_offset=True`` forces Δu = 0 (the parallax ablation).
* :class:`Int8Decoders` evaluates exported :class:`~neumat.quant.Int8MLP` networks in torch with
  the integer arithmetic of :func:`neumat.quant.forward` (bit-exact: products and sums are
  integers below 2^24, exact in float32), so the torch model reproduces the ``.nmat``.

Initialization: textures i.i.d. normal (``texture_init_std``, ``T_off`` 10x less); decoders
PyTorch's default Kaiming-uniform with non-negative last-layer weights (every output starts
>= 0 and gets gradient through the [0, 1] clamp, see :mod:`neumat.models.triple_plane`); the
offset network's last layer is then scaled so its mean output is 0.5 (Δu ≈ 0 at the start,
averaged over views: the network has no bias to put it there). Head-on (ωo.xy = 0) the
bias-free network sees only the small ``T_off`` and starts at Δu ≈ -max_offset; training's
head-on anchor (:func:`neumat.train.neumip.fit.normal_view_offset_penalty`) moves it to 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..quant import QMAX, Int8MLP
from .qat import QatMlp, QatMode
from .triple_plane import WRAP, bilinear_lookup

CHANNELS = 12
"""Feature channels per texture (seed 000: 12)."""
HIDDEN = 64
"""Decoder hidden width (seed 000: 4 hidden layers of 64)."""
HIDDEN_LAYERS = 4
"""Hidden layers per decoder."""
DIRECTION_WIDTH = 2
"""Values per encoded direction: the local (x, y) (:data:`neumat.material.neumip.DIRECTION_WIDTH`)."""
OFFSET_INIT_SCALE = 0.1
"""``T_off``'s initial standard deviation relative to ``T_rgb``'s (see :class:`NeuMipTextures`)."""
OFFSET_CLAMP_LEAK = 0.05
"""Gradient of the offset network's output clamp outside [0, 1] (see :class:`OffsetQatMlp`)."""


def encode_direction(w: torch.Tensor) -> torch.Tensor:
    """``[B, 2]``: the local (x, y) of unit directions ``w`` ``[B, 3]`` (twin of the numpy one)."""
    return w[:, :DIRECTION_WIDTH]


def offset_from_output(o: torch.Tensor, max_offset: float) -> torch.Tensor:
    """Δu ``[B, 2]`` (UV units) from the offset network's output ``o`` in [0, 1]:
    ``(o * 2 - 1) * max_offset`` in float32, the contract's three roundings."""
    return (o * 2.0 - 1.0) * torch.tensor(max_offset, dtype=torch.float32, device=o.device)


def int8_mlp_forward(mlp: Int8MLP, x: torch.Tensor) -> torch.Tensor:
    """:func:`neumat.quant.forward` in torch: float32 ``[N, n_0]`` -> ``[N, n_L]`` in [0, 1].

    Integer activations and weights are held in float32; every dot product is an integer of
    magnitude < 127 * 127 * 128 < 2^24, exact in float32 in any summation order, so the result
    is bit-identical to the numpy reference. Not differentiable (rounding).
    """
    m = torch.from_numpy(mlp.multipliers()).to(x.device)
    q = torch.round(torch.clamp(x.float() * m[0], -QMAX, QMAX))
    last = mlp.n_layers - 1
    for layer in range(mlp.n_layers):
        w = torch.from_numpy(mlp.weights_int8(layer).astype("float32")).to(x.device)
        v = (q @ w.T) * m[layer + 1]
        if layer < last:
            q = torch.round(torch.clamp(v, 0.0, QMAX))
        else:
            return torch.clamp(v, 0.0, 1.0)
    raise AssertionError("unreachable: an Int8MLP has at least one layer")


def leaky_clamp01(x: torch.Tensor, leak: float) -> torch.Tensor:
    """``clamp(x, 0, 1)`` in value; gradient 1 inside [0, 1] and ``leak`` outside it."""
    clamped = torch.clamp(x, 0.0, 1.0)
    outside = x - clamped
    return clamped + leak * outside - (leak * outside).detach()


class OffsetQatMlp(QatMlp):
    """:class:`QatMlp` whose output clamp leaks gradient (:data:`OFFSET_CLAMP_LEAK`) outside [0, 1].

    Forward values are exactly :class:`QatMlp`'s (the export and the INT8 contract are
    unchanged). Why: with a hard clamp, an offset output pushed past 0 or 1 for every input
    gets no gradient again and Δu freezes at ±max_offset — measured in a pretraining run with
    the hard clamp: every offset ended at +max_offset, the offset network dead.
    """

    def clamp_output(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_clamp01(x, OFFSET_CLAMP_LEAK)


class NeuMipDecoders(nn.Module):
    """The universal offset and rgb networks (QAT-wrapped, bias-free, ReLU, output clamp [0, 1]).

    Args:
        channels: features per texture ``C``.
        hidden: hidden width; ``HIDDEN_LAYERS`` hidden layers each.

    Attributes:
        offset: :class:`QatMlp` ``(C + 2, hidden x 4, 2)`` reading ``T_off || ωo.xy``.
        rgb: :class:`QatMlp` ``(C + 4, hidden x 4, 3)`` reading ``T_rgb || ωi.xy || ωo.xy``.
    """

    def __init__(self, channels: int = CHANNELS, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.channels, self.hidden = int(channels), int(hidden)
        hid = (self.hidden,) * HIDDEN_LAYERS
        self.offset = OffsetQatMlp((self.channels + DIRECTION_WIDTH, *hid, 2))
        self.rgb = QatMlp((self.channels + 2 * DIRECTION_WIDTH, *hid, 3))
        with torch.no_grad():
            for mlp in (self.offset, self.rgb):
                mlp.layers[-1].weight.abs_()  # outputs start >= 0: none dead at the clamp

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}x{HIDDEN_LAYERS}"

    def set_qat_mode(self, mode: QatMode | str) -> None:
        """Switch both networks between float, observe and quantize forward passes."""
        self.offset.set_mode(mode)
        self.rgb.set_mode(mode)

    def freeze_observers(self, frozen: bool = True) -> None:
        """Stop (or resume) updating both networks' activation ranges."""
        self.offset.freeze_observers(frozen)
        self.rgb.freeze_observers(frozen)

    def freeze(self) -> None:
        """Frozen universal networks: no gradients, no range updates (texture-only fitting)."""
        self.requires_grad_(False)
        self.freeze_observers(True)


class Int8Decoders:
    """Exported INT8 networks, callable like :class:`NeuMipDecoders` (see :func:`int8_mlp_forward`)."""

    def __init__(self, offset: Int8MLP, rgb: Int8MLP) -> None:
        self.nets = {"offset": offset, "rgb": rgb}

    def offset(self, x: torch.Tensor) -> torch.Tensor:
        return int8_mlp_forward(self.nets["offset"], x)

    def rgb(self, x: torch.Tensor) -> torch.Tensor:
        return int8_mlp_forward(self.nets["rgb"], x)


class NeuMipTextures(nn.Module):
    """One material's feature textures ``T_off``, ``T_rgb``: float32 ``[res, res, C]`` each.

    ``T_off`` starts 10x quieter than ``T_rgb`` (:data:`OFFSET_INIT_SCALE`): the offsets start
    nearly uniform instead of as texel-to-texel noise, which scrambles the rgb lookups (measured
    on gravel, 400 steps: offset / true-parallax correlation 0.51 vs 0.12-0.20 at equal init).
    """

    def __init__(self, resolution: int, channels: int = CHANNELS, init_std: float = 0.1) -> None:
        super().__init__()
        self.resolution, self.channels = int(resolution), int(channels)
        self.offset = nn.Parameter(torch.randn(self.resolution, self.resolution, self.channels)
                                   * (init_std * OFFSET_INIT_SCALE))
        self.rgb = nn.Parameter(torch.randn(self.resolution, self.resolution, self.channels) * init_std)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}"


class NeuMipField(nn.Module):
    """``n_materials`` texture pairs + one decoder pair: (uv, ωi, ωo) -> BTF / value_scale.

    Args:
        n_materials: texture pairs held (one per material).
        resolution: texture side in texels.
        max_offset: largest |Δu| per axis, UV units (a property of the offset network; keep
            it exactly representable in float32, e.g. 1/8).
        decoders: shared networks to use (e.g. pretrained and frozen); default fresh ones.
        channels, hidden: sizes of fresh decoders and of the textures.
        texture_init_std: standard deviation of the textures' normal initialization.
    """

    def __init__(self, n_materials: int = 1, resolution: int = 64, max_offset: float = 0.125,
                 decoders: NeuMipDecoders | None = None, channels: int = CHANNELS, hidden: int = HIDDEN,
                 texture_init_std: float = 0.1) -> None:
        super().__init__()
        if max_offset <= 0:
            raise ValueError(f"max_offset must be > 0 (UV units), got {max_offset}")
        fresh = decoders is None
        self.decoders = decoders if decoders is not None else NeuMipDecoders(channels, hidden)
        channels = self.decoders.channels
        self.max_offset = float(max_offset)
        self.textures = nn.ModuleList(NeuMipTextures(resolution, channels, texture_init_std)
                                      for _ in range(int(n_materials)))
        if fresh:
            self._center_offsets()

    def extra_repr(self) -> str:
        return f"max_offset={self.max_offset}"

    @torch.no_grad()
    def _center_offsets(self, samples: int = 4096) -> None:
        """Scale the offset network's last layer so its mean output is 0.5 (Δu ≈ 0) at init."""
        tex = self.textures[0].offset if len(self.textures) else torch.randn(8, 8, self.decoders.channels) * 0.1
        uv = torch.rand(samples, 2)
        wo = torch.randn(samples, 3)
        wo[:, 2] = wo[:, 2].abs() + 0.2  # the upper hemisphere, every azimuth
        wo = torch.nn.functional.normalize(wo, dim=1)
        mlp = self.decoders.offset
        mode = mlp.mode
        mlp.set_mode(QatMode.FLOAT)
        mean = mlp(torch.cat([bilinear_lookup(tex, uv, WRAP), encode_direction(wo)], 1)).mean(0)
        mlp.set_mode(mode)
        mlp.layers[-1].weight.mul_((0.5 / mean.clamp(min=1e-6)).unsqueeze(1))

    def _segments(self, n: int, sizes: Sequence[int] | None) -> list[int]:
        sizes = [n] if sizes is None else [int(s) for s in sizes]
        if len(sizes) != len(self.textures) or sum(sizes) != n:
            raise ValueError(f"sizes {sizes} must give one segment per material ({len(self.textures)}) "
                             f"summing to the batch ({n})")
        return sizes

    def _lookup(self, name: str, uv: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        parts = torch.split(uv, sizes)
        return torch.cat([bilinear_lookup(getattr(t, name), p, WRAP) for t, p in zip(self.textures, parts)])

    def offsets(self, uv: torch.Tensor, wo: torch.Tensor, sizes: Sequence[int] | None = None,
                decoders: NeuMipDecoders | Int8Decoders | None = None) -> torch.Tensor:
        """Δu float32 ``[B, 2]`` (UV units) at ``uv`` ``[B, 2]`` seen from ``wo`` ``[B, 3]``."""
        dec = self.decoders if decoders is None else decoders
        seg = self._segments(len(uv), sizes)
        o = dec.offset(torch.cat([self._lookup("offset", uv, seg), encode_direction(wo)], 1))
        return offset_from_output(o, self.max_offset)

    def forward(self, uv: torch.Tensor, wi: torch.Tensor, wo: torch.Tensor, sizes: Sequence[int] | None = None,
                zero_offset: bool = False, decoders: NeuMipDecoders | Int8Decoders | None = None,
                return_offsets: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Scaled linear RGB ``[B, 3]`` in [0, 1] (BTF value / ``value_scale``).

        Args:
            uv: float32 ``[B, 2]`` reference-space texture coordinates (wrapped by the lookups).
            wi, wo: float32 ``[B, 3]`` unit local directions (light, view).
            sizes: samples per material, in order (contiguous segments); None: one material.
            zero_offset: force Δu = 0 (parallax ablation); the offset network is not run.
            decoders: evaluate with these networks instead of :attr:`decoders` (e.g.
                :class:`Int8Decoders` of the exported bundle).
            return_offsets: also return Δu ``[B, 2]`` (zeros with ``zero_offset``).
        """
        dec = self.decoders if decoders is None else decoders
        seg = self._segments(len(uv), sizes)
        du = torch.zeros_like(uv) if zero_offset else self.offsets(uv, wo, seg, dec)
        shifted = uv if zero_offset else uv + du
        x = torch.cat([self._lookup("rgb", shifted, seg), encode_direction(wi), encode_direction(wo)], 1)
        rgb = dec.rgb(x)
        return (rgb, du) if return_offsets else rgb

    def texture_parameters(self) -> list[nn.Parameter]:
        """Every material's two textures (the per-material parameters)."""
        return [p for t in self.textures for p in (t.offset, t.rgb)]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The universal networks' weights."""
        return list(self.decoders.parameters())
