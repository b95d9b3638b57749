"""neumat.video.dataset / scene / captions / folder: Mitsuba videos along the trajectories.

Every render here is tiny (32² px, 5 frames, 4 spp, 32² maps, scalar_rgb unless said) so the
file runs in ~20 s on 2 cores, Ray start-up included.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import math
import os

import numpy as np
import pytest

from neumat.data import make_material
from neumat.data.brdf import eval_brdf_cos
from neumat.data.pbr import PbrMaterial
from neumat.material.heightfield import HeightField
from neumat.video.captions import LIGHTING_WORDS, filter_lighting, template_captions
from neumat.video.dataset import dataset_jobs, render_dataset, render_video, rotated
from neumat.video.folder import DONE_FILE, read_exr, read_video, srgb8
from neumat.video.scene import RenderSettings

pytest.importorskip("mitsuba")
SETTINGS = RenderSettings(32, 32, 4)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test01_rotation_turns_maps_and_normals():
    m = make_material("stone_tiles", 32)
    r = rotated(m, 90)
    assert r.name == "stone_tiles_rot090" and r.meta["rotation_deg"] == 90
    # content turned counter-clockwise seen from above: new(u, v) = old(v, 1 - u)
    n = m.resolution
    for row, col in ((0, 0), (3, 7), (20, 5)):
        # world (x, y) -> (-y, x): texel (r=v, c=u) of the new map holds old texel (r'=n-1-c, c'=r)
        assert r.height[row, col] == m.height[n - 1 - col, row]
    turned = rotated(dataclasses.replace(m, normal=HeightField(m.height, m.height_scale).gradient_normals()), 90)
    expect = HeightField(turned.height, turned.height_scale).gradient_normals()
    assert np.abs(turned.normal - expect).max() < 1e-6  # normal map turned = normals of the turned heights
    assert np.array_equal(rotated(m, 360).height, m.height)
    with pytest.raises(ValueError, match="multiples of 90"):
        rotated(m, 45)


def test02_captions_have_no_lighting_words():
    text = "A red brick. The light moves. Light-brown grains! It is lit from above. Deep grooves."
    assert filter_lighting(text) == "A red brick. Light-brown grains! Deep grooves."
    caps = template_captions(make_material("leather", 16))
    for style in ("material_only", "filtered"):
        words = {w.strip(".,").lower() for w in caps[style].split()}
        assert caps[style].startswith("The video clip features a close-up view of grained leather")
        assert not words & set(LIGHTING_WORDS)
    assert "dark brown" in caps["material_only"]


def test03_centre_pixel_is_the_project_brdf():
    """Flat, uniform maps: the overhead-light camera-orbit frame's centre pixel equals irradiance
    π × the project's BRDF·cos (neumat.data.brdf) at that light and view (the disk is small)."""
    res = 16
    m = PbrMaterial("uniform", np.full((res, res, 3), 0.5), np.zeros((res, res)), np.full((res, res), 0.6),
                    np.zeros((res, res)), height_scale=0.0)
    jobs = dataset_jobs([m], RenderSettings(33, 33, 256), ("video",), (0,), frames=4)
    from neumat.fidelity.reference import mitsuba_variant
    from neumat.video.scene import TrajectoryScene

    pose = jobs[0].poses[2]
    assert pose.phase == "camera_orbit"
    with mitsuba_variant("scalar_rgb"):
        image = TrajectoryScene(jobs[0].material, [pose], RenderSettings(33, 33, 256)).render(pose)
    wo = np.asarray(pose.camera_position) / np.linalg.norm(pose.camera_position)
    maps = m.shading_maps()
    f = eval_brdf_cos(maps["kd"][0, :1], maps["f0"][0, :1], maps["alpha"][0, :1], np.array([[0.0, 0.0, 1.0]]),
                      np.array([0.0, 0.0, 1.0]), wo)
    centre = image[15:18, 15:18].reshape(-1, 3).mean(axis=0)
    assert centre == pytest.approx(math.pi * f[0], rel=0.03)  # 256 spp noise + the disk's extent
    assert 0.45 < centre[0] < 0.6  # albedo 0.5 plus a little GGX


def test04_ray_workers_match_single_process_and_cache(tmp_path):
    mats = [make_material("leather", 32), make_material("stone_tiles", 32)]
    jobs = dataset_jobs(mats, SETTINGS, ("video",), (0, 90), frames=5)
    single = render_dataset(jobs, tmp_path / "single", SETTINGS, "scalar_rgb", progress=False)
    pytest.importorskip("ray")
    multi = render_dataset(jobs, tmp_path / "ray", SETTINGS, "scalar_rgb", workers=2, progress=False)
    assert [r["cached"] for r in single + multi] == [False] * 8
    files = _tree(tmp_path / "single")
    assert files == _tree(tmp_path / "ray") and len(files) == 4 * (10 + 3 + 4)
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "single", tmp_path / "ray", files, shallow=False)
    assert mismatch == [] and errors == []
    again = render_dataset(jobs, tmp_path / "single", SETTINGS, "scalar_rgb", progress=False)
    assert all(r["cached"] for r in again)
    # the folder contract: poses match frames, EXR is the PNG's linear source
    video = tmp_path / "single" / "leather_rot090" / "video"
    frames, poses, meta = read_video(video)
    assert frames.shape == (5, 32, 32, 3) and meta["material_id"] == "leather_rot090"
    assert np.array_equal(srgb8(read_exr(video / "frames" / "00003.exr")), frames[3])
    caption = json.loads((video / "caption.json").read_text())
    assert caption["metadata"]["tileable"] is True and caption["metadata"]["rotation_deg"] == 90
    assert json.loads((video / DONE_FILE).read_text())["frames"] == 5


def test05_resume_keeps_frames_and_settings_change_rerenders(tmp_path):
    job = dataset_jobs([make_material("fabric", 32)], SETTINGS, ("video",), (0,), frames=5)[0]
    first = render_video(job, tmp_path, SETTINGS, "scalar_rgb")
    video = tmp_path / "fabric_rot000" / "video"
    reference = {f: (video / f).read_bytes() for f in _tree(video)}
    # a killed run: the partial folder holds 3 of the 5 frames and no marker
    partial = video.parent / ".video.partial"
    video.rename(partial)
    (partial / DONE_FILE).unlink()
    for i in (1, 4):
        (partial / "frames" / f"{i:05d}.png").unlink()
    (partial / "key.txt").write_text(json.loads(reference[DONE_FILE])["key"])
    kept = partial / "frames" / "00002.exr"
    os.utime(kept, (1, 1))
    again = render_video(job, tmp_path, SETTINGS, "scalar_rgb")
    assert not again["cached"] and not partial.exists()
    assert {f: (video / f).read_bytes() for f in _tree(video)} == reference
    assert (video / "frames" / "00002.exr").stat().st_mtime == 1  # not rendered again
    other = RenderSettings(32, 32, 8)
    assert render_video(job, tmp_path, other, "scalar_rgb")["cached"] is False
    assert render_video(job, tmp_path, other, "scalar_rgb")["cached"] is True
    assert first["frames"] == 5


def test06_bad_input_before_rendering(tmp_path):
    m = make_material("leather", 16)
    with pytest.raises(ValueError, match="trajectories"):
        dataset_jobs([m], SETTINGS, ("orbit",))
    with pytest.raises(ValueError, match="unique"):
        dataset_jobs([m, m], SETTINGS)
    with pytest.raises(ValueError, match="variant"):
        render_dataset([], tmp_path, SETTINGS, "cuda_rgb")
    with pytest.raises(ValueError, match="spp"):
        RenderSettings(32, 32, 0)
    not_tileable = dataclasses.replace(m, meta={**m.meta, "tileable": False})
    assert dataset_jobs([not_tileable], SETTINGS, ("video",), (0,), frames=3, tileable_only=True) == []


@pytest.mark.parametrize("variant", ["scalar_rgb", "llvm_ad_rgb"])
def test07_moved_scene_renders_what_a_fresh_scene_renders(variant):
    """TrajectoryScene moves one loaded scene from frame to frame (camera every frame, the light
    when it changes): whatever frames came before, a frame renders the same bytes (a resumed
    video, Ray's split), and equals a scene loaded for it alone (float32 round-off: 1e-5)."""
    from neumat.fidelity.reference import mitsuba_variant, same_ray_available
    from neumat.video.scene import TrajectoryScene, light_order
    from neumat.video.trajectory import cross_trajectory

    if variant == "llvm_ad_rgb" and not same_ray_available():
        pytest.skip("llvm_ad_rgb needs libLLVM (make setup installs it)")
    poses = cross_trajectory(per_axis=2)
    ordered = light_order(poses)
    assert sorted(p.index for p in ordered) == [p.index for p in poses]
    assert sum(a.light_position != b.light_position for a, b in zip(ordered, ordered[1:])) == 3  # 4 lights
    settings = RenderSettings(12, 10, 4)
    m = make_material("stone_tiles", 16)
    with mitsuba_variant(variant):
        import mitsuba as mi

        scene = TrajectoryScene(m, poses, settings)
        moved = {p.index: scene.render(p) for p in ordered + poses[::-1][:3]}
        resumed = TrajectoryScene(m, poses, settings)  # loaded at another frame, visited in another order
        for p in poses[::-3]:
            assert np.array_equal(resumed.render(p), moved[p.index]), p.index  # the same bytes
        for p in poses[::5]:
            fresh = np.array(mi.render(mi.load_dict(scene.scene_dict(p)), seed=p.index), dtype=np.float32)[..., :3]
            assert np.abs(moved[p.index] - fresh).max() <= 1e-5 * max(1.0, fresh.max()), p.index
            assert fresh.mean() > 0.0
