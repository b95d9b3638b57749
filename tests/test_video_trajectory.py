"""neumat.video.trajectory: the seed's two-phase video and cross set, pose files, camera model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neumat.video.trajectory import (POSES_FORMAT, PoseFileError, cross_trajectory, disk_radiance,
                                     load_poses, save_poses, video_trajectory)


def _elevation(p) -> float:
    p = np.asarray(p)
    return math.degrees(math.atan2(p[2], math.hypot(p[0], p[1])))


def test01_video_phases_and_elevations():
    poses = video_trajectory()
    assert len(poses) == 81 and [p.index for p in poses] == list(range(81))
    light = [p for p in poses if p.phase == "light_orbit"]
    camera = [p for p in poses if p.phase == "camera_orbit"]
    assert len(light) == 41 and len(camera) == 40 and poses[40].phase == "light_orbit"
    for p in light:
        assert p.camera_position == pytest.approx((0.0, 0.0, 1.5))
        assert _elevation(p.light_position) == pytest.approx(56.31, abs=1e-9)
    for p in camera:
        assert p.light_position == pytest.approx((0.0, 0.0, 1.5))
        assert _elevation(p.camera_position) == pytest.approx(56.31, abs=1e-9)
    # one full turn, counter-clockwise from +x, evenly spaced
    az = [math.atan2(p.camera_position[1], p.camera_position[0]) % (2 * math.pi) for p in camera]
    assert np.diff(az[:20]) == pytest.approx(np.full(19, 2 * math.pi / 40))
    # the overhead camera's vertical fov makes the unit sample fill the image
    assert poses[0].fov_deg == pytest.approx(math.degrees(2 * math.atan(0.5 / 1.5)))


def test02_constant_irradiance_at_centre():
    """E = π L r² / (r² + d²) on the disk's axis: the same for every frame (π by default)."""
    for poses in (video_trajectory(), cross_trajectory()):
        e = [math.pi * p.light_intensity * p.light_radius**2
             / (p.light_radius**2 + float(np.dot(p.light_position, p.light_position))) for p in poses]
        assert e == pytest.approx(np.full(len(poses), math.pi), rel=1e-12)
    near, far = video_trajectory()[0], video_trajectory()[-1]  # orbiting light is farther
    assert near.light_intensity > far.light_intensity
    assert disk_radiance(2.0, 0.1, 0.0) == pytest.approx(2.0 / math.pi)


def test03_cross_set_is_3_to_the_4():
    poses = cross_trajectory()
    assert len(poses) == 81 and {p.phase for p in poses} == {"cross"}
    cams = {p.camera_position for p in poses}
    lights = {p.light_position for p in poses}
    assert len(cams) == 9 and len(lights) == 9
    pairs = {(p.camera_position, p.light_position) for p in poses}
    assert len(pairs) == 81
    radius = math.hypot(1.5, 1.0)
    for pos in cams | lights:
        assert np.linalg.norm(pos) == pytest.approx(radius)
    axis = [c for c in cams if abs(c[0]) < 1e-12 < abs(c[1])]
    assert _elevation(axis[0]) == pytest.approx(56.31, abs=1e-9)


def test04_parameters_scale_and_checks():
    small = video_trajectory(frames=5, sample_size=2.0)
    assert [p.phase for p in small] == ["light_orbit"] * 3 + ["camera_orbit"] * 2
    assert small[0].camera_position[2] == pytest.approx(3.0) and small[0].light_radius == pytest.approx(0.1)
    with pytest.raises(ValueError, match="frames"):
        video_trajectory(frames=1)
    with pytest.raises(ValueError, match="sample_size"):
        video_trajectory(sample_size=0.0)
    with pytest.raises(ValueError, match="horizon"):
        cross_trajectory(elevation_deg=30.0)


def test05_projection_overhead_and_orbit():
    pose = video_trajectory()[0]
    corners = np.array([[-0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])
    px = pose.project(corners, 64, 64)  # +x right, +y up, sample fills the image
    assert px == pytest.approx(np.array([[0, 0], [64, 0], [64, 64], [32, 32]]), abs=1e-9)
    orbit = video_trajectory()[50]
    origin, dirs = orbit.rays(16, 12)
    # each pixel-centre ray projects back to its own pixel centre
    back = orbit.project(origin + 2.0 * dirs, 16, 12)
    cols, rows = np.meshgrid(np.arange(16) + 0.5, np.arange(12) + 0.5)
    assert back == pytest.approx(np.stack([cols, rows], -1), abs=1e-9)
    right, up, forward = orbit.camera_basis()
    assert up[2] > 0 and np.dot(right, up) == pytest.approx(0.0, abs=1e-12)


def test06_pose_file_round_trip_and_errors(tmp_path):
    poses = cross_trajectory(per_axis=2)
    path = save_poses(tmp_path / "poses.json", poses, width=32, height=24, sample_size=1.0, note="x")
    back, meta = load_poses(path)
    assert back == poses and meta == {"width": 32, "height": 24, "sample_size": 1.0, "note": "x"}
    with pytest.raises(ValueError, match="width"):
        save_poses(tmp_path / "p.json", poses, height=1, sample_size=1.0)
    doc = json.loads(path.read_text())
    for mutate, match in ((lambda d: d.update(format="other/1"), "format"),
                          (lambda d: d["meta"].pop("sample_size"), "meta"),
                          (lambda d: d["frames"][1].update(index=7), "index"),
                          (lambda d: d["frames"][0].pop("fov_deg"), "fields")):
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(PoseFileError, match=match):
            load_poses(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(PoseFileError, match="JSON"):
        load_poses(tmp_path / "junk.json")
    assert doc["format"] == POSES_FORMAT
