"""``neumat render MATERIAL.nmat``: render a bundle on a mesh to a PNG and print frame times.

``neumat render A.nmat B.nmat ... --side-by-side``: one copy of the mesh per bundle (triple plane
or NeuMIP), left to right across the view, one frame merged by depth
(:class:`neumat.render.multi.MultiRenderer`).

Times are the median over ``--frames`` frames after ``--warmup`` frames (device timestamps per
pass, host wall time for the total). Exit code 0 on success (with a warning on stderr when the
material covers no pixel), 2 for a bad option (``--size`` over
:data:`~neumat.render.camera.MAX_IMAGE_SIDE` per side, a ``--camera`` distance outside
(0, :data:`~neumat.render.camera.MAX_CAMERA_DISTANCE`], an ``--exposure`` beyond
±:data:`~neumat.render.passes.compose.MAX_EXPOSURE_STOPS`, an ``--out`` without an image extension of
:data:`IMAGE_SUFFIXES` or in an unwritable place, ...), 1 for a bad bundle or mesh (the message says which).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..render.camera import MAX_CAMERA_DISTANCE, MAX_IMAGE_SIDE
from ..render.passes.compose import MAX_EXPOSURE_STOPS
from ..render.passes.infer_native import INFER_BACKEND_HELP, INFER_BACKEND_NAMES
from ..render.passes.shadow import DEFAULT_MODE as DEFAULT_SHADOW_MODE, MODES as SHADOW_MODES
from .options import DeviceOption, check_device_choice, open_device, parse_floats, parse_size

AOV_CHOICES = ("uv", "depth", "mask", "height")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""Extensions of ``--out`` that imageio writes in their own format (it writes any other
extension, ``.exr`` included, as TIFF)."""


def _exposure(stops: float) -> float:
    if not (math.isfinite(stops) and abs(stops) <= MAX_EXPOSURE_STOPS):
        raise typer.BadParameter(f"--exposure must be a finite number of stops in [-{MAX_EXPOSURE_STOPS:g}, "
                                 f"{MAX_EXPOSURE_STOPS:g}], got {stops!r}")
    return stops


def _camera(text: str) -> tuple[float, float, float]:
    """``--camera az,el,dist``: degrees, degrees, scene units in (0, MAX_CAMERA_DISTANCE]."""
    az, el, dist = parse_floats(text, "--camera", (3,))
    if not 0.0 < dist <= MAX_CAMERA_DISTANCE:
        raise typer.BadParameter(f"--camera distance must be > 0 and at most {MAX_CAMERA_DISTANCE:g} scene units, "
                                 f"got {text!r}")
    return az, el, dist


def _load_bundle(path: Path):
    """The bundle at ``path``; exit 1 with the loader's message."""
    from ..bundle import BundleError, load_bundle

    try:
        return load_bundle(path)
    except (BundleError, OSError) as e:
        typer.echo(f"error: cannot load bundle {str(path)!r}: {e}", err=True)
        raise typer.Exit(1) from None


def _load_mesh(mesh: Path | None, shape: str):
    """The base mesh: the ``--mesh`` file, else the built-in ``--shape``; exit 1 on a bad file."""
    from ..render.renderer import resolve_mesh

    try:
        return resolve_mesh(str(mesh) if mesh is not None else shape)
    except (OSError, ValueError) as e:
        typer.echo(f"error: cannot load mesh: {e}", err=True)
        raise typer.Exit(1) from None


def _view(base, count: int, camera: str | None, width: int, height: int):
    """The frame's camera, its ``(azimuth, elevation, distance)`` and the spacing of ``count``
    objects side by side (scene units): ``--camera`` when given, else the framing of the row."""
    from ..render.camera import Camera, framing

    lo, hi = base.positions.min(0), base.positions.max(0)
    spacing = 1.15 * float((hi - lo).max())  # between neighbouring objects' centres (side by side)
    centre, dist = framing(lo, hi, width, height, count=count, spacing=spacing)
    az, el = -60.0, 35.0
    if camera is not None:
        az, el, dist = _camera(camera)
    try:
        cam = Camera.orbit(centre, az, el, dist, width=width, height=height)
    except ValueError as e:  # e.g. looking straight down the up axis, or a mesh too large to frame
        if camera is not None:
            raise typer.BadParameter(f"--camera {camera!r}: {e}") from None
        typer.echo(f"error: cannot frame the mesh: {e}", err=True)
        raise typer.Exit(1) from None
    return cam, (az, el, dist), spacing


def _write_images(out: Path, result, aovs: tuple[str, ...]) -> None:
    """The frame's sRGB image to ``out`` and each AOV's picture to ``OUT_<aov>.png``."""
    import imageio.v3 as iio

    from ..render.aov import aov_image

    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, result.srgb)
    for name in aovs:
        iio.imwrite(out.with_name(f"{out.stem}_{name}.png"), aov_image(name, result.aovs[name], result.aovs["mask"]))


def render(
    material: Annotated[Path, typer.Argument(help="A .nmat bundle (triple plane or NeuMIP).")],
    others: Annotated[list[Path] | None, typer.Argument(help="More bundles, with --side-by-side.")] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Render MATERIAL and OTHERS side by side in one frame.")] = False,
    out: Annotated[Path, typer.Option("--out", help=f"Output image (sRGB, tone-mapped, 8-bit): {', '.join(IMAGE_SUFFIXES)}.")] = Path("render.png"),
    mesh: Annotated[Path | None, typer.Option("--mesh", help="Mesh file (OBJ/PLY/..., loaded with trimesh).")] = None,
    shape: Annotated[str, typer.Option("--shape", help="Built-in shape when no --mesh: plane, sphere, cube, cloth.")] = "sphere",
    size: Annotated[str, typer.Option("--size", help=f"Image size WxH, pixels (at most {MAX_IMAGE_SIDE} per side).")] = "512x512",
    camera: Annotated[str | None, typer.Option("--camera", help=f"az,el,dist: orbit camera around the mesh centre (degrees, scene units; 0 < dist <= {MAX_CAMERA_DISTANCE:g}).")] = None,
    light: Annotated[list[str] | None, typer.Option("--light", help="az,el[,intensity]: directional light (degrees; irradiance, linear); repeat for up to 4 lights (default 30,50,3).")] = None,
    no_shadows: Annotated[bool, typer.Option("--no-shadows", help="Do not trace the relief's self-shadowing toward the lights.")] = False,
    shadow_mode: Annotated[str, typer.Option("--shadow-mode", help=f"How shadow rays cross the relief: {', '.join(SHADOW_MODES)} (prisms: traced through the shell prisms, exact on any mesh; march: the hit face's osculating circle, cheaper).")] = DEFAULT_SHADOW_MODE,
    no_hf: Annotated[bool, typer.Option("--no-hf", help="Do not trace the height field (plain base mesh).")] = False,
    no_synthesis: Annotated[bool, typer.Option("--no-synthesis", help="Tile the U plane instead of ACF-guided synthesis.")] = False,
    fp32: Annotated[bool, typer.Option("--fp32", help="FP32 MLP on dequantized weights instead of INT8.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 MLP (float16 weights and activations) instead of INT8.")] = False,
    infer_backend: Annotated[str, typer.Option("--infer-backend", help=f"{', '.join(INFER_BACKEND_NAMES)}. {INFER_BACKEND_HELP}")] = "auto",
    device: DeviceOption = None,
    aov: Annotated[list[str] | None, typer.Option("--aov", help="Also write OUT_<aov>.png: uv, depth, mask or height (repeatable).")] = None,
    exposure: Annotated[float, typer.Option("--exposure", help=f"Exposure, stops (at most {MAX_EXPOSURE_STOPS:g} either way).")] = 0.0,
    tonemap: Annotated[str, typer.Option("--tonemap", help="aces, reinhard or clamp.")] = "aces",
    frames: Annotated[int, typer.Option("--frames", min=1, help="Timed frames (median reported).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed frames first (kernel compilation).")] = 1,
) -> None:
    """Render MATERIAL on a mesh with the slangpy pass graph and print per-pass frame times."""
    from ..fileio import OutputPathError, check_output_path

    try:  # before any bundle, mesh or device work
        check_output_path(out, IMAGE_SUFFIXES, "--out")
    except OutputPathError as e:
        raise typer.BadParameter(str(e)) from None
    from ..device import DeviceError
    from ..render.lights import DirectionalLight, direction_from_angles
    from ..render.multi import MultiRenderer
    from ..render.renderer import SHAPES, Renderer

    width, height = parse_size(size)
    check_device_choice(device)
    exposure = _exposure(exposure)
    light_values = [parse_floats(x, "--light", (2, 3)) for x in (light or ["30,50,3"])]
    aovs = tuple(aov or ())
    bad = [a for a in aovs if a not in AOV_CHOICES]
    if bad:
        raise typer.BadParameter(f"--aov must be one of {AOV_CHOICES}, got {bad}")
    if infer_backend not in INFER_BACKEND_NAMES:
        raise typer.BadParameter(f"--infer-backend must be one of {list(INFER_BACKEND_NAMES)}, got {infer_backend!r}")
    if shadow_mode not in SHADOW_MODES:
        raise typer.BadParameter(f"--shadow-mode must be one of {list(SHADOW_MODES)}, got {shadow_mode!r}")
    if mesh is None and shape not in SHAPES:
        raise typer.BadParameter(f"--shape must be one of {sorted(SHAPES)}, got {shape!r}")
    paths = [material, *(others or [])]
    if len(paths) > 1 and not side_by_side:
        raise typer.BadParameter("several materials given: add --side-by-side to render them in one frame")
    if fp16 and (fp32 or side_by_side):
        raise typer.BadParameter("--fp16 excludes --fp32 and --side-by-side")
    if side_by_side and aovs:
        raise typer.BadParameter("--aov is not available with --side-by-side")
    bundles = [_load_bundle(path) for path in paths]
    base = _load_mesh(mesh, shape)
    cam, (az, el, dist), spacing = _view(base, len(bundles), camera, width, height)
    lights = [DirectionalLight(direction_from_angles(lv[0], lv[1]), ((lv[2] if len(lv) == 3 else 3.0),) * 3)
              for lv in light_values]
    gpu = open_device(device)
    try:
        kwargs = dict(hf=not no_hf, synthesis=not no_synthesis, fp32=fp32, exposure=exposure, tonemap=tonemap,
                      shadows=not no_shadows, shadow_mode=shadow_mode, infer_backend=infer_backend)
        if side_by_side:
            right = np.array([-math.sin(math.radians(az)), math.cos(math.radians(az)), 0.0])  # camera image x
            placed = [(b, base, right * spacing * (k - (len(bundles) - 1) / 2)) for k, b in enumerate(bundles)]
            renderer = MultiRenderer(placed, (width, height), device=gpu)
        else:
            renderer = Renderer(bundles[0], base, (width, height), device=gpu)
            kwargs["aovs"] = aovs + ("mask",)
            kwargs["precision"] = "fp16" if fp16 else None
        for _ in range(warmup):
            renderer.render(cam, lights, **kwargs)
        runs = [renderer.render(cam, lights, **kwargs) for _ in range(frames)]
    except (DeviceError, ValueError) as e:  # ValueError: InferBackendError too
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    result = runs[-1]
    if not result.aovs["mask"].any():
        typer.echo(f"warning: the material covers no pixel of the {width}x{height} image (camera az,el,dist = "
                   f"{az:g},{el:g},{dist:g}); {out} shows only the background", err=True)
    _write_images(out, result, aovs)
    ran = infer_backend if side_by_side else renderer.infer_pass().resolved_backend()
    typer.echo(f"wrote {out} ({width}x{height}, {'FP16' if fp16 else 'FP32' if fp32 else 'INT8'}, hf {'off' if no_hf else 'on'}, "
               f"synthesis {'off' if no_synthesis else 'on'}, infer {ran})")
    typer.echo(f"frame times, median of {frames} after {warmup} warm-up (ms):")
    for key in result.timings_ms:
        typer.echo(f"  {key:<14} {statistics.median(r.timings_ms[key] for r in runs):9.2f}")
