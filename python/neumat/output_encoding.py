"""Output encodings: the float step that turns the MLP's [0, 1] output into BTF values.

The INT8 MLP contract (:mod:`neumat.quant.spec`) ends with ``y = clamp(acc * m_L, 0, 1)``,
float32 ``[..., 3]``. A triple-plane bundle says how ``y`` decodes to linear Rec.709 BTF values
``v`` (cosine included, see :mod:`neumat.data.source`); every evaluator applies the same
decode after its MLP (numpy :func:`neumat.material.triple_plane.render_int8`, the render
reference, the Slang infer pass via ``shaders/output_encoding.slang``). Encodings, by id:

``"linear"`` (:data:`LINEAR`)
    ``v = y * s`` (one float32 multiply). ``s`` is the scalar provenance ``value_scale``
    (typically the 99.9th percentile of the training values), so values above ``s`` clip.
    The default when a bundle records no encoding: older bundles decode exactly as before.
``"reinhard-v1"`` (:data:`REINHARD`)
    ``v = (s_c * y') / (1 - y')`` with ``y' = min(y, Y_MAX)``, ``Y_MAX = 1 - 2^-10``, per
    channel ``c`` with scales ``s_c`` (provenance ``output_scale``, 3 floats > 0). float32
    operations in this order: ``y' = min(y, Y_MAX)``, ``a = s_c * y'``, ``b = 1 - y'``,
    ``v = a / b``. Encode: ``y = v / (s_c + v)`` (``v`` clamped to >= 0, ``y`` to <= Y_MAX).
    ``s_c`` maps to ``y = 0.5``; the largest value is ``1023 s_c`` (at ``Y_MAX``), so
    highlights far above the typical value survive, and an L1 loss on ``y`` weighs errors
    roughly relative to the value (``dy/dv = s_c / (s_c + v)^2``).
``"log-v1"`` (:data:`LOG`)
    ``v = s_c * (2^(k y) - 1)`` per channel ``c`` with scales ``s_c`` (provenance
    ``output_scale``) and one range ``k`` in bits (provenance ``output_range_bits``, > 0).
    float32 operations in this order: ``t = k * y``, ``e = exp2(t)``, ``v = s_c * (e - 1)``.
    Encode: ``y = log2(1 + v / s_c) / k`` (``v`` clamped to >= 0, ``y`` to <= 1). Values below
    ``s_c`` are nearly linear, above it logarithmic up to ``s_c (2^k - 1)``: an L1 loss on ``y``
    weighs errors relative to the value over the whole range, so a glossy metal's dark
    off-specular directions (values 10^-5 of its highlights) are fitted as closely as its
    highlights.

Precision: numpy divides correctly rounded; Vulkan/SPIR-V ``OpFDiv`` may be off by up to 2.5
ulp (and GPUs often divide by a reciprocal), so Slang and numpy decodes agree within a few
ulp of ``v`` (tests use a relative 4 ulp = 4 * 2^-23), not bit for bit. ``exp2`` is not
correctly rounded either (Vulkan allows 3 + 2|t| ulp), so "log-v1" agrees within that many ulp
of ``e``, i.e. ``|dv| <= s_c * e * (3 + 2 t) * 2^-23``. Multiplies and subtractions are exact
IEEE operations on every backend.

Provenance keys (:data:`ENCODING_KEY`, :data:`SCALE_KEY`, :data:`RANGE_KEY`, and
:data:`VALUE_SCALE_KEY` for ``"linear"``); :meth:`OutputEncoding.from_provenance` reads them and
raises :class:`OutputEncodingError` on anything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

LINEAR = "linear"
"""``v = y * value_scale`` (scalar); the encoding of bundles that record none."""
REINHARD = "reinhard-v1"
"""``v = s_c y / (1 - y)`` per channel, ``y <= Y_MAX``."""
LOG = "log-v1"
"""``v = s_c (2^(k y) - 1)`` per channel."""
ENCODINGS = (LINEAR, REINHARD, LOG)
"""Known ids; the index is the Slang selector (``decodeOutput`` in ``shaders/output_encoding.slang``)."""
Y_MAX = np.float32(1.0 - 2.0 ** -10)
"""Largest decoded ``y`` of ``"reinhard-v1"`` (0.9990234375, exact in float32)."""
ENCODING_KEY = "output_encoding"
"""Provenance key: the encoding id (absent: ``"linear"``)."""
SCALE_KEY = "output_scale"
"""Provenance key: ``[s_r, s_g, s_b]`` of ``"reinhard-v1"``."""
RANGE_KEY = "output_range_bits"
"""Provenance key: ``k`` of ``"log-v1"`` (decoded values reach ``s_c (2^k - 1)``)."""
VALUE_SCALE_KEY = "value_scale"
"""Provenance key: the scalar scale of ``"linear"`` (absent: 1.0)."""


class OutputEncodingError(ValueError):
    """An unknown encoding id or a bad scale."""


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OutputEncodingError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OutputEncoding:
    """An output encoding: ``id`` (one of :data:`ENCODINGS`), per-channel ``scale`` (3 floats
    > 0, BTF value units; all equal for ``"linear"``) and ``range_bits`` (``k`` of ``"log-v1"``,
    > 0; 0 for the others)."""

    id: str
    scale: tuple[float, float, float]
    range_bits: float = 0.0

    def __post_init__(self) -> None:
        if self.id not in ENCODINGS:
            raise OutputEncodingError(f"unknown output encoding {self.id!r}; known: {', '.join(ENCODINGS)}")
        if len(self.scale) != 3:
            raise OutputEncodingError(f"output scale needs 3 channels, got {self.scale!r}")
        object.__setattr__(self, "scale", tuple(_positive(s, "output scale") for s in self.scale))
        if self.id == LINEAR and len(set(self.scale)) != 1:
            raise OutputEncodingError(f"{LINEAR!r} has one scale for all channels, got {self.scale!r}")
        if self.id == LOG:
            object.__setattr__(self, "range_bits", _positive(self.range_bits, "output range (bits)"))
        elif self.range_bits:
            raise OutputEncodingError(f"{self.id!r} has no range, got range_bits={self.range_bits!r}")

    @property
    def index(self) -> int:
        """Slang selector of :attr:`id`."""
        return ENCODINGS.index(self.id)

    def _s(self) -> np.ndarray:
        return np.asarray(self.scale, np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """MLP outputs ``[..., 3]`` (float32, in [0, 1]) -> BTF values ``[..., 3]`` float32."""
        y = np.asarray(y, np.float32)
        if self.id == LINEAR:
            return (y * self._s()).astype(np.float32)
        if self.id == LOG:
            e = np.exp2(np.float32(self.range_bits) * y).astype(np.float32)
            return (self._s() * (e - np.float32(1))).astype(np.float32)
        yc = np.minimum(y, Y_MAX)
        return ((self._s() * yc) / (np.float32(1) - yc)).astype(np.float32)

    def encode(self, v: np.ndarray) -> np.ndarray:
        """BTF values ``[..., 3]`` -> training targets ``[..., 3]`` float32 (inverse of
        :meth:`decode` on ``v >= 0``; ``"linear"`` targets may exceed 1 where ``v > s``)."""
        v = np.asarray(v, np.float32)
        if self.id == LINEAR:
            return (v / self._s()).astype(np.float32)
        v = np.maximum(v, np.float32(0))
        if self.id == LOG:
            y = np.log2(np.float32(1) + v / self._s()) / np.float32(self.range_bits)
            return np.minimum(y, np.float32(1)).astype(np.float32)
        return np.minimum(v / (self._s() + v), Y_MAX).astype(np.float32)

    def provenance(self) -> dict[str, Any]:
        """The bundle provenance / checkpoint entries that record this encoding."""
        if self.id == LINEAR:
            return {ENCODING_KEY: LINEAR, VALUE_SCALE_KEY: self.scale[0]}
        if self.id == LOG:
            return {ENCODING_KEY: self.id, SCALE_KEY: list(self.scale), RANGE_KEY: self.range_bits}
        return {ENCODING_KEY: self.id, SCALE_KEY: list(self.scale)}

    @classmethod
    def linear(cls, value_scale: float) -> OutputEncoding:
        """``"linear"`` with scalar ``value_scale``."""
        return cls(LINEAR, (value_scale,) * 3)

    @classmethod
    def from_provenance(cls, record: dict[str, Any]) -> OutputEncoding:
        """The encoding recorded in a provenance (or checkpoint) dict; none recorded: ``"linear"``
        with ``value_scale`` (default 1.0)."""
        enc = record.get(ENCODING_KEY, LINEAR)
        if enc == LINEAR:
            return cls.linear(_positive(record.get(VALUE_SCALE_KEY, 1.0), f"provenance {VALUE_SCALE_KEY!r}"))
        if not isinstance(enc, str) or enc not in ENCODINGS:
            raise OutputEncodingError(f"unknown output encoding {enc!r}; known: {', '.join(ENCODINGS)}")
        scale = record.get(SCALE_KEY)
        if not isinstance(scale, (list, tuple)) or len(scale) != 3:
            raise OutputEncodingError(f"{enc!r} needs provenance {SCALE_KEY!r} = 3 numbers > 0, got {scale!r}")
        scales = tuple(_positive(s, f"provenance {SCALE_KEY!r}") for s in scale)
        if enc == LOG:
            return cls(enc, scales, _positive(record.get(RANGE_KEY), f"provenance {RANGE_KEY!r}"))
        return cls(enc, scales)

