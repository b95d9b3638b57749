"""INT8 MLP backends selected by name: ``numpy`` (reference), ``native`` (C++ CPU, VNNI),
``slang`` (slangpy compute on Vulkan/CUDA), ``cuda`` (``__dp4a`` kernel through neumat._native).

``find_backend(name)`` returns the class or None; ``require_backend(name)`` raises with the
reason; ``available_backends()`` maps every name to None (usable) or the reason it is not.
"""

from __future__ import annotations

from importlib import import_module

from .base import BackendUnavailable, Int8Backend

_REGISTRY: dict[str, tuple[str, str]] = {
    "numpy": ("numpy_backend", "NumpyBackend"),
    "native": ("native_cpu", "NativeCpuBackend"),
    "slang": ("slang", "SlangBackend"),
    "cuda": ("cuda", "CudaBackend"),
}
BACKEND_NAMES = tuple(_REGISTRY)


def backend_class(name: str) -> type[Int8Backend]:
    """The backend class registered under ``name`` (ValueError listing valid names if unknown)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown INT8 backend '{name}'; valid: {', '.join(BACKEND_NAMES)}")
    module, cls = _REGISTRY[name]
    return getattr(import_module(f".{module}", __name__), cls)


def find_backend(name: str) -> type[Int8Backend] | None:
    """The backend class if it can run here, else None."""
    cls = backend_class(name)
    return cls if cls.unavailable_reason() is None else None


def require_backend(name: str) -> type[Int8Backend]:
    """The backend class, or :class:`BackendUnavailable` saying why it cannot run here."""
    cls = backend_class(name)
    reason = cls.unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"INT8 backend '{name}' is unavailable: {reason}")
    return cls


def available_backends() -> dict[str, str | None]:
    """Every backend name -> None if usable here, else the reason it is not."""
    return {name: backend_class(name).unavailable_reason() for name in BACKEND_NAMES}


__all__ = [
    "BACKEND_NAMES",
    "BackendUnavailable",
    "Int8Backend",
    "available_backends",
    "backend_class",
    "find_backend",
    "require_backend",
]
