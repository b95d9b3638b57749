"""``neumat view``: the real window under a private Xvfb, driven by scripted events; what the
viewport shows (``glReadPixels`` of the framebuffer) must be the Renderer's image for the same
camera, light and options.

Tolerance: the viewport blits the renderer's sRGB bytes 1:1 with nearest filtering and the
Renderer is deterministic, so the viewport must equal an independent render of the same state
exactly (max |diff| = 0 levels); the test states ``TOLERANCE_LEVELS`` = 0 to make that explicit.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("glfw", reason="viewer extra not installed: pip install -e '.[view]'")
pytest.importorskip("imgui_bundle", reason="viewer extra not installed: pip install -e '.[view]'")

import viewer_fixtures
from neumat.render.lights import DirectionalLight
from neumat.render.renderer import Renderer
from viewer_fixtures import (
    LEATHER,
    PANEL,
    TOLERANCE_LEVELS,
    VIEW_H,
    VIEW_W,
    direction,
    max_diff,
    sphere_camera,
)

app, display = viewer_fixtures.app, viewer_fixtures.display  # fixtures


def test_scripted_orbit_and_toggle_match_renderer(app, device):
    from neumat.viewer.script import parse_script

    app.run(frames=1)
    first = app.viewport_pixels.copy()
    script = parse_script(json.dumps([
        {"frame": 1, "action": "orbit", "d_azimuth": 40, "d_elevation": -10},
        {"frame": 2, "action": "set", "hf": False, "light.azimuth": 120, "exposure": 0.5},
        {"frame": 2, "action": "light", "index": 1, "azimuth": -90, "elevation": 20, "intensity": 1.5},
    ]))
    app.run(frames=4, script=script)
    shown = app.viewport_pixels
    assert shown.shape == (VIEW_H, VIEW_W, 3)
    renderer = Renderer(LEATHER, "sphere", (VIEW_W, VIEW_H), device=device)
    lights = [DirectionalLight(direction(120, 50), (3.0,) * 3), DirectionalLight(direction(-90, 20), (1.5,) * 3)]
    ref = renderer.render(sphere_camera(-20.0, 25.0), lights, hf=False, synthesis=True, fp32=False, exposure=0.5).srgb
    assert max_diff(shown, ref) <= TOLERANCE_LEVELS
    # the orbit changed the view: the first frame is the un-orbited default
    ref0 = renderer.render(sphere_camera(-60.0, 35.0), [DirectionalLight(direction(30, 50), (3.0,) * 3)]).srgb
    assert max_diff(first, ref0) <= TOLERANCE_LEVELS
    assert np.abs(first.astype(float) - shown).mean() > 5.0


def test_screenshot_is_the_window_with_ui(app, tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "shot.png"
    app.run(frames=1)
    app.request_screenshot(path)
    app.step()
    shot = iio.imread(path)
    assert shot.shape == (VIEW_H, PANEL + VIEW_W, 3)
    assert max_diff(shot[:, PANEL:], app.viewport_pixels) == 0
    panel = shot[:, :PANEL].reshape(-1, 3)
    assert len(np.unique(panel, axis=0)) > 20, "the ImGui panel was not drawn"


def test_uv_debug_view_and_resize(app, device):
    from neumat.render.aov import aov_image
    from neumat.viewer.script import parse_script

    app.run(frames=3, script=parse_script([{"frame": 1, "action": "set", "view": "uv"},
                                           {"frame": 2, "action": "resize", "width": PANEL + 96, "height": 64}]))
    assert app.render_size() == (96, 64)
    shown = app.viewport_pixels
    res = Renderer(LEATHER, "sphere", (96, 64), device=device).render(
        sphere_camera(-60.0, 35.0, 96, 64), [DirectionalLight(direction(30, 50), (3.0,) * 3)], aovs=("uv", "mask"))
    assert max_diff(shown, aov_image("uv", res.aovs["uv"], res.aovs["mask"])) <= TOLERANCE_LEVELS


def test_int8_fp32_difference_view_is_small_but_not_zero(app, device):
    app.state.view, app.state.diff_gain = "int8_fp32_diff", 1.0
    app.run(frames=1)
    renderer = Renderer(LEATHER, "sphere", (VIEW_W, VIEW_H), device=device)
    kw = {"camera": sphere_camera(-60.0, 35.0), "lights": [DirectionalLight(direction(30, 50), (3.0,) * 3)]}
    diff = np.abs(renderer.render(**kw, fp32=False).image - renderer.render(**kw, fp32=True).image)
    expected = np.clip(diff * 255 + 0.5, 0, 255).astype(np.uint8)
    assert max_diff(app.viewport_pixels, expected) <= TOLERANCE_LEVELS
    assert 0 < app.viewport_pixels.max() < 64, "INT8 and FP32 should differ a little"


def test_headless_cli_screenshot_without_display(display, device, tmp_path):
    """`neumat view --headless` with no DISPLAY starts its own Xvfb; the PNG's viewport is the
    renderer's image after the scripted orbit."""
    import imageio.v3 as iio

    shot = tmp_path / "cli.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    script = json.dumps([{"frame": 1, "action": "orbit", "d_azimuth": 90}])
    proc = subprocess.run([sys.executable, "-m", "neumat", "view", str(LEATHER), "--headless", "--frames", "2",
                           "--size", f"{PANEL + VIEW_W}x{VIEW_H}", "--screenshot", str(shot), "--script", script],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "screenshot:" in proc.stdout
    image = iio.imread(shot)
    ref = Renderer(LEATHER, "sphere", (VIEW_W, VIEW_H), device=device).render(
        sphere_camera(30.0, 35.0), [DirectionalLight(direction(30, 50), (3.0,) * 3)]).srgb
    assert max_diff(image[:, PANEL:], ref) <= TOLERANCE_LEVELS


def test_cli_errors_are_messages(display, tmp_path):
    """Bad script, missing bundle, bad mesh, --view without --export: exit code 1 (2 for a bad
    option) with a message naming the problem, no traceback."""
    from neumat.cli import app as cli
    from typer.testing import CliRunner

    runner = CliRunner()
    bad = runner.invoke(cli, ["view", str(LEATHER), "--headless", "--script", '[{"action": "fly"}]'])
    assert bad.exit_code == 1 and "unknown action 'fly'" in bad.output
    missing = runner.invoke(cli, ["view", str(tmp_path / "nope.nmat"), "--headless", "--frames", "1",
                                  "--size", "400x64"])
    assert missing.exit_code == 1 and "nope.nmat" in missing.output and "not found" in missing.output
    mesh = runner.invoke(cli, ["view", str(LEATHER), "--headless", "--mesh", "teapot"])
    assert mesh.exit_code == 1 and "teapot" in mesh.output
    assert "Traceback" not in missing.output + mesh.output
    train = runner.invoke(cli, ["train", "--material", "leather", "--out", str(tmp_path), "--view"])
    assert train.exit_code != 0 and "--export" in train.output
    assert "--view" in runner.invoke(cli, ["train", "--help"]).output



def test_mouse_drag_orbits_and_wheel_zooms(app):
    """Mouse input over the viewport (fed to ImGui as the glfw callbacks do): a 50-pixel drag to
    the right turns the camera by -0.4°/pixel in azimuth; one wheel step multiplies the distance
    by 0.9; the same drag over the panel does nothing."""
    io = app.impl.io
    x, y = PANEL + VIEW_W / 2, VIEW_H / 2
    az, dist = app.state.orbit.azimuth, app.state.orbit.distance
    for event in (lambda: io.add_mouse_pos_event(x, y), lambda: io.add_mouse_button_event(0, True),
                  lambda: io.add_mouse_pos_event(x + 50, y), lambda: io.add_mouse_button_event(0, False),
                  lambda: io.add_mouse_wheel_event(0.0, 1.0)):
        event()
        app.step()
    assert app.state.orbit.azimuth == pytest.approx(az - 20.0)
    assert app.state.orbit.distance == pytest.approx(dist * 0.9)
    for event in (lambda: io.add_mouse_pos_event(100, y), lambda: io.add_mouse_button_event(0, True),
                  lambda: io.add_mouse_pos_event(150, y), lambda: io.add_mouse_button_event(0, False)):
        event()
        app.step()
    assert app.state.orbit.azimuth == pytest.approx(az - 20.0)


def test_every_debug_view_renders_its_own_image(app):
    """Each debug view renders without an error and shows something of its own: no two views give
    the same image, and the feature-plane view offers >= 2 channel groups that differ."""
    from neumat.viewer.debug_views import DEBUG_VIEWS, KIND_VIEWS

    images = {}
    for view in [v for v in DEBUG_VIEWS if v not in KIND_VIEWS]:
        app.state.view = view
        app.step()
        assert app.render_error is None, (view, app.render_error)
        images[view] = app.viewport_pixels.copy()
        assert images[view].std() > 1.0, f"{view} view is flat"
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(images[a].astype(int) - images[b]).mean() > 0.5, f"{a} and {b} views look the same"
    app.state.view = "features"
    app.step()
    assert app.feature_groups >= 2
    app.state.feature_group = 1
    app.step()
    assert np.abs(app.viewport_pixels.astype(int) - images["features"]).mean() > 1.0


def test_neumip_material_opens_and_toggles_with_triple_plane(app, device):
    """A NeuMIP bundle opened beside the triple-plane one shows exactly the Renderer's image of
    it, its offset view differs, and picking the first material again shows leather again
    (script frames are absolute: ``run(frames=N)`` steps until the app's N-th frame)."""
    from neumat.viewer.script import parse_script

    neumip = LEATHER.parent / "stone_tiles_neumip.nmat"
    light = [DirectionalLight(direction(30, 50), (3.0,) * 3)]
    app.run(frames=2, script=parse_script([{"frame": 1, "action": "open", "path": str(neumip)}]))
    assert app.state.material == 1 and not app.open_error
    ref = Renderer(neumip, "sphere", (VIEW_W, VIEW_H), device=device).render(sphere_camera(-60.0, 35.0), light).srgb
    assert max_diff(app.viewport_pixels, ref) <= TOLERANCE_LEVELS
    app.run(frames=4, script=parse_script([{"frame": 2, "action": "set", "view": "offset"}]))
    assert np.abs(app.viewport_pixels.astype(float) - ref).mean() > 5.0, "the offset view must differ"
    app.run(frames=6, script=parse_script([{"frame": 4, "action": "set", "view": "final", "material": 0}]))
    leather = Renderer(LEATHER, "sphere", (VIEW_W, VIEW_H), device=device).render(sphere_camera(-60.0, 35.0), light)
    assert max_diff(app.viewport_pixels, leather.srgb) <= TOLERANCE_LEVELS
