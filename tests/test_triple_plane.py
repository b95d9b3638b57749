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


def _tiny_run(lod_pyramid, steps):
    from neumat.train import TrainConfig, train
    from neumat.train.config import SourceConfig

    cfg = TrainConfig(steps=steps, max_minutes=0, progress=False, out="", val_every=10**6, ckpt_every=10**6,
                      lod_pyramid=lod_pyramid)
    cfg.source = SourceConfig(kind="material", name="leather", resolution=64, pool_size=20000)
    cfg.model.u_res, cfg.model.hd_res = 32, 16
    cfg.data.batch_size, cfg.data.val_samples, cfg.data.calibration_samples = 1024, 2048, 4096
    cfg.optim.warmup_steps = 5
    return train(cfg)


@pytest.fixture(scope="module")
def point_and_pyramid_runs():
    """A point-only run of 40 steps and a learned-pyramid run whose point phase is the same 40
    steps (lod_pyramid 0.5 of 80)."""
    return _tiny_run(0.0, 40), _tiny_run(0.5, 80)


def test09_learned_pyramid_leaves_every_point_read_bit_identical(point_and_pyramid_runs, tmp_path):
    """The pyramid phase changes nothing but the stored coarse U levels: planes, INT8 MLP and the
    held-out figures equal the point-only run's; the levels are stored, reloaded, tagged
    learned-mip, moved away from the box chain, and features and INT8 outputs at footprints of at
    most one U texel are bit-identical between the two bundles."""
    from neumat.material import ReliefSlope
    from neumat.material.mips import LEARNED_MIP_VISIBLE, U_FILTER_KEY, mip_chain, trained_for_lod, trilinear_lookup_np, u_chain
    from neumat.material.visible_slope import VISIBLE_SLOPE_GAIN
    from neumat.quant import forward

    point, pyramid = point_and_pyramid_runs
    a, b = point.bundle, pyramid.bundle
    for p in "UHD":
        assert np.array_equal(a.planes[p], b.planes[p])
    assert all(np.array_equal(x, y) for x, y in zip(a.mlps["rgb"].packed, b.mlps["rgb"].packed, strict=True))
    assert np.array_equal(a.mlps["rgb"].scales, b.mlps["rgb"].scales)
    assert point.metrics["int8_rel_l1"] == pyramid.metrics["int8_rel_l1"]
    assert U_FILTER_KEY not in a.provenance and not a.u_levels
    assert b.provenance[U_FILTER_KEY] == LEARNED_MIP_VISIBLE and trained_for_lod(b.provenance)
    # the coarse levels were fitted in the visible relief frame, and renderers read them in it
    assert ReliefSlope.of_bundle(b).visible_gain == VISIBLE_SLOPE_GAIN and ReliefSlope.of_bundle(a).visible_gain == 0
    save_bundle(b, tmp_path / "p.nmat")
    b = load_bundle(tmp_path / "p.nmat")
    box = mip_chain(b.planes["U"])
    assert [lv.shape for lv in b.u_levels] == [lv.shape for lv in box[1:]]
    assert all(np.abs(lv - bx).mean() > 1e-3 for lv, bx in zip(b.u_levels, box[1:]))
    assert all(np.array_equal(x, y) for x, y in zip(u_chain(b)[1:], b.u_levels))
    assert all(np.array_equal(x, y) for x, y in zip(u_chain(a), box))  # no levels: the box chain
    rng = np.random.default_rng(9)
    st = rng.random((4000, 2), dtype=np.float32)
    footprint = rng.uniform(-12, -np.log2(32), 4000).astype(np.float32)  # <= one U texel
    fa = trilinear_lookup_np(u_chain(a), st, footprint)
    fb = trilinear_lookup_np(u_chain(b), st, footprint)
    assert np.array_equal(fa, fb)
    hd = rng.random((4000, 2), dtype=np.float32)
    feats = [np.concatenate([f, bilinear_lookup_np(x.planes["H"], hd, False), bilinear_lookup_np(x.planes["D"], hd, False)],
                            axis=1) for f, x in ((fa, a), (fb, b))]
    assert np.array_equal(forward(a.mlps["rgb"], feats[0]), forward(b.mlps["rgb"], feats[1]))
    wide = np.full(4000, -2.0, np.float32)  # 8 U texels: the learned levels are read
    assert not np.array_equal(trilinear_lookup_np(u_chain(a), st, wide), trilinear_lookup_np(u_chain(b), st, wide))


def test10_pyramid_fits_prefiltered_samples_better_than_the_box_chain(point_and_pyramid_runs):
    """On fresh prefiltered samples the learned levels decode closer to the box means than the
    box chain of the same level 0 (fake-quantized decoder, encoded units)."""
    _, run = point_and_pyramid_runs
    from neumat.data import PointBtf, PointBtfConfig, make_material
    from neumat.material import DirectionCoding
    from neumat.train.export import material_surface, surface_relief
    from neumat.train.sampling import to_plane_batch

    bundle = run.bundle
    source = PointBtf(make_material("leather", 64), PointBtfConfig(lod_res=32, lod_pool_size=0))
    batch = source.sample(4096, np.random.default_rng(5), "prefiltered")
    coding = DirectionCoding(bundle.angle_param, surface_relief(material_surface(source), 32))
    pb = to_plane_batch(batch, run.output, coding)
    errors = []
    from neumat.quant import forward
    from neumat.material.mips import mip_chain, trilinear_lookup_np, u_chain

    for chain in (mip_chain(bundle.planes["U"]), u_chain(bundle)):
        u = trilinear_lookup_np(chain, pb.uv, pb.footprint)
        feats = np.concatenate([u, bilinear_lookup_np(bundle.planes["H"], pb.h, False),
                                bilinear_lookup_np(bundle.planes["D"], pb.d, False)], axis=1)
        errors.append(float(np.abs(forward(bundle.mlps["rgb"], feats) - pb.target).mean()))
    assert errors[1] < errors[0], errors  # 40 point steps: the decoder, not U, limits both


def test11_network_target_pyramid_on_any_source_resumes_bit_identically(tmp_path):
    """lod_target "network" fits the levels to the frozen network's own box means, so a source
    without rendered boxes (the analytic BTF) gets a learned pyramid too; a run killed inside the
    pyramid phase and resumed ends bit-identical to an uninterrupted one (levels, their
    optimizer, the frozen rest)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from neumat.train import train
    from neumat.train.checkpoint import load_checkpoint
    from train_fixtures import AnalyticBtf, Interrupted, assert_same_checkpoint, small_config, stop_at

    over = ("lod_pyramid=0.25", 'lod_target="network"', "lod_taps=2")
    full = train(small_config(tmp_path / "full", *over), AnalyticBtf())
    assert full.bundle.provenance["u_filter"] == "learned-mip-visible-slope-v2" and full.bundle.u_levels
    cfg = small_config(tmp_path / "killed", *over)
    with pytest.raises(Interrupted):
        train(cfg, AnalyticBtf(), callbacks=[stop_at(21)])  # checkpoint at 20: pyramid steps 18..23
    resumed = train(cfg, AnalyticBtf(), resume=True)
    assert_same_checkpoint(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))
    plain = train(small_config(tmp_path / "plain", "steps=18", "lod_pyramid=0"), AnalyticBtf())
    for p in "UHD":
        assert np.array_equal(plain.bundle.planes[p], full.bundle.planes[p])
