"""Capture -> texture maps (neumat.inverse.register, .fuse, .height, .maps_io): fusing exact per-frame
maps recovers the material's maps (known poses and feature registration), the median resists an
outlier frame, registration failures name the frame, Frankot–Chellappa inverts the height field's
normals, and the written folder is what ``neumat train --maps`` reads."""

from __future__ import annotations

import copy

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from neumat.data.materials import make_material  # noqa: E402
from neumat.data.pbr import PbrMaterial  # noqa: E402
from neumat.data.pbr_io import find_pbr_maps, load_pbr_maps  # noqa: E402
from neumat.inverse.fuse import fuse  # noqa: E402
from neumat.inverse.height import frankot_chellappa, height_map  # noqa: E402
from neumat.inverse.maps_io import MapsDirError, write_maps  # noqa: E402
from neumat.inverse.register import RegistrationError, feature_registration, pose_registration  # noqa: E402
from neumat.inverse.views import capture_poses, gt_buffers  # noqa: E402
from neumat.material.heightfield import HeightField  # noqa: E402
from neumat.video.folder import srgb8  # noqa: E402

R, SIZE = 32, 84


def _material() -> PbrMaterial:
    """4x4 colour cells, a metal quadrant, a roughness ramp along u, sinusoidal bumps (4° mean tilt,
    shallow: 0.01 UV, so parallax off the plane z = 0 stays under 0.3 texel)."""
    u, v = np.meshgrid((np.arange(R) + 0.5) / R, (np.arange(R) + 0.5) / R)
    cells = np.random.default_rng(0).uniform(0.1, 0.9, (4, 4, 3))
    return PbrMaterial("cells", cells[(v * 4).astype(int), (u * 4).astype(int)],
                       0.5 + 0.5 * np.sin(2 * np.pi * 4 * u) * np.sin(2 * np.pi * 3 * v), 0.2 + 0.6 * u,
                       ((u > 0.5) & (v < 0.5)).astype(float), height_scale=0.01)


@pytest.fixture(scope="module")
def posed():
    material = _material()
    poses = capture_poses(np.random.default_rng(2), 5)
    views = [gt_buffers(material, p, SIZE, SIZE, supersample=2) for p in poses]
    predictions = {k: np.stack([v[k] for v in views]) for k in ("albedo", "metallic", "roughness", "normal")}
    return material, poses, predictions


def _errors(fused, material):
    seen = fused.coverage[..., 0] > 0
    out = {k: float(np.abs(getattr(fused, k) - np.atleast_3d(getattr(material, k)))[seen].mean())
           for k in ("albedo", "metallic", "roughness")}
    truth = HeightField(material.height, material.height_scale).texel_normals
    out["normal_deg"] = float(np.degrees(np.arccos(np.clip((fused.normal * truth).sum(-1), -1, 1)))[seen].mean())
    return out


def test01_known_poses_recover_the_maps(posed):
    """Exact per-frame maps (ray-cast ground truth of 5 views at 84² px) fused on the 32² tile:
    mean |error| albedo < 0.02, metallic < 0.02, roughness < 0.01, normals < 1° of the 4° tilt
    (measured 0.012, 0.011, 0.004, 0.40°; the residue is resampling at the cells' edges); the same
    frames registered with the texture's rows flipped are far off (albedo 0.27, normals 5.2°)."""
    material, poses, predictions = posed
    registration = pose_registration(poses, SIZE, SIZE, R)
    fused = fuse(predictions, registration)
    e = _errors(fused, material)
    assert e["albedo"] < 0.02 and e["metallic"] < 0.02 and e["roughness"] < 0.01 and e["normal_deg"] < 1.0, e
    assert fused.coverage.min() > 0 and 0.8 < fused.confidence.mean() <= 1.0
    flipped = copy.deepcopy(registration)
    flip = np.array([[1.0, 0, 0], [0, -1.0, R - 1], [0, 0, 1.0]])
    flipped.homographies = [h @ flip for h in registration.homographies]
    wrong = _errors(fuse(predictions, flipped), material)
    assert wrong["albedo"] > 10 * e["albedo"] and wrong["normal_deg"] > 4 * e["normal_deg"], wrong


def test02_median_resists_an_outlier_frame(posed):
    material, poses, predictions = posed
    corrupt = {k: v.copy() for k, v in predictions.items()}
    corrupt["albedo"][2] = 1.0 - corrupt["albedo"][2]
    fused = fuse(corrupt, pose_registration(poses, SIZE, SIZE, R))
    assert _errors(fused, material)["albedo"] < 0.02  # a mean of the frames would be ~0.1 off


def _warped_frames():
    """5 frames of a gravel texture (128² linear albedo): frame 0 the texture seen from above
    (flipped rows, 168² px), the others under random perspective distortions of up to 18 px."""
    texture = make_material("gravel", 128, 0).albedo
    k = 168 / 128
    base = np.array([[k, 0, 0.5 * k - 0.5], [0, -k, 168 - 0.5 * k - 0.5], [0, 0, 1.0]])
    rng = np.random.default_rng(0)
    square = np.float32([[0, 0], [168, 0], [168, 168], [0, 168]])
    truth = [base] + [cv2.getPerspectiveTransform(square, square + rng.uniform(-18, 18, (4, 2)).astype(np.float32))
                      @ base for _ in range(4)]
    albedo = [cv2.warpPerspective(texture, h, (168, 168), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
              for h in truth]
    return texture, truth, albedo


def test03_feature_registration_recovers_homographies():
    """SIFT + RANSAC against frame 0: texture corners within 0.5 px of the true homographies
    (measured <= 0.21 px); fused albedo within 0.025 mean of the texture (measured 0.014)."""
    texture, truth, albedo = _warped_frames()
    registration = feature_registration([srgb8(a) for a in albedo], 128)
    corners = np.array([[0, 0, 1], [127, 0, 1], [127, 127, 1], [0, 127, 1.0]])
    for h_true, h in zip(truth, registration.homographies):
        a, b = corners @ h_true.T, corners @ h.T
        assert np.abs(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:]).max() < 0.5
    np.testing.assert_allclose(registration.rotations[0], np.diag([1.0, -1.0, -1.0]), atol=1e-9)
    flat = np.zeros((5, 168, 168, 1))
    fused = fuse({"albedo": np.stack(albedo), "metallic": flat, "roughness": flat,
                  "normal": np.tile([0.0, 0.0, -1.0], (5, 168, 168, 1))}, registration)
    assert np.abs(fused.albedo - texture).mean() < 0.025


def test04_registration_failure_names_the_frame():
    _, _, albedo = _warped_frames()
    frames = [srgb8(a) for a in albedo]
    frames[2] = np.full_like(frames[2], 128)  # featureless
    names = [f"img{i}.png" for i in range(5)]
    with pytest.raises(RegistrationError, match=r"frame 2 \('img2.png'\).*feature matches"):
        feature_registration(frames, names=names)
    frames[0] = np.full_like(frames[0], 128)
    with pytest.raises(RegistrationError, match=r"frame 0 \('img0.png'\).*features"):
        feature_registration(frames, names=names)


def test05_frankot_chellappa():
    """Normals of the exact (spectral) gradient of a periodic band-limited field integrate back to it
    up to its mean within 1e-9 UV units; normals of HeightField (central differences) lose only the
    finest detail: max error 5 % of the relief's range, RMS 1.5 % (measured 3.8 %, 1.0 %) for a
    field with content up to ~0.2 cycle per texel, 1.5 % max (measured 0.85 %) for 3 cycles per tile."""
    rng = np.random.default_rng(0)
    spectrum = np.fft.fft2(rng.normal(size=(48, 48)))
    f = np.abs(np.fft.fftfreq(48))
    spectrum *= np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / 0.02) * (np.maximum(f[:, None], f[None, :]) < 0.5)
    h = np.real(np.fft.ifft2(spectrum))
    h = 0.05 * (h - h.min()) / (h.max() - h.min())  # UV units
    k = 2j * np.pi * np.fft.fftfreq(48, d=1 / 48)
    dzdu = np.real(np.fft.ifft2(np.fft.fft2(h) * k[None, :]))
    dzdv = np.real(np.fft.ifft2(np.fft.fft2(h) * k[:, None]))
    exact = np.stack([-dzdu, -dzdv, np.ones_like(h)], -1)
    exact /= np.linalg.norm(exact, axis=-1, keepdims=True)
    np.testing.assert_allclose(frankot_chellappa(exact), h - h.mean(), atol=1e-9)
    err = frankot_chellappa(HeightField(h / 0.05, 0.05).texel_normals) - (h - h.mean())
    assert np.abs(err).max() < 0.05 * 0.05 and np.sqrt(np.mean(err**2)) < 0.015 * 0.05
    u, v = np.meshgrid(np.arange(48) / 48, np.arange(48) / 48)
    smooth = 0.5 + 0.25 * np.sin(2 * np.pi * u) * np.cos(4 * np.pi * v) + 0.25 * np.cos(6 * np.pi * u)
    err = frankot_chellappa(HeightField(smooth, 0.05).texel_normals) - 0.05 * (smooth - smooth.mean())
    assert np.abs(err).max() < 0.015 * 0.05
    height, scale = height_map(exact)
    assert scale == pytest.approx(0.05, rel=1e-6) and height.min() == 0 and height.max() == 1
    assert height_map(np.tile([0.0, 0.0, 1.0], (8, 8, 1)))[1] == 0.0


def test06_written_folder_is_what_train_maps_reads(posed, tmp_path):
    material, poses, predictions = posed
    fused = fuse(predictions, pose_registration(poses, SIZE, SIZE, R))
    height, scale = height_map(fused.normal)
    out = write_maps(tmp_path / "maps", fused, height, scale, {"frames": ["a", "b"]}, first_frame=np.zeros((9, 9, 3),
                                                                                                         np.uint8))
    roles = find_pbr_maps(out)
    assert {k: v.name for k, v in roles.items()} == {"albedo": "basecolor.png", "roughness": "roughness.png",
                                                   "metallic": "metallic.png", "normal": "normal_gl.png",
                                                   "height": "height.png"}
    loaded = load_pbr_maps(out, height_scale=scale)
    assert np.abs(loaded.albedo - fused.albedo).max() < 0.01  # 8-bit sRGB rounding
    np.testing.assert_allclose(loaded.roughness, fused.roughness[..., 0], atol=0.5 / 255 + 1e-6)
    cos = np.clip((loaded.normal * fused.normal).sum(-1), -1, 1)
    assert np.degrees(np.arccos(cos)).max() < 1.0  # 8-bit OpenGL encoding, green flipped back
    assert np.abs(loaded.height - height).max() < 1e-4
    assert (out / "contact_sheet.png").is_file() and (out / "confidence.png").is_file()
    write_maps(out, fused, height, scale, {})  # a maps folder written here may be replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(MapsDirError, match="non-empty folder"):
        write_maps(tmp_path / "other", fused, height, scale, {})


def test07_failed_write_leaves_nothing(posed, tmp_path, monkeypatch):
    material, poses, predictions = posed
    fused = fuse(predictions, pose_registration(poses, SIZE, SIZE, R))
    import neumat.video.folder as folder

    calls = []
    real = folder.write_png

    def failing(path, pixels):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path, pixels)

    monkeypatch.setattr(folder, "write_png", failing)
    with pytest.raises(OSError, match="disk full"):
        write_maps(tmp_path / "maps", fused, *height_map(fused.normal), {})
    assert list(tmp_path.iterdir()) == []
