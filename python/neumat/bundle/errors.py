"""The one exception type of :mod:`neumat.bundle`."""

from __future__ import annotations


class BundleError(ValueError):
    """A ``.nmat`` bundle (or an InstantNeuralMaterial directory) is unreadable or inconsistent.

    Raised by every loader in :mod:`neumat.bundle` for any problem with the file's content —
    truncation, a foreign format, a manifest that disagrees with the tensors, a checksum
    mismatch, an INT8 MLP that breaks :mod:`neumat.quant.spec` — and by the writers when asked
    to save an invalid :class:`~neumat.bundle.bundle.Bundle`. The message says what is wrong and
    what to do about it. Loaders never raise anything else.
    """
