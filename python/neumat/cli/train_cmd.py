"""``neumat train``: train a triple-plane INT8 material (multi-GPU with torchrun).

Examples::

    neumat train --material leather --out runs/leather --export leather.nmat
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


def train(
    material: Annotated[Optional[str], typer.Option(help="Synthetic registry material to train.")] = None,
    maps: Annotated[Optional[Path], typer.Option(help="Folder of PBR maps to render a synthetic BTF from.")] = None,
    btf: Annotated[Optional[Path], typer.Option(help="Measured UBO2014 BTF file.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file (.json or .toml, any subset of fields).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory: config.json, checkpoints, history, loss.png.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(min=0, help="Wall-time budget of this invocation.")] = None,
    export: Annotated[Optional[Path], typer.Option(help="Write the INT8 .nmat here at every validation.")] = None,
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
    """
    setup_logging()
    from ..data import DataError
    from ..train import ConfigError, TrainConfig, apply_overrides, load_config
    from ..train.checkpoint import CheckpointError
    from ..train.distributed import shutdown_distributed
    from ..train.loop import train as run_training
    from ..train.sources import SourceError

    choice = source_choice(material, maps, btf)
    if view and export is None:
        raise typer.BadParameter("--view shows the exported bundle: give --export PATH too")
    overrides = [f"source.{k}={_json_value(v)}" for k, v in (choice or {}).items()]
    for key, value in (("out", out), ("steps", steps), ("max_minutes", max_minutes), ("export", export),
                       ("seed", seed)):
        if value is not None:
            overrides.append(f"{key}={_json_value(value)}")
    overrides += set_ or []
    try:
        base = TrainConfig()
        saved = Path(out or base.out) / "config.json"
        if config is not None:
            base = load_config(config)
        elif resume and saved.is_file():
            base = load_config(saved)
        cfg = apply_overrides(base, overrides)
        if view:
            from .view_cmd import spawn_viewer

            spawn_viewer(export)
        result = run_training(cfg, resume=resume)
    except (ConfigError, SourceError) as e:
        raise typer.BadParameter(str(e)) from None
    except (CheckpointError, DataError) as e:
        log.error("%s", e)
        raise typer.Exit(1) from None
    finally:
        shutdown_distributed()
    m = result.metrics
    if m:
        log.info("done at step %d: held-out PSNR fp32 %.2f dB, int8 %.2f dB (L1 %.5f / %.5f)%s", result.steps_done,
                 m["fp32_psnr"], m["int8_psnr"], m["fp32_l1"], m["int8_l1"],
                 f"; bundle {cfg.export}" if cfg.export else "")


def _json_value(value: object) -> str:
    import json

    return json.dumps(str(value) if isinstance(value, Path) else value)
