"""Loading downloaded PBR texture sets: naming schemes, bit depths, colour spaces, normal
conventions, resampling, defaults and every error."""

import warnings

import imageio.v3 as iio
import numpy as np
import pytest

from neumat.data import PbrLoadError, find_pbr_maps, load_pbr_maps
from neumat.material.heightfield import HeightField
from neumat.data.pbr import srgb_to_linear
from neumat.data.pbr_io import decode_normal_map, read_image

RES = 16


def maps(seed=0, res=RES):
    rng = np.random.default_rng(seed)
    return {
        "albedo": rng.integers(0, 256, (res, res, 3), dtype=np.uint8),
        "height": rng.integers(0, 65536, (res, res), dtype=np.uint16),
        "roughness": rng.integers(0, 256, (res, res), dtype=np.uint8),
        "metallic": rng.integers(0, 256, (res, res), dtype=np.uint8),
    }


def write_set(directory, names, data, ext="png"):
    directory.mkdir(parents=True, exist_ok=True)
    for role, name in names.items():
        iio.imwrite(directory / f"{name}.{ext}", data[role])
    return directory


def test_ambientcg_naming_values(tmp_path):
    data = maps()
    d = write_set(tmp_path / "Bricks076C", {
        "albedo": "Bricks076C_1K-PNG_Color", "height": "Bricks076C_1K-PNG_Displacement",
        "roughness": "Bricks076C_1K-PNG_Roughness", "metallic": "Bricks076C_1K-PNG_Metalness"},
        data)
    iio.imwrite(d / "Bricks076C.png", data["albedo"])  # the preview image: no role
    iio.imwrite(d / "Bricks076C_1K-PNG_AmbientOcclusion.png", data["roughness"])
    mat = load_pbr_maps(d, height_scale=0.02)
    assert mat.name == "Bricks076C" and mat.height_scale == 0.02 and mat.normal is None
    np.testing.assert_allclose(mat.albedo, srgb_to_linear(data["albedo"] / 255.0), rtol=1e-5)
    np.testing.assert_allclose(mat.height, data["height"] / 65535.0, rtol=1e-6)  # 16-bit kept
    np.testing.assert_allclose(mat.roughness, data["roughness"] / 255.0, rtol=1e-6)  # linear
    np.testing.assert_allclose(mat.metallic, data["metallic"] / 255.0, rtol=1e-6)


def test_polyhaven_naming_material_name_with_role_words(tmp_path):
    """``metal_plate_diff_2k``: the last meaningful token names the role, not 'metal'."""
    data = maps(1)
    d = write_set(tmp_path / "metal_plate", {
        "albedo": "metal_plate_diff_2k", "height": "metal_plate_disp_2k",
        "roughness": "metal_plate_rough_2k", "metallic": "metal_plate_metal_2k"}, data)
    found = find_pbr_maps(d)
    assert {k: v.name for k, v in found.items()} == {
        "albedo": "metal_plate_diff_2k.png", "height": "metal_plate_disp_2k.png",
        "roughness": "metal_plate_rough_2k.png", "metallic": "metal_plate_metal_2k.png"}


def test_matsynth_naming_and_preference(tmp_path):
    data = maps(2)
    d = write_set(tmp_path / "m", {"albedo": "basecolor", "height": "height"}, data)
    iio.imwrite(d / "diffuse.png", np.zeros((RES, RES, 3), np.uint8))  # basecolor preferred
    iio.imwrite(d / "height.jpg", np.zeros((RES, RES), np.uint8))  # PNG preferred over JPEG
    found = find_pbr_maps(d)
    assert found["albedo"].name == "basecolor.png" and found["height"].name == "height.png"
    mat = load_pbr_maps(d)
    np.testing.assert_allclose(mat.roughness, 0.5) and np.testing.assert_allclose(mat.metallic, 0)


def test_arm_map_supplies_roughness_and_metal(tmp_path):
    data = maps(3)
    d = write_set(tmp_path / "m", {"albedo": "x_diff_1k", "height": "x_disp_1k"}, data)
    arm = np.stack([np.zeros((RES, RES), np.uint8), data["roughness"], data["metallic"]], -1)
    iio.imwrite(d / "x_arm_1k.png", arm)
    mat = load_pbr_maps(d)
    np.testing.assert_allclose(mat.roughness, data["roughness"] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(mat.metallic, data["metallic"] / 255.0, rtol=1e-6)


def encode_normals(n, convention, bits=8):
    n = n.copy()
    if convention == "opengl":
        n[..., 1] = -n[..., 1]
    top = 2**bits - 1
    return np.round((n * 0.5 + 0.5) * top).astype(np.uint8 if bits == 8 else np.uint16)


@pytest.mark.parametrize("convention,name", [("opengl", "m_NormalGL"), ("directx", "m_NormalDX"),
                                             ("opengl", "m_nor_gl_2k"), ("directx", "m_nor_dx")])
def test_normal_map_conventions(tmp_path, convention, name):
    """A map encoding the height field's own normals decodes back to them, whichever the
    convention, when the name tells it."""
    data = maps(4)
    data["height"] = (np.sin(np.linspace(0, 2 * np.pi, RES, endpoint=False))[None, :]
                      * np.cos(np.linspace(0, 4 * np.pi, RES, endpoint=False))[:, None]
                      * 30000 + 32768).astype(np.uint16)
    d = write_set(tmp_path / name, {"albedo": "m_Color", "height": "m_Displacement"}, data)
    truth = HeightField(data["height"] / 65535.0, 0.05).gradient_normals()
    iio.imwrite(d / f"{name}.png", encode_normals(truth, convention))
    mat = load_pbr_maps(d, height_scale=0.05)
    assert mat.meta["normal_convention"] == convention
    np.testing.assert_allclose(mat.normal, truth, atol=0.01)  # 8-bit quantization
    wrong = "directx" if convention == "opengl" else "opengl"
    other = load_pbr_maps(d, height_scale=0.05, normal_convention=wrong)
    np.testing.assert_allclose(other.normal[..., 1], -truth[..., 1], atol=0.01)


def test_16bit_colour_png_keeps_16_bits(tmp_path):
    """Pillow would truncate a 16-bit RGB PNG to 8 bits; the loader reads all 16."""
    mi = pytest.importorskip("mitsuba", reason="16-bit colour PNGs are read with Mitsuba")
    if mi.variant() is None:
        mi.set_variant("scalar_rgb")
    d = write_set(tmp_path / "m", {"albedo": "m_Color", "height": "m_Displacement"}, maps(10))
    truth = HeightField(maps(10)["height"] / 65535.0, 0.05).gradient_normals()
    mi.Bitmap(encode_normals(truth, "opengl", bits=16)).write(str(d / "m_NormalGL.png"))
    mat = load_pbr_maps(d, height_scale=0.05)
    np.testing.assert_allclose(mat.normal, truth, atol=1e-4)


def test_decode_normal_map_flat_and_clamped():
    flat = decode_normal_map(np.full((2, 2, 3), [0.5, 0.5, 1.0]), "opengl")
    np.testing.assert_allclose(flat, np.broadcast_to([0, 0, 1], (2, 2, 3)), atol=1e-7)
    below = decode_normal_map(np.full((1, 1, 3), [1.0, 0.5, 0.2]), "directx")
    assert below[0, 0, 2] > 0 and np.isclose(np.linalg.norm(below), 1)


def test_mismatched_resolution_is_resampled_with_warning(tmp_path):
    data = maps(5)
    data["roughness"] = np.full((RES // 2, RES // 2), 128, np.uint8)
    d = write_set(tmp_path / "m", {"albedo": "m_Color", "height": "m_Displacement",
                                   "roughness": "m_Roughness"}, data)
    with pytest.warns(UserWarning, match="resampled"):
        mat = load_pbr_maps(d)
    assert mat.roughness.shape == (RES, RES)
    np.testing.assert_allclose(mat.roughness, 128 / 255, rtol=1e-5)


def test_missing_height_is_an_error_unless_flat_allowed(tmp_path):
    d = write_set(tmp_path / "m", {"albedo": "m_Color"}, maps(6))
    with pytest.raises(PbrLoadError, match="no height map.*allow_flat"):
        load_pbr_maps(d)
    mat = load_pbr_maps(d, allow_flat=True)
    assert np.all(mat.height == 0)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(PbrLoadError, match="not a directory"):
        load_pbr_maps(tmp_path / "nowhere")
    d = write_set(tmp_path / "m", {"height": "m_Displacement"}, maps(7))
    with pytest.raises(PbrLoadError, match="no albedo map"):
        load_pbr_maps(d)
    iio.imwrite(d / "m_Color.png", np.zeros((RES, RES + 2, 3), np.uint8))
    with pytest.raises(PbrLoadError, match=r"m_Color.png: albedo is 18x16; square"):
        load_pbr_maps(d)
    (d / "m_Color.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(PbrLoadError, match="m_Color.png: not a readable"):
        load_pbr_maps(d)
    with pytest.raises(PbrLoadError, match="normal_convention"):
        load_pbr_maps(d, normal_convention="metal")


def test_float_height_outside_unit_range_is_rescaled(tmp_path):
    data = maps(8)
    data["height"] = np.linspace(-2, 3, RES * RES, dtype=np.float32).reshape(RES, RES)
    d = write_set(tmp_path / "m", {"albedo": "m_Color"}, data)
    iio.imwrite(d / "m_height.tif", data["height"])
    with pytest.warns(UserWarning, match="rescaled"):
        mat = load_pbr_maps(d)
    np.testing.assert_allclose(mat.height, (data["height"] + 2) / 5, atol=1e-6)
    assert mat.meta["height_range"] == [-2.0, 3.0]


def test_exr_through_an_installed_reader(tmp_path):
    mi = pytest.importorskip("mitsuba", reason="EXR reading uses Mitsuba's Bitmap here")
    if mi.variant() is None:
        mi.set_variant("scalar_rgb")
    data = maps(9)
    d = write_set(tmp_path / "m", {"albedo": "m_Color"}, data)
    height = np.random.default_rng(0).random((RES, RES, 1)).astype(np.float32)
    mi.Bitmap(height).write(str(d / "m_Displacement.exr"))
    assert read_image(d / "m_Displacement.exr").shape[:2] == (RES, RES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mat = load_pbr_maps(d)
    np.testing.assert_allclose(mat.height, height[..., 0], rtol=1e-6)
    (d / "m_Displacement.exr").write_bytes(b"\x76\x2f\x31\x01" + bytes(20))
    with pytest.raises(PbrLoadError, match="m_Displacement.exr: unreadable OpenEXR"):
        load_pbr_maps(d)
