"""Fuzzing the .nmat loader: whatever the bytes, load_bundle returns a Bundle or raises
BundleError — never another exception, never a hang (hypothesis deadline), never an allocation
sized by what a header declares (tracemalloc peak)."""

import json
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fuzz_settings import fuzz_settings
from neumat.bundle import BundleError, bundle_bytes, content_checksum, load_bundle, make_random_bundle
from neumat.bundle.container import serialize
from neumat.bundle.manifest import TOP_KEYS, build_manifest
from neumat.bundle.nmat import INTERNAL_ERROR

FUZZ = fuzz_settings(250, tests_in_target=8)
"""The loader's 8 mutation tests share make fuzz's examples; test01 (truncation at every byte)
exhausts its own finite space on top of them."""
pytestmark = pytest.mark.fuzz
BUNDLE = make_random_bundle(np.random.default_rng(42), channels=6)
GOOD = bundle_bytes(BUNDLE)
HEADER_LEN = int.from_bytes(GOOD[:8], "little")
HEADER = json.loads(GOOD[8 : 8 + HEADER_LEN])
DATA_START = 8 + HEADER_LEN
TENSOR_NAMES = sorted(k for k in HEADER if k != "__metadata__")
MEMORY_LIMIT = 16 * len(GOOD) + (4 << 20)
"""Peak bytes a load may allocate: a small multiple of the file, never a declared size."""


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="neumat-fuzz-"))
    yield d
    shutil.rmtree(d)


def outcome(directory: Path, data: bytes):
    """Load ``data`` as a file: the Bundle, or the BundleError (any other exception fails)."""
    path = directory / "fuzz.nmat"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        return load_bundle(path)
    except BundleError as e:
        assert INTERNAL_ERROR not in str(e), str(e)
        return e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < MEMORY_LIMIT, f"load allocated {peak} bytes for a {len(data)}-byte file"


def with_header(header) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + GOOD[DATA_START:]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
sizes = st.integers(-3, 64) | st.integers(2**31 - 2, 2**31 + 2) | st.integers(2**62, 2**64) | st.just(10**30)


@fuzz_settings(250, tests_in_target=1)
@given(cut=st.integers(0, len(GOOD) - 1))
def test01_truncated_file_raises(workdir, cut):
    assert isinstance(outcome(workdir, GOOD[:cut]), BundleError)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), min_size=1, max_size=6))
def test02_byte_flips(workdir, flips):
    data = bytearray(GOOD)
    for pos, mask in flips:
        data[pos] ^= mask
    result = outcome(workdir, bytes(data))
    if any(pos >= DATA_START for pos, _ in flips) and bytes(data[DATA_START:]) != GOOD[DATA_START:]:
        assert isinstance(result, BundleError)  # the checksum covers every data byte


@FUZZ
@given(
    name=st.sampled_from(TENSOR_NAMES),
    field=st.sampled_from(["dtype", "shape", "data_offsets", None]),
    dtype=st.sampled_from(["F16", "F32", "U32", "I8", "BF16", "F64", "BOOL", "", "f32"]) | json_values,
    shape=st.lists(sizes, max_size=9) | json_values,
    offsets=st.lists(sizes, min_size=0, max_size=3) | json_values,
)
def test03_header_records(workdir, name, field, dtype, shape, offsets):
    header = json.loads(json.dumps(HEADER))
    if field is None:
        del header[name]
    else:
        header[name][field] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}[field]
    assume(header != HEADER)
    assert isinstance(outcome(workdir, with_header(header)), BundleError)


@FUZZ
@given(declared=st.integers(0, 2**64 - 1), tail=st.binary(max_size=64))
def test04_header_length_and_garbage(workdir, declared, tail):
    assert isinstance(outcome(workdir, declared.to_bytes(8, "little") + tail), BundleError)


@FUZZ
@given(
    header=st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | json_values.map(lambda v: json.dumps(v).encode())
)
def test05_garbage_header_json(workdir, header):
    assert isinstance(outcome(workdir, len(header).to_bytes(8, "little") + header + b"\0" * 16), BundleError)


def _manifest():
    return json.loads(HEADER["__metadata__"]["neumat"])


MANIFEST_PATHS = (
    [[k] for k in TOP_KEYS]
    + [["networks", "rgb", k] for k in ("widths", "inputs", "weight_layout", "activation", "output")]
    + [["height", "range"], ["height", "units"], ["tensors", "plane.U"], ["tensors", "plane.U", "shape"]]
)


MAY_STAY_VALID = [["provenance"], ["angle_param"], ["height", "range"], ["height", "units"]]
"""Fields a random replacement may leave valid (any dict, any id, any h_min < h_max, 'world')."""


@FUZZ
@given(path=st.sampled_from(MANIFEST_PATHS), value=json_values, delete=st.booleans())
def test06_manifest_fields(workdir, path, value, delete):
    manifest = _manifest()
    target = manifest
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    assume(manifest != _manifest())
    header = dict(HEADER, __metadata__={"neumat": json.dumps(manifest)})
    result = outcome(workdir, with_header(header))
    if delete or path not in MAY_STAY_VALID:
        assert isinstance(result, BundleError)


@FUZZ
@given(text=st.text(max_size=300) | json_values.map(json.dumps))
def test07_manifest_not_json_or_wrong_shape(workdir, text):
    header = dict(HEADER, __metadata__={"neumat": text})
    assert isinstance(outcome(workdir, with_header(header)), BundleError)


@FUZZ
@given(index=st.integers(0, 7), value=st.floats(width=32) | st.sampled_from([0.0, -0.0, -1.0, 1e-45, 3e38]))
def test08_scales(workdir, index, value):
    tensors = BUNDLE.tensors()
    scales = tensors["mlp.rgb.scales"].copy()
    scales[index] = value
    tensors["mlp.rgb.scales"] = scales
    manifest = build_manifest(BUNDLE, tensors, content_checksum(tensors))
    result = outcome(workdir, serialize(tensors, {"neumat": json.dumps(manifest)}))
    if not np.isfinite(value) or value <= 0:
        assert isinstance(result, BundleError) and "scales" in str(result)


@FUZZ
@given(
    kind=st.sampled_from(["triple_plane", "neumip"]),
    seed=st.integers(0, 2**32 - 1),
    u_res=st.integers(1, 12),
    hd_res=st.integers(1, 6),
    channels=st.integers(1, 12),
    hidden=st.lists(st.integers(1, 40), min_size=0, max_size=3).map(tuple),
    dtype=st.sampled_from([np.float16, np.float32]),
    order=st.permutations(["U", "H", "D"]).map(tuple),
    with_height=st.booleans(),
)
def test09_random_valid_bundles_round_trip(
    workdir, kind, seed, u_res, hd_res, channels, hidden, dtype, order, with_height
):
    b = make_random_bundle(
        np.random.default_rng(seed),
        kind=kind,
        u_res=u_res,
        hd_res=hd_res,
        channels=channels,
        hidden=hidden,
        plane_dtype=dtype,
        order=order,
        with_height=with_height,
    )
    data = bundle_bytes(b)
    loaded = outcome(workdir, data)
    assert not isinstance(loaded, BundleError), str(loaded)
    assert loaded.checksum() == b.checksum() and loaded.inputs == b.inputs
    assert bundle_bytes(loaded) == data  # byte-identical re-save
