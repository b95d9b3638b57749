"""Typed errors of :mod:`neumat.data`; every message names the file or value and what to do."""

from __future__ import annotations


class DataError(ValueError):
    """A BTF data source cannot produce what was asked (bad argument, empty split, ...)."""


class PbrLoadError(DataError):
    """A PBR texture set on disk is missing a map, unreadable, or inconsistent."""


class Ubo2014FormatError(DataError):
    """A file is not a readable UBO2014 / Bonn "BTF" file (wrong signature, truncated, ...)."""
