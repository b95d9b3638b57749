"""NaN-aware bilinear lookups (masked texels of surface-space BTF slices)."""

import numpy as np

from neumat.material.interp import bilinear


def test01_skip_nan_equals_plain_bilinear_on_finite_images():
    img = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    uv = np.random.default_rng(1).random((500, 2))
    np.testing.assert_allclose(bilinear(img, uv, skip_nan=True), bilinear(img, uv), atol=1e-6)


def test02_skip_nan_renormalizes_over_visible_texels():
    img = np.array([[1.0, np.nan], [3.0, 5.0]], dtype=np.float32)
    uv = np.array([[0.5, 0.5]])  # the centre: weight 1/4 on each texel
    assert np.isnan(bilinear(img, uv, wrap=False))[0]
    np.testing.assert_allclose(bilinear(img, uv, wrap=False, skip_nan=True), [(1 + 3 + 5) / 3])
    all_nan = np.full((2, 2), np.nan, dtype=np.float32)
    assert np.isnan(bilinear(all_nan, uv, skip_nan=True))[0]
