"""BTF data: sources of (u, v, ωi, ωo) -> linear RGB samples behind one interface."""

from .source import BtfBatch, BtfSource, held_out_split

__all__ = ["BtfBatch", "BtfSource", "held_out_split"]
