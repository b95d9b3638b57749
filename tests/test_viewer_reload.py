"""Live reload in the viewer: a bundle file replaced atomically (as ``neumat train --export``
does) appears at the next poll; garbage or a half-written file leaves the last good material on
screen and shows the error in red. Viewport pixels are compared with an independent Renderer
(tolerance ``TOLERANCE_LEVELS`` = 0 levels, see viewer_fixtures)."""

import os

import numpy as np
import pytest

pytest.importorskip("glfw", reason="viewer extra not installed: pip install -e '.[view]'")
pytest.importorskip("imgui_bundle", reason="viewer extra not installed: pip install -e '.[view]'")

import viewer_fixtures
from neumat.render.lights import DirectionalLight
from neumat.render.renderer import Renderer
from viewer_fixtures import (
    CLOTH,
    GRAVEL,
    LEATHER,
    PANEL,
    TOLERANCE_LEVELS,
    VIEW_H,
    VIEW_W,
    direction,
    framed_camera,
    max_diff,
    sphere_camera,
)

app, display = viewer_fixtures.app, viewer_fixtures.display  # fixtures



def red_pixels(rgb):
    """Pixels of the panel's error colour (ImGui text, RED = (255, 89, 77))."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 140) & (b < 140)).sum())


def test_live_reload_then_corrupt_files_keep_last_good(display, device, tmp_path):
    """An atomically replaced bundle shows up at the next poll; a corrupt or truncated file keeps
    the last good material on screen and shows the error (red text) in the panel."""
    from neumat.bundle import load_bundle, save_bundle
    from neumat.viewer.app import App

    live = tmp_path / "live.nmat"
    live.write_bytes(LEATHER.read_bytes())
    h = 160
    cam, lights = sphere_camera(-60.0, 35.0, VIEW_W, h), [DirectionalLight(direction(30, 50), (3.0,) * 3)]
    with App([live], mesh="sphere", window_size=(PANEL + VIEW_W, h), visible=False, device=device,
             reload_interval_s=0.0, panel_width=PANEL) as app:
        app.capture_frames = True
        app.run(frames=1)
        leather_view = app.viewport_pixels.copy()
        panel_before = red_pixels(_panel(app))
        save_bundle(load_bundle(GRAVEL), live)  # atomic replace, as training exports do
        app.run(frames=2)
        assert app.watcher.generation == 2 and app.watcher.error is None
        gravel_ref = Renderer(GRAVEL, "sphere", (VIEW_W, h), device=device).render(cam, lights).srgb
        assert max_diff(app.viewport_pixels, gravel_ref) <= TOLERANCE_LEVELS
        assert np.abs(leather_view.astype(float) - gravel_ref).mean() > 5.0

        data = GRAVEL.read_bytes()
        for broken in (b"not a bundle" * 50, data[: len(data) // 2]):  # garbage, half-written file
            tmp = tmp_path / "live.tmp"
            tmp.write_bytes(broken)
            os.replace(tmp, live)
            app.run(frames=app.frame + 2)
            assert app.watcher.error and "live.nmat" in app.watcher.error
            assert app.watcher.generation == 2
            assert max_diff(app.viewport_pixels, gravel_ref) <= TOLERANCE_LEVELS
            assert red_pixels(_panel(app)) > panel_before + 20, "the load error is not shown in red"

        save_bundle(load_bundle(LEATHER), live)
        app.run(frames=app.frame + 2)
        assert app.watcher.error is None and app.watcher.generation == 3
        assert max_diff(app.viewport_pixels, leather_view) <= TOLERANCE_LEVELS



def _panel(app):
    """The panel region of the last frame."""
    return app.frame_pixels[:, :PANEL]


def test_watcher_waits_for_a_missing_file_and_throttles_polls(tmp_path):
    """`neumat train --view` starts the viewer before the first export: the watcher reports the
    missing file, loads it when it appears, and looks at most every ``interval_s``."""
    from neumat.bundle import load_bundle
    from neumat.viewer.reload import BundleWatcher

    path = tmp_path / "later.nmat"
    w = BundleWatcher(path, interval_s=0.5)
    assert w.bundle is None and "not found" in w.error
    path.write_bytes(LEATHER.read_bytes())
    assert w.poll(now=100.0) and w.generation == 1 and w.error is None
    tmp = tmp_path / "x.tmp"
    tmp.write_bytes(GRAVEL.read_bytes())
    os.replace(tmp, path)
    assert not w.poll(now=100.3), "polled again before interval_s"
    assert w.poll(now=100.6) and w.generation == 2
    gravel = load_bundle(GRAVEL)
    for name, plane in gravel.planes.items():
        np.testing.assert_array_equal(w.bundle.planes[name], plane)
    assert not w.poll(now=101.2), "an unchanged file must not reload"


def test_dropped_files_open_bundle_and_mesh(app, device, tmp_path):
    """The glfw drop callback's handler: a .nmat opens and is shown, a mesh file replaces the
    mesh (camera re-framed), a broken path reports an error and changes nothing."""
    app.open_paths([GRAVEL, CLOTH])
    assert [w.name for w in app.watchers] == ["leather.nmat", "gravel.nmat"] and app.state.material == 1
    assert app.state.mesh == str(CLOTH.resolve())
    app.open_paths([tmp_path / "missing.nmat"])
    assert app.open_error and "missing.nmat" in app.open_error and app.state.material == 1
    app.run(frames=1)
    ref = Renderer(GRAVEL, str(CLOTH), (VIEW_W, VIEW_H), device=device).render(
        framed_camera(str(CLOTH), -60.0, 35.0), [DirectionalLight(direction(30, 50), (3.0,) * 3)]).srgb
    assert max_diff(app.viewport_pixels, ref) <= TOLERANCE_LEVELS
