"""Inputs are checked at the boundary (issue 14, items 5 and 6).

Meshes (:func:`neumat.render.shapes.load_mesh`): a Latin-1 comment loads; a face index out of
range, a NaN position or UV, a PLY header that declares more faces than the file holds and UVs
without area are one :class:`~neumat.render.shapes.MeshError` naming the file, which
``neumat render`` / ``neumat view`` print as ``error: ...`` with exit code 1.

Camera, size and exposure: ``neumat render`` refuses a degenerate or far camera, an image over
:data:`~neumat.render.camera.MAX_IMAGE_SIDE` per side and a non-finite or huge exposure with
exit code 2 naming the option, and warns when the material covers no pixel; the
:class:`~neumat.render.camera.Camera` / :class:`~neumat.render.renderer.Renderer` API raises
ValueError for the same camera and size mistakes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from neumat.bundle import make_random_bundle, save_bundle
from neumat.cli import render_cmd, view_cmd
from neumat.render.camera import MAX_CAMERA_DISTANCE, MAX_IMAGE_SIDE, Camera, check_image_size
from neumat.render.renderer import Renderer, frame_view
from neumat.render.shapes import Mesh, MeshError, load_mesh, plane

runner = CliRunner()

TRIANGLE_UV = "vt 0 0\nvt 1 0\nvt 0 1\n"
"""Three texture coordinates spanning half of the UV square."""


def _obj(tmp_path, name: str, vertices: str = "v 0 0 0\nv 1 0 0\nv 0 1 0\n", uvs: str = TRIANGLE_UV,
         faces: str = "f 1/1 2/2 3/3\n", comment: bytes = b"# one triangle\n"):
    """A one-triangle OBJ in ``tmp_path`` with the given lines (``comment``: raw bytes)."""
    path = tmp_path / name
    path.write_bytes(comment + (vertices + uvs + faces).encode("ascii"))
    return path


def _ply(tmp_path, name: str, declared_faces: int, held_faces: str = "3 0 1 2\n"):
    """An ASCII PLY triangle with UVs (s, t) whose header declares ``declared_faces`` faces."""
    path = tmp_path / name
    path.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                    "property float z\nproperty float s\nproperty float t\n"
                    f"element face {declared_faces}\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0 0 0\n1 0 0 1 0\n0 1 0 0 1\n" + held_faces)
    return path


def _app(name: str, command) -> typer.Typer:
    """``command`` under its own name (a second command keeps typer's sub-command parsing)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name)(command)
    app.command("noop")(lambda: None)
    return app


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    """A random triple-plane bundle (no device needed to write it)."""
    path = tmp_path_factory.mktemp("input_validation") / "random.nmat"
    save_bundle(make_random_bundle(np.random.default_rng(5)), path)
    return path


# ---------------------------------------------------------------- item 5: meshes


def test01_latin1_comment_loads(tmp_path):
    path = _obj(tmp_path, "latin1.obj", comment="# modèle réalisé à Montréal\n".encode("latin-1"))
    mesh = load_mesh(path)
    assert mesh.positions.shape == (3, 3) and mesh.faces.tolist() == [[0, 1, 2]]
    np.testing.assert_array_equal(mesh.uvs, [[0, 0], [1, 0], [0, 1]])


def test02_face_index_out_of_range(tmp_path):
    for name, faces in (("vertex_out.obj", "f 1/1 2/2 9/3\n"), ("uv_out.obj", "f 1/1 2/2 3/7\n")):
        path = _obj(tmp_path, name, faces=faces)
        with pytest.raises(MeshError, match="do(es)? not exist") as info:
            load_mesh(path)
        assert str(path) in str(info.value)
    path = _ply(tmp_path, "out_of_range.ply", 1, held_faces="3 0 1 5\n")
    with pytest.raises(MeshError, match=r"does not exist \(index 5 .* size 3\)") as info:
        load_mesh(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name, parts, message", [
    ("nan_vertex", {"vertices": "v 0 0 0\nv 1 0 nan\nv 0 1 0\n"}, r"positions are not finite.*vertex 1"),
    # found by make fuzz: a `v` line with one number made trimesh's normals raise ValueError
    ("short_vertex", {"vertices": "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0.0\n"}, "3 coordinates"),
    ("nan_uv", {"uvs": "vt 0 0\nvt nan 0\nvt 0 1\n"}, r"UVs are not finite.*vertex 1"),
])
def test03_bad_vertices_and_uvs(tmp_path, name, parts, message):
    path = _obj(tmp_path, f"{name}.obj", **parts)
    with pytest.raises(MeshError, match=message) as info:
        load_mesh(path)
    assert str(path) in str(info.value)


def test05_ply_header_declares_more_faces_than_it_holds(tmp_path):
    assert load_mesh(_ply(tmp_path, "honest.ply", 1)).faces.shape == (1, 3)
    path = _ply(tmp_path, "lying.ply", 10**7)
    with pytest.raises(MeshError, match="declares 10000000 face elements but the file holds 1") as info:
        load_mesh(path)
    assert str(path) in str(info.value)


def test06_zero_uv_area(tmp_path):
    path = _obj(tmp_path, "zero_uv.obj", uvs="vt 0.5 0.5\nvt 0.5 0.5\nvt 0.5 0.5\n")
    with pytest.raises(MeshError, match="UVs .* cover no area") as info:
        load_mesh(path)
    assert str(path) in str(info.value)
    flat = _obj(tmp_path, "collinear.obj", vertices="v 0 0 0\nv 1 0 0\nv 2 0 0\n")
    with pytest.raises(MeshError, match="no surface area"):
        load_mesh(flat)


def test07_mesh_api_rejects_non_finite_and_out_of_range():
    p = plane()
    with pytest.raises(MeshError, match="positions are not finite"):
        Mesh(np.where(np.arange(len(p.positions))[:, None] == 2, np.inf, p.positions), p.normals, p.uvs, p.faces)
    with pytest.raises(MeshError, match="UVs are not finite"):
        Mesh(p.positions, p.normals, p.uvs * np.nan, p.faces)
    with pytest.raises(MeshError, match="do not exist"):
        Mesh(p.positions, p.normals, p.uvs, p.faces + len(p.positions))
    assert issubclass(MeshError, ValueError)


def test08_render_cli_mesh_errors_exit_1_without_traceback(bundle_path, tmp_path):
    bad = {"out_of_range.obj": _obj(tmp_path, "out_of_range.obj", faces="f 1/1 2/2 9/3\n"),
           "nan_vertex.obj": _obj(tmp_path, "nan_vertex.obj", vertices="v 0 0 nan\nv 1 0 0\nv 0 1 0\n"),
           "lying.ply": _ply(tmp_path, "lying.ply", 10**7)}
    for name, path in bad.items():
        out = tmp_path / f"{name}.png"
        result = runner.invoke(_app("render", render_cmd.render),
                               ["render", str(bundle_path), "--mesh", str(path), "--out", str(out)])
        assert result.exit_code == 1, (name, result.output)
        assert isinstance(result.exception, SystemExit), (name, result.exception)
        assert "error: cannot load mesh" in result.output and name in result.output
        assert not out.exists()


def test09_view_cli_mesh_error_exits_1(tmp_path):
    pytest.importorskip("glfw", reason="viewer extra not installed: pip install -e '.[view]'")
    pytest.importorskip("imgui_bundle", reason="viewer extra not installed: pip install -e '.[view]'")
    from viewer_fixtures import LEATHER
    from neumat.viewer.xvfb import xvfb_binary

    if xvfb_binary() is None:
        pytest.skip("Xvfb is not installed (scripts/ensure_display.sh)")
    from neumat import device as dev

    try:
        dev.default_device()
    except dev.DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")
    path = _obj(tmp_path, "nan_uv.obj", uvs="vt 0 0\nvt 0 nan\nvt 0 1\n")
    result = runner.invoke(_app("view", view_cmd.view),
                           ["view", str(LEATHER), "--mesh", str(path), "--headless", "--frames", "1", "--size", "400x100"],
                           env={"DISPLAY": ""})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error: cannot load mesh" in result.output and "UVs are not finite" in result.output


# ---------------------------------------------------------------- item 6: camera, size, exposure


def test10_camera_api_refuses_degenerate_views():
    with pytest.raises(ValueError, match="distance must be > 0"):
        Camera.orbit(distance=0.0)
    with pytest.raises(ValueError, match="distance must be > 0 and at most"):
        Camera.orbit(distance=1e30)
    with pytest.raises(ValueError, match="eye must be 3 finite numbers"):
        Camera(eye=(0.0, float("nan"), 1.0))
    with pytest.raises(ValueError, match="fov_y"):
        Camera(fov_y=180.0)
    with pytest.raises(ValueError, match="parallel"):
        Camera.orbit(elevation=90.0)
    with pytest.raises(ValueError, match=f"1 to {MAX_IMAGE_SIDE} per side"):
        Camera(width=100_000, height=100_000)
    from neumat.render.passes.compose import ComposeSettings

    for stops in (float("nan"), 1e6):  # Renderer.render(exposure=...) builds these
        with pytest.raises(ValueError, match="exposure must be a finite number of stops"):
            ComposeSettings(exposure=stops)
    assert Camera.orbit(distance=MAX_CAMERA_DISTANCE / 2).eye[0] == pytest.approx(MAX_CAMERA_DISTANCE / 2 * np.cos(np.radians(30)))
    camera = Camera()
    camera.eye = camera.target  # changed after it was made: caught when a frame starts
    with pytest.raises(ValueError, match="distance must be > 0"):
        frame_view(camera, [], 8, 8)


def test11_image_size_bounds():
    assert check_image_size((MAX_IMAGE_SIDE, 1)) == (MAX_IMAGE_SIDE, 1)
    for size in ((0, 4), (4, MAX_IMAGE_SIDE + 1), (2.5, 4), (4,), None):
        with pytest.raises(ValueError, match="image size"):
            check_image_size(size)
    with pytest.raises(ValueError, match=f"1 to {MAX_IMAGE_SIDE} per side"):  # before the bundle or the device
        Renderer("no_such_bundle.nmat", "sphere", (100_000, 100_000))
    with pytest.raises(ValueError, match="image size"):
        dataclasses.replace(Camera(), width=MAX_IMAGE_SIDE + 1)


@pytest.mark.parametrize("args, option", [
    (["--camera", "0,0,0"], "--camera"),
    (["--camera", "0,30,1e30"], "--camera"),
    (["--camera", "0,90,3"], "--camera"),
    (["--exposure", "nan"], "--exposure"),
    (["--exposure", "1e6"], "--exposure"),
    (["--size", "100000x100000"], "--size"),
    (["--size", "0x16"], "--size"),
])
def test12_render_cli_bad_view_options_exit_2(bundle_path, tmp_path, args, option):
    out = tmp_path / "x.png"
    result = runner.invoke(_app("render", render_cmd.render), ["render", str(bundle_path), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert option in result.output and not out.exists()


def test13_render_cli_warns_when_the_material_covers_no_pixel(bundle_path, tmp_path, device):
    base = ["render", str(bundle_path), "--shape", "sphere", "--size", "16x16", "--no-hf", "--no-synthesis",
            "--frames", "1", "--warmup", "0"]
    far = runner.invoke(_app("render", render_cmd.render), [*base, "--out", str(tmp_path / "far.png"),
                                                             "--camera", "0,30,1e5"])
    assert far.exit_code == 0, far.output
    assert "warning: the material covers no pixel" in far.stderr and (tmp_path / "far.png").is_file()
    near = runner.invoke(_app("render", render_cmd.render), [*base, "--out", str(tmp_path / "near.png")])
    assert near.exit_code == 0, near.output
    assert "warning" not in near.output
