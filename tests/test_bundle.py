"""The .nmat bundle: round trips, every BundleError case, atomic writes, checksum, inspect."""

import contextlib
import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

from neumat.bundle import (
    FORMAT_NAME,
    Bundle,
    BundleError,
    bundle_bytes,
    content_checksum,
    inspect_bundle,
    load_bundle,
    make_random_bundle,
    save_bundle,
)
from neumat import fileio as atomic
from neumat.bundle.container import serialize
from neumat.bundle.manifest import FORMAT_VERSION, build_manifest, manifest_checksum
from neumat.quant import Int8MLP, forward
from neumat.quant.testvectors import random_inputs


def rng(seed=0):
    return np.random.default_rng(seed)


def craft(path, bundle, edit_tensors=None, edit_manifest=None, metadata=None):
    """Write ``bundle`` with edits that bypass validation; the checksum and tensor table follow
    the edited tensors, and the checksum the edited manifest, unless ``edit_manifest`` changes
    them (a manifest that is not strict JSON keeps the old checksum: load rejects it first)."""
    tensors = bundle.tensors()
    if edit_tensors:
        edit_tensors(tensors)
    manifest = build_manifest(bundle, tensors, content_checksum(tensors))
    if edit_manifest:
        sealed = manifest["checksum"]
        edit_manifest(manifest)
        if manifest.get("checksum") == sealed:
            with contextlib.suppress(BundleError):
                manifest["checksum"] = manifest_checksum(manifest, content_checksum(tensors))
    meta = metadata if metadata is not None else {"neumat": json.dumps(manifest)}
    path.write_bytes(serialize(tensors, meta))
    return path


def assert_same(a: Bundle, b: Bundle):
    assert a.kind == b.kind and a.inputs == b.inputs and a.provenance == b.provenance
    assert a.angle_param == b.angle_param and a.colour_space == b.colour_space
    assert sorted(a.planes) == sorted(b.planes)
    for k in a.planes:
        assert a.planes[k].dtype == b.planes[k].dtype
        np.testing.assert_array_equal(a.planes[k], b.planes[k])
    for k in a.mlps:
        assert a.mlps[k].widths == b.mlps[k].widths
        assert a.mlps[k].scales.tobytes() == b.mlps[k].scales.tobytes()
        for p, q in zip(a.mlps[k].packed, b.mlps[k].packed, strict=True):
            np.testing.assert_array_equal(p, q)
    assert (a.height is None) == (b.height is None)
    if a.height is not None:
        np.testing.assert_array_equal(a.height, b.height)
        assert a.height_range == b.height_range and a.height_units == b.height_units


@pytest.mark.parametrize("kind", ["triple_plane", "neumip"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test01_round_trip(tmp_path, kind, dtype):
    b = make_random_bundle(rng(1), kind=kind, plane_dtype=dtype, channels=6)
    b.provenance = {"git": "abc123", "config": {"lr": 0.01, "epochs": 3}, "metrics": {"l1": 0.023}}
    path = save_bundle(b, tmp_path / "m.nmat")
    c = load_bundle(path)
    assert_same(b, c)
    assert c.checksum() == b.checksum()
    for net, mlp in b.mlps.items():
        x = random_inputs(mlp, 64, rng(2))
        assert forward(c.mlps[net], x).tobytes() == forward(mlp, x).tobytes()


def test02_file_is_plain_safetensors_with_manifest(tmp_path):
    b = make_random_bundle(rng(3), order=("D", "U", "H"))
    path = save_bundle(b, tmp_path / "m.nmat")
    tensors = load_file(str(path))  # the stock safetensors reader opens it
    assert sorted(tensors) == sorted(b.tensors())
    assert tensors["mlp.rgb.weight.0"].dtype == np.uint32 and tensors["mlp.rgb.weight.0"].shape == (32, 6)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    manifest = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["neumat"])
    assert manifest["format"] == FORMAT_NAME and manifest["version"] == FORMAT_VERSION == 2
    assert manifest["kind"] == "triple_plane"
    assert manifest["checksum"] == manifest_checksum(manifest, b.checksum())  # the manifest and the tensors
    assert manifest["networks"]["rgb"]["inputs"] == [["D", 8], ["U", 8], ["H", 8]]
    assert manifest["networks"]["rgb"]["widths"] == [24, 32, 32, 32, 3]
    assert manifest["height"] == {"range": [-0.02, 0.03], "units": "uv"}
    assert manifest["tensors"]["plane.U"] == {"dtype": "float16", "shape": [16, 16, 8]}
    assert b.feature_order("rgb") == ("D", "U", "H")


def _set(path, value):
    def edit(m):
        target = m
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


def _replace(name, fn):
    def edit(t):
        t[name] = fn(t[name])

    return edit


def _scale(value):
    return _replace(
        "mlp.rgb.scales", lambda s: np.where(np.arange(s.size) == 3, np.float32(value), s).astype(np.float32)
    )


def _weight(value):
    def fn(w):
        w = w.copy()
        w[0, 0] = value
        return w

    return _replace("mlp.rgb.weight.1", fn)


MANIFEST_CASES = {
    "format": (_set(["format"], "safetensors"), "not a neumat bundle"),
    "version": (_set(["version"], 3), r"versions \[1, 2\]"),
    "version_bool": (_set(["version"], True), "not supported"),
    "kind": (_set(["kind"], "nerf"), "unknown model kind 'nerf'"),
    "missing_key": (_set(["colour_space"], KeyError), r"missing \['colour_space'\]"),
    "extra_key": (_set(["shader"], "x"), r"unexpected \['shader'\]"),
    "colour": (_set(["colour_space"], "srgb"), "colour space 'srgb'"),
    "axes": (_set(["plane_axes"], ["u", "v", "channel"]), "plane_axes"),
    "table_dtype": (_set(["tensors", "plane.U", "dtype"], "float32"), "manifest says"),
    "table_shape": (_set(["tensors", "plane.U", "shape"], [16, 16, 9]), "manifest says"),
    "table_missing": (
        _set(["tensors", "ghost"], {"dtype": "float32", "shape": [1]}),
        "missing from the file",
    ),
    "table_extra": (_set(["tensors", "plane.U"], KeyError), "does not list"),
    "checksum": (_set(["checksum"], "sha256:" + "0" * 64), "checksum mismatch"),
    "networks": (_set(["networks", "extra"], {}), "networks"),
    "widths_type": (_set(["networks", "rgb", "widths"], "24,32"), "widths must be"),
    "widths_layers": (_set(["networks", "rgb", "widths"], [24, 32, 32, 3]), "unexpected"),
    "widths_values": (_set(["networks", "rgb", "widths"], [24, 32, 32, 30, 3]), "INT8 MLP contract"),
    "inputs_sum": (_set(["networks", "rgb", "inputs"], [["U", 8], ["H", 8]]), r"planes \['U', 'H', 'D'\]"),
    "inputs_width": (_set(["networks", "rgb", "inputs"], [["U", 4], ["H", 8], ["D", 8]]), "has 8 channels"),
    "inputs_source": (
        _set(["networks", "rgb", "inputs"], [["U", 8], ["H", 8], ["wo", 8]]),
        "unknown source 'wo'",
    ),
    "weight_layout": (_set(["networks", "rgb", "weight_layout"], "int8-rows"), "weight_layout"),
    "height_null": (_set(["height"], None), r"unexpected \['height'\]"),
    "height_range": (_set(["height", "range"], [0.1, 0.1]), "h_min < h_max"),
    "height_nan": (_set(["height", "range"], [float("nan"), 1.0]), "finite"),
    "height_units": (_set(["height", "units"], "inches"), "height_units"),
    "angle_param": (_set(["angle_param"], ""), "angle_param"),
    "provenance": (_set(["provenance"], [1, 2]), "provenance"),
}

TENSOR_CASES = {
    "missing_plane": (lambda t: t.pop("plane.D"), r"missing \['plane.D'\]"),
    "extra_tensor": (lambda t: t.__setitem__("extra", np.zeros(3, np.float32)), r"unexpected \['extra'\]"),
    "missing_layer": (lambda t: t.pop("mlp.rgb.weight.3"), "missing"),
    "plane_dtype": (
        _replace("plane.U", lambda a: a.astype(np.float32).view(np.uint32)),
        "float16 or float32",
    ),
    "plane_nan": (_replace("plane.H", lambda a: np.where(a > 0.5, np.float16("nan"), a)), "NaN/inf"),
    "plane_channels": (_replace("plane.U", lambda a: a[..., :7].copy()), "has 7 channels"),
    "scale_nan": (_scale("nan"), "scales must be finite and > 0"),
    "scale_inf": (_scale("inf"), "scales must be finite and > 0"),
    "scale_zero": (_scale(0.0), "scales must be finite and > 0"),
    "scale_negative": (_scale(-0.5), "scales must be finite and > 0"),
    "scales_dtype": (_replace("mlp.rgb.scales", lambda s: s.astype(np.float16)), "scales float32"),
    "scales_count": (_replace("mlp.rgb.scales", lambda s: s[:-1].copy()), "expected 8 scales"),
    "weight_minus128": (_weight(0x80), "-128"),
    "weight_shape": (_replace("mlp.rgb.weight.1", lambda w: w[:, :7].copy()), "packed shape"),
    "height_range": (_replace("height", lambda h: h * 2.0), "values must be finite and in"),
    "height_rank": (_replace("height", lambda h: h[None]), r"float32 \[rows, cols\]"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test03_manifest_errors(tmp_path, case):
    edit, message = MANIFEST_CASES[case]
    path = craft(tmp_path / "m.nmat", make_random_bundle(rng(4)), edit_manifest=edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test04_tensor_errors(tmp_path, case):
    edit, message = TENSOR_CASES[case]
    path = craft(tmp_path / "m.nmat", make_random_bundle(rng(5)), edit_tensors=edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test05_weight_padding_bytes_must_be_zero(tmp_path):
    b = make_random_bundle(rng(6), channels=6)  # 18 inputs: 2 padding bytes per row of layer 0
    path = craft(
        tmp_path / "m.nmat", b, edit_tensors=_replace("mlp.rgb.weight.0", lambda w: w | np.uint32(1 << 24))
    )
    with pytest.raises(BundleError, match="padding bytes must be zero"):
        load_bundle(path)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({}, "no 'neumat' manifest"),
        ({"neumat": "{not json"}, "not valid JSON"),
        ({"neumat": "[1]"}, "JSON object"),
    ],
)
def test06_metadata_errors(tmp_path, metadata, message):
    path = craft(tmp_path / "m.nmat", make_random_bundle(rng(7)), metadata=metadata)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test07_container_errors(tmp_path):
    good = bundle_bytes(make_random_bundle(rng(8)))
    n = int.from_bytes(good[:8], "little")
    cases = {
        "empty": (b"", "shorter than the 8-byte"),
        "text": (b"hello, this is not a bundle at all", "exceeds|truncated"),
        "truncated_data": (good[:-10], "truncated"),
        "truncated_header": (good[: 8 + n // 2], "truncated"),
        "trailing": (good + b"\0" * 4, "unexpected bytes after the last tensor"),
        "huge_header": ((2**63).to_bytes(8, "little") + good[8:], "exceeds"),
        "header_not_json": (len(b"\xff" * 16).to_bytes(8, "little") + b"\xff" * 16, "not valid UTF-8 JSON"),
        "header_list": (len(b"[1, 2]").to_bytes(8, "little") + b"[1, 2]", "JSON object"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name}.nmat"
        path.write_bytes(data)
        with pytest.raises(BundleError, match=message):
            load_bundle(path)
    with pytest.raises(BundleError, match="cannot read"):
        load_bundle(tmp_path / "does-not-exist.nmat")
    with pytest.raises(BundleError, match="not a regular file"):
        load_bundle(tmp_path)
    os.mkfifo(tmp_path / "fifo.nmat")
    with pytest.raises(BundleError, match="not a regular file"):  # and no hang
        load_bundle(tmp_path / "fifo.nmat")


def _with_header(good: bytes, edit) -> bytes:
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + good[8 + n :]


def test08_header_record_errors(tmp_path):
    good = bundle_bytes(make_random_bundle(rng(9)))
    cases = {
        "huge_shape": (lambda h: h["plane.U"].__setitem__("shape", [2**40, 2**40, 8]), "needs"),
        "huge_offsets": (
            lambda h: h["plane.U"].__setitem__("data_offsets", [0, 2**62]),
            "needs|overlaps|gap",
        ),
        "dtype_bf16": (lambda h: h["plane.U"].__setitem__("dtype", "BF16"), "not one a bundle uses"),
        "negative": (lambda h: h["plane.U"].__setitem__("shape", [-16, -16, 8]), "non-negative"),
        "extra_field": (lambda h: h["plane.U"].__setitem__("align", 8), "exactly the keys"),
        "metadata_type": (lambda h: h.__setitem__("__metadata__", {"neumat": 3}), "strings to strings"),
    }
    for name, (edit, message) in cases.items():
        path = tmp_path / f"{name}.nmat"
        path.write_bytes(_with_header(good, edit))
        with pytest.raises(BundleError, match=message):
            load_bundle(path)


def test09_checksum_detects_a_flipped_data_byte(tmp_path):
    path = save_bundle(make_random_bundle(rng(10)), tmp_path / "m.nmat")
    data = bytearray(path.read_bytes())
    for pos in (len(data) - 1, len(data) - 600, len(data) // 2 + 4000):
        flipped = bytearray(data)
        flipped[pos] ^= 0x04
        path.write_bytes(bytes(flipped))
        with pytest.raises(BundleError, match="checksum mismatch"):
            load_bundle(path)


def test10_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.nmat"
    old = make_random_bundle(rng(11))
    save_bundle(old, path)
    before = path.read_bytes()
    new = make_random_bundle(rng(12))

    def fail(*args):
        raise OSError(28, "No space left on device")

    for target in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(atomic.os, target, fail)
            with pytest.raises(OSError, match="No space"):
                save_bundle(new, path)
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["m.nmat"]  # no temp file left
    assert load_bundle(path).checksum() == old.checksum()
    save_bundle(new, path)
    assert load_bundle(path).checksum() == new.checksum()
    assert (path.stat().st_mode & 0o777) == 0o644


def test10b_saving_into_a_new_folder_creates_it(tmp_path):
    b = make_random_bundle(rng(14))
    path = tmp_path / "new" / "deeper" / "m.nmat"
    save_bundle(b, path)
    assert load_bundle(path).checksum() == b.checksum()


def test11_invalid_bundle_is_never_written(tmp_path):
    b = make_random_bundle(rng(13))
    b.planes["U"] = b.planes["U"][..., :4]
    with pytest.raises(BundleError, match="has 4 channels"):
        save_bundle(b, tmp_path / "m.nmat")
    b = make_random_bundle(rng(13))
    b.provenance = {"loss": float("nan")}
    with pytest.raises(BundleError, match="strict JSON"):
        save_bundle(b, tmp_path / "m.nmat")
    assert os.listdir(tmp_path) == []


def test12_validate_rejects_bad_objects():
    b = make_random_bundle(rng(14))
    mlp = b.mlps["rgb"]
    with pytest.raises(BundleError, match="holds the planes"):
        Bundle("triple_plane", {"U": b.planes["U"]}, {"rgb": mlp}, b.inputs).validate()
    with pytest.raises(BundleError, match="unknown model kind"):
        Bundle("brdf", b.planes, b.mlps, b.inputs).validate()
    with pytest.raises(BundleError, match="Int8MLP"):
        Bundle("triple_plane", b.planes, {"rgb": "weights"}, b.inputs).validate()
    with pytest.raises(BundleError, match="height_range is set"):
        Bundle.triple_plane(
            b.planes["U"], b.planes["H"], b.planes["D"], mlp, height_range=(0.0, 1.0)
        ).validate()
    two = Int8MLP.from_int8([np.zeros((2, 24), np.int8)], np.ones(2, np.float32))
    with pytest.raises(BundleError, match="must output 3"):
        Bundle.triple_plane(b.planes["U"], b.planes["H"], b.planes["D"], two).validate()


def test13_inspect_good_and_broken(tmp_path):
    b = make_random_bundle(rng(15))
    path = save_bundle(b, tmp_path / "m.nmat")
    r = inspect_bundle(path)
    assert r["valid"] and r["error"] is None
    assert r["file_size"] == path.stat().st_size
    stored = manifest_checksum(r["manifest"], b.checksum())
    assert r["checksum"] == {
        "stored": stored,
        "computed": stored,
        "status": "OK",
        "scope": "manifest and tensors",
    }
    listing = {t["name"]: t for t in r["tensors"]}
    assert listing["plane.U"] == {
        "name": "plane.U",
        "dtype": "float16",
        "shape": [16, 16, 8],
        "bytes": 16 * 16 * 8 * 2,
    }
    assert r["manifest"]["kind"] == "triple_plane"

    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    r = inspect_bundle(path)
    assert not r["valid"] and "checksum mismatch" in r["error"]
    assert r["checksum"]["status"] == "MISMATCH" and r["checksum"]["stored"] == stored
    assert len(r["tensors"]) == len(b.tensors())

    path.write_bytes(bytes(data[:-100]))
    r = inspect_bundle(path)
    assert not r["valid"] and "truncated" in r["error"]
    assert r["checksum"]["status"] == "UNAVAILABLE" and r["manifest"]["kind"] == "triple_plane"
    assert {t["name"] for t in r["tensors"]} == set(b.tensors())  # listed from the broken header

    r = inspect_bundle(tmp_path / "absent.nmat")
    assert not r["valid"] and "cannot read" in r["error"] and r["file_size"] is None


def test14_no_torch_or_device_imports():
    import subprocess
    import sys

    code = (
        "import sys, neumat.bundle; "
        "bad = [m for m in ('torch', 'slangpy', 'cupy', 'jax') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test15_stored_u_levels_round_trip_and_are_checked(tmp_path):
    """Learned coarse U levels (optional tensors plane.U.level.<l>) save, load and seal with the
    checksum; a bundle without them loads with none; wrong shapes, too many levels and levels on
    a NeuMIP bundle are BundleErrors naming the level."""
    import dataclasses

    from neumat.material.mips import mip_chain, u_chain

    b = make_random_bundle(rng(3), u_res=16, plane_dtype=np.float32)
    levels = tuple((lv + 0.5).astype(np.float32) for lv in mip_chain(b.planes["U"])[1:])
    c = dataclasses.replace(b, u_levels=levels)
    assert c.checksum() != b.checksum()
    d = load_bundle(save_bundle(c, tmp_path / "levels.nmat"))
    assert len(d.u_levels) == 4 and all(np.array_equal(x, y) for x, y in zip(d.u_levels, levels))
    assert d.checksum() == c.checksum()
    assert all(np.array_equal(x, y) for x, y in zip(u_chain(d)[1:], levels))
    e = load_bundle(save_bundle(b, tmp_path / "plain.nmat"))
    assert e.u_levels == () and all(np.array_equal(x, y) for x, y in zip(u_chain(e), mip_chain(b.planes["U"])))
    with pytest.raises(BundleError, match="U level 2 must have shape"):
        dataclasses.replace(b, u_levels=(levels[0], levels[0])).validate()
    with pytest.raises(BundleError, match="U level 5"):
        dataclasses.replace(b, u_levels=(*levels, levels[-1])).validate()
    with pytest.raises(BundleError, match="triple_plane"):
        dataclasses.replace(make_random_bundle(rng(4), kind="neumip"), u_levels=levels[:1]).validate()
