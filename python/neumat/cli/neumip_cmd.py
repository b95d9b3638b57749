"""``neumat neumip``: NeuMIP materials — pretrain universal decoders, fit a material's textures.

The Δu = 0 parallax ablation is a Python-API switch (``NeuMipConfig(zero_offset=True)``): its
offset network is never trained, so it has no faithful ``.nmat`` to write.

Examples::

    neumat neumip pretrain --out assets/neumip/universal_mlps.safetensors
    neumat neumip pretrain --materials leather,fabric,gravel --steps 3000 --out mlps.safetensors
    neumat neumip fit stone_tiles --decoders mlps.safetensors --out stone_tiles_neumip.nmat
    neumat neumip fit stone_tiles --decoders mlps.safetensors --finetune-steps 200 --out st.nmat
    neumat neumip fit --maps textures/rock --height-scale 0.02 --decoders mlps.safetensors --out rock.nmat
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
    decoders: Annotated[Path, typer.Option(help="Universal decoder file from `neumat neumip pretrain`.")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write.")],
    material: Annotated[str | None, typer.Argument(
        help="Registry material to fit (e.g. stone_tiles); or give --maps.")] = None,
    maps: Annotated[Path | None, typer.Option(
        help="Fit a PBR texture set instead (a folder of basecolor/height/roughness/... maps named as "
             "ambientCG, Poly Haven or MatSynth name them, as `neumat train --maps`).")] = None,
    height_scale: Annotated[float | None, typer.Option(
        min=0.0, help="With --maps: relief depth in UV units (default 0.03).")] = None,
    steps: Steps = None,
    finetune_steps: Annotated[int, typer.Option(min=0, help="Then fine-tune textures and decoders this long.")] = 0,
    batch_size: BatchSize = None,
    texture_resolution: TextureRes = None,
    seed: Seed = 0,
    progress: Progress = True,
) -> None:
    """Fit a material's NeuMIP textures with frozen universal decoders and export the INT8 .nmat."""
    setup_logging()
    if (material is None) == (maps is None):
        raise typer.BadParameter("name a registry MATERIAL or give --maps DIR (one of the two)")
    if height_scale is not None and maps is None:
        raise typer.BadParameter("--height-scale applies to --maps only")
    from ..data import DataError
    from ..fileio import OutputPathError, check_output_path
    from ..train import ConfigError
    from ..train.neumip import fit, load_decoders
    from ..train.sources import SourceError

    try:  # before any rendering or fitting
        check_output_path(out, (".nmat",), "--out")
    except OutputPathError as e:
        raise typer.BadParameter(str(e)) from None

    try:
        cfg = _config(steps, batch_size, texture_resolution, seed)
        nets, max_offset, info = load_decoders(decoders)
        if info["config"].get("texture_resolution") and texture_resolution is None:
            cfg = dataclasses.replace(cfg, texture_resolution=int(info["config"]["texture_resolution"]))
        spec = cfg.maps_spec(maps, height_scale) if maps is not None else None
        name = material if material is not None else maps.resolve().name
        result = fit(cfg, name, nets, max_offset, finetune_steps, progress=progress, spec=spec)
    except (ConfigError, SourceError, DataError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    bundle = result.bundle(0, cfg, decoders=str(decoders), finetune_steps=finetune_steps,
                           pretrained_on=info["materials"])
    log.info("fitted %s in %.1f s (%s); wrote %s", name, result.seconds,
             "textures only" if not finetune_steps else f"+ {finetune_steps} fine-tune steps", bundle.save(out))
    log.info("%s", _summary(name, result.metrics[0]))
