"""neumat.video.metrics: RPC separates a displaced material's video from the same material
flattened and from its frames shuffled (real Mitsuba renders, real Dual TV-L1 flow)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from neumat.data import make_material
from neumat.video.metrics import FLOW, pose_baseline, rpc, rpc_folder, spearman
from neumat.video.trajectory import video_trajectory

pytest.importorskip("mitsuba")
pytest.importorskip("cv2.optflow")


@pytest.fixture(scope="module")
def videos():
    """48² px, 8 spp, 10 camera-orbit frames of stone tiles (relief 0.025 of the sample) and the
    same maps flat, scalar_rgb; ~5 s on 2 cores."""
    from neumat.fidelity.reference import mitsuba_variant
    from neumat.video.folder import srgb8
    from neumat.video.scene import RenderSettings, TrajectoryScene

    material = dataclasses.replace(make_material("stone_tiles", 64), height_scale=0.025)
    poses = [p for p in video_trajectory(frames=20) if p.phase == "camera_orbit"]
    settings = RenderSettings(48, 48, 8)
    out = {}
    with mitsuba_variant("scalar_rgb"):
        for key, m in (("displaced", material), ("flat", dataclasses.replace(material, height_scale=0.0))):
            scene = TrajectoryScene(m, poses, settings)
            out[key] = np.stack([srgb8(scene.render(p)) for p in poses])
    out["shuffled"] = out["displaced"][np.random.default_rng(0).permutation(len(poses))]
    return out, poses


def test01_spearman_and_baseline():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # scipy's value
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    poses = [p for p in video_trajectory(frames=8) if p.phase == "camera_orbit"]  # 4 at 90° steps
    b = [pose_baseline(poses[0], p, 1.0) for p in poses]
    assert b[0] == 0.0 and b[1] < b[2] and b[3] == pytest.approx(b[1])
    # opposite cameras: one is the other turned by 180° about +z; positions 2 sample widths apart
    assert b[2] == pytest.approx(math.hypot(math.pi, 2.0), rel=1e-5)  # radius 1.5 / tan(56.31°)
    # quarter turn: 90° about +z, chord √2
    assert b[1] == pytest.approx(math.hypot(math.pi / 2, math.sqrt(2.0)), rel=1e-5)


def test02_rpc_orders_displaced_flat_shuffled(videos):
    frames, poses = videos
    scores = {k: rpc(v, poses, 1.0) for k, v in frames.items()}
    disp, flat, shuf = (scores[k].loss for k in ("displaced", "flat", "shuffled"))
    # measured: displaced 0.10, flat 0.47, shuffled 0.66
    assert disp < 0.25
    assert flat > disp + 0.2
    assert shuf > disp + 0.3
    assert scores["displaced"].flow == FLOW and len(scores["displaced"].pairs) == 25
    # residual parallax of the relief is real: a fraction of a pixel per pair, larger than flat's
    assert np.median(scores["displaced"].parallax) > 2 * np.median(scores["flat"].parallax)


def test03_bad_input(videos, tmp_path):
    frames, poses = videos
    with pytest.raises(ValueError, match="poses"):
        rpc(frames["displaced"][:-1], poses, 1.0)
    with pytest.raises(ValueError, match="uint8"):
        rpc(frames["displaced"].astype(np.float32), poses, 1.0)
    light_only = [dataclasses.replace(p, phase="light_orbit") for p in poses]
    with pytest.raises(ValueError, match="camera_orbit"):
        rpc(frames["displaced"], light_only, 1.0)
    from neumat.video.folder import VideoFolderError
    with pytest.raises(VideoFolderError, match="poses.json"):
        rpc_folder(tmp_path)


def test04_folder_that_does_not_match_its_poses(tmp_path):
    from neumat.video.folder import VideoFolderError, frame_path, read_video, write_png
    from neumat.video.trajectory import save_poses

    poses = video_trajectory(frames=3)
    save_poses(tmp_path / "poses.json", poses, width=8, height=8, sample_size=1.0)
    for i in range(2):
        write_png(frame_path(tmp_path, i), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VideoFolderError, match="2 PNG frames .* but 3 poses"):
        read_video(tmp_path)
    write_png(frame_path(tmp_path, 2), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(VideoFolderError, match="8x8"):
        read_video(tmp_path)
    write_png(frame_path(tmp_path, 2), np.zeros((8, 8, 3), np.uint8))
    assert read_video(tmp_path)[0].shape == (3, 8, 8, 3)


def test05_rectification_is_the_position_aov():
    """The analytic unwarp (FramePose.project of plane points, as ``rectify`` uses it) is the
    seed's reference-plane position AOV: Mitsuba's ``pp:position`` of a flat sample, averaged over
    each pixel's box footprint (16 spp), projects back to that pixel's centre — mean offset
    < 0.01 px (measured ~1e-3 px, 64² px, two orbit frames; a half-pixel convention error would
    show 0.5) and 99th percentile < 0.3 px (the spread of 16 random positions in a pixel)."""
    from neumat.fidelity.reference import mitsuba_variant
    from neumat.video.scene import RenderSettings, TrajectoryScene

    size = 64
    flat = dataclasses.replace(make_material("stone_tiles", 16), height_scale=0.0)
    poses = [p for p in video_trajectory(frames=20) if p.phase == "camera_orbit"][:2]
    rows, cols = np.mgrid[0:size, 0:size]
    with mitsuba_variant("scalar_rgb"):
        import mitsuba as mi

        scene = TrajectoryScene(flat, poses, RenderSettings(size, size, 16))
        for pose in poses:
            spec = {**scene.scene_dict(pose), "integrator": {"type": "aov", "aovs": "pp:position"}}
            uv = np.array(mi.render(mi.load_dict(spec), seed=0))[..., -3:-1]  # Mitsuba's UV frame
            world = np.concatenate([uv - 0.5, np.zeros((size, size, 1))], -1)
            inside = np.all(np.abs(world[..., :2]) < 0.5, -1)
            err = (pose.project(world, size, size) - np.stack([cols + 0.5, rows + 0.5], -1))[inside]
            assert inside.sum() > size * size / 3
            assert np.abs(err.mean(axis=0)).max() < 0.01
            assert np.percentile(np.abs(err), 99) < 0.3
