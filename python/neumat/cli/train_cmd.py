"""``neumat train``: train a triple-plane INT8 material (multi-GPU with torchrun).

Examples::

    neumat train --material leather --out runs/leather --export leather.nmat
    neumat train --maps ~/textures/Rock051_2K --height-scale 0.04 --resolution 0 --export rock.nmat
    neumat train --btf data/UBO2014/carpet01.btf --config train.toml --max-minutes 30
    neumat train --out runs/leather --resume                       # continue after a kill
    neumat train --material leather --out runs/leather --export leather.nmat --view  # watch it learn
    torchrun --nproc_per_node 4 -m neumat train --material leather --out runs/leather
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..train.sources import MAX_SLICE_DIRECTIONS, MAX_SLICE_RESOLUTION, MAX_TEXTURE_RESOLUTION

log = logging.getLogger(__name__)


def setup_logging() -> None:
    """INFO-level logging to stderr through rich, unless the caller configured logging already."""
    root = logging.getLogger()
    if not root.handlers:
        from rich.logging import RichHandler

        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])


def source_choice(material: Optional[str], maps: Optional[Path], btf: Optional[Path]) -> dict[str, str] | None:
    """The data source the options select, as ``{"kind": ..., "name" | "path": ...}``, or None.

    Raises:
        typer.BadParameter: more than one of --material, --maps, --btf.
    """
    given = [(k, v) for k, v in (("material", material), ("maps", maps), ("btf", btf)) if v is not None]
    if len(given) > 1:
        raise typer.BadParameter(f"give only one of --material, --maps, --btf (got {[k for k, _ in given]})")
    if not given:
        return None
    kind, value = given[0]
    return {"kind": kind, ("name" if kind == "material" else "path"): str(value)}


SOURCE_PANEL = "Data source (recorded in the bundle; `neumat eval` rebuilds it)"
"""Help panel grouping the data-source options of ``neumat train``."""


def train(
    material: Annotated[Optional[str], typer.Option(
        help="Synthetic registry material to train.", rich_help_panel=SOURCE_PANEL)] = None,
    maps: Annotated[Optional[Path], typer.Option(
        help="Folder of PBR maps (albedo + height, optional roughness/metallic/normal/ARM, any common "
             "naming) to render a synthetic BTF from; the file used for each map is logged.",
        rich_help_panel=SOURCE_PANEL)] = None,
    btf: Annotated[Optional[Path], typer.Option(
        help="Measured UBO2014 BTF file.", rich_help_panel=SOURCE_PANEL)] = None,
    height_scale: Annotated[Optional[float], typer.Option(
        min=0, help="--maps: displacement of height-map value 1 in UV units, i.e. fractions of the tile "
                    "width (0.04 = a 4 % deep relief on a tile). Default: 0.03.",
        rich_help_panel=SOURCE_PANEL)] = None,
    resolution: Annotated[Optional[int], typer.Option(
        min=0, max=MAX_TEXTURE_RESOLUTION,
        help="Texels per tile side: --material generates at it, --maps resamples the maps to it. "
             "Default 0: the maps' own resolution (--maps), 256 (--material).",
        rich_help_panel=SOURCE_PANEL)] = None,
    normal_source: Annotated[Optional[str], typer.Option(
        help="Shading normals of the rendered BTF: 'height' (the height map's gradient) or 'map' (the "
             "set's normal map). Default: height.", rich_help_panel=SOURCE_PANEL)] = None,
    normal_convention: Annotated[Optional[str], typer.Option(
        help="--maps normal map green axis: 'opengl' (toward the image top), 'directx' (toward the bottom) "
             "or 'auto' (gl/dx in the file name, else OpenGL). Default: auto.",
        rich_help_panel=SOURCE_PANEL)] = None,
    allow_flat: Annotated[Optional[bool], typer.Option(
        "--allow-flat/--require-height", help="--maps: accept a folder without a height map (flat, no "
                                              "parallax). Default: require one.",
        rich_help_panel=SOURCE_PANEL)] = None,
    sampling: Annotated[Optional[str], typer.Option(
        help="Synthetic data: 'points' (every sample rendered at its own uv and random directions) or "
             "'slices' (a fixed grid of views x lights, each a slice-resolution² image). Default: points.",
        rich_help_panel=SOURCE_PANEL)] = None,
    uv_space: Annotated[Optional[str], typer.Option(
        help="Synthetic data: 'surface' (parallax removed, the renderer traces the height field) or "
             "'reference' (parallax in the data, as measured BTFs). Default: surface.",
        rich_help_panel=SOURCE_PANEL)] = None,
    source_seed: Annotated[Optional[int], typer.Option(
        help="Seed of a registry material's procedural content and of a slice source's direction set "
             "(not of the training). Default: 0.", rich_help_panel=SOURCE_PANEL)] = None,
    slice_resolution: Annotated[Optional[int], typer.Option(
        min=1, max=MAX_SLICE_RESOLUTION,
        help="Slice sampling: side of each rendered (light, view) image, pixels. Default: 64.",
        rich_help_panel=SOURCE_PANEL)] = None,
    views: Annotated[Optional[int], typer.Option(
        min=1, max=MAX_SLICE_DIRECTIONS, help="Slice sampling: number of view directions. Default: 12.",
        rich_help_panel=SOURCE_PANEL)] = None,
    lights: Annotated[Optional[int], typer.Option(
        min=1, max=MAX_SLICE_DIRECTIONS, help="Slice sampling: light directions per view. Default: 12.",
        rich_help_panel=SOURCE_PANEL)] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file (.json or .toml, any subset of fields).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory: config.json, checkpoints, history, loss.png.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(
        min=0, help="Wall-time budget of this invocation, minutes (default 10; 0: none). After a few timed "
                    "steps the run is rescaled to what fits, so warm-up, QAT and the learning-rate decay "
                    "all happen inside the budget.")] = None,
    export: Annotated[Optional[Path], typer.Option(
        help="Write the INT8 .nmat here at every validation, after that step's checkpoint (checked before "
             "training; a failed write is logged and training goes on; exit 1 if the last one failed).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out (its config.json).")] = False,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialization and sampling.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override any config field: section.field=value (e.g. optim.lr_mlp=1e-3), repeatable.")] = None,
    view: Annotated[bool, typer.Option(
        "--view", help="Open `neumat view EXPORT` beside the run (needs --export): it reloads the bundle at "
                       "every export.")] = False,
) -> None:
    """Train a triple-plane INT8 material on one BTF (QAT, held-out validation, atomic checkpoints).

    The resolved config is saved beside the checkpoints; --resume continues a killed run
    bit-identically; under torchrun each process trains its share of every global batch.

    Source options given here win over the config file (any other field: --set source.FIELD=VALUE).
    At the end the held-out figures of the exported INT8 bundle are computed exactly as
    `neumat eval` computes them, stored in its provenance ("metrics") and printed.

    Exit 2 for a bad option, config value or output path (checked before training); exit 1 when
    the data or a checkpoint cannot be read, a file cannot be written, the run diverges (loss or
    weights NaN/infinite: the last good checkpoint is kept) or the final export failed.
    """
    setup_logging()
    from ..data import DataError
    from ..fileio import OutputPathError
    from ..train import ConfigError, TrainConfig, apply_overrides, load_config
    from ..train.checkpoint import CheckpointError
    from ..train.distributed import shutdown_distributed
    from ..train.guards import TrainingDiverged, check_run_outputs
    from ..train.loop import train as run_training
    from ..train.sources import SourceError

    choice = source_choice(material, maps, btf)
    if view and export is None:
        raise typer.BadParameter("--view shows the exported bundle: give --export PATH too")
    overrides = [f"source.{k}={_json_value(v)}" for k, v in (choice or {}).items()]
    source_fields = {"height_scale": height_scale, "resolution": resolution, "normal_source": normal_source,
                     "normal_convention": normal_convention, "allow_flat": allow_flat, "sampling": sampling,
                     "uv_space": uv_space,
                     "seed": source_seed, "slice_resolution": slice_resolution, "n_views": views, "n_lights": lights}
    overrides += [f"source.{k}={_json_value(v)}" for k, v in source_fields.items() if v is not None]
    for key, value in (("out", out), ("steps", steps), ("max_minutes", max_minutes), ("export", export),
                       ("seed", seed)):
        if value is not None:
            overrides.append(f"{key}={_json_value(value)}")
    overrides += set_ or []
    try:
        base = TrainConfig()
        saved = Path(out or base.out) / "config.json"
        if config is not None:
            base = load_config(config, TrainConfig)
        elif resume and saved.is_file():
            base = load_config(saved, TrainConfig)
        cfg = apply_overrides(base, overrides)
        check_run_outputs(cfg)  # before a viewer starts or a source renders
        if view:
            from .view_cmd import spawn_viewer

            spawn_viewer(export)
        result = run_training(cfg, resume=resume)
    except (ConfigError, SourceError, OutputPathError) as e:
        raise typer.BadParameter(str(e)) from None
    except (CheckpointError, DataError, TrainingDiverged, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(1) from None
    finally:
        shutdown_distributed()
    h = result.heldout
    if h:
        log.info("done at step %d. Held-out (as `neumat eval` reports it; %d direction pairs, %d pixels): "
                 "INT8 relative L1 %.2f %%, PSNR %.2f dB | FP32 relative L1 %.2f %%, PSNR %.2f dB%s",
                 result.steps_done, h["directions"], h["pixels"], 100 * h["int8"]["rel_l1"], h["int8"]["psnr"],
                 100 * h["fp32"]["rel_l1"], h["fp32"]["psnr"],
                 f"; bundle {cfg.export}" if cfg.export and not result.export_error else "")
    if result.export_error:
        log.error("%s; the run's checkpoints are intact: `neumat export %s --out X.nmat` writes it",
                  result.export_error, cfg.out)
        raise typer.Exit(1)


def _json_value(value: object) -> str:
    import json

    return json.dumps(str(value) if isinstance(value, Path) else value)
