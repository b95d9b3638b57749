"""Importing timm (the ``inverse`` extra) lazily, with or without torchvision.

timm 1.0 imports torchvision at import time (``timm.data``: transforms, datasets;
``timm.layers``: ``FrozenBatchNorm2d``), but PyPI's torchvision does not load beside the CPU
torch wheel the project pins (ENVIRONMENT.md: "operator torchvision::nms does not exist"), and
installing it pulls a CUDA torch. So CPU set-ups install timm without torchvision
(``pip install --no-deps timm``), and :func:`import_timm` then imports it against a stand-in:
while timm imports, any ``torchvision.*`` module resolves to a placeholder whose attributes are
placeholder classes that raise :class:`ImportError` when used, plus a working
``torchvision.ops.misc.FrozenBatchNorm2d``; right after, the stand-in leaves ``sys.modules`` and
the import path, so nothing else in the process sees a torchvision. The models MVInverse
builds (ViT, ResNet) use none of it; timm's data pipeline and FX feature extraction would
raise if called. Where a working torchvision is installed (GPU images), timm imports as usual.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

import torch
from torch import nn

INSTALL_HINT = "install the inverse extra: make setup, or pip install --no-deps 'timm>=1.0,<2'"


def import_timm() -> Any:
    """The ``timm`` module, imported on first use (module docstring).

    Raises:
        ImportError: timm is not installed (saying how to install it), or torchvision is
            installed but fails to load.
    """
    if "timm" in sys.modules:
        return sys.modules["timm"]
    finder = None
    try:
        importlib.import_module("torchvision.ops.misc")
    except ModuleNotFoundError:
        finder = _StandInFinder()
        sys.meta_path.insert(0, finder)
    except (RuntimeError, OSError) as e:  # e.g. "operator torchvision::nms does not exist"
        raise ImportError(f"torchvision is installed but does not load beside this torch ({e}); timm needs a "
                          "working torchvision or none: pip uninstall torchvision") from e
    try:
        return importlib.import_module("timm")
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] == "timm":
            raise ImportError(f"MVInverse builds its encoders with timm, which is missing: {INSTALL_HINT}") from e
        raise
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
            for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
                del sys.modules[name]


class _Placeholder(type):
    """Metaclass of stand-in classes: every attribute is another placeholder class."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return placeholder(f"{cls.__qualname__}.{name}")


def placeholder(name: str) -> type:
    """A class standing for torchvision's ``name``: subclassable, usable as a key; raises
    :class:`ImportError` when instantiated."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ImportError(f"torchvision's {name} is not available: this process imported timm without "
                          "torchvision (neumat.inverse.timm_import)")

    return _Placeholder(name, (), {"__init__": __init__, "__module__": "torchvision", "__qualname__": name})


class _StandInModule(types.ModuleType):
    """A ``torchvision.*`` stand-in package whose missing attributes are placeholders."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return placeholder(f"{self.__name__}.{name}")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (torchvision's), ``[N, C, H, W]``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return x * scale[:, None, None] + (self.bias - self.running_mean * scale)[:, None, None]


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every ``torchvision`` / ``torchvision.*`` import with a :class:`_StandInModule`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "torchvision" and not fullname.startswith("torchvision."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name, "stand-in while timm imports (neumat.inverse.timm_import)")
        module.__path__ = []
        if spec.name == "torchvision.ops.misc":
            module.FrozenBatchNorm2d = FrozenBatchNorm2d
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is made in :meth:`create_module`."""
