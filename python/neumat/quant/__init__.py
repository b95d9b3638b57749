"""INT8 MLP contract (:mod:`.spec`), its numpy reference (:mod:`.reference`) and test vectors.

Imports neither torch nor a GPU device: formats and specs know no device.
"""

from .reference import forward
from .spec import (
    MAX_LAYERS,
    MAX_WIDTH,
    QMAX,
    Int8MLP,
    QuantSpecError,
    ceil4,
    layer_word_offsets,
    pack_int8,
    quantize_symmetric,
    requant_multipliers,
    unpack_int8,
)

__all__ = [
    "MAX_LAYERS",
    "MAX_WIDTH",
    "QMAX",
    "Int8MLP",
    "QuantSpecError",
    "ceil4",
    "forward",
    "layer_word_offsets",
    "pack_int8",
    "quantize_symmetric",
    "requant_multipliers",
    "unpack_int8",
]
