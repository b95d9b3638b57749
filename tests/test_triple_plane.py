"""Triple-plane field: the bilinear definition (torch == numpy twin), addressing, export."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the triple-plane model needs torch (pip install 'neumat[train]')")

from neumat.angles import PLANE_PARAMETERIZATION, plane_coords  # noqa: E402
from neumat.bundle import load_bundle, save_bundle  # noqa: E402
from neumat.material import bilinear_lookup_np  # noqa: E402
from neumat.material.triple_plane import bundle_features, render_int8  # noqa: E402
from neumat.models.qat import QatMode  # noqa: E402
from neumat.models.triple_plane import CLAMP, WRAP, TriplePlaneField, bilinear_lookup  # noqa: E402
from neumat.output_encoding import OutputEncoding  # noqa: E402
from neumat.train.export import to_bundle  # noqa: E402


def _plane(rows, cols, c, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, cols, c)).astype(np.float32)


def test01_texel_centres_return_texels_exactly():
    p = _plane(5, 7, 3)
    r, c = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")
    st = np.stack([(c.ravel() + 0.5) / 7, (r.ravel() + 0.5) / 5], axis=1).astype(np.float32)
    for addressing in (WRAP, CLAMP):
        got = bilinear_lookup(torch.from_numpy(p), torch.from_numpy(st), addressing).numpy()
        np.testing.assert_array_equal(got, p.reshape(-1, 3))


def test02_wrap_and_clamp_at_the_edges():
    p = _plane(4, 4, 2)
    st = torch.tensor([[0.0, 0.5 / 4], [1.0, 0.5 / 4], [-0.25, 1.25]])
    wrap = bilinear_lookup(torch.from_numpy(p), st, WRAP).numpy()
    # s = 0 lies halfway between the last and the first column (the tile repeats).
    np.testing.assert_allclose(wrap[0], 0.5 * (p[0, 3] + p[0, 0]), rtol=1e-6)
    np.testing.assert_allclose(wrap[1], wrap[0], rtol=1e-6)  # period 1
    np.testing.assert_allclose(wrap[2], bilinear_lookup(torch.from_numpy(p), st[2:] + 1, WRAP).numpy()[0], rtol=1e-5)
    clamp = bilinear_lookup(torch.from_numpy(p), st, CLAMP).numpy()
    np.testing.assert_allclose(clamp[0], p[0, 0], rtol=1e-6)  # outside the centres: edge texel
    np.testing.assert_allclose(clamp[1], p[0, 3], rtol=1e-6)
    np.testing.assert_allclose(clamp[2], p[3, 0], rtol=1e-6)


@pytest.mark.parametrize("wrap", [True, False])
def test03_numpy_twin_is_bit_identical(wrap):
    p = _plane(9, 6, 8, seed=1)
    st = np.random.default_rng(2).uniform(-0.3, 1.3, (5000, 2)).astype(np.float32)
    got = bilinear_lookup(torch.from_numpy(p), torch.from_numpy(st), WRAP if wrap else CLAMP).numpy()
    np.testing.assert_array_equal(got, bilinear_lookup_np(p, st, wrap))


def test04_lookup_gradient_is_the_bilinear_weights():
    p = torch.zeros(3, 3, 1, requires_grad=True)
    st = torch.tensor([[0.5 + 0.25 / 3, 0.5]])  # a quarter texel right of the centre texel
    bilinear_lookup(p, st, CLAMP).sum().backward()
    g = p.grad[..., 0].numpy()
    np.testing.assert_allclose(g[1, 1:], [0.75, 0.25], rtol=1e-6)
    assert g.sum() == pytest.approx(1.0)


def test05_field_shapes_order_and_init():
    torch.manual_seed(0)
    f = TriplePlaneField(u_res=16, hd_res=4, channels=8, hidden=32, plane_init_std=0.1)
    assert f.mlp.widths == (24, 32, 32, 32, 3)
    assert all(layer.bias is None for layer in f.mlp.layers)
    assert float(f.mlp.layers[-1].weight.detach().min()) >= 0  # outputs start >= 0 (see the init note)
    assert tuple(f.planes["U"].shape) == (16, 16, 8) and tuple(f.planes["H"].shape) == (4, 4, 8)
    assert float(f.planes["U"].detach().std()) == pytest.approx(0.1, rel=0.1)
    uv, hd = torch.rand(7, 2), torch.rand(7, 2)
    feats = f.features(uv, hd, 1 - hd)
    np.testing.assert_array_equal(feats[:, :8].detach().numpy(),
                                  bilinear_lookup(f.planes["U"], uv, WRAP).detach().numpy())
    np.testing.assert_array_equal(feats[:, 16:].detach().numpy(),
                                  bilinear_lookup(f.planes["D"], 1 - hd, CLAMP).detach().numpy())
    out = f(uv, hd, 1 - hd).detach()
    assert out.shape == (7, 3) and float(out.min()) >= 0 and float(out.max()) <= 1


def test06_bundle_features_equal_model_features(tmp_path):
    torch.manual_seed(3)
    f = TriplePlaneField(u_res=12, hd_res=6, channels=8, hidden=16)
    rng = np.random.default_rng(4)
    n = 4096
    uv = rng.random((n, 2)).astype(np.float32)
    wi = rng.standard_normal((n, 3)).astype(np.float32)
    wo = rng.standard_normal((n, 3)).astype(np.float32)
    wi[:, 2], wo[:, 2] = np.abs(wi[:, 2]), np.abs(wo[:, 2])
    wi /= np.linalg.norm(wi, axis=1, keepdims=True)
    wo /= np.linalg.norm(wo, axis=1, keepdims=True)
    h, d = plane_coords(wi, wo)
    f.set_qat_mode(QatMode.OBSERVE)
    f.train()
    f(*(torch.from_numpy(a) for a in (uv, h, d)))  # record activation ranges
    bundle = to_bundle(f, OutputEncoding.linear(2.5), PLANE_PARAMETERIZATION, {"note": "test"})
    path = save_bundle(bundle, tmp_path / "m.nmat")
    bundle = load_bundle(path)
    assert bundle.feature_order("rgb") == ("U", "H", "D") and bundle.angle_param == PLANE_PARAMETERIZATION
    assert bundle.provenance["value_scale"] == 2.5 and bundle.provenance["plane_addressing"]["U"] == "wrap"
    with torch.no_grad():
        feats = f.features(*(torch.from_numpy(a) for a in (uv, h, d))).numpy()
    np.testing.assert_array_equal(bundle_features(bundle, uv, wi, wo), feats)
    # The renderer's INT8 result is the model's fake-quantized decoder, times value_scale.
    f.eval()
    f.set_qat_mode(QatMode.QUANTIZE)
    with torch.no_grad():
        fake = f(*(torch.from_numpy(a) for a in (uv, h, d))).numpy() * np.float32(2.5)
    int8 = render_int8(bundle, uv, wi, wo)
    lsb = float(bundle.mlps["rgb"].multipliers()[-1]) * 2.5
    diff = np.abs(int8 - fake)
    assert np.median(diff) < 1e-6 and np.mean(diff <= 2 * lsb) > 0.99, (np.median(diff), lsb)


def test07_metrics_mask_nan_targets_and_state_units():
    from neumat.metrics import error_metrics

    target = np.array([[0.5, 0.5, 0.5], [np.nan, 0.2, 0.2], [0.1, 0.1, 0.1]], np.float32)
    pred = np.array([[0.6, 0.5, 0.5], [9.0, 9.0, 9.0], [0.1, 0.1, 0.1]], np.float32)
    m = error_metrics(pred, target)
    assert m["valid"] == 2
    assert m["l1"] == pytest.approx(0.1 / 6, rel=1e-5)
    assert m["rel_l1"] == pytest.approx(0.1 / 1.8, rel=1e-5)
    assert m["psnr"] == pytest.approx(-10 * np.log10(0.01 / 6), rel=1e-5)


def test08_torch_mip_lookup_matches_the_renderers_definition():
    """trilinear_lookup (training) = neumat.material.mips.trilinear_lookup_np (renderers) to 1e-6,
    exactly the bilinear lookup for point samples (-inf) and footprints below a texel, and
    gradients reach the level-0 texels under a wide footprint."""
    from neumat.material.mips import mip_chain, trilinear_lookup_np
    from neumat.models.triple_plane import trilinear_lookup

    rng = np.random.default_rng(8)
    plane = rng.normal(size=(32, 32, 4)).astype(np.float32)
    st = rng.uniform(-1, 2, (500, 2)).astype(np.float32)
    footprint = rng.uniform(-8, 1, 500).astype(np.float32)
    footprint[:50] = -np.inf
    got = trilinear_lookup(torch.from_numpy(plane), torch.from_numpy(st), torch.from_numpy(footprint)).numpy()
    np.testing.assert_allclose(got, trilinear_lookup_np(mip_chain(plane), st, footprint), atol=1e-6)
    small = footprint <= -np.log2(32)
    np.testing.assert_array_equal(got[small], bilinear_lookup(torch.from_numpy(plane), torch.from_numpy(st),
                                                                "wrap").numpy()[small])
    p = torch.from_numpy(plane).requires_grad_()
    trilinear_lookup(p, torch.from_numpy(st[:1]), torch.zeros(1)).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), np.full_like(plane, 1.0 / 32**2), rtol=1e-5)  # the tile mean
