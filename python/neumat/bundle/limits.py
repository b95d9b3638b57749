"""The largest shapes a ``.nmat`` file may declare: the model limits as bounds on its header.

:func:`neumat.bundle.manifest.check_declared_model` checks every tensor the header declares
against the limit of its kind before a tensor byte is read; with
:data:`neumat.bundle.container.MAX_TENSOR_BYTES` (all tensors together) this bounds what a
load allocates, whatever the file says. The limits are those :meth:`Bundle.validate
<neumat.bundle.bundle.Bundle.validate>` and :class:`neumat.quant.Int8MLP` enforce on the arrays
(:data:`~neumat.bundle.bundle.MAX_PLANE_RES` texels per side, :data:`neumat.quant.MAX_WIDTH`
channels or neurons, :data:`neumat.quant.MAX_LAYERS` layers), which check the exact shapes once
the data is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..quant import MAX_LAYERS, MAX_WIDTH, ceil4
from .bundle import MAX_PLANE_RES


@dataclass(frozen=True)
class ShapeLimit:
    """The largest shape one kind of tensor may declare: its rank and each side's maximum."""

    what: str
    """The tensor kind, dtype and axes, for messages (``"a height map: float32 [rows, cols]"``)."""
    sides: tuple[int, ...]
    """Largest size of each axis, inclusive; ``len(sides)`` is the rank."""

    def allows(self, shape: tuple[int, ...]) -> bool:
        """True when ``shape`` has this rank and no side above its maximum."""
        return len(shape) == len(self.sides) and all(n <= m for n, m in zip(shape, self.sides))


PLANE_LIMIT = ShapeLimit(
    "a plane: float16/float32 [rows, cols, channels]", (MAX_PLANE_RES, MAX_PLANE_RES, MAX_WIDTH)
)
"""``plane.<p>``: rows and cols in texels, channels."""
WEIGHT_LIMIT = ShapeLimit(
    "packed INT8 weights: uint32 [n_out, ceil4(n_in)/4]", (MAX_WIDTH, ceil4(MAX_WIDTH) // 4)
)
"""``mlp.<net>.weight.<l>``: output neurons, packed words of 4 input weights."""
SCALES_LIMIT = ShapeLimit("MLP scales: float32 [2 * layers]", (2 * MAX_LAYERS,))
"""``mlp.<net>.scales``: ``[sa_0, sw_0, sa_1, sw_1, ...]``."""
HEIGHT_LIMIT = ShapeLimit("a height map: float32 [rows, cols]", (MAX_PLANE_RES, MAX_PLANE_RES))
"""``height``: rows and cols in texels."""
