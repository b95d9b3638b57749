""":class:`App`: the viewer window and its frame loop.

One frame (:meth:`App.step`): poll window events and the watched bundle files, run the frame's
scripted events, build the ImGui panel (which edits :attr:`App.state`), apply mouse/keyboard
camera input over the viewport, render with the :class:`~neumat.render.renderer.Renderer` when
anything that changes the image changed, blit the image into the viewport, draw the UI, take
requested screenshots and swap. Interactive use (:meth:`App.run` until the window closes) and
headless use (``App(visible=False)``, :meth:`App.run` for N frames with a script) share all of it.

Layout, in framebuffer pixels: the control panel takes the left ``panel_width`` pixels, the
viewport the rest of the window; the renderer's image is ``render_scale`` × the viewport size
and is stretched onto it (1:1 at scale 1, so the viewport pixels *are* the renderer's sRGB bytes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..render.renderer import SHAPES, Renderer, resolve_mesh
from .camera_control import OrbitCamera
from .debug_views import render_view
from .frame_times import FrameTimes
from .reload import POLL_INTERVAL_S, BundleWatcher
from .script import ScriptedEvent, apply_event
from .state import ViewerState

PANEL_WIDTH = 330
"""Width of the control panel, framebuffer pixels."""
MESH_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf", ".off")
"""Dropped files with these suffixes are loaded as meshes; anything else as a bundle."""
ORBIT_DEG_PER_PIXEL = 0.4
"""Camera (and shift+drag light) rotation per dragged framebuffer pixel, degrees."""
ZOOM_PER_WHEEL_STEP = 0.9
"""Distance factor per mouse-wheel step towards the screen."""
IDLE_WAIT_S = 1 / 30
"""Interactive loop: longest wait for input between frames when nothing is animating, seconds."""


class ViewerError(RuntimeError):
    """The window cannot be opened (no display, no OpenGL 3.3); the message says what to do."""


class App:
    """The viewer window (see the module docstring).

    Args:
        materials: ``.nmat`` files to load and watch (the first one is shown).
        mesh: shape name or mesh file.
        window_size: (width, height) of the window, pixels.
        visible: show the window (False: hidden window for headless runs).
        state: initial settings (default: the mesh framed by the camera).
        device: slangpy device (default :func:`neumat.device.default_device`).
        reload_interval_s: how often the bundle files are polled (0: every frame).
        panel_width: control-panel width, framebuffer pixels.
    """

    def __init__(self, materials: Sequence[Path], mesh: str = "sphere", window_size=(1024, 640), visible: bool = True,
                 state: ViewerState | None = None, device=None, reload_interval_s: float = POLL_INTERVAL_S,
                 panel_width: int = PANEL_WIDTH) -> None:
        import glfw
        from imgui_bundle import imgui, implot
        from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

        from ..device import default_device, describe
        from .gl_image import ViewportImage
        from .ui import PanelInputs

        self._glfw, self._imgui = glfw, imgui
        self.device = device if device is not None else default_device()
        self.device_name = str(describe(self.device))
        self.reload_interval_s = reload_interval_s
        self.watchers = [BundleWatcher(Path(p), reload_interval_s) for p in materials]
        self.state = state if state is not None else ViewerState(mesh=mesh)
        self.panel_width = int(panel_width)
        self.meshes: dict[str, object] = {}
        self.mesh_error: str | None = None
        self.open_error: str | None = None
        self.render_error: str | None = None
        self.times = FrameTimes()
        self.frame = 0
        self.ui_frame_ms = 0.0
        self.feature_groups = 0
        self.last_image: np.ndarray | None = None
        """uint8 [H, W, 3]: the image last shown in the viewport (render resolution)."""
        self.screenshot_dir = Path.cwd()
        self.inputs = PanelInputs()
        self._renderer: Renderer | None = None
        self._renderer_key = None
        self._shown_key = None
        self._dragging: int | None = None
        self._screenshots: list[Path] = []
        self.saved_screenshots: list[Path] = []
        self.capture_frames = False
        """When True every frame reads the window back into :attr:`frame_pixels` (tests)."""
        self.frame_pixels: np.ndarray | None = None
        """uint8 [H, W, 3]: the whole window of the last frame as drawn (``glReadPixels`` of the
        back buffer before the swap; the front buffer is not readable on every X server)."""

        if not glfw.init():
            raise ViewerError("glfw could not initialise: no display? Set DISPLAY, or run headless under Xvfb "
                              "(`neumat view --headless` starts one; install it with scripts/ensure_display.sh)")
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.VISIBLE, bool(visible))
        self.window = glfw.create_window(int(window_size[0]), int(window_size[1]), "neumat view", None, None)
        if not self.window:
            glfw.terminate()
            raise ViewerError("could not open an OpenGL 3.3 core window (install libgl1-mesa-dri: "
                              "scripts/ensure_display.sh)")
        glfw.make_context_current(self.window)
        glfw.swap_interval(0)
        self._imgui_context = imgui.create_context()
        self._implot_context = implot.create_context()
        imgui.get_io().set_ini_filename("")
        self.impl = GlfwRenderer(self.window)
        glfw.set_drop_callback(self.window, lambda _w, paths: self.open_paths([Path(p) for p in paths]))
        self.image = ViewportImage()
        if state is None:
            self.set_mesh(mesh)

    # ----------------------------------------------------------------- geometry
    @property
    def framebuffer_size(self) -> tuple[int, int]:
        """(width, height) of the window's framebuffer, pixels."""
        return tuple(self._glfw.get_framebuffer_size(self.window))

    def viewport_rect(self) -> tuple[int, int, int, int]:
        """(x, y from the top, width, height) of the viewport in framebuffer pixels."""
        w, h = self.framebuffer_size
        x = min(self.panel_width, max(w - 1, 0))
        return (x, 0, max(w - x, 1), max(h, 1))

    def render_size(self) -> tuple[int, int]:
        """The renderer's image size: viewport size × ``render_scale`` (at least 1 × 1)."""
        _, _, w, h = self.viewport_rect()
        s = float(np.clip(self.state.render_scale, 0.05, 1.0))
        return max(1, round(w * s)), max(1, round(h * s))

    def resize(self, width: int, height: int) -> None:
        """Resize the window (the renderer follows at the next frame)."""
        self._glfw.set_window_size(self.window, int(width), int(height))
        for _ in range(100):  # X servers apply the size asynchronously
            self._glfw.poll_events()
            if tuple(self._glfw.get_framebuffer_size(self.window)) == (int(width), int(height)):
                break
            time.sleep(0.01)

    # ----------------------------------------------------------------- content
    @property
    def watcher(self) -> BundleWatcher | None:
        """The watched bundle shown now (None when none is loaded)."""
        if not self.watchers:
            return None
        self.state.material = int(np.clip(self.state.material, 0, len(self.watchers) - 1))
        return self.watchers[self.state.material]

    def open_material(self, path: Path) -> bool:
        """Load ``path`` (or select it if already loaded) and show it; on failure keep the
        current material and set :attr:`open_error`."""
        path = Path(path)
        for i, w in enumerate(self.watchers):
            if w.path.resolve() == path.resolve():
                self.state.material, self.open_error = i, None
                return True
        watcher = BundleWatcher(path, self.reload_interval_s)
        if watcher.bundle is None:
            self.open_error = watcher.error
            return False
        self.watchers.append(watcher)
        self.state.material, self.open_error = len(self.watchers) - 1, None
        return True

    def set_mesh(self, mesh: str) -> bool:
        """Show ``mesh`` (shape name or file) and frame it with the camera (keeping its angles);
        on failure keep the current mesh and set :attr:`mesh_error`. Files are kept by absolute path."""
        if mesh not in SHAPES:
            mesh = str(Path(mesh).resolve())
        try:
            if mesh not in self.meshes:
                self.meshes[mesh] = resolve_mesh(mesh)
        except (OSError, ValueError) as e:
            self.mesh_error = f"cannot load mesh {mesh!r}: {e}"
            return False
        o = self.state.orbit
        self.state.mesh, self.mesh_error = mesh, None
        self.state.orbit = OrbitCamera.framing(self.meshes[mesh], o.azimuth, o.elevation)
        return True

    def open_paths(self, paths: Sequence[Path]) -> None:
        """Dropped files: meshes by suffix (:data:`MESH_SUFFIXES`), bundles otherwise."""
        for p in paths:
            if p.suffix.lower() in MESH_SUFFIXES:
                self.set_mesh(str(p))
            else:
                self.open_material(p)

    def request_screenshot(self, path: Path | None = None) -> Path:
        """Save the whole window (UI included) as PNG at the end of the current frame."""
        if path is None:
            path = self.screenshot_dir / time.strftime("neumat_view_%Y%m%d_%H%M%S.png")
        self._screenshots.append(Path(path))
        return Path(path)

    def renderer(self) -> Renderer | None:
        """The Renderer for the current bundle version, mesh and render size (rebuilt on change)."""
        w = self.watcher
        if w is None or w.bundle is None:
            return None
        if self.state.mesh not in self.meshes and not self.set_mesh(self.state.mesh):
            return None
        key = (self.state.material, w.generation, self.state.mesh, self.render_size())
        if key != self._renderer_key:
            self._renderer = Renderer(w.bundle, self.meshes[self.state.mesh], self.render_size(), device=self.device)
            self._renderer_key = key
        return self._renderer

    # ----------------------------------------------------------------- frame loop
    def _render_if_needed(self) -> None:
        w = self.watcher
        key = (self.state.snapshot(), w.generation if w else -1, self.render_size())
        if key == self._shown_key and not self.state.continuous:
            return
        self._shown_key = key
        try:
            renderer = self.renderer()
            if renderer is None:
                return
            image, timings, groups = render_view(renderer, self.state.render_kwargs(*self.render_size()),
                                                 self.state.view, self.state.feature_group, self.state.diff_gain)
        except (ValueError, RuntimeError) as e:
            self.render_error = f"render failed: {e}"
            return
        self.render_error, self.feature_groups, self.last_image = None, groups, image
        self.times.add(timings)
        self.image.upload(image)

    def _camera_input(self) -> None:
        imgui = self._imgui
        io = imgui.get_io()
        x, y, w, h = self.viewport_rect()
        sx, sy = io.display_framebuffer_scale.x, io.display_framebuffer_scale.y
        mx, my = io.mouse_pos.x * sx, io.mouse_pos.y * sy
        inside = x <= mx < x + w and y <= my < y + h and not io.want_capture_mouse
        for button in (0, 1, 2):
            if inside and imgui.is_mouse_clicked(button):
                self._dragging = button
        if self._dragging is not None and not imgui.is_mouse_down(self._dragging):
            self._dragging = None
        dx, dy = io.mouse_delta.x * sx, io.mouse_delta.y * sy
        if self._dragging == 0 and (dx or dy) and io.key_shift:
            light = self.state.light
            light.azimuth = (light.azimuth - ORBIT_DEG_PER_PIXEL * dx + 180.0) % 360.0 - 180.0
            light.elevation = float(np.clip(light.elevation - ORBIT_DEG_PER_PIXEL * dy, -89.0, 89.0))
        elif self._dragging == 0 and (dx or dy):
            self.state.orbit.orbit(-ORBIT_DEG_PER_PIXEL * dx, ORBIT_DEG_PER_PIXEL * dy)
        elif self._dragging in (1, 2) and (dx or dy):
            self.state.orbit.pan(-dx / h, dy / h)
        if inside and io.mouse_wheel:
            self.state.orbit.zoom(ZOOM_PER_WHEEL_STEP ** io.mouse_wheel)
        if not io.want_capture_keyboard:
            if imgui.is_key_pressed(imgui.Key.f12) or imgui.is_key_pressed(imgui.Key.p):
                self.request_screenshot()
            if imgui.is_key_pressed(imgui.Key.r):
                self.set_mesh(self.state.mesh)

    def _save_screenshots(self, pixels: np.ndarray) -> None:
        """Keep ``pixels`` (the whole window) and write the requested screenshots."""
        import imageio.v3 as iio

        if self.capture_frames:
            self.frame_pixels = pixels
        for path in self._screenshots:
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, pixels)
            self.saved_screenshots.append(path)
        self._screenshots.clear()

    def step(self, events: Sequence[ScriptedEvent] = ()) -> None:
        """Run one frame; ``events`` are applied before it renders (see :mod:`.script`)."""
        from OpenGL import GL

        from .gl_image import read_pixels
        from .ui import draw_panel

        start = time.perf_counter()
        glfw, imgui = self._glfw, self._imgui
        glfw.poll_events()
        self.impl.process_inputs()
        for watcher in self.watchers:
            watcher.poll()
        for event in events:
            apply_event(self, event)
        imgui.new_frame()
        draw_panel(self)
        self._camera_input()
        self._render_if_needed()
        imgui.render()
        fw, fh = self.framebuffer_size
        GL.glViewport(0, 0, fw, fh)
        GL.glClearColor(0.1, 0.1, 0.11, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        self.image.blit(self.viewport_rect(), fh)
        self.impl.render(imgui.get_draw_data())
        if self._screenshots or self.capture_frames:
            self._save_screenshots(read_pixels((0, 0, fw, fh), fh))
        glfw.swap_buffers(self.window)
        self.frame += 1
        self.ui_frame_ms = 1e3 * (time.perf_counter() - start)

    @property
    def viewport_pixels(self) -> np.ndarray | None:
        """uint8 [h, w, 3]: the viewport region of :attr:`frame_pixels`."""
        if self.frame_pixels is None:
            return None
        x, y, w, h = self.viewport_rect()
        return self.frame_pixels[y:y + h, x:x + w]

    def should_close(self) -> bool:
        """True once the user closed the window."""
        return bool(self._glfw.window_should_close(self.window))

    def run(self, frames: int | None = None, script: Sequence[ScriptedEvent] = ()) -> None:
        """Step until the window closes, or for ``frames`` frames, running ``script``. Without
        ``frames`` (interactive) an idle loop waits up to :data:`IDLE_WAIT_S` for input between
        frames instead of spinning (unless "render every frame" is on)."""
        pending = list(script)
        while (frames is None or self.frame < frames) and not self.should_close():
            due = [e for e in pending if e.frame <= self.frame]
            pending = [e for e in pending if e.frame > self.frame]
            self.step(due)
            if frames is None and not self.state.continuous:
                self._glfw.wait_events_timeout(IDLE_WAIT_S)

    def close(self) -> None:
        """Destroy the window and the ImGui/ImPlot contexts."""
        from imgui_bundle import implot

        if self.window is None:
            return
        self.image.delete()
        self.impl.shutdown()
        implot.destroy_context(self._implot_context)
        self._imgui.destroy_context(self._imgui_context)
        self._glfw.destroy_window(self.window)
        self._glfw.terminate()
        self.window = None

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
