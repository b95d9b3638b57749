"""``neumat neumip``: NeuMIP materials — pretrain universal decoders, fit a material's textures.

The Δu = 0 parallax ablation is a Python-API switch (``NeuMipConfig(zero_offset=True)``): its
offset network is never trained, so it has no faithful ``.nmat`` to write.

Examples::

    neumat neumip pretrain --out assets/neumip/universal_mlps.safetensors
    neumat neumip pretrain --materials leather,fabric,gravel --steps 3000 --out mlps.safetensors
    neumat neumip fit stone_tiles --decoders mlps.safetensors --out stone_tiles_neumip.nmat
    neumat neumip fit stone_tiles --decoders mlps.safetensors --finetune-steps 200 --out st.nmat
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated

import typer

from .train_cmd import setup_logging

log = logging.getLogger(__name__)

app = typer.Typer(help="NeuMIP materials: pretrain universal decoders, fit textures of a material (CPU ok).",
                  no_args_is_help=True)

Steps = Annotated[int | None, typer.Option(min=1, help="Optimizer steps (default: the config's).")]
Seed = Annotated[int, typer.Option(help="Seed of initialization and sampling.")]
BatchSize = Annotated[int | None, typer.Option(min=1, help="Samples per material per step.")]
TextureRes = Annotated[int | None, typer.Option(min=2, help="Feature texture side in texels.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def _config(steps: int | None, batch_size: int | None, texture_resolution: int | None, seed: int,
            **extra):
    from ..train.neumip import NeuMipConfig

    given = {"steps": steps, "batch_size": batch_size, "texture_resolution": texture_resolution, **extra}
    cfg = NeuMipConfig(seed=seed, **{k: v for k, v in given.items() if v is not None})
    cfg.validate()
    return cfg


def _summary(name: str, m: dict[str, float]) -> str:
    nan = float("nan")
    return (f"{name}: held-out PSNR fp32 {m['fp32_psnr']:.2f} dB / int8 {m.get('int8_psnr', nan):.2f} dB, "
            f"L1 {m['fp32_l1']:.5f} / {m.get('int8_l1', nan):.5f}, grazing (θo ≥ 60°) fp32 "
            f"{m.get('grazing_fp32_psnr', nan):.2f} dB")


@app.command("pretrain")
def pretrain_cmd(
    out: Annotated[Path, typer.Option(help="Universal decoder file to write (.safetensors).")],
    materials: Annotated[str | None, typer.Option(
        help="Comma-separated registry materials (default: leather,fabric,brick,gravel,grass).")] = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    texture_resolution: TextureRes = None,
    max_offset: Annotated[float | None, typer.Option(min=0.0, help="Largest |Δu| per axis, UV units.")] = None,
    export_dir: Annotated[Path | None, typer.Option(
        help="Also write each pretraining material's <name>_neumip.nmat here.")] = None,
    seed: Seed = 0,
    progress: Progress = True,
) -> None:
    """Pretrain universal NeuMIP decoders (offset + rgb MLPs, INT8 QAT) over several materials."""
    setup_logging()
    from ..train import ConfigError
    from ..train.neumip import PRETRAIN_MATERIALS, pretrain, save_decoders
    from ..train.sources import SourceError

    names = [n.strip() for n in materials.split(",") if n.strip()] if materials else list(PRETRAIN_MATERIALS)
    try:
        cfg = _config(steps, batch_size, texture_resolution, seed, max_offset=max_offset)
        result = pretrain(cfg, names, progress=progress)
    except (ConfigError, SourceError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    path = save_decoders(result.field.decoders, out, result.field.max_offset, names, cfg.to_dict())
    log.info("pretrained in %.1f s; decoders: %s", result.seconds, path)
    for k, (name, m) in enumerate(zip(names, result.metrics)):
        log.info("%s", _summary(name, m))
        if export_dir is not None:
            bundle = result.bundle(k, cfg, decoders=str(path))
            log.info("wrote %s", bundle.save(Path(export_dir) / f"{name}_neumip.nmat"))


@app.command("fit")
def fit_cmd(
    material: Annotated[str, typer.Argument(help="Registry material to fit (e.g. stone_tiles).")],
    decoders: Annotated[Path, typer.Option(help="Universal decoder file from `neumat neumip pretrain`.")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write.")],
    steps: Steps = None,
    finetune_steps: Annotated[int, typer.Option(min=0, help="Then fine-tune textures and decoders this long.")] = 0,
    batch_size: BatchSize = None,
    texture_resolution: TextureRes = None,
    seed: Seed = 0,
    progress: Progress = True,
) -> None:
    """Fit a material's NeuMIP textures with frozen universal decoders and export the INT8 .nmat."""
    setup_logging()
    from ..train import ConfigError
    from ..train.neumip import fit, load_decoders
    from ..train.sources import SourceError

    try:
        cfg = _config(steps, batch_size, texture_resolution, seed)
        nets, max_offset, info = load_decoders(decoders)
        if info["config"].get("texture_resolution") and texture_resolution is None:
            cfg = dataclasses.replace(cfg, texture_resolution=int(info["config"]["texture_resolution"]))
        result = fit(cfg, material, nets, max_offset, finetune_steps, progress=progress)
    except (ConfigError, SourceError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    bundle = result.bundle(0, cfg, decoders=str(decoders), finetune_steps=finetune_steps,
                           pretrained_on=info["materials"])
    log.info("fitted %s in %.1f s (%s); wrote %s", material, result.seconds,
             "textures only" if not finetune_steps else f"+ {finetune_steps} fine-tune steps", bundle.save(out))
    log.info("%s", _summary(material, result.metrics[0]))
