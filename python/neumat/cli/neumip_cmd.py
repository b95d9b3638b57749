"""``neumat neumip``: NeuMIP materials — pretrain universal decoders, fit a material's textures.

Both run on the training engine of ``neumat train`` (:mod:`neumat.train.engine`): ``--run-dir``
holds ``config.json`` and atomic checkpoints, ``--resume`` continues a killed run
bit-identically, ``--max-minutes`` rescales the run so its QAT phases fit the budget,
``--config FILE`` / ``--set KEY=VALUE`` set any :class:`~neumat.train.neumip.NeuMipConfig` field
(unknown keys are errors listing the valid ones), torchrun runs them on several processes.

The Δu = 0 parallax ablation is a Python-API switch (``NeuMipConfig(zero_offset=True)``): its
offset network is never trained, so it has no faithful ``.nmat`` to write.

Examples::

    neumat neumip pretrain --out assets/neumip/universal_mlps.safetensors
    neumat neumip pretrain --materials leather,fabric,gravel --steps 3000 --out mlps.safetensors
    neumat neumip fit stone_tiles --decoders mlps.safetensors --out stone_tiles_neumip.nmat
    neumat neumip fit stone_tiles --decoders mlps.safetensors --finetune-steps 200 --out st.nmat
    neumat neumip fit --maps textures/rock --height-scale 0.02 --decoders mlps.safetensors --out rock.nmat
    neumat neumip fit --btf data/UBO2014/carpet01.btf --decoders mlps.safetensors --out carpet.nmat \\
        --run-dir runs/carpet --max-minutes 20 --set lr_textures=0.01
    neumat neumip fit --btf data/UBO2014/carpet01.btf --decoders mlps.safetensors --out carpet.nmat \\
        --run-dir runs/carpet --resume                                 # continue after a kill
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from .train_cmd import SOURCE_PANEL, setup_logging, source_choice

log = logging.getLogger(__name__)

app = typer.Typer(help="NeuMIP materials: pretrain universal decoders, fit textures of a material (CPU ok).",
                  no_args_is_help=True)

RUN_PANEL = "Run (checkpoints, resume, budget, config)"
"""Help panel of the options every NeuMIP run shares with ``neumat train``."""
Steps = Annotated[int | None, typer.Option(min=1, help="Optimizer steps (default: the config's).")]
Seed = Annotated[int | None, typer.Option(help="Seed of initialization and sampling (default 0).")]
BatchSize = Annotated[int | None, typer.Option(min=1, help="Samples per material per step.")]
TextureRes = Annotated[int | None, typer.Option(min=2, help="Feature texture side in texels.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
RunDir = Annotated[Path | None, typer.Option(
    help="Run directory: config.json, atomic checkpoints (ckpt_*.pt), history.json. Default: none (no "
         "checkpoints).", rich_help_panel=RUN_PANEL)]
Resume = Annotated[bool, typer.Option(
    help="Continue from the newest checkpoint in --run-dir (with its config.json), bit-identically.",
    rich_help_panel=RUN_PANEL)]
MaxMinutes = Annotated[float | None, typer.Option(
    min=0, help="Wall-time budget, minutes (default 0: none). After a few timed steps the run is rescaled to "
                "what fits, so the QAT phases and the learning-rate decay happen inside it.",
    rich_help_panel=RUN_PANEL)]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", help="Config file (.json or .toml, any subset of the NeuMipConfig fields).",
    rich_help_panel=RUN_PANEL)]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any config field: field=value or qat.field=value (e.g. lr_textures=0.01), "
                  "repeatable.", rich_help_panel=RUN_PANEL)]


def _config(config: Path | None, run_dir: Path | None, resume: bool, defaults: dict[str, Any],
            options: dict[str, Any], sets: list[str] | None):
    """The run's :class:`NeuMipConfig`: ``defaults`` (e.g. the decoder file's texture side), then
    the config file (``--config``, or with ``--resume`` the run directory's ``config.json``), then
    the given ``options`` (None: not given), then ``--set``.

    Raises:
        ConfigError: unknown keys (the valid ones listed) or values out of range.
    """
    from ..train.config_io import apply_overrides, merge_config, read_config_file
    from ..train.neumip import NeuMipConfig

    cfg = merge_config(NeuMipConfig(), defaults)
    saved = run_dir / "config.json" if run_dir is not None else None
    if config is not None:
        cfg = merge_config(cfg, read_config_file(config))
    elif resume and saved is not None and saved.is_file():
        cfg = merge_config(cfg, read_config_file(saved))
    given = [f"{k}={json.dumps(str(v) if isinstance(v, Path) else v)}" for k, v in options.items() if v is not None]
    return apply_overrides(cfg, given + (sets or []))


def _summary(name: str, m: dict[str, float]) -> str:
    nan = float("nan")
    return (f"{name}: held-out PSNR fp32 {m.get('fp32_psnr', nan):.2f} dB / int8 {m.get('int8_psnr', nan):.2f} dB, "
            f"L1 {m.get('fp32_l1', nan):.5f} / {m.get('int8_l1', nan):.5f}, grazing (θo ≥ 60°) fp32 "
            f"{m.get('grazing_fp32_psnr', nan):.2f} dB")


def _run_options(run_dir: Path | None, resume: bool, max_minutes: float | None, progress: bool,
                 **options: Any) -> dict[str, Any]:
    if resume and run_dir is None:
        raise typer.BadParameter("--resume continues the run in --run-dir DIR: give it")
    return {"out": run_dir, "max_minutes": max_minutes, "progress": None if progress else False, **options}


def _is_main() -> bool:
    """True on the process that writes files (torchrun's rank 0, or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


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
    seed: Seed = None,
    progress: Progress = True,
    run_dir: RunDir = None,
    resume: Resume = False,
    max_minutes: MaxMinutes = None,
    config: ConfigFile = None,
    set_: Sets = None,
) -> None:
    """Pretrain universal NeuMIP decoders (offset + rgb MLPs, INT8 QAT) over several materials."""
    setup_logging()
    from ..bundle import save_bundle
    from ..train.neumip import PRETRAIN_MATERIALS, pretrain, save_decoders

    names = [n.strip() for n in materials.split(",") if n.strip()] if materials else list(PRETRAIN_MATERIALS)
    options = _run_options(run_dir, resume, max_minutes, progress, steps=steps, batch_size=batch_size,
                           texture_resolution=texture_resolution, seed=seed, max_offset=max_offset)
    with _training_errors():
        cfg = _config(config, run_dir, resume, {}, options, set_)
        result = pretrain(cfg, names, resume=resume)
    if not _is_main():
        return
    path = save_decoders(result.field.decoders, out, result.field.max_offset, names, cfg.to_dict())
    log.info("pretrained in %.1f s; decoders: %s", result.seconds, path)
    for k, (name, m) in enumerate(zip(names, result.metrics)):
        log.info("%s", _summary(name, m))
        if export_dir is not None:
            bundle = result.bundle(k, cfg, decoders=str(path))
            log.info("wrote %s", save_bundle(bundle, Path(export_dir) / f"{name}_neumip.nmat"))


@app.command("fit")
def fit_cmd(
    decoders: Annotated[Path, typer.Option(help="Universal decoder file from `neumat neumip pretrain`.")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write (checked before the fit).")],
    material: Annotated[str | None, typer.Argument(
        help="Registry material to fit (e.g. stone_tiles); or give --maps or --btf.")] = None,
    maps: Annotated[Path | None, typer.Option(
        help="Fit a PBR texture set instead (a folder of basecolor/height/roughness/... maps named as "
             "ambientCG, Poly Haven or MatSynth name them, as `neumat train --maps`).",
        rich_help_panel=SOURCE_PANEL)] = None,
    btf: Annotated[Path | None, typer.Option(
        help="Fit a measured UBO2014 BTF file instead (as `neumat train --btf`).", rich_help_panel=SOURCE_PANEL)] = None,
    height_scale: Annotated[float | None, typer.Option(
        min=0.0, help="With --maps: relief depth in UV units (default 0.03).", rich_help_panel=SOURCE_PANEL)] = None,
    steps: Steps = None,
    finetune_steps: Annotated[int, typer.Option(min=0, help="Then fine-tune textures and decoders this long.")] = 0,
    batch_size: BatchSize = None,
    texture_resolution: TextureRes = None,
    seed: Seed = None,
    progress: Progress = True,
    run_dir: RunDir = None,
    resume: Resume = False,
    max_minutes: MaxMinutes = None,
    config: ConfigFile = None,
    set_: Sets = None,
) -> None:
    """Fit a material's NeuMIP textures with frozen universal decoders and export the INT8 .nmat.

    Exit 2 for a bad option, config value, source or output path (checked before the fit); exit
    1 when a checkpoint cannot be read, the run diverges or the bundle cannot be written.
    """
    setup_logging()
    choice = source_choice(material, maps, btf)
    if choice is None:
        raise typer.BadParameter("name a registry MATERIAL or give --maps DIR or --btf FILE (one of them)")
    if height_scale is not None and maps is None:
        raise typer.BadParameter("--height-scale applies to --maps only")
    from ..fileio import check_output_path
    from ..train.guards import check_run_outputs
    from ..train.neumip import fit, load_decoders

    options = _run_options(run_dir, resume, max_minutes, progress, steps=steps, batch_size=batch_size,
                           texture_resolution=texture_resolution, seed=seed, export=out)
    with _training_errors():  # paths and config checked before any rendering or fitting
        check_output_path(out, (".nmat",), "--out")
        nets, max_offset, info = load_decoders(decoders)
        res = info["config"].get("texture_resolution")
        cfg = _config(config, run_dir, resume, {"texture_resolution": int(res)} if res else {}, options, set_)
        check_run_outputs(cfg)
        spec = cfg.maps_spec(maps, height_scale) if maps is not None else cfg.btf_spec(btf) if btf is not None else None
        name = material if material is not None else maps.resolve().name if maps is not None else btf.resolve().stem
        result = fit(cfg, name, nets, max_offset, finetune_steps, spec=spec, resume=resume,
                     bundle_extra={"decoders": str(decoders), "pretrained_on": info["materials"]})
    if not _is_main():
        return
    if result.export_error:
        hint = f"; the checkpoints in {run_dir} are intact: `neumat export {run_dir} --out X.nmat` writes it"
        log.error("%s%s", result.export_error, hint if run_dir else "")
        raise typer.Exit(1)
    log.info("fitted %s in %.1f s (%s); wrote %s", name, result.seconds,
             "textures only" if not finetune_steps else f"+ {finetune_steps} fine-tune steps", out)
    log.info("%s", _summary(name, result.metrics[0]))


@contextmanager
def _training_errors():
    """Map a training command's failures to exits: a bad option, config value, source or output
    path is a ``typer.BadParameter`` (exit 2); an unreadable checkpoint, a diverged run or a
    failed write is logged, exit 1. Tears the process group down either way (DDP)."""
    from ..data import DataError
    from ..fileio import OutputPathError
    from ..train import ConfigError
    from ..train.checkpoint import CheckpointError
    from ..train.distributed import shutdown_distributed
    from ..train.guards import TrainingDiverged
    from ..train.sources import SourceError

    try:
        yield
    except (ConfigError, SourceError, DataError, OutputPathError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    except (CheckpointError, TrainingDiverged, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(1) from None
    finally:
        shutdown_distributed()
