"""Training of neural materials (torch): config, the engine, checkpoints, export.

:mod:`.engine` is the one training loop (checkpoints, exact resume, time budget, DDP, guards);
models plug into it: the triple-plane material (:mod:`.loop`, ``neumat train`` drives
:func:`train`) and NeuMIP (:mod:`.neumip`, ``neumat neumip``).
Names are imported on first use, so torch-free submodules (:mod:`.sources`, :mod:`.config`)
load without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataConfig": "config", "ModelConfig": "config", "OptimConfig": "config", "QatConfig": "config",
    "SourceConfig": "config", "TrainConfig": "config",
    "ConfigError": "config_io", "apply_overrides": "config_io", "config_from_dict": "config_io",
    "config_to_dict": "config_io", "load_config": "config_io", "save_config": "config_io",
    "export_checkpoint": "export", "to_bundle": "export",
    "Engine": "engine", "RunOutcome": "engine", "TrainModel": "engine",
    "Trainer": "loop", "TriplePlaneModel": "loop", "TrainResult": "loop", "train": "loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
