"""``neumat view [MATERIAL.nmat ...]``: the interactive viewer (:mod:`neumat.viewer`).

Interactive: a window with the control panel and the rendered viewport; bundles reload when
their file changes. Headless (``--headless``): the same window and frame loop, hidden, for
``--frames`` frames with a ``--script`` of events, then ``--screenshot``; without a DISPLAY a
private Xvfb is started. Exit code 0 on success, 1 when the window cannot be opened, the
script is malformed or (headless) the material could not be shown.

Examples::

    neumat view assets/materials/leather.nmat --mesh assets/meshes/draped_cloth.obj
    neumat view a.nmat --headless --frames 3 --screenshot shot.png --size 800x600 \\
        --script '[{"frame": 1, "action": "orbit", "d_azimuth": 30}, {"frame": 1, "action": "set", "hf": false}]'
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from ..render.passes.infer_native import AUTO, INFER_BACKEND_HELP, INFER_BACKEND_NAMES
from .options import DeviceOption, check_device_choice, open_device, parse_size

SOFTWARE_RENDER_SCALE = 0.35
"""Interactive default render scale on CPU devices (lavapipe): the 1100×700 window's viewport
(770×700) renders at 270×245, ~10 fps with every technique on (measured on 2 idle cores,
leather on the draped cloth: 128×96 33 fps, 192×144 20 fps, 256×192 13 fps, 320×240 10 fps)."""


def view(
    materials: Annotated[list[Path] | None, typer.Argument(
        help="Bundles to load and watch (default: the shipped leather.nmat). A file that does not exist yet "
             "is shown as soon as it appears.")] = None,
    mesh: Annotated[str, typer.Option("--mesh", help="Shape (plane, sphere, cube, cloth) or mesh file.")] = "sphere",
    size: Annotated[str, typer.Option("--size", help="Window size WxH, pixels (the panel takes 330 px).")] = "1100x700",
    render_scale: Annotated[float | None, typer.Option(
        "--render-scale", min=0.05, max=1.0,
        help="Render resolution / viewport resolution (default 1; 0.35 on software devices such as lavapipe "
             "when interactive, which keeps ~10 fps there).")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="Hidden window, no user input: run --frames and exit.")] = False,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Headless: frames to run.")] = 3,
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="Headless: PNG of the window after the last frame.")] = None,
    script: Annotated[str | None, typer.Option(
        "--script", help="Scripted events: JSON list or JSON file (see neumat.viewer.script).")] = None,
    reload_interval: Annotated[float, typer.Option("--reload-interval", min=0.0, help="Seconds between bundle-file polls.")] = 0.5,
    infer_backend: Annotated[str, typer.Option(
        "--infer-backend", help=f"{', '.join(INFER_BACKEND_NAMES)} (also in the panel). {INFER_BACKEND_HELP}")] = AUTO,
    device: DeviceOption = None,
) -> None:
    """Interactive viewer: orbit/pan/zoom, light, techniques, debug views, frame-time graph,
    screenshots (F12) and live reload of the bundle files."""
    from ..device import DeviceError, describe
    from ..assets import DEFAULT_MATERIAL
    from ..viewer.app import App, ViewerError
    from ..viewer.script import ScriptedEvent, ScriptError, parse_script
    from ..viewer.xvfb import XvfbDisplay, XvfbError

    width, height = parse_size(size)
    check_device_choice(device)
    if infer_backend not in INFER_BACKEND_NAMES:
        raise typer.BadParameter(f"--infer-backend must be one of {list(INFER_BACKEND_NAMES)}, got {infer_backend!r}")
    paths = list(materials or [DEFAULT_MATERIAL])
    try:
        events = parse_script(script) if script else []
    except ScriptError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    try:
        import glfw  # noqa: F401
        import imgui_bundle  # noqa: F401
        import OpenGL  # noqa: F401
    except ImportError as e:
        typer.echo(f"error: the viewer needs its extra: pip install -e '.[view]' ({e})", err=True)
        raise typer.Exit(1) from None
    with contextlib.ExitStack() as stack:
        try:
            if headless and not os.environ.get("DISPLAY"):
                stack.enter_context(XvfbDisplay())
            gpu = open_device(device)
            app = stack.enter_context(App(paths, mesh=mesh, window_size=(width, height), visible=not headless,
                                          device=gpu, reload_interval_s=reload_interval))
        except (ViewerError, XvfbError, DeviceError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        if app.mesh_error:
            typer.echo(f"error: {app.mesh_error}", err=True)
            raise typer.Exit(1)
        software = describe(gpu).software
        app.state.infer_backend = infer_backend
        app.state.render_scale = render_scale if render_scale is not None else (SOFTWARE_RENDER_SCALE if software and not headless else 1.0)
        try:
            if not headless:
                with contextlib.suppress(KeyboardInterrupt):
                    app.run(script=events)
                return
            if screenshot is not None:
                events.append(ScriptedEvent(frames - 1, "screenshot", {"path": str(screenshot)}))
            app.run(frames=frames, script=events)
        except ScriptError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        problems = [e for e in (app.watcher.error if app.watcher else "no material", app.render_error) if e]
        w, h = app.render_size()
        typer.echo(f"{app.frame} frames, render {w}x{h}: {app.times.mean('total'):.1f} ms on {app.device_name}")
        for path in app.saved_screenshots:
            typer.echo(f"screenshot: {path}")
        if problems:
            typer.echo("error: " + "; ".join(problems), err=True)
            raise typer.Exit(1)


def spawn_viewer(bundle: Path) -> subprocess.Popen | None:
    """Start ``neumat view BUNDLE`` as a separate process (for ``neumat train --view``) on rank 0
    only (``RANK`` unset or 0 under torchrun); it reloads the bundle whenever training exports it
    and keeps running after training ends until its window is closed (it shares the training's
    stdout/stderr, so a pipe reading them stays open until then)."""
    import sys

    if os.environ.get("RANK", "0") != "0":
        return None
    return subprocess.Popen([sys.executable, "-m", "neumat", "view", str(bundle)], stdin=subprocess.DEVNULL,
                            start_new_session=True)
