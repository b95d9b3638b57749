"""UBO2014 "BTF" files: round trips through the writer and reader (every layout variant),
decoding rules, the sampling source, and clean errors for corrupt or truncated files."""

import numpy as np
import pytest

from neumat.data import (Ubo2014Btf, Ubo2014Config, Ubo2014FormatError, factorize_frames,
                         read_ubo2014, write_ubo2014)

V, L, H, W = 3, 4, 6, 5
VIEW_DEG = np.array([[0.0, 0.0], [30.0, 90.0], [60.0, 225.0]])
LIGHT_DEG = np.array([[15.0, 0.0], [45.0, 120.0], [60.0, 300.0], [75.0, 45.5]])


def frames(seed=0):
    return np.random.default_rng(seed).random((V, L, H, W, 3)).astype(np.float32)


def write(path, data=None, **kw):
    u, sxv = factorize_frames(frames() if data is None else data)
    return write_ubo2014(path, np.radians(VIEW_DEG), np.radians(LIGHT_DEG), u, sxv, W, H, **kw)


def test_round_trip_float32(tmp_path):
    data = frames()
    f = read_ubo2014(write(tmp_path / "a.btf", data))
    assert (f.signature, f.width, f.height) == ("DFMF", W, H)
    np.testing.assert_allclose(np.degrees(f.view_angles), VIEW_DEG, atol=1e-5)
    np.testing.assert_allclose(np.degrees(f.light_angles), LIGHT_DEG, atol=1e-5)
    for v in range(V):
        for light in range(L):
            np.testing.assert_allclose(f.decode_frame(v, light), data[v, light], atol=2e-6)


def test_decoding_rule_and_row_flip(tmp_path):
    """value = U[view·L + light] · SxV[y·W + x], then row y of the image = stored row H-1-y."""
    rng = np.random.default_rng(1)
    u = [rng.standard_normal((V * L, 2)) for _ in range(3)]
    sxv = [rng.standard_normal((W * H, 2)) for _ in range(3)]
    path = write_ubo2014(tmp_path / "f.btf", np.radians(VIEW_DEG), np.radians(LIGHT_DEG), u, sxv,
                         W, H, data_size=8)
    img = read_ubo2014(path).decode_frame(2, 1)
    lv = 2 * L + 1
    for c in range(3):
        stored = (sxv[c] @ u[c][lv]).reshape(H, W)
        np.testing.assert_allclose(img[..., c], stored[::-1], rtol=1e-6)


def test_half_precision_matches_float32_products(tmp_path):
    data = frames(2)
    u, sxv = factorize_frames(data)
    f = read_ubo2014(write_ubo2014(tmp_path / "h.btf", np.radians(VIEW_DEG),
                                   np.radians(LIGHT_DEG), u, sxv, W, H, data_size=2))
    assert f.u[0].dtype == np.float16
    lv = 1 * L + 3
    for c in range(3):
        expected = (f.sxv[c].astype(np.float32) @ f.u[c][lv].astype(np.float32)).reshape(H, W)
        np.testing.assert_allclose(f.decode_frame(1, 3)[..., c], expected[::-1], rtol=1e-6)
    np.testing.assert_allclose(f.decode_frame(1, 3), data[1, 3], atol=0.02)


@pytest.mark.parametrize("signature", ["FMF0", "FMF1"])
def test_fmf_layouts_share_one_right_factor(tmp_path, signature):
    rng = np.random.default_rng(3)
    shared = rng.random((W * H, 3))
    u = [rng.random((V * L, 3)) for _ in range(3)]
    f = read_ubo2014(write_ubo2014(tmp_path / "m.btf", np.radians(VIEW_DEG),
                                   np.radians(LIGHT_DEG), u, [shared] * 3, W, H,
                                   signature=signature, dynamic_range_reduction=True))
    assert f.signature == signature and f.dynamic_range_reduction == (signature == "FMF1")
    img = f.decode_frame(0, 2)
    for c in range(3):
        value = (shared @ u[c][2]).reshape(H, W)[::-1]
        if signature == "FMF1":
            value = np.exp(value) - 1e-5
        np.testing.assert_allclose(img[..., c], value, rtol=1e-5)


def test_log_yuv_colour_model(tmp_path):
    """Colour model 11: Y = e^c0 - ε, U = c1·Y + ε, V = c2·Y + ε, RGB = M·YUV clamped."""
    c = np.array([np.log(0.3 + 1e-5), 0.2, -0.1])
    data = np.broadcast_to(c, (V, L, H, W, 3)).copy()
    f = read_ubo2014(write(tmp_path / "yuv.btf", data, color_model=11))
    y = 0.3
    u, v = 0.2 * y + 1e-5, -0.1 * y + 1e-5
    rgb = np.clip([y + 1.13983 * v, y - 0.39465 * u - 0.5806 * v, y + 2.03211 * u], 0, 1)
    np.testing.assert_allclose(f.decode_frame(1, 1), np.broadcast_to(rgb, (H, W, 3)), rtol=1e-5)


def test_header_versions_and_rotations(tmp_path):
    strings = {"measurement_setup": "gonio", "image_sensor": "cam", "light_source": "led",
               "xml": "<btf/>"}
    f = read_ubo2014(write(tmp_path / "v4.btf", version=4, strings=strings))
    assert f.strings["xml"] == "<btf/>" and f.strings["channels"] == ["R", "G", "B"]
    assert f.strings["measurement_setup"] == "gonio" and f.version == 4


def test_source_angles_sampling_and_split(tmp_path):
    data = frames(4)
    btf = Ubo2014Btf(write(tmp_path / "carpet.btf", data),
                     Ubo2014Config(cache_frames=3, frames_per_batch=2, heldout_fraction=0.25))
    assert btf.name == "carpet" and btf.uv_space == "reference" and btf.image_shape == (H, W)
    expected = [(li[0], li[1], vi[0], vi[1]) for vi in VIEW_DEG for li in LIGHT_DEG]
    np.testing.assert_allclose(btf.angles, expected, atol=1e-4)
    for k in range(V * L):
        np.testing.assert_allclose(btf.slice(k), data[k // L, k % L], atol=2e-6)
        assert len(btf.cache) <= 3
    rng = np.random.default_rng(0)
    held = set(np.flatnonzero(btf.heldout_mask))
    assert len(held) == 3
    train_pairs = set()
    for _ in range(20):
        batch = btf.sample(256, rng)
        pairs = {tuple(p) for p in np.concatenate([batch.wi, batch.wo], axis=1)}
        assert len(pairs) <= 2
        train_pairs |= pairs
    wi, wo = btf.directions.pair(np.arange(V * L))
    all_pairs = [tuple(p) for p in np.concatenate([wi, wo], axis=1).astype(np.float32)]
    assert train_pairs.isdisjoint({all_pairs[k] for k in held})
    images = btf.heldout_images()
    assert [img.shape for _, _, img in images] == [(H, W, 3)] * 3


def test_border_lookups_clamp(tmp_path):
    data = frames(5)
    btf = Ubo2014Btf(write(tmp_path / "c.btf", data), Ubo2014Config(frames_per_batch=1))
    batch = btf.sample(4000, np.random.default_rng(1))
    assert np.all(np.isfinite(batch.rgb))
    lo, hi = data.min(axis=(0, 1, 2, 3)), data.max(axis=(0, 1, 2, 3))
    assert np.all(batch.rgb >= lo - 1e-6) and np.all(batch.rgb <= hi + 1e-6)


def test_corrupt_files_raise_format_errors(tmp_path):
    good = write(tmp_path / "good.btf").read_bytes()
    cases = {
        "magic": b"?" + good[1:],
        "suffix": good[:5] + b"XXXX" + good[9:],
        "trailing": good + b"\0",
        "header_size": good[:9] + (999).to_bytes(4, "little") + good[13:],
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}.btf"
        path.write_bytes(blob)
        with pytest.raises(Ubo2014FormatError, match=str(path.name)):
            read_ubo2014(path)
    for cut in range(0, len(good), 7):  # every truncation is a clean error, never a crash
        path = tmp_path / "cut.btf"
        path.write_bytes(good[:cut])
        with pytest.raises(Ubo2014FormatError):
            read_ubo2014(path)
    with pytest.raises(Ubo2014FormatError, match="cannot open"):
        read_ubo2014(tmp_path / "missing.btf")
    blob = bytearray(good)
    # signature, version-1 header, views with their light lists, size, DFMF globals
    pos = 9 + 264 + 4 + V * (8 + 4 + 8 * L) + 8 + 4 + 4 + 48
    assert blob[pos] == 4  # the first channel's scalar size (float32)
    blob[pos] = 3
    (tmp_path / "s.btf").write_bytes(bytes(blob))
    with pytest.raises(Ubo2014FormatError, match="scalar size 3"):
        read_ubo2014(tmp_path / "s.btf")
