"""Output encodings (neumat.output_encoding): numpy definition, Slang decode, every evaluator.

Tolerances: the "linear" decode is one float32 multiply, bit-exact everywhere. The
"reinhard-v1" decode divides; numpy divides correctly rounded, Vulkan's OpFDiv may be off by
2.5 ulp (lavapipe and GPUs may use a reciprocal), so device vs numpy is compared with a
relative tolerance of 4 ulp (4 * 2^-23). The "log-v1" decode calls exp2, which Vulkan allows
3 + 2|t| ulp off: device vs numpy within (3 + 2 k y + 1) ulp of e = 2^(k y), times s_c.
numpy vs numpy stays bit-exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from neumat.bundle import make_random_bundle, save_bundle
from neumat.material import EvalError
from neumat.material.triple_plane import bundle_output_encoding, render_int8
from neumat.output_encoding import (
    ENCODINGS,
    LINEAR,
    LOG,
    REINHARD,
    Y_MAX,
    OutputEncoding,
    OutputEncodingError,
)
from neumat.quant import forward
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.reference.pipeline import reference_infer
from neumat.render.renderer import Renderer

ULP_REL = 4 * 2.0 ** -23
"""Relative device-vs-numpy tolerance of the reinhard decode (see the module docstring)."""
SCALE = (0.5, 1.0, 2.0)
REINHARD_ENC = OutputEncoding(REINHARD, SCALE)
LOG_ENC = OutputEncoding(LOG, SCALE, 14.0)


def _exp2_tolerance(enc: OutputEncoding, y: np.ndarray) -> np.ndarray:
    """Absolute device-vs-numpy bound of the "log-v1" decode at outputs ``y`` (module docstring)."""
    t = np.float64(enc.range_bits) * y
    return np.asarray(enc.scale) * np.exp2(t) * (4 + 2 * t) * 2.0 ** -23


def _y_samples(rng, n):
    """[n, 3] float32 outputs: uniform [0, 1] plus 0, 0.5, Y_MAX, 1 and neighbours of Y_MAX."""
    y = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    special = np.float32([0, 0.5, Y_MAX, 1, np.nextafter(Y_MAX, 1), np.nextafter(Y_MAX, 0)])
    return np.vstack([y, np.repeat(special[:, None], 3, axis=1)]).astype(np.float32)


def test01_round_trip_monotone_and_highlights():
    """decode(encode(v)) = v within 2 ulp-ish for 0 <= v <= 1023 s_c; decode is monotone
    non-decreasing and clamps at Y_MAX; a value 10x the scale survives (the old "linear"
    clamp would cut it to 1x)."""
    rng = np.random.default_rng(1)
    s = np.float32(SCALE)
    v = (s * rng.uniform(0, 1000, (20000, 3))).astype(np.float32)
    back = REINHARD_ENC.decode(REINHARD_ENC.encode(v))
    np.testing.assert_allclose(back, v, rtol=2e-4, atol=0)  # y has 24 bits; v/(s+v) at v = 1000 s: ~1e-4
    mid = v <= 10 * s
    np.testing.assert_allclose(back[mid], v[mid], rtol=5e-6, atol=1e-12)
    y = np.linspace(0, 1, 100001, dtype=np.float32)[:, None].repeat(3, 1)
    dec = REINHARD_ENC.decode(y)
    assert np.all(np.diff(dec, axis=0) >= 0) and np.all(np.diff(dec[y[:, 0] <= Y_MAX], axis=0)[1:] > 0)
    assert np.array_equal(REINHARD_ENC.decode(np.ones((1, 3), np.float32)), (s * 1023).reshape(1, 3))
    assert np.all(REINHARD_ENC.encode(np.float32([[-1, 0, 1e30]])) == np.float32([[0, 0, Y_MAX]]))
    assert np.array_equal(REINHARD_ENC.encode(s[None]), np.full((1, 3), 0.5, np.float32))  # s_c -> 0.5
    highlight = (10 * s)[None]
    np.testing.assert_allclose(REINHARD_ENC.decode(REINHARD_ENC.encode(highlight)), highlight, rtol=1e-6)
    linear = OutputEncoding.linear(2.0)
    assert np.max(linear.decode(np.clip(linear.encode(highlight), 0, 1))) == 2.0  # clipped at the scale
    y = rng.uniform(0, 1, (1000, 3)).astype(np.float32)
    assert np.array_equal(linear.decode(y), y * np.float32(2.0))  # one multiply, as before


def test01b_log_round_trip_relative_precision():
    """"log-v1": decode(encode(v)) = v within 10^-5 of v plus 2 ulp of s_c (e - 1 cancels below
    s_c: an absolute float32 floor of s_c 2^-22) over 10^-4 s_c .. (2^k - 1) s_c; decode is
    strictly increasing, 0 -> 0, 1 -> s_c (2^k - 1); encoding is clamped at 1; equal relative
    errors of v cost about equal steps of y above s_c (an L1 loss on y is relative there)."""
    rng = np.random.default_rng(11)
    s = np.float32(SCALE)
    top = s * (2 ** 14 - 1)
    v = (s * np.exp(rng.uniform(np.log(1e-4), np.log(2 ** 14 - 1), (20000, 3)))).astype(np.float32)
    back = LOG_ENC.decode(LOG_ENC.encode(v))
    assert np.all(np.abs(back.astype(np.float64) - v) <= 1e-5 * v + s * 2.0 ** -22)
    y = np.linspace(0, 1, 100001, dtype=np.float32)[:, None].repeat(3, 1)
    assert np.all(np.diff(LOG_ENC.decode(y), axis=0) > 0)
    assert np.array_equal(LOG_ENC.decode(np.zeros((1, 3), np.float32)), np.zeros((1, 3), np.float32))
    np.testing.assert_allclose(LOG_ENC.decode(np.ones((1, 3), np.float32))[0], top, rtol=1e-6)
    assert np.all(LOG_ENC.encode(np.float32([[-1, 0, 1e30]])) == np.float32([[0, 0, 1]]))
    dy = LOG_ENC.encode(np.float32([[1.1, 110, 11000]])) - LOG_ENC.encode(np.float32([[1, 100, 10000]]))
    np.testing.assert_allclose(dy[0, 1:], dy[0, 1], rtol=0.02)  # 10 % of v: the same step of y at 100 or 10^4
    assert abs(dy[0, 0] / dy[0, 1] - 1) < 0.5  # and not far from it at the scale itself


def test02_provenance_and_errors():
    assert OutputEncoding.from_provenance({}) == OutputEncoding.linear(1.0)  # old bundles: linear, 1
    assert OutputEncoding.from_provenance({"value_scale": 2.5}) == OutputEncoding.linear(2.5)
    for enc in (OutputEncoding.linear(0.25), REINHARD_ENC, LOG_ENC):
        assert OutputEncoding.from_provenance(enc.provenance()) == enc
    assert LOG_ENC.provenance() == {"output_encoding": "log-v1", "output_scale": [0.5, 1.0, 2.0],
                                    "output_range_bits": 14.0}
    assert LOG_ENC.index == 2
    assert REINHARD_ENC.provenance() == {"output_encoding": "reinhard-v1", "output_scale": [0.5, 1.0, 2.0]}
    assert ENCODINGS.index(REINHARD) == REINHARD_ENC.index == 1 and OutputEncoding.linear(1).index == 0
    bad = [({"output_encoding": "log1p-v9"}, "unknown output encoding 'log1p-v9'"),
           ({"output_encoding": REINHARD}, "needs provenance 'output_scale'"),
           ({"output_encoding": REINHARD, "output_scale": [1, 0, 1]}, "must be a finite number > 0"),
           ({"output_encoding": REINHARD, "output_scale": [1, float("nan"), 1]}, "finite number > 0"),
           ({"value_scale": -1.0}, "provenance 'value_scale' must be a finite number > 0"),
           ({"output_encoding": LOG, "output_scale": [1, 1, 1]}, "'output_range_bits' must be a finite number > 0"),
           ({"output_encoding": LOG, "output_scale": [1, 1, 1], "output_range_bits": "8"}, "finite number > 0")]
    for record, msg in bad:
        with pytest.raises(OutputEncodingError, match=msg):
            OutputEncoding.from_provenance(record)
    with pytest.raises(OutputEncodingError, match="one scale for all channels"):
        OutputEncoding(LINEAR, SCALE)
    with pytest.raises(OutputEncodingError, match="'reinhard-v1' has no range"):
        OutputEncoding(REINHARD, SCALE, 8.0)
    with pytest.raises(OutputEncodingError, match="output range \\(bits\\) must be a finite number > 0"):
        OutputEncoding(LOG, SCALE)
    b = make_random_bundle(np.random.default_rng(2))
    b.provenance["output_encoding"] = "nope"
    uv = np.zeros((4, 2), np.float32)
    w = np.tile(np.float32([0, 0, 1]), (4, 1))
    with pytest.raises(EvalError, match="unknown output encoding 'nope'"):
        render_int8(b, uv, w, w)


KERNELS = Path(__file__).with_name("test_output_encoding.slang")


def test03_slang_decode_matches_numpy(device):
    import slangpy as spy

    module = device.load_module_from_source("neumat_test_output_encoding", KERNELS.read_text(), path=str(KERNELS))
    kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point("decode_batch")]))
    y = _y_samples(np.random.default_rng(3), 20000)
    for enc in (OutputEncoding.linear(2.5), REINHARD_ENC, LOG_ENC):
        buf = device.create_buffer(usage=spy.BufferUsage.shader_resource, data=y.reshape(-1))
        out = device.create_buffer(usage=spy.BufferUsage.unordered_access, size=4 * y.size)
        kernel.dispatch(thread_count=[len(y), 1, 1], y=buf, result=out, count=len(y), encoding=enc.index,
                        scale=list(enc.scale), rangeBits=enc.range_bits)
        got = out.to_numpy().view(np.float32).reshape(-1, 3)
        ref = enc.decode(y)
        if enc.id == LINEAR:
            assert np.array_equal(got, ref)
        elif enc.id == LOG:
            assert np.all(np.abs(got.astype(np.float64) - ref) <= _exp2_tolerance(enc, y))
            assert np.max(got) > 1000 * max(SCALE)
        else:
            np.testing.assert_allclose(got, ref, rtol=ULP_REL, atol=0)
            assert np.max(got) <= np.float32(SCALE[2]) * 1023 * (1 + ULP_REL)


RES = 48


@pytest.fixture(scope="module")
def scene(device):
    """One random bundle rendered as "linear" x1 (the raw MLP output y), "reinhard-v1" and
    "log-v1", INT8 and FP32, on a plane under a directional light (btf AOV + debug features)."""
    cam = Camera.orbit(azimuth=-60, elevation=55, distance=3.0, width=RES, height=RES)
    light = DirectionalLight((0.2, -0.3, 0.93), (1.0, 1.0, 1.0))
    out = {}
    encodings = {"raw": OutputEncoding.linear(1.0), "reinhard": REINHARD_ENC, "log": LOG_ENC}
    for name, enc in encodings.items():
        b = make_random_bundle(np.random.default_rng(4))
        b.provenance.update(enc.provenance())
        r = Renderer(b, shapes.plane(2.0, segments=4), (RES, RES), device=device)
        for precision in ("int8", "fp32"):
            out[name, precision] = r.render(cam, [light], hf=False, synthesis=False, aovs=("btf",), debug=True,
                                            precision=precision)
        out[name, "bundle"] = b
    return cam, light, out


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test04_infer_pass_decodes(scene, precision):
    """The pass's reinhard / log btf = numpy decode of its own raw MLP output (same pass,
    "linear" x1), within 4 ulp (reinhard) or the exp2 bound (log), INT8 and FP32 paths;
    unlit/off-mask pixels stay 0."""
    _, _, out = scene
    raw = out["raw", precision].aovs["btf"].reshape(-1, 3)
    got = out["reinhard", precision].aovs["btf"].reshape(-1, 3)
    lit = np.any(raw > 0, axis=1)
    assert lit.mean() > 0.2
    np.testing.assert_allclose(got, REINHARD_ENC.decode(raw) * lit[:, None], rtol=ULP_REL, atol=0)
    assert np.max(got) > 2 * max(SCALE)  # values beyond the "linear" clamp reach the image
    got = out["log", precision].aovs["btf"].reshape(-1, 3).astype(np.float64)
    assert np.all(np.abs(got - LOG_ENC.decode(raw) * lit[:, None]) <= _exp2_tolerance(LOG_ENC, raw))


def test05_numpy_eval_reference_and_pass_agree(scene):
    """numpy eval (render_int8) = the render reference without feature LoD (bit-exact, both
    numpy); the reference with LoD (as the pass runs) = the Slang pass within 4 ulp on pixels
    whose int8-quantized features agree (see test_render_pipeline)."""
    from neumat.quant.reference import quantize_input

    cam, light, out = scene
    b, res = out["reinhard", "bundle"], out["reinhard", "int8"]
    g = {s: res.aovs[f"gbuffer.{s}"] for s in ("uv", "normal", "tangent", "position", "mask")}
    ref = reference_infer(b, g, cam.eye, light)
    idx = ref["index"]
    lit = ref["wi"][:, 2] > 0
    uv = g["uv"].reshape(-1, 4)[idx, :2]
    level0 = reference_infer(b, g, cam.eye, light, feature_lod=False)
    np.testing.assert_array_equal(render_int8(b, uv, ref["wi"], ref["wo"])[lit],
                                  level0["btf"].reshape(-1, 4)[idx, :3][lit])
    mlp = b.mlps["rgb"]
    feats = res.aovs["features"].reshape(-1, mlp.n_inputs)[idx]
    m0 = mlp.multipliers()[0]
    same = np.all(quantize_input(feats, m0) == quantize_input(ref["features"], m0), axis=1) & lit
    assert same.mean() > 0.9
    np.testing.assert_allclose(res.aovs["btf"].reshape(-1, 3)[idx][same], ref["btf"].reshape(-1, 4)[idx, :3][same],
                               rtol=ULP_REL, atol=0)
    np.testing.assert_allclose(res.aovs["btf"].reshape(-1, 3)[idx][same],
                               REINHARD_ENC.decode(forward(mlp, feats[same])), rtol=ULP_REL, atol=0)
    assert bundle_output_encoding(b) == REINHARD_ENC


def test06_training_targets_and_calibration():
    """to_plane_batch encodes targets with the run's encoding; "reinhard-v1" calibrates s to a
    quarter of the linear value_scale, "log-v1" to the median with a range reaching 4x the
    largest calibration value; checkpoints restore both; data.output_encoding is
    validated ("log-v1" by default)."""
    pytest.importorskip("torch")
    from neumat.angles import LEGACY_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION
    from neumat.material import DirectionCoding
    from neumat.train import ConfigError, TrainConfig, apply_overrides
    from neumat.train.export import state_coding
    from neumat.train.sampling import (
        CALIBRATION_STREAM,
        LOG_HEADROOM,
        REINHARD_SCALE_FRACTION,
        calibrate_output,
        stream_rng,
        to_plane_batch,
    )
    from train_fixtures import AnalyticBtf

    source = AnalyticBtf()
    enc = calibrate_output(source, 0, REINHARD, 4096, 0.999)
    rgb = source.sample(4096, stream_rng(0, CALIBRATION_STREAM), "train").rgb
    q = np.quantile(rgb.astype(np.float64), 0.999)
    assert REINHARD_SCALE_FRACTION == 0.25 and enc.scale == (0.25 * q,) * 3
    assert calibrate_output(source, 0, LINEAR, 4096, 0.999) == OutputEncoding.linear(q)
    assert calibrate_output(source, 0, REINHARD, 4096, 0.999, value_scale=3.0).scale == (3.0, 3.0, 3.0)
    log = calibrate_output(source, 0, LOG, 4096, 0.999)
    assert log.scale == (np.median(rgb.astype(np.float64)),) * 3
    np.testing.assert_allclose(log.decode(np.ones((1, 3), np.float32)), LOG_HEADROOM * rgb.max(), rtol=1e-5)
    assert np.all(log.encode(rgb) < 1) and calibrate_output(source, 0, LOG, 4096, 0.999, value_scale=3.0).scale[0] == 3
    batch = source.sample(256, np.random.default_rng(6), "train")
    p = to_plane_batch(batch, enc, DirectionCoding(PLANE_PARAMETERIZATION))
    assert np.array_equal(p.target, enc.encode(batch.rgb)) and p.target.max() < 1
    np.testing.assert_allclose(enc.decode(p.target), batch.rgb, rtol=1e-5, atol=1e-7)
    # Checkpoints record the run's encoding and angle parameterization; older ones had neither.
    assert state_coding({"value_scale": 2.0}) == (OutputEncoding.linear(2.0), LEGACY_PLANE_PARAMETERIZATION)
    assert state_coding({**enc.provenance(), "angle_param": PLANE_PARAMETERIZATION}) == (enc, PLANE_PARAMETERIZATION)
    assert TrainConfig().data.output_encoding == LOG
    assert apply_overrides(TrainConfig(), [f"data.output_encoding={REINHARD}"]).data.output_encoding == REINHARD
    with pytest.raises(ConfigError, match="data.output_encoding must be one of linear, reinhard-v1"):
        apply_overrides(TrainConfig(), ["data.output_encoding=log"])


def test07_v1_linear_bundle_evaluates_as_before(tmp_path):
    """A bundle as written before both changes (angle_param "rusinkiewicz-concentric-v1", no
    output_encoding, a value_scale; the shipped materials were such bundles until 2026-12-04)
    evaluates bit for bit as the old definition spelled out: Rusinkiewicz (theta_d, phi_d) on
    the D plane, INT8 MLP output times value_scale."""
    from neumat.angles import LEGACY_PLANE_PARAMETERIZATION, hemisphere_to_square, rusinkiewicz
    from neumat.bundle import load_bundle, make_random_bundle
    from neumat.material import bilinear_lookup_np
    from neumat.material.triple_plane import WRAP_PLANES

    old = make_random_bundle(np.random.default_rng(8), plane_dtype=np.float32)
    old.angle_param = LEGACY_PLANE_PARAMETERIZATION
    old.provenance = {"value_scale": 0.37}
    save_bundle(old, tmp_path / "old.nmat")
    bundle = load_bundle(tmp_path / "old.nmat")
    assert bundle.angle_param == LEGACY_PLANE_PARAMETERIZATION and "output_encoding" not in bundle.provenance
    rng = np.random.default_rng(7)
    n = 4096
    uv = rng.uniform(0, 1, (n, 2)).astype(np.float32)
    w = rng.normal(size=(2, n, 3))
    w[..., 2] = np.abs(w[..., 2])
    wi, wo = (w / np.linalg.norm(w, axis=-1, keepdims=True)).astype(np.float32)
    wo[:64] = wi[:64] * np.float32([-1, -1, 1])  # mirror configurations
    th, ph, td, pd = rusinkiewicz(wi, wo)
    coords = {"U": uv, "H": hemisphere_to_square(th, ph), "D": hemisphere_to_square(td, pd)}
    feats = np.concatenate([bilinear_lookup_np(bundle.planes[p], coords[p], p in WRAP_PLANES)
                            for p in bundle.feature_order("rgb")], axis=1)
    expect = forward(bundle.mlps["rgb"], feats) * np.float32(bundle.provenance["value_scale"])
    assert np.array_equal(render_int8(bundle, uv, wi, wo), expect)
