"""Materials made here: shapes and ranges, determinism, tileability, the photo heuristic."""

import numpy as np
import pytest

from neumat.data import MATERIALS, DataError, PbrMaterial, make_material
from neumat.data.procedural import make_seamless, periodic_blur, voronoi


@pytest.fixture(scope="module", params=sorted(MATERIALS))
def made(request):
    return request.param, make_material(request.param, 64, seed=5)


def test_maps_shapes_ranges_and_relief(made):
    name, mat = made
    assert mat.name == name and mat.resolution == 64
    for key, shape in (("albedo", (64, 64, 3)), ("height", (64, 64)),
                       ("roughness", (64, 64)), ("metallic", (64, 64))):
        arr = getattr(mat, key)
        assert arr.shape == shape and arr.dtype == np.float32
        assert arr.min() >= 0 and arr.max() <= 1
    assert mat.height.std() > 0.1  # real relief for parallax and shadows
    assert 0.005 <= mat.height_scale <= 0.05
    assert 0.01 < mat.albedo.mean() < 0.6  # plausible linear albedo
    assert mat.meta["seed"] == 5


def test_deterministic_per_seed(made):
    name, mat = made
    again = make_material(name, 64, seed=5)
    assert mat.content_hash() == again.content_hash()
    assert make_material(name, 64, seed=6).content_hash() != mat.content_hash()


def test_tileable(made):
    """The jump across the tile border is no larger than typical jumps inside the tile."""
    _, mat = made
    for arr in (mat.height, mat.albedo.mean(axis=2)):
        inner = np.abs(np.diff(arr, axis=1)).mean(), np.abs(np.diff(arr, axis=0)).mean()
        seam = np.abs(arr[:, 0] - arr[:, -1]).mean(), np.abs(arr[0] - arr[-1]).mean()
        assert seam[0] < 2.5 * inner[0] + 1e-3 and seam[1] < 2.5 * inner[1] + 1e-3


def test_photo_height_follows_luminance():
    """'Dark is deep': the height map correlates with the (high-passed) photo brightness."""
    for name in ("brick", "gravel", "grass"):
        mat = make_material(name, 64, seed=0)
        lum = mat.albedo.mean(axis=2)
        lum = lum - periodic_blur(lum, 4)
        assert np.corrcoef(lum.ravel(), mat.height.ravel())[0, 1] > 0.5, name


def test_unknown_material_lists_choices():
    with pytest.raises(DataError, match="leather"):
        make_material("velvet")
    with pytest.raises(DataError, match="resolution"):
        make_material("leather", 4)


def test_procedural_helpers():
    rng = np.random.default_rng(0)
    f1, f2, cell = voronoi(32, 9, rng)
    assert np.all(f2 >= f1) and set(np.unique(cell)) <= set(range(9))
    blurred = periodic_blur(np.eye(16), 1.0)
    np.testing.assert_allclose(blurred.sum(), 16.0)  # blur preserves the mean
    img = rng.random((32, 32))
    seamless = make_seamless(img)
    assert np.abs(seamless[:, 0] - seamless[:, -1]).mean() < np.abs(img[:, 0] - img[:, -1]).mean()


def test_pbr_material_validation():
    ok = dict(name="m", albedo=np.zeros((4, 4, 3)), height=np.zeros((4, 4)),
              roughness=np.zeros((4, 4)), metallic=np.zeros((4, 4)))
    PbrMaterial(**ok)
    with pytest.raises(DataError, match="square"):
        PbrMaterial(**{**ok, "albedo": np.zeros((4, 5, 3))})
    with pytest.raises(DataError, match=r"height map is 3x3 but the albedo is 4x4"):
        PbrMaterial(**{**ok, "height": np.zeros((3, 3))})
    with pytest.raises(DataError, match=r"roughness must lie in \[0, 1\]"):
        PbrMaterial(**{**ok, "roughness": np.full((4, 4), 1.5)})
    with pytest.raises(DataError, match="unit vectors"):
        PbrMaterial(**ok, normal=np.zeros((4, 4, 3)))
    with pytest.raises(DataError, match="NaN"):
        PbrMaterial(**{**ok, "metallic": np.full((4, 4), np.nan)})
    with pytest.raises(DataError, match="height_scale"):
        PbrMaterial(**ok, height_scale=-1.0)
    maps = PbrMaterial(**{**ok, "albedo": np.full((4, 4, 3), 0.5),
                          "metallic": np.full((4, 4), 0.25),
                          "roughness": np.full((4, 4), 0.1)}).shading_maps()
    np.testing.assert_allclose(maps["kd"], 0.375)
    np.testing.assert_allclose(maps["f0"], 0.75 * 0.04 + 0.25 * 0.5)
    np.testing.assert_allclose(maps["alpha"], 0.02)  # 0.1² = 0.01 clamped to ALPHA_MIN
