"""The InstantNeuralMaterial directory layout: exact round trip, file sizes and contents, the
H-U-D input order, and an emulation of INM's loader + CUDA INT8 kernel indexing in numpy."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_settings import fuzz_settings
from neumat.bundle import BundleError, export_inm, import_inm, make_random_bundle
from neumat.bundle.inm_layout import (
    INM_CUDA_STAGED_WORDS,
    inm_columns,
    inm_cuda_scales,
    to_inm_features,
    to_inm_mlp,
)
from neumat.quant import Int8MLP, forward
from neumat.quant.reference import quantize_input
from neumat.quant.testvectors import random_inputs


def rng(seed=0):
    return np.random.default_rng(seed)


def f32(path):
    return np.fromfile(path, dtype="<f4")


def same_mlp(a: Int8MLP, b: Int8MLP):
    assert a.widths == b.widths and a.scales.tobytes() == b.scales.tobytes()
    assert all(np.array_equal(p, q) for p, q in zip(a.packed, b.packed, strict=True))


@pytest.mark.parametrize("order", list(itertools.permutations(["U", "H", "D"])))
@pytest.mark.parametrize("channels, dtype", [(8, np.float16), (6, np.float32), (1, np.float16)])
def test01_round_trip_is_exact(tmp_path, order, channels, dtype):
    b = make_random_bundle(
        rng(1), channels=channels, plane_dtype=dtype, order=order, with_height=channels != 1
    )
    b.provenance = {"git": "deadbeef", "metrics": {"l1": 0.02}}
    export_inm(b, tmp_path, "mat")
    c = import_inm(tmp_path, "mat")
    assert c.checksum() == b.checksum() and c.inputs == b.inputs and c.provenance == b.provenance
    for p in "UHD":
        assert c.planes[p].dtype == b.planes[p].dtype
        np.testing.assert_array_equal(c.planes[p], b.planes[p])
    same_mlp(c.mlps["rgb"], b.mlps["rgb"])
    x = random_inputs(b.mlps["rgb"], 128, rng(2))
    assert forward(c.mlps["rgb"], x).tobytes() == forward(b.mlps["rgb"], x).tobytes()
    assert (c.height is None) == (b.height is None) and c.height_range == b.height_range


def test02_file_names_sizes_and_headers(tmp_path):
    b = make_random_bundle(rng(3))  # U 16x16x8, H/D 8x8x8, 24 -> 32 -> 32 -> 32 -> 3
    files = export_inm(b, tmp_path, "leather")
    sizes = {p.name: p.stat().st_size for p in files.values()}
    assert sizes == {
        "PlaneInfo_leather.bin": 24,
        "PlaneMeta_leather.bin": 24,
        "UPlane_leather.bin": 2 * 16 * 16 * 4 * 4,
        "HPlane_leather.bin": 2 * 8 * 8 * 4 * 4,
        "DPlane_leather.bin": 2 * 8 * 8 * 4 * 4,
        "ModelInfo_leather.bin": 9 * 4,
        "Weight_int8_leather.bin": INM_CUDA_STAGED_WORDS * 4 * 4,
        "Scales_leather.bin": 8 * 4,
        "Weight_leather.bin": (24 * 32 + 32 * 32 + 32 * 32 + 32 * 4) * 4,
        "Bias_leather.bin": (32 + 32 + 32 + 4) * 4,
        "Height_leather.bin": 16 * 16 * 4,
        "PlaneMeta_leather.json": sizes["PlaneMeta_leather.json"],
        "ModelInfo_leather.json": sizes["ModelInfo_leather.json"],
    }
    assert f32(files["plane_info"]).tolist() == [16, 2, 8, 2, 8, 2]
    assert f32(files["model_info"]).tolist() == [4, 24, 32, 32, 32, 32, 32, 32, 4]
    assert f32(files["scales"]).tobytes() == b.mlps["rgb"].scales.tobytes()
    info = json.loads(files["model_info_json"].read_text())
    assert info["inm_cuda_kernel_compatible"] and info["inm_widths"] == [24, 32, 32, 32, 3]
    assert info["inm_input_order"] == [["H", 8], ["U", 8], ["D", 8]]
    np.testing.assert_array_equal(np.float32(info["inm_cuda_scales"]), inm_cuda_scales(b.mlps["rgb"].scales))
    # U plane file: [layer][row=v][col=u][rgba]; channel c in layer c // 4, component c % 4
    u = f32(files["U"]).reshape(2, 16, 16, 4)
    np.testing.assert_array_equal(u[1, 3, 5, 2], np.float32(b.planes["U"][3, 5, 6]))
    np.testing.assert_array_equal(u[0, 15, 0, :], b.planes["U"][15, 0, :4].astype(np.float32))


def emulate_inm_cuda(stream: np.ndarray, scales8: np.ndarray, x_inm: np.ndarray):
    """numpy model of MLPCuda::loadInt8 + Inference.cu inferInt8 (float accumulation path)."""
    v = stream.astype(np.int64)
    words = (
        (v[0::4] & 0xFF)
        | ((v[1::4] << 8) & 0xFF00)
        | ((v[2::4] << 16) & 0xFF0000)
        | ((v[3::4] << 24) & 0xFF000000)
    )
    wbytes = words.astype(np.uint32).view(np.int8).reshape(-1, 4).astype(np.int64)

    def layer(start, rows, packed_cols):  # W[start + k * packed_cols + j], 4 bytes per word
        return wbytes[start : start + rows * packed_cols].reshape(rows, packed_cols * 4)

    mats = [layer(0, 32, 6), layer(192, 32, 8), layer(448, 32, 8), layer(704, 3, 8)]
    s = scales8.astype(np.float32)
    q = np.clip(np.rint(x_inm.astype(np.float32) * s[0]), -127, 127).astype(np.int64)
    accs = []
    for i, w in enumerate(mats):
        acc = q @ w.T
        accs.append(acc)
        real = np.maximum(acc, 0).astype(np.float32) * s[2 * i + 1]
        if i < 3:
            q = np.clip(np.rint(real * s[2 * i + 2]), -127, 127).astype(np.int64)
    return accs, real


@pytest.mark.parametrize("order", [("U", "H", "D"), ("D", "H", "U")])
def test03_inm_kernel_reads_our_weights_in_h_u_d_order(tmp_path, order):
    b = make_random_bundle(rng(4), order=order)
    files = export_inm(b, tmp_path, "m")
    mlp = b.mlps["rgb"]
    x = random_inputs(mlp, 256, rng(5))
    columns = inm_columns(b.inputs["rgb"])
    x_inm = to_inm_features(x, columns)
    accs, out = emulate_inm_cuda(f32(files["weight_int8"]), inm_cuda_scales(mlp.scales), x_inm)
    # First-layer accumulators are exact integers: identical to neumat's on the bundle order.
    q0 = quantize_input(x, mlp.multipliers()[0]).astype(np.int64)
    np.testing.assert_array_equal(accs[0], q0 @ mlp.weights_int8(0).T.astype(np.int64))
    # INM requantizes with two multiplies and does not clamp the output: close, not bit-exact.
    ref = forward(mlp, x)
    diff = np.abs(np.clip(out, 0, 1) - ref)
    assert np.mean(diff > 0) < 0.01 and diff.max() < 0.05


def test04_input_order_changes_columns_not_the_function(tmp_path):
    a = make_random_bundle(rng(6), order=("U", "H", "D"))
    w0 = a.mlps["rgb"].weights_int8(0)  # columns: U 0..7, H 8..15, D 16..23
    perm = np.r_[8:16, 0:8, 16:24]  # same network reading H, U, D
    rest = [a.mlps["rgb"].weights_int8(i) for i in range(1, 4)]
    hud = Int8MLP.from_int8([np.ascontiguousarray(w0[:, perm]), *rest], a.mlps["rgb"].scales)
    b = type(a).triple_plane(a.planes["U"], a.planes["H"], a.planes["D"], hud, order=("H", "U", "D"))
    fa, fb = export_inm(a, tmp_path / "a", "m"), export_inm(b, tmp_path / "b", "m")
    assert fa["weight_int8"].read_bytes() == fb["weight_int8"].read_bytes()  # INM order is canonical
    x = random_inputs(a.mlps["rgb"], 200, rng(7))
    inm = to_inm_mlp(a.mlps["rgb"], inm_columns(a.inputs["rgb"]))
    assert (
        forward(inm, to_inm_features(x, inm_columns(a.inputs["rgb"]))).tobytes()
        == forward(a.mlps["rgb"], x).tobytes()
    )
    assert forward(hud, x[:, perm]).tobytes() == forward(a.mlps["rgb"], x).tobytes()


def test05_padded_channels_get_zero_weight_columns(tmp_path):
    b = make_random_bundle(rng(8), channels=6, order=("D", "U", "H"))
    columns = inm_columns(b.inputs["rgb"])
    assert columns.tolist() == [
        12,
        13,
        14,
        15,
        16,
        17,
        -1,
        -1,
        6,
        7,
        8,
        9,
        10,
        11,
        -1,
        -1,
        0,
        1,
        2,
        3,
        4,
        5,
        -1,
        -1,
    ]
    inm = to_inm_mlp(b.mlps["rgb"], columns)
    assert inm.widths == (24, 32, 32, 32, 3) and not inm.weights_int8(0)[:, columns < 0].any()


def test06_cuda_scales_mean_what_inm_hard_codes():
    # NeuralMatRendering.h, leather11: {1/0.003400295..., 1.1354546...e-05, 1/0.0024283..., ...}
    sa0, prod0 = 0.003400295041501522, 1.1354546586517245e-05
    scales = np.float32([sa0, prod0 / sa0])
    got = inm_cuda_scales(scales)
    np.testing.assert_allclose(got, [1.0 / sa0, prod0], rtol=1e-6)


def _break(tmp_path, edit):
    export_inm(make_random_bundle(rng(9)), tmp_path, "m")
    edit(tmp_path)
    return tmp_path


def _truncate(name, keep=-4):
    def edit(d):
        p = d / name
        p.write_bytes(p.read_bytes()[:keep])

    return edit


def _rewrite(name, fn):
    def edit(d):
        p = d / name
        p.write_bytes(fn(p.read_bytes()))

    return edit


def _poke(name, index, value):
    def fn(data):
        a = np.frombuffer(data, dtype="<f4").copy()
        a[index] = value
        return a.tobytes()

    return _rewrite(name, fn)


def _json(name, key, value):
    def fn(data):
        m = json.loads(data)
        m[key] = value
        return json.dumps(m).encode()

    return _rewrite(name, fn)


BROKEN = {
    "missing_plane": (lambda d: (d / "HPlane_m.bin").unlink(), "HPlane_m.bin is missing"),
    "missing_json": (lambda d: (d / "ModelInfo_m.json").unlink(), "ModelInfo_m.json is missing"),
    "missing_weights": (lambda d: (d / "Weight_int8_m.bin").unlink(), "is missing"),
    "short_plane": (_truncate("UPlane_m.bin"), "short"),
    "short_weights": (_truncate("Weight_int8_m.bin", 100), "short"),
    "long_scales": (_rewrite("Scales_m.bin", lambda b: b + b"\0\0\0\0"), "too long"),
    "plane_info": (_poke("PlaneInfo_m.bin", 0, 17.0), "disagrees"),
    "model_info": (_poke("ModelInfo_m.bin", 1, 28.0), "disagrees"),
    "weight_fraction": (_poke("Weight_int8_m.bin", 5, 0.5), "not integers"),
    "weight_range": (_poke("Weight_int8_m.bin", 5, 128.0), "not integers in"),
    "weight_tail": (_poke("Weight_int8_m.bin", -1, 3.0), "after the last layer"),
    "scale_nan": (_poke("Scales_m.bin", 2, np.nan), "scales must be finite"),
    "plane_nan": (_poke("DPlane_m.bin", 7, np.inf), "NaN/inf"),
    "bad_json": (_rewrite("PlaneMeta_m.json", lambda b: b[:20]), "not valid JSON"),
    "version": (_json("ModelInfo_m.json", "version", 2), "version 1"),
    "inputs": (_json("ModelInfo_m.json", "inputs", [["U", 8], ["H", 8]]), "U, H and D"),
    "widths": (_json("ModelInfo_m.json", "widths", [24, 3]), "inm_widths|disagrees|short|too long"),
    "provenance": (_json("ModelInfo_m.json", "provenance", "x"), "provenance"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test07_broken_directories_raise_bundle_error(tmp_path, case):
    edit, message = BROKEN[case]
    d = _break(tmp_path, edit)
    with pytest.raises(BundleError, match=message):
        import_inm(d, "m")


def test08_pad_channel_weights_and_values_must_be_zero(tmp_path):
    b = make_random_bundle(rng(10), channels=6)
    export_inm(b, tmp_path, "m")
    _poke("Weight_int8_m.bin", 6, 1.0)(tmp_path)  # layer 0, row 0, column 6 = H pad channel
    with pytest.raises(BundleError, match="padded input channels are not zero"):
        import_inm(tmp_path, "m")
    export_inm(b, tmp_path, "m")
    _poke("UPlane_m.bin", 16 * 16 * 4 + 2, 1.0)(
        tmp_path
    )  # layer 1, texel (0, 0), component 2 = pad channel 6
    with pytest.raises(BundleError, match="padding channels"):
        import_inm(tmp_path, "m")


def test09_export_refuses_what_inm_cannot_hold(tmp_path):
    with pytest.raises(BundleError, match="triple-plane materials only"):
        export_inm(make_random_bundle(rng(11), kind="neumip"), tmp_path, "m")
    b = make_random_bundle(rng(11))
    b.planes["U"] = b.planes["U"][:8]
    with pytest.raises(BundleError, match="square"):
        export_inm(b, tmp_path, "m")
    with pytest.raises(BundleError, match="name"):
        export_inm(make_random_bundle(rng(11)), tmp_path, "../escape")
    assert not any(tmp_path.iterdir())


INM_GOOD = {}


def _inm_good(tmp_root):
    if not INM_GOOD:
        files = export_inm(make_random_bundle(rng(12), channels=6), tmp_root / "good", "m")
        INM_GOOD.update({p.name: p.read_bytes() for p in files.values()})
    return INM_GOOD


@pytest.mark.fuzz
@fuzz_settings(150)
@given(data=st.data())
def test10_fuzzed_directories_raise_only_bundle_error(tmp_path_factory, data):
    good = _inm_good(tmp_path_factory.getbasetemp())
    name = data.draw(st.sampled_from(sorted(good)))
    blob = bytearray(good[name])
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, max(len(blob) - 1, 0)))]
    else:
        for pos, mask in data.draw(
            st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)), max_size=4)
        ):
            blob[pos] ^= mask
    d = tmp_path_factory.mktemp("inm")
    for n, content in good.items():
        (d / n).write_bytes(bytes(blob) if n == name else content)
    try:
        import_inm(d, "m")
    except BundleError as e:
        assert "internal error" not in str(e), str(e)
