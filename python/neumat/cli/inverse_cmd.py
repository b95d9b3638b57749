"""``neumat inverse``: capture -> PBR maps with MVInverse (seed 002), one command per step.

* ``neumat inverse FRAMES_OR_VIDEO --out MAPS_DIR`` (the ``run`` command, the default) —
  predictions of every frame registered to the texture plane and fused into the maps
  ``neumat train --maps`` reads (:mod:`neumat.inverse.capture`);
* ``render-data`` — multi-view Mitsuba renders of materials with exact intrinsic maps
  (:mod:`neumat.inverse.dataset`);
* ``train`` — MVInverse on such data (:mod:`neumat.inverse.train`);
* ``eval`` — albedo / metallic / roughness / normal / cross-view consistency figures on held-out
  rendered views beside trivial baselines (:mod:`neumat.inverse.evaluate`).

Heavy dependencies (torch, timm, Mitsuba, OpenCV) are imported inside the commands.

Examples::

    neumat inverse render-data data/inverse --scenes 20 --size 112
    neumat inverse train data/inverse --out runs/inverse --model tiny --minutes 10
    neumat inverse eval data/inverse_test --weights runs/inverse --json eval.json
    neumat inverse capture.mp4 --out maps/capture --weights runs/inverse
    neumat inverse out/videos/leather_rot000/video --out maps/leather      # posed: known poses
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .train_cmd import setup_logging

log = logging.getLogger(__name__)


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a command name, starts the ``run`` command
    (``neumat inverse FRAMES --out DIR`` = ``neumat inverse run FRAMES --out DIR``)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, no_args_is_help=True,
                  help="Capture -> PBR maps with MVInverse: run on frames or a video (default command), "
                       "render training data, train, evaluate.")


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def render_data(
    out: Annotated[Path, typer.Argument(help="Data set folder: <out>/<scene>/views.npz, poses.json, scene.json.")],
    material: Annotated[str, typer.Option(
        help="Comma list of registry materials (procedural and photo-based); 'all' for every one.")] = "all",
    maps: Annotated[Optional[list[Path]], typer.Option(help="PBR map folder (repeatable).")] = None,
    scenes: Annotated[int, typer.Option(min=1, help="Scenes per material.")] = 4,
    views: Annotated[int, typer.Option(min=1, help="Cameras per scene.")] = 6,
    size: Annotated[int, typer.Option(min=14, help="Image side, pixels (a multiple of 14).")] = 112,
    spp: Annotated[int, typer.Option(min=1, help="Mitsuba samples per pixel.")] = 16,
    resolution: Annotated[int, typer.Option(min=8, help="Texels per side of the materials' maps.")] = 64,
    metal_probability: Annotated[float, typer.Option(min=0, max=1, help="Chance of a partly metal scene.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of materials, rotations, cameras and lights.")] = 0,
    variant: Annotated[str, typer.Option(help="Mitsuba variant: auto, scalar_rgb, llvm_ad_rgb.")] = "auto",
) -> None:
    """Render multi-view scenes of materials on a plane (Mitsuba 3 images and diffuse shading; exact
    albedo, metallic, roughness, camera-space normal maps from the project's reference geometry).
    Finished scenes are skipped; a killed run leaves no partial scene."""
    from ..data import DataError, MATERIALS, PbrLoadError
    from ..fileio import OutputPathError, check_output_dir
    from ..inverse.dataset import DataSettings, render_data as render, scene_materials

    setup_logging()
    try:
        check_output_dir(out, "OUT")
        names = sorted(MATERIALS) if material == "all" else _split(material)
        settings = DataSettings(size=size, views=views, spp=spp, resolution=resolution,
                                metal_probability=metal_probability, variant=variant)
        factories = scene_materials(names, maps or [], resolution)
    except (DataError, PbrLoadError, OutputPathError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("render", total=len(factories) * scenes)
        folders = render(out, factories, scenes, settings, seed, on_scene=lambda _: bar.advance(task))
    log.info("%d scenes of %d views (%dx%d px) in %s", len(folders), views, size, size, out)


app.command("render-data")(render_data)
