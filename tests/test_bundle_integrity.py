"""Trusting a .nmat file: the checksum seals the manifest too (version 2, version 1 still loads),
declared sizes are bounded before anything is read, and killed writes leave no temp files behind."""

import json
import math
import os
import time
import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

from neumat import fileio
from neumat.bundle import BundleError, content_checksum, inspect_bundle, load_bundle, make_random_bundle, nmat, \
    save_bundle
from neumat.bundle.container import DTYPE_NAMES, MAX_TENSOR_BYTES, serialize
from neumat.bundle.manifest import CHECKSUM_SCOPES, build_manifest
from neumat.bundle.bundle import MAX_PLANE_RES
from neumat.cli import app
from neumat.quant import MAX_WIDTH

VALUE_SCALE = 0.1393720428943
"""A value scale as NeuMIP exports record it in provenance (``neumat eval`` multiplies by it)."""
DTYPE_CODES = {name: code for code, name in DTYPE_NAMES.items()}


def bundle(seed=0):
    b = make_random_bundle(np.random.default_rng(seed))
    b.provenance = {"value_scale": VALUE_SCALE, "metrics": {"int8": {"rel_l1": 0.032}}}
    return b


def replace_once(path, old: bytes, new: bytes):
    """Overwrite the one occurrence of ``old`` in ``path`` with the same-length ``new``."""
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    path.write_bytes(data.replace(old, new))


def write_version1(path, b):
    """``b`` as a version-1 file: the same manifest keys, a checksum of the tensors only."""
    tensors = b.tensors()
    manifest = build_manifest(b, tensors, content_checksum(tensors))
    manifest["version"], manifest["checksum"] = 1, content_checksum(tensors)
    path.write_bytes(serialize(tensors, {"neumat": json.dumps(manifest)}))
    return path


@pytest.mark.parametrize(
    "old, new",
    [
        (b"0.1393720428943", b"9.1393720428943"),  # provenance value_scale, one byte
        (b"[-0.02,0.03]", b"[-0.02,0.09]"),  # height range, one byte
    ],
    ids=["value_scale", "height_range"],
)
def test01_an_edited_manifest_is_a_checksum_error(tmp_path, old, new):
    path = save_bundle(bundle(), tmp_path / "m.nmat")
    replace_once(path, old, new)
    with pytest.raises(BundleError, match="checksum mismatch.*manifest and tensors"):
        load_bundle(path)
    report = inspect_bundle(path)
    assert not report["valid"] and report["checksum"]["status"] == "MISMATCH"
    assert report["checksum"]["scope"] == CHECKSUM_SCOPES[2] == "manifest and tensors"


def test02_version1_bundles_still_load_with_a_tensor_only_checksum(tmp_path):
    b = bundle(1)
    path = write_version1(tmp_path / "v1.nmat", b)
    loaded = load_bundle(path)
    assert loaded.checksum() == b.checksum() and loaded.provenance == b.provenance
    report = inspect_bundle(path)
    assert report["valid"] and report["checksum"]["status"] == "OK"
    assert report["checksum"]["scope"] == "version 1: tensors only; re-export to cover the manifest"
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "checksum: OK (version 1: tensors only; re-export to cover the manifest" in result.output

    replace_once(path, b"0.1393720428943", b"9.1393720428943")
    assert load_bundle(path).provenance["value_scale"] == 9.1393720428943  # what version 1 can't see

    resaved = save_bundle(load_bundle(path), tmp_path / "v2.nmat")  # re-export: version 2, sealed
    assert inspect_bundle(resaved)["manifest"]["version"] == 2
    replace_once(resaved, b"9.1393720428943", b"0.1393720428943")
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(resaved)


def test03_version1_tensor_bytes_are_still_checked(tmp_path):
    path = write_version1(tmp_path / "v1.nmat", bundle(2))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch.*version 1: tensors only"):
        load_bundle(path)


def declare(path, shapes):
    """Write a sparse file whose header declares ``shapes`` (tensor name -> shape) in place of
    the real ones, manifest table included, with no data blocks; returns the declared bytes."""
    b = bundle(3)
    tensors = b.tensors()
    manifest = build_manifest(b, tensors, content_checksum(tensors))
    header, offset = {}, 0
    for name, a in sorted(tensors.items()):
        shape = list(shapes.get(name, a.shape))
        end = offset + a.dtype.itemsize * math.prod(shape)
        header[name] = {"dtype": DTYPE_CODES[a.dtype.name], "shape": shape, "data_offsets": [offset, end]}
        manifest["tensors"][name]["shape"] = shape
        offset = end
    header["__metadata__"] = {"neumat": json.dumps(manifest)}
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        f.truncate(8 + len(text) + offset)  # the declared size, as a hole: nothing on disk
    return offset


@pytest.fixture
def reads(monkeypatch):
    """Every tensor read that load_bundle / inspect_bundle attempt (none is performed)."""
    calls = []

    def refuse(path, header):
        calls.append(header.file_size)
        raise AssertionError("tensor data must not be read")

    monkeypatch.setattr(nmat, "read_tensors", refuse)
    return calls


def test04_a_huge_declared_plane_fails_before_allocating(tmp_path, reads):
    path = tmp_path / "sparse.nmat"
    declared = declare(path, {"plane.U": [MAX_PLANE_RES, MAX_PLANE_RES, 96]})  # float16: 51.5 GB, a hole
    assert declared > 50e9 and path.stat().st_size > declared
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match=f"declares {declared} bytes.*{MAX_TENSOR_BYTES}-byte limit"):
            load_bundle(path)
        report = inspect_bundle(path)  # reported, never a MemoryError
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert reads == [] and peak < 4 << 20
    assert not report["valid"] and f"declares {declared} bytes" in report["error"]
    assert report["checksum"]["status"] == "UNAVAILABLE" and report["manifest"]["kind"] == "triple_plane"
    assert {t["name"]: t["shape"] for t in report["tensors"]}["plane.U"] == [MAX_PLANE_RES, MAX_PLANE_RES, 96]


@pytest.mark.parametrize(
    "name, shape, limit",
    [
        ("plane.U", [MAX_PLANE_RES + 1, 4, 8], "a plane: float16/float32 [rows, cols, channels]"),
        ("plane.H", [8, 8, MAX_WIDTH + 1], "a plane: float16/float32 [rows, cols, channels]"),
        ("plane.D", [8, 8, 8, 8], "a plane"),
        ("height", [2, MAX_PLANE_RES + 1], "a height map: float32 [rows, cols]"),
        ("mlp.rgb.weight.1", [MAX_WIDTH + 1, 8], "packed INT8 weights"),
        ("mlp.rgb.scales", [17], "MLP scales"),
    ],
)
def test05_a_shape_beyond_the_model_limits_fails_before_reading(tmp_path, reads, name, shape, limit):
    path = tmp_path / "limits.nmat"
    declare(path, {name: shape})
    with pytest.raises(BundleError, match=f"{name}' declares shape") as e:
        load_bundle(path)
    assert limit in str(e.value) and "beyond the model limits" in str(e.value) and reads == []
    assert inspect_bundle(path)["error"] == str(e.value) and reads == []


def test06_declared_bytes_must_match_the_file_size(tmp_path, reads):
    path = tmp_path / "short.nmat"
    declare(path, {"plane.U": [1024, 1024, 8]})
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(path)
    assert reads == []


def test07_the_writer_refuses_what_no_reader_accepts(tmp_path, monkeypatch):
    b = bundle(4)
    monkeypatch.setattr(nmat, "MAX_TENSOR_BYTES", 1024)
    with pytest.raises(BundleError, match="more than the 1024-byte limit"):
        save_bundle(b, tmp_path / "m.nmat")
    assert os.listdir(tmp_path) == []


def test08_a_write_removes_its_own_stale_temp_files(tmp_path):
    old = time.time() - fileio.STALE_TEMP_AGE_S - 60
    names = {
        "stale": ".m.nmat.k1llwr1t.tmp",  # a killed write of m.nmat, untouched for over an hour
        "live": ".m.nmat.wr1t1ng_.tmp",  # a concurrent write of m.nmat, fresh
        "other_target": ".m.nmat.x.k1llwr1t.tmp",  # a killed write of m.nmat.x
        "other_file": ".n.nmat.k1llwr1t.tmp",
    }
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if key != "live":
            os.utime(tmp_path / name, (old, old))
    save_bundle(bundle(5), tmp_path / "m.nmat")
    left = set(os.listdir(tmp_path))
    assert names["stale"] not in left
    assert left == {"m.nmat", names["live"], names["other_target"], names["other_file"]}
