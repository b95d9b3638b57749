"""The viewer's ImGui control panel (left side of the window): material, mesh, camera, light,
techniques, debug view, render scale, frame-time graph (ImPlot) and screenshot.

Widgets edit :attr:`App.state <neumat.viewer.app.App.state>` in place; the app re-renders when
the state changes. Load errors (bundle, mesh, render) are shown in red.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from imgui_bundle import imgui, implot

from ..assets import DEMO_MESH
from ..material import kind_of
from ..render.passes.compose import TONEMAPS
from ..render.passes.infer_native import INFER_BACKEND_NAMES
from ..render.renderer import SHAPES
from .camera_control import LightControl
from .debug_views import DEBUG_VIEWS, KIND_VIEWS
from .state import MAX_LIGHTS, PRECISIONS

RED = imgui.ImVec4(1.0, 0.35, 0.3, 1.0)
GREY = imgui.ImVec4(0.65, 0.65, 0.7, 1.0)
DEMO_MESH_LABEL = "draped cloth (demo)"


@dataclass
class PanelInputs:
    """Text the user is typing in the panel's path fields."""

    material_path: str = ""
    mesh_path: str = ""


def _error(text: str | None) -> None:
    if text:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(RED, text)
        imgui.pop_text_wrap_pos()


def _slider(obj, attr: str, label: str, lo: float, hi: float, fmt: str = "%.2f", flags: int = 0) -> None:
    """A float slider editing ``obj.<attr>``; the value is written only when the user moves it
    (ImGui works in float32, and rewriting every frame would round scripted/initial values)."""
    changed, value = imgui.slider_float(label, getattr(obj, attr), lo, hi, fmt, flags)
    if changed:
        setattr(obj, attr, float(value))


def _material_section(app) -> None:
    names = [f"{i}: {w.name}" for i, w in enumerate(app.watchers)]
    if names:
        changed, index = imgui.combo("material", app.state.material, names)
        if changed:
            app.state.material = index
        w = app.watcher
        imgui.text_colored(GREY, f"{w.path}  (reloads: {w.generation - 1})")
        _error(w.error)
    else:
        imgui.text_colored(RED, "no material: open a .nmat (path below or drop the file)")
    _, app.inputs.material_path = imgui.input_text("##material_path", app.inputs.material_path)
    imgui.same_line()
    if imgui.button("open") and app.inputs.material_path.strip():
        app.open_material(app.inputs.material_path.strip())
    _error(app.open_error)


def _mesh_section(app) -> None:

    choices = {name: name for name in SHAPES}
    if DEMO_MESH.is_file():
        choices[DEMO_MESH_LABEL] = str(DEMO_MESH)
    if app.state.mesh not in choices.values():
        choices[Path(app.state.mesh).name] = app.state.mesh
    labels, values = list(choices), list(choices.values())
    changed, index = imgui.combo("mesh", values.index(app.state.mesh), labels)
    if changed:
        app.set_mesh(values[index])
    _, app.inputs.mesh_path = imgui.input_text("##mesh_path", app.inputs.mesh_path)
    imgui.same_line()
    if imgui.button("load mesh") and app.inputs.mesh_path.strip():
        app.set_mesh(app.inputs.mesh_path.strip())
    _error(app.mesh_error)


def _camera_light_section(app) -> None:
    o, lights = app.state.orbit, app.state.lights
    _slider(o, "azimuth", "cam azimuth", -180.0, 180.0, "%.1f°")
    _slider(o, "elevation", "cam elevation", -89.0, 89.0, "%.1f°")
    _slider(o, "distance", "cam distance", 0.1, 50.0, "%.2f", imgui.SliderFlags_.logarithmic)
    if imgui.button("reset camera (R)"):
        app.set_mesh(app.state.mesh)
    imgui.text_colored(GREY, "drag: orbit, shift+drag: light, right drag: pan, wheel: zoom")
    for i, light in enumerate(list(lights)):
        imgui.push_id(f"light{i}")
        imgui.separator_text(f"light {i + 1}")
        _slider(light, "azimuth", "azimuth", -180.0, 180.0, "%.1f°")
        _slider(light, "elevation", "elevation", -89.0, 89.0, "%.1f°")
        _slider(light, "intensity", "intensity", 0.0, 20.0, "%.2f")
        if i > 0 and imgui.button("remove light"):
            lights.pop(i)
        imgui.pop_id()
    if len(lights) < MAX_LIGHTS and imgui.button("add light"):
        lights.append(LightControl(azimuth=lights[-1].azimuth + 120.0))


def _technique_section(app) -> None:
    s = app.state
    _, s.hf = imgui.checkbox("height-field tracing", s.hf)
    _, s.synthesis = imgui.checkbox("synthesis", s.synthesis)
    changed, index = imgui.combo("MLP", PRECISIONS.index(s.precision), list(PRECISIONS))
    if changed:
        s.precision = PRECISIONS[index]
    changed, index = imgui.combo("infer backend", INFER_BACKEND_NAMES.index(s.infer_backend), list(INFER_BACKEND_NAMES))
    if changed:
        s.infer_backend = INFER_BACKEND_NAMES[index]
    for name in list(s.extra):
        _, s.extra[name] = imgui.checkbox(name, s.extra[name])
    _slider(s, "exposure", "exposure", -6.0, 6.0, "%.2f stops")
    tonemaps = list(TONEMAPS)
    changed, index = imgui.combo("tone map", tonemaps.index(s.tonemap), tonemaps)
    if changed:
        s.tonemap = tonemaps[index]
    bundle = app.watcher.bundle if app.watcher is not None else None
    own = kind_of(bundle).extra_aovs if bundle is not None else ()
    views = [v for v in DEBUG_VIEWS if v in own or v not in KIND_VIEWS]
    changed, index = imgui.combo("view", views.index(s.view) if s.view in views else 0, views)
    if changed:
        s.view = views[index]
    if s.view == "features" and app.feature_groups:
        _, s.feature_group = imgui.slider_int("channels 3k..3k+2", s.feature_group, 0, app.feature_groups - 1)
    if s.view == "int8_fp32_diff":
        _slider(s, "diff_gain", "|diff| gain", 1.0, 256.0, "%.0f", imgui.SliderFlags_.logarithmic)


def _performance_section(app) -> None:
    s = app.state
    _slider(s, "render_scale", "render scale", 0.1, 1.0, "%.2f")
    _, s.continuous = imgui.checkbox("render every frame", s.continuous)
    w, h = app.render_size()
    total = app.times.mean("total")
    imgui.text(f"render {w}x{h}: {total:.1f} ms" if np.isfinite(total) else f"render {w}x{h}")
    imgui.text(f"UI frame {app.ui_frame_ms:.1f} ms")
    imgui.push_text_wrap_pos(0.0)
    imgui.text_colored(GREY, app.device_name)
    imgui.pop_text_wrap_pos()
    _error(app.render_error)
    if app.times.frames and implot.begin_plot("frame times (ms)", imgui.ImVec2(-1, 170)):
        implot.setup_axes("rendered frame", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        implot.setup_legend(implot.Location_.north_east)
        for key in app.times.pass_names():
            xs, ys = app.times.series(key)
            implot.plot_line(key, xs, ys)
        implot.end_plot()


def draw_panel(app) -> None:
    """Submit the control panel for this frame (between ``imgui.new_frame`` and ``render``)."""
    io = imgui.get_io()
    scale = io.display_framebuffer_scale.x or 1.0
    imgui.set_next_window_pos(imgui.ImVec2(0, 0))
    imgui.set_next_window_size(imgui.ImVec2(app.panel_width / scale, io.display_size.y))
    flags = imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_collapse
    imgui.begin("neumat view", None, flags)
    imgui.push_item_width(-110)
    sections = (("Material", _material_section, True), ("Mesh", _mesh_section, True),
                ("Camera & lights", _camera_light_section, False), ("Techniques & view", _technique_section, True),
                ("Performance", _performance_section, True))
    for title, section, open_at_start in sections:
        if imgui.collapsing_header(title, imgui.TreeNodeFlags_.default_open if open_at_start else 0):
            section(app)
    if imgui.button("screenshot (F12)"):
        app.request_screenshot()
    for path in app.saved_screenshots[-1:]:
        imgui.text_colored(GREY, f"saved {path}")
    imgui.pop_item_width()
    imgui.end()
