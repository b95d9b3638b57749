"""Capture -> maps -> material commands (neumat.inverse.frames, .capture; ``neumat inverse``,
``neumat capture2mat``): reading frames, videos and posed folders with errors naming the frame,
and the commands on a tiny random-init MVInverse writing a maps folder ``find_pbr_maps`` accepts
and a bundle. Only the plumbing is checked: the maps of random weights mean nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mitsuba")
iio = pytest.importorskip("imageio.v3")

from typer.testing import CliRunner  # noqa: E402

from neumat.bundle import load_bundle  # noqa: E402
from neumat.cli import app  # noqa: E402
from neumat.data.materials import make_material  # noqa: E402
from neumat.data.pbr_io import find_pbr_maps, load_pbr_maps  # noqa: E402
from neumat.inverse.dataset import DataSettings, read_scene, render_data, scene_materials  # noqa: E402
from neumat.inverse.frames import FrameError, read_capture  # noqa: E402
from neumat.video.folder import srgb8  # noqa: E402
from neumat.video.trajectory import save_poses  # noqa: E402

ROLES = {"albedo", "roughness", "metallic", "normal", "height"}


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    """4 unposed frames of a gravel sample (168² px) related by perspective distortions."""
    out = tmp_path_factory.mktemp("capture")
    texture = make_material("gravel", 128, 0).albedo
    k = 168 / 128
    base = np.array([[k, 0, 0.5 * k - 0.5], [0, -k, 168 - 0.5 * k - 0.5], [0, 0, 1.0]])
    rng = np.random.default_rng(0)
    square = np.float32([[0, 0], [168, 0], [168, 168], [0, 168]])
    for i in range(4):
        h = base if i == 0 else cv2.getPerspectiveTransform(
            square, square + rng.uniform(-18, 18, (4, 2)).astype(np.float32)) @ base
        iio.imwrite(out / f"f{i}.png", srgb8(cv2.warpPerspective(texture, h, (168, 168),
                                                                  borderMode=cv2.BORDER_REFLECT_101)))
    return out


@pytest.fixture(scope="module")
def posed_dir(tmp_path_factory):
    """A posed video folder (frames/00000.png …, poses.json) of one rendered scene, 3 views."""
    root = tmp_path_factory.mktemp("posed")
    settings = DataSettings(size=42, views=3, spp=2, resolution=16, metal_probability=0.0, variant="scalar_rgb")
    scene = read_scene(render_data(root / "data", scene_materials(["brick"], [], 16), 1, settings)[0])
    video = root / "video"
    (video / "frames").mkdir(parents=True)
    for i, image in enumerate(scene.arrays["image"]):
        iio.imwrite(video / "frames" / f"{i:05d}.png", image)
    save_poses(video / "poses.json", scene.poses, width=42, height=42, sample_size=1.0)
    return video


def test01_reading_frames_and_errors(frames_dir, posed_dir, tmp_path):
    capture = read_capture(frames_dir)
    assert capture.frames.shape == (4, 168, 168, 3) and capture.names == ["f0.png", "f1.png", "f2.png", "f3.png"]
    assert capture.poses is None and 0 <= capture.frames.min() and capture.frames.max() <= 1
    assert read_capture(frames_dir, max_frames=2).names == ["f0.png", "f3.png"]  # evenly, ends kept
    posed = read_capture(posed_dir)
    assert posed.poses is not None and len(posed.poses) == 3 and posed.frames.shape == (3, 42, 42, 3)
    with pytest.raises(FrameError, match="single image"):
        read_capture(frames_dir / "f0.png")
    odd = tmp_path / "odd"
    odd.mkdir()
    for name, size in (("a1.png", 20), ("a2.png", 20), ("a10.png", 16)):
        iio.imwrite(odd / name, np.zeros((size, size, 3), np.uint8))
    with pytest.raises(FrameError, match=r"frame 2 \('a10.png'\) is 16x16 pixels but frame 0 \('a1.png'\) is 20x20"):
        read_capture(odd)  # natural order: a1, a2, a10
    (odd / "a10.png").write_bytes(b"not a png")
    with pytest.raises(FrameError, match=r"frame 2 \('a10.png'\)"):
        read_capture(odd)
    (odd / "a10.png").unlink()
    (odd / "a2.png").unlink()
    with pytest.raises(FrameError, match="1 image file"):
        read_capture(odd)
    broken = tmp_path / "clip.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(FrameError, match="clip.mp4: cannot be decoded"):
        read_capture(broken)


def test02_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(7):
        writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
    writer.release()
    capture = read_capture(path, max_frames=4)
    assert capture.frames.shape == (4, 24, 32, 3)
    assert capture.names == ["clip.avi#frame 0", "clip.avi#frame 2", "clip.avi#frame 4", "clip.avi#frame 6"]
    assert capture.frames[1].mean() == pytest.approx(60 / 255, abs=0.02)  # frame 2's grey


def _inverse(*args):
    return CliRunner().invoke(app, ["inverse", *map(str, args), "--random-init", "--no-progress"])


def _text(result) -> str:
    """The command's output with rich's box and line wrapping undone."""
    return " ".join(result.output.replace("│", " ").split())


def test03_inverse_command_writes_maps_train_reads(frames_dir, posed_dir, tmp_path):
    """Unposed frames (features) and a posed folder (known poses) -> maps folders whose every role
    ``find_pbr_maps`` recognizes and ``load_pbr_maps`` loads; the record names the registration."""
    for capture, extra, method in ((frames_dir, ["--long-side", 168, "--resolution", 48], "features"),
                                   (posed_dir, ["--long-side", 42, "--resolution", 16], "poses")):
        out = tmp_path / f"maps_{method}"
        result = _inverse(capture, "--out", out, *extra)
        assert result.exit_code == 0, result.output
        assert set(find_pbr_maps(out)) == ROLES
        record = json.loads((out / "inverse.json").read_text())
        assert record["registration"] == method and record["resolution"] == extra[-1]
        material = load_pbr_maps(out, height_scale=max(record["height_scale"], 1e-4))
        assert material.resolution == extra[-1]
        assert iio.imread(out / "contact_sheet.png").shape[1] == 7 * 192


def test04_inverse_command_errors_name_the_frame(frames_dir, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    iio.imwrite(single / "only.png", np.zeros((28, 28, 3), np.uint8))
    result = _inverse(single, "--out", tmp_path / "m1")
    assert result.exit_code == 2 and "1 image file" in _text(result)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        iio.imwrite(flat / f"g{i}.png", iio.imread(frames_dir / f"f{i}.png") if i != 1 else np.full((168, 168, 3), 90,
                                                                                                    np.uint8))
    result = _inverse(flat, "--out", tmp_path / "m2", "--long-side", 168)
    assert result.exit_code == 2 and "frame 1 ('g1.png'): 0 feature matches" in _text(result)
    assert not (tmp_path / "m2").exists()  # nothing half-written
    assert _inverse(frames_dir, "--out", frames_dir).exit_code == 2  # would replace a folder that is not ours
    assert sorted(p.name for p in frames_dir.iterdir()) == ["f0.png", "f1.png", "f2.png", "f3.png"]


def test05_capture2mat_writes_a_bundle(frames_dir, tmp_path):
    """Capture -> maps -> `neumat train --maps` (10 steps, small pools) -> .nmat and the view line."""
    out = tmp_path / "rock.nmat"
    result = CliRunner().invoke(app, [
        "capture2mat", str(frames_dir), "--out", str(out), "--random-init", "--long-side", "168", "--resolution",
        "32", "--steps", "10", "--minutes", "0", "--no-progress", "--train-set", "source.pool_size=20000",
        "--train-set", "data.batch_size=2048", "--train-set", "data.val_samples=4096",
        "--train-set", "data.calibration_samples=4096"])
    assert result.exit_code == 0, result.output
    assert f"neumat view {out}" in result.output
    assert set(find_pbr_maps(tmp_path / "rock.maps")) == ROLES
    source = load_bundle(out).provenance["source"]
    record = json.loads((tmp_path / "rock.maps" / "inverse.json").read_text())
    assert source["kind"] == "maps" and source["height_scale"] == pytest.approx(record["height_scale"])
    bad = CliRunner().invoke(app, ["capture2mat", str(frames_dir), "--out", str(tmp_path / "x.png"), "--random-init"])
    assert bad.exit_code == 2 and "must end in .nmat" in _text(bad)


def test06_pose_file_for_a_frame_folder(posed_dir, tmp_path):
    """``--poses FILE``: a plain frame folder with a separate pose file registers by those poses
    (the same maps as the posed folder); a malformed file, a pose count that differs from the
    frame count, another aspect ratio, or a pose file beside a posed folder's own are named."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for i, f in enumerate(sorted((posed_dir / "frames").glob("*.png"))):
        (plain / f"shot{i}.png").write_bytes(f.read_bytes())
    poses_file = posed_dir / "poses.json"
    capture = read_capture(plain, poses=poses_file)
    posed = read_capture(posed_dir)
    assert capture.poses == posed.poses and capture.sample_size == posed.sample_size
    np.testing.assert_array_equal(capture.frames, posed.frames)
    assert read_capture(plain, max_frames=2, poses=poses_file).poses == [posed.poses[0], posed.poses[2]]
    outs = {}
    for name, args in (("plain", [plain, "--poses", poses_file]), ("posed", [posed_dir])):
        outs[name] = tmp_path / f"maps_{name}"
        result = _inverse(*args, "--out", outs[name], "--long-side", 42, "--resolution", 16)
        assert result.exit_code == 0, result.output
        assert json.loads((outs[name] / "inverse.json").read_text())["registration"] == "poses"
    for role, path in find_pbr_maps(outs["plain"]).items():
        assert path.read_bytes() == find_pbr_maps(outs["posed"])[role].read_bytes(), role
    doc = json.loads(poses_file.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FrameError, match="--poses: pose file .*bad.json: cannot read it as JSON"):
        read_capture(plain, poses=bad)
    bad.write_text(json.dumps({**doc, "frames": doc["frames"][:2]}))
    with pytest.raises(FrameError, match="2 poses for 3 frames"):
        read_capture(plain, poses=bad)
    bad.write_text(json.dumps({**doc, "meta": {**doc["meta"], "width": 84}}))
    with pytest.raises(FrameError, match="cameras are 84x42 pixels but the frames are 42x42"):
        read_capture(plain, poses=bad)
    with pytest.raises(FrameError, match="posed video folder with its own poses.json"):
        read_capture(posed_dir, poses=poses_file)
    result = _inverse(plain, "--poses", bad, "--out", tmp_path / "never", "--long-side", 42)
    assert result.exit_code == 2 and not (tmp_path / "never").exists()
