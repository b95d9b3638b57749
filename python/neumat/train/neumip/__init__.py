"""NeuMIP training (seed 000, §4.1): universal decoders pretrained over several synthetic
materials, texture-only fitting of new materials with the decoders frozen, INT8 export.

* :mod:`.config` — :class:`NeuMipConfig` and the default pretraining set;
* :mod:`.fit` — :func:`pretrain`, :func:`fit`, :func:`optimize`: runs of the shared training
  engine (:mod:`neumat.train.engine`: checkpoints, exact resume, time budget, DDP);
* :mod:`.plugin` — NeuMIP's model plug-in of that engine (stages, schedules, the loss);
* :mod:`.penalties` — the offset penalties added to the L1 loss;
* :mod:`.export` — ``.nmat`` bundles, held-out metrics, the universal-decoder file.

``neumat neumip pretrain`` / ``neumat neumip fit`` (:mod:`neumat.cli.neumip_cmd`) drive them.
"""

from .config import PRETRAIN_MATERIALS, NeuMipConfig
from .export import load_decoders, material_metrics, predict, save_decoders, to_bundle
from .fit import FitResult, MaterialData, fit, load_material, optimize, pretrain

__all__ = [
    "PRETRAIN_MATERIALS",
    "FitResult",
    "MaterialData",
    "NeuMipConfig",
    "fit",
    "load_decoders",
    "load_material",
    "material_metrics",
    "optimize",
    "predict",
    "pretrain",
    "save_decoders",
    "to_bundle",
]
