"""Scripted events: user input without a user, for ``neumat view --headless`` and the tests.

A script is a JSON list of events ``{"frame": N, "action": NAME, ...arguments}``; an event runs
at the start of frame N (0-based), before that frame renders, in list order. Actions:

==============  ==============================  ==============================================
action          arguments                       effect
==============  ==============================  ==============================================
``orbit``       ``d_azimuth``, ``d_elevation``  rotate the camera (degrees, default 0)
``pan``         ``dx``, ``dy``                  move the target (fractions of the view height)
``zoom``        ``factor``                      multiply the camera distance
``set``         any ``ViewerState`` field       e.g. ``{"hf": false}``, ``{"view": "uv"}``,
                                                dotted for parts: ``{"light.azimuth": 90}``,
                                                ``{"orbit.distance": 3}``, ``{"extra.shadows": true}``
``light``       ``index``, ``azimuth``,         set light ``index`` (0-based; ``index`` = count
                ``elevation``, ``intensity``,   adds one), or remove it with ``"remove": true``
                ``remove``
``open``        ``path``                        load another bundle and show it
``mesh``        ``mesh``                        shape name or mesh file
``resize``      ``width``, ``height``           resize the window (framebuffer pixels)
``screenshot``  ``path``                        save the whole window (UI included) as PNG
==============  ==============================  ==============================================

Example: ``[{"frame": 1, "action": "orbit", "d_azimuth": 30}, {"frame": 2, "action": "set", "hf": false}]``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..render.passes.compose import TONEMAPS
from .camera_control import LightControl
from .debug_views import DEBUG_VIEWS
from .state import MAX_LIGHTS, PRECISIONS

ACTIONS = {
    "orbit": ("d_azimuth", "d_elevation"),
    "pan": ("dx", "dy"),
    "zoom": ("factor",),
    "set": None,
    "light": ("index", "azimuth", "elevation", "intensity", "remove"),
    "open": ("path",),
    "mesh": ("mesh",),
    "resize": ("width", "height"),
    "screenshot": ("path",),
}
"""Action name → allowed argument names (None: ``ViewerState`` fields)."""


class ScriptError(ValueError):
    """A malformed script; the message names the event and what is wrong."""


@dataclass(frozen=True)
class ScriptedEvent:
    """One scripted input."""

    frame: int
    """Frame index (0-based) at whose start the event runs."""
    action: str
    """One of :data:`ACTIONS`."""
    args: dict
    """The action's arguments."""


def parse_script(source: str | Path | list) -> list[ScriptedEvent]:
    """Events from a JSON text, a JSON file path or an already-parsed list, sorted by frame
    (stable: same-frame events keep their order).

    Raises:
        ScriptError: not a list of objects, unknown action or argument, bad frame number.
    """
    if isinstance(source, list):
        raw = source
    else:
        text = str(source)
        path = Path(text)
        if not text.lstrip().startswith("[") and path.is_file():
            text = path.read_text()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScriptError(f"script is neither a JSON list nor a JSON file: {e}") from None
    if not isinstance(raw, list):
        raise ScriptError("a script is a JSON list of events")
    events = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "action" not in item:
            raise ScriptError(f"event {i}: expected an object with an 'action', got {item!r}")
        args = {k: v for k, v in item.items() if k not in ("frame", "action")}
        action, frame = item["action"], item.get("frame", 0)
        if action not in ACTIONS:
            raise ScriptError(f"event {i}: unknown action {action!r}; valid: {sorted(ACTIONS)}")
        if not isinstance(frame, int) or frame < 0:
            raise ScriptError(f"event {i}: frame must be an integer >= 0, got {frame!r}")
        allowed = ACTIONS[action]
        if allowed is not None and set(args) - set(allowed):
            raise ScriptError(f"event {i}: {action} takes {list(allowed)}, got {sorted(args)}")
        events.append(ScriptedEvent(frame, action, args))
    return sorted(events, key=lambda e: e.frame)


def set_state_field(state, name: str, value) -> None:
    """``state.<name> = value`` for a (possibly dotted) ViewerState field, validated.

    Raises:
        ScriptError: unknown field, or a value the field does not take.
    """
    *parents, leaf = name.split(".")
    target = state
    for part in parents:
        target = getattr(target, part, None)
        if target is None:
            raise ScriptError(f"unknown setting {name!r}")
    if isinstance(target, dict):
        if leaf not in target:
            raise ScriptError(f"unknown option {name!r}; valid: {sorted(target)}")
        target[leaf] = bool(value)
        return
    fields = {f.name: f for f in dataclasses.fields(target)}
    if leaf not in fields:
        raise ScriptError(f"unknown setting {name!r}; valid: {sorted(fields)}")
    if leaf == "view" and value not in DEBUG_VIEWS:
        raise ScriptError(f"view must be one of {list(DEBUG_VIEWS)}, got {value!r}")
    if leaf == "tonemap" and value not in TONEMAPS:
        raise ScriptError(f"tonemap must be one of {sorted(TONEMAPS)}, got {value!r}")
    if leaf == "precision" and value not in PRECISIONS:
        raise ScriptError(f"precision must be one of {list(PRECISIONS)}, got {value!r}")
    current = getattr(target, leaf)
    if isinstance(current, bool):
        value = bool(value)
    elif isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        raise ScriptError(f"{name} takes a number, got {value!r}")
    elif isinstance(current, float):
        value = float(value)
    elif isinstance(current, tuple):
        value = tuple(float(v) for v in value)
    setattr(target, leaf, value)


def set_light(state, args: dict) -> None:
    """The ``light`` action on ``state.lights`` (see the module docstring).

    Raises:
        ScriptError: index beyond the list, more lights than the Renderer shades, or removing
            the last light.
    """
    lights, index = state.lights, int(args.get("index", 0))
    if not 0 <= index <= len(lights):
        raise ScriptError(f"light index {index} out of range 0..{len(lights)}")
    if args.get("remove"):
        if len(lights) == 1 or index == len(lights):
            raise ScriptError(f"cannot remove light {index} of {len(lights)}")
        lights.pop(index)
        return
    if index == len(lights):
        if len(lights) >= MAX_LIGHTS:
            raise ScriptError(f"the renderer shades at most {MAX_LIGHTS} lights")
        lights.append(LightControl())
    for name in ("azimuth", "elevation", "intensity"):
        if name in args:
            setattr(lights[index], name, float(args[name]))


def apply_event(app, event: ScriptedEvent) -> None:
    """Run ``event`` on ``app`` (an :class:`~neumat.viewer.app.App`)."""
    a, orbit = event.args, app.state.orbit
    if event.action == "orbit":
        orbit.orbit(float(a.get("d_azimuth", 0.0)), float(a.get("d_elevation", 0.0)))
    elif event.action == "pan":
        orbit.pan(float(a.get("dx", 0.0)), float(a.get("dy", 0.0)))
    elif event.action == "zoom":
        orbit.zoom(float(a.get("factor", 1.0)))
    elif event.action == "set":
        for name, value in a.items():
            set_state_field(app.state, name, value)
    elif event.action == "light":
        set_light(app.state, a)
    elif event.action == "open":
        app.open_material(Path(a["path"]))
    elif event.action == "mesh":
        app.set_mesh(str(a["mesh"]))
    elif event.action == "resize":
        app.resize(int(a["width"]), int(a["height"]))
    elif event.action == "screenshot":
        app.request_screenshot(Path(a["path"]))
