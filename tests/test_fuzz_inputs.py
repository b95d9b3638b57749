"""Fuzzing the user-facing parsers: the mesh loader, the training config (files and ``--set``)
and the CLI option parsers. Whatever the input, each returns a value or raises the project's
own error for it (MeshError, ConfigError, typer.BadParameter) — never another exception, never
a hang (hypothesis deadline). The bundle loader and the INM importer have their own fuzz tests
(tests/test_bundle_fuzz.py, tests/test_inm_layout.py). ``make fuzz`` runs them all long."""

from __future__ import annotations

import json
import math

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from fuzz_settings import fuzz_settings
from neumat.cli import render_cmd
from neumat.cli.options import parse_floats, parse_size
from neumat.render.shapes import Mesh, MeshError, load_mesh
from neumat.train.config import SECTIONS, TrainConfig
from neumat.train.config_io import ConfigError, apply_overrides, config_from_dict, config_to_dict

pytestmark = pytest.mark.fuzz

numbers = (st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-(2**40), 2**40)
           | st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0x10", "", "1.5.2", "७"]))
texts = st.text(max_size=24) | st.sampled_from(["", " ", "512x512", "0x0", "x", "1x1x1", "99999999999x1", "-1x5",
                                                "1e3x2", "٣x٣", "8192x8192", "8193x1", "nan,1,2", "1,2", ",,"])


def _number_text(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _obj_line(parts: tuple) -> str:
    """One OBJ line: a keyword and its fields (numbers, ``(vertex, uv)`` index pairs or text)."""
    return " ".join(f"{p[0]}/{p[1]}" if isinstance(p, tuple) else _number_text(p) for p in parts)


index_pairs = st.tuples(st.integers(-6, 12), st.integers(-6, 12))
obj_lines = st.one_of(
    st.tuples(st.just("v"), numbers, numbers, numbers),
    st.tuples(st.just("vt"), numbers, numbers),
    st.tuples(st.just("vn"), numbers, numbers, numbers),
    st.tuples(st.just("f"), index_pairs, index_pairs, index_pairs),
    st.tuples(st.sampled_from(["#", "o", "g", "s", "usemtl", "mtllib", "f", "v"]), st.text(max_size=12)),
).map(_obj_line)
SQUARE = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nf 1/1 2/2 3/3\nf 1/1 3/3 4/4\n"


SUFFIXES = (".obj", ".ply", ".stl", ".off")


@pytest.fixture(scope="module", autouse=True)
def warm_mesh_parsers(tmp_path_factory):
    """trimesh imports its parsers on first use (seconds on a busy machine): not a hang."""
    for suffix in SUFFIXES:
        path = tmp_path_factory.mktemp("warm") / f"square{suffix}"
        path.write_text(SQUARE)
        try:
            load_mesh(path)
        except MeshError:
            pass


@fuzz_settings(300)
@given(lines=st.lists(obj_lines, max_size=14), keep_square=st.booleans(), junk=st.binary(max_size=24),
       suffix=st.sampled_from(SUFFIXES))
def test01_mesh_loader_raises_only_mesh_error(tmp_path_factory, lines, keep_square, junk, suffix):
    path = tmp_path_factory.mktemp("mesh") / f"fuzz{suffix}"
    text = (SQUARE if keep_square else "") + "\n".join(lines) + "\n"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + junk)
    try:
        mesh = load_mesh(path)
    except MeshError as e:
        assert str(path) in str(e)
        return
    assert isinstance(mesh, Mesh) and mesh.uv_to_world() > 0  # what loads is renderable


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
DEFAULTS = config_to_dict(TrainConfig())
FIELDS = [f"{s}.{k}" for s in SECTIONS for k in DEFAULTS[s]] + [k for k, v in DEFAULTS.items() if not isinstance(v, dict)]


@fuzz_settings(400, tests_in_target=2)  # the config target: --set overrides and config files
@given(key=st.sampled_from(FIELDS) | st.text(max_size=16),
       value=json_values.map(json.dumps) | st.text(max_size=16) | numbers.map(_number_text),
       separator=st.sampled_from(["=", "=", ":", ""]))
def test02_set_overrides_raise_only_config_error(key, value, separator):
    try:
        cfg = apply_overrides(TrainConfig(), [f"{key}{separator}{value}"])
    except ConfigError:
        return
    assert isinstance(cfg, TrainConfig)


@fuzz_settings(400, tests_in_target=2)
@given(section=st.sampled_from(list(SECTIONS) + [None]), data=st.dictionaries(st.text(max_size=10), json_values,
                                                                               max_size=4),
       field=st.sampled_from(FIELDS), value=json_values)
def test03_config_files_raise_only_config_error(section, data, field, value):
    parts = field.split(".")
    doc = {parts[0]: {parts[1]: value}} if len(parts) == 2 else {parts[0]: value}
    if section is not None:
        doc[section] = data
    try:
        cfg = config_from_dict(doc, TrainConfig)
    except ConfigError:
        return
    assert isinstance(cfg, TrainConfig)


@fuzz_settings(1000)
@given(text=texts, stops=st.floats(allow_nan=True, allow_infinity=True))
def test04_cli_option_parsers_raise_only_bad_parameter(text, stops):
    parsers = [parse_size, render_cmd._camera,
               lambda t: parse_floats(t, "--light", (2, 3))]
    for parse in parsers:
        try:
            parse(text)
        except typer.BadParameter:
            pass
    try:
        assert math.isfinite(render_cmd._exposure(stops))
    except typer.BadParameter:
        pass
