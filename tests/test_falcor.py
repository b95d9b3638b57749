"""neumat.falcor: graph scripts, .pyscene, wrapper modules, dispatch capture and binding, the
driver on a slangpy-backed fake ``falcor`` (CPU, lavapipe), the CLI's error without Falcor, and
(``gpu``) the Falcor render against the slangpy renderer."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from falcor_fakes import ShaderVar, graph_namespace, slangpy_falcor
from typer.testing import CliRunner

from neumat.falcor import FalcorUnavailable, import_falcor
from neumat.falcor.binding import bind_dispatch, declared_leaves
from neumat.falcor.frame_plan import PLAN_OPTIONS, plan_frame, replay_on_slangpy
from neumat.falcor.graphs import GRAPHS, NEUMAT, REFERENCE, SCRIPTS_DIR, GraphSpec, graph_script, write_graphs
from neumat.falcor.scene_file import focal_length_mm, pyscene_source
from neumat.falcor.wrapper import WRAPPER_ENTRY, EntryPoint, SlangType, entry_parameters, strip_entry_attributes, \
    wrapper_source
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight

BUNDLE = "assets/materials/leather.nmat"
SIZE = (24, 16)


def run_graph_script(text: str, monkeypatch) -> tuple[dict, list]:
    """Exec a graph script with a fake ``falcor`` and ``m``; returns its globals and m.addGraph's list."""
    mod, added = graph_namespace()
    monkeypatch.setitem(sys.modules, "falcor", mod)
    m = type("Mogwai", (), {"addGraph": staticmethod(added.append)})
    scope = {"m": m}
    exec(compile(text, "<graph>", "exec"), scope)
    return scope, added


# ---- graph scripts ------------------------------------------------------------------------


def test_shipped_scripts_are_the_generators(tmp_path):
    assert sorted(p.name for p in SCRIPTS_DIR.glob("*.py")) == sorted(f"{n}.py" for n in GRAPHS)
    for name, spec in GRAPHS.items():
        assert (SCRIPTS_DIR / f"{name}.py").read_text() == graph_script(spec)
    written = write_graphs(tmp_path)
    assert [p.read_text() for p in written] == [graph_script(s) for s in GRAPHS.values()]


def test_reference_graph_nodes_edges_outputs(monkeypatch):
    scope, added = run_graph_script(graph_script(REFERENCE), monkeypatch)
    g = scope["NeuMatReference"]
    assert added == [g] and g.name == "NeuMatReference"
    assert {n: p["type"] for n, p in g.passes.items()} == {
        "VBufferRT": "VBufferRT", "PathTracer": "PathTracer", "AccumulatePass": "AccumulatePass", "ToneMapper": "ToneMapper"}
    assert g.passes["ToneMapper"]["props"] == {"autoExposure": False, "exposureCompensation": 0.0, "operator": "Aces"}
    assert g.edges == [("VBufferRT.vbuffer", "PathTracer.vbuffer"), ("VBufferRT.viewW", "PathTracer.viewW"),
                       ("VBufferRT.mvec", "PathTracer.mvec"), ("PathTracer.color", "AccumulatePass.input"),
                       ("AccumulatePass.output", "ToneMapper.src")]
    assert g.outputs == ["ToneMapper.dst"]


def test_neumat_graph_is_the_gbuffer(monkeypatch):
    scope, added = run_graph_script((SCRIPTS_DIR / "NeuMat.py").read_text(), monkeypatch)
    g = scope["NeuMat"]
    assert added == [g]
    assert g.passes == {"GBufferRaster": {"type": "GBufferRaster",
                                          "props": {"samplePattern": "Center", "sampleCount": 1, "useAlphaTest": False}}}
    assert g.edges == [] and g.outputs == [f"GBufferRaster.{o}" for o in ("posW", "normW", "tangentW", "texC", "mask")]
    # outside Mogwai (no `m`) the script still builds the graph
    mod, _ = graph_namespace()
    monkeypatch.setitem(sys.modules, "falcor", mod)
    scope = {}
    exec(graph_script(NEUMAT), scope)
    assert scope["NeuMat"].name == "NeuMat"


@pytest.mark.parametrize("spec, message", [
    (GraphSpec("bad name", (("A", "A", {}),)), "identifiers"),
    (GraphSpec("G", (("A", "A", {}), ("A", "B", {}))), "duplicate"),
    (GraphSpec("G", (("A", "A", {}),), edges=(("A.out", "B.in"),)), "'B.in'"),
    (GraphSpec("G", (("A", "A", {}),), outputs=("A",)), "'A'"),
])
def test_graph_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        graph_script(spec)


# ---- scene file -----------------------------------------------------------------------------


def test_pyscene_camera_and_lights():
    cam = Camera(eye=(1.0, -3.0, 2.0), target=(0.0, 0.0, 0.5), up=(0.0, 0.0, 1.0), fov_y=40.0)
    text = pyscene_source("m.obj", cam, [DirectionalLight(direction=(0.0, 0.0, 1.0), radiance=(2.0, 3.0, 4.0)),
                                         PointLight(position=(1.0, 2.0, 3.0), intensity=(5.0, 5.0, 5.0))])
    calls = []
    from falcor_fakes import SceneObject
    builder = type("B", (), {"importScene": lambda s, p: calls.append(("import", p)),
                             "addCamera": lambda s, c: calls.append(("camera", c)),
                             "addLight": lambda s, x: calls.append(("light", x))})()
    scope = {"sceneBuilder": builder, "Camera": SceneObject, "DirectionalLight": SceneObject,
             "PointLight": SceneObject, "float3": lambda *v: tuple(v)}
    exec(compile(text, "<pyscene>", "exec"), scope)
    assert calls[0] == ("import", "m.obj")
    c = calls[1][1]
    assert (c.position, c.target, c.up) == ((1.0, -3.0, 2.0), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0))
    assert math.isclose(c.focalLength, 12.0 / math.tan(math.radians(20.0)), rel_tol=1e-12)  # 32.97 mm
    assert math.isclose(focal_length_mm(90.0), 12.0)
    sun, lamp = calls[2][1], calls[3][1]
    assert sun.direction == (-0.0, -0.0, -1.0) and sun.intensity == (2.0, 3.0, 4.0)  # light travels down
    assert lamp.position == (1.0, 2.0, 3.0) and lamp.intensity == (5.0, 5.0, 5.0)


# ---- wrapper modules ------------------------------------------------------------------------


def test_wrapper_source_text():
    src = '[shader("compute")]\n[numthreads(8, 8, 1)]\nvoid k<M : IFoo>(uint3 tid: SV_DispatchThreadID, uniform M m, uniform int n) {}\n'
    assert "[shader" not in strip_entry_attributes(src) and "numthreads" not in strip_entry_attributes(src)
    ep = EntryPoint("k.slang", "k", ("Foo<3>",), "export static const int C = 1;\n", "tid",
                    {"m": SlangType("Foo<3>", "struct"), "n": SlangType("int", "scalar", "int")}, (4, 4, 1), ("a",))
    out = wrapper_source(ep, src)
    assert out.index("export static const int C = 1;") < out.index("void k<M : IFoo>") < out.index("import a;")
    assert "uniform Foo<3> arg_m;\nuniform int arg_n;\n" in out
    assert out.rstrip().endswith(f'[shader("compute")]\n[numthreads(4, 4, 1)]\nvoid {WRAPPER_ENTRY}(uint3 tid : '
                                 "SV_DispatchThreadID)\n{\n    k<Foo<3>>(tid, arg_m, arg_n);\n}")
    assert out.count("[shader(") == 1


@pytest.fixture(scope="module")
def plan(device):
    from neumat.render.renderer import Renderer

    r = Renderer(BUNDLE, "sphere", SIZE, device=device)
    return r, plan_frame(r, r.default_camera(), None)


def test_capture_is_the_renderers_frame(plan):
    r, p = plan
    assert [(n, d.shader, d.entry) for n, d in p.dispatches] == [
        ("shell", "shell.slang", "shell_trace"), ("shell", "shell.slang", "shell_gbuffer"),
        ("infer", "infer.slang", "infer_int8"), ("compose", "compose.slang", "compose")]
    assert all(d.thread_count == (*SIZE, 1) for _, d in p.dispatches)
    infer = p.dispatches[2][1]
    assert infer.type_args == (f"Int8Mlp<{', '.join(map(str, r.bundle.mlps['rgb'].widths))}, 0, 0, 0, 0>",)
    assert "MLP_UNROLL_DOTS" in infer.link_source
    # the pass's own outputs wire the next pass's inputs
    assert p.dispatches[3][1].params["btf"] is p.results["infer.btf"].buffer


def test_binding_covers_every_declared_parameter(plan):
    """Every parameter (struct members expanded) that slangpy reflection of each kernel declares
    is bound, with Falcor vector types for vectors and Falcor buffers for buffers."""
    r, p = plan
    fake = slangpy_falcor(r.device)
    for node, d in p.dispatches:
        ep = entry_parameters(r.device, d.shader, d.entry, d.type_args, d.link_source)
        var, seen = ShaderVar(), []
        bound = bind_dispatch(var, d, ep, fake, lambda b, t: seen.append((b, t)) or ("buffer", t.element_size))
        assert sorted(bound) == sorted(declared_leaves(ep.params)), node
        assert len(seen) == sum(t.kind == "resource" for t in _leaf_types(ep.params))
        assert all(t.element_size in (4, 8, 12, 16) for _, t in seen), [(t.name, t.element_size) for _, t in seen]
    compose = p.dispatches[3][1]
    ep = entry_parameters(r.device, compose.shader, compose.entry)
    var = ShaderVar()
    bind_dispatch(var, compose, ep, fake, lambda b, t: "twin")
    assert type(var.store["arg_background"]).__name__ == "float3" and var.store["arg_background"] == [0.02, 0.02, 0.025]
    assert var.store["arg_width"] == SIZE[0] and var.store["arg_radiance"] == "twin"
    shell = entry_parameters(r.device, "shell.slang", "shell_trace")
    assert shell.params["camera"].fields["eye"].name == "vector<float,3>"
    missing = dict(compose.params)
    del missing["toneMapOp"]
    with pytest.raises(ValueError, match="toneMapOp"):
        bind_dispatch(ShaderVar(), type(compose)(**{**vars(compose), "params": missing}), ep, fake, lambda b, t: b)


def _leaf_types(types):
    for t in types.values():
        yield from (_leaf_types(t.fields) if t.kind == "struct" else [t])


def test_wrappers_replay_bit_exact(plan):
    """The wrapper modules (entry attributes stripped, globals) dispatched on lavapipe give the
    slangpy renderer's frame bit for bit."""
    r, p = plan
    replay_on_slangpy(p, r.device)
    ref = r.render(r.default_camera(), None, **PLAN_OPTIONS)
    assert ref.image.max() > 0.05 and (ref.image.sum(-1) > 0).mean() > 0.1  # not blank
    np.testing.assert_array_equal(p.output("radiance").numpy()[..., :3], ref.image)


def test_driver_on_slangpy_backed_falcor(device, tmp_path):
    """FalcorRenderer end to end with a fake falcor running on lavapipe: scene written and
    loaded, graph set, each pass compiled once, static data uploaded once, frame equal to the
    slangpy renderer's."""
    from neumat.falcor.driver import FalcorRenderer

    fake = slangpy_falcor(device)
    fr = FalcorRenderer(BUNDLE, "sphere", SIZE, falcor=fake, slang_device=device, workdir=tmp_path)
    cam = fr.renderer.default_camera()
    frames = [fr.render(cam, None) for _ in range(2)]
    ref = fr.renderer.render(cam, None, **PLAN_OPTIONS)
    for f in frames:
        np.testing.assert_array_equal(f.image, ref.image)
        np.testing.assert_array_equal(f.srgb, ref.srgb)
        assert f.falcor_mask is None  # the fake graph has no outputs
    log = fake.log
    assert log["frames"] == 2 and log["scenes"] == [str(tmp_path / "neumat_scene.pyscene")]
    assert (tmp_path / "neumat_scene.obj").is_file() and log["graphs"][0].endswith("scripts/NeuMat.py")
    assert len(log["programs"]) == 4 and all(p["entry"] == WRAPPER_ENTRY and p["args"][0] == "-I" for p in log["programs"])
    assert log["events"] == ["neumat/shell", "neumat/shell", "neumat/infer", "neumat/compose"] * 2
    uploads = [twin.uploads for _, twin in fr._buffers.values()]
    assert uploads and max(uploads) == 1  # static buffers uploaded once (the lights are per frame)


# ---- CLI ------------------------------------------------------------------------------------


def test_cli_without_falcor(monkeypatch, tmp_path):
    from neumat.cli import app

    monkeypatch.setattr("neumat.falcor.FALCOR_MODULES", ("neumat_no_such_falcor",))
    with pytest.raises(FalcorUnavailable, match="NVIDIA driver"):
        import_falcor()
    for args in (["render", BUNDLE, "--out", str(tmp_path / "x.png")], ["bench", BUNDLE, "--out", str(tmp_path / "b.json")]):
        res = CliRunner().invoke(app, ["falcor", *args])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and "pip install falcorcomp" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "x.png").exists()
    res = CliRunner().invoke(app, ["falcor", "graphs", "--out", str(tmp_path / "g")])
    assert res.exit_code == 0 and (tmp_path / "g" / "NeuMat.py").read_text() == graph_script(NEUMAT)
    assert "NVIDIA driver" in CliRunner().invoke(app, ["falcor", "--help"]).output


def test_profile_lanes():
    from neumat.falcor.profile import passes_from_capture

    capture = {"frame_count": 4, "events": {
        "/neumat/infer/gpu_time": {"records": [9.0, 1.0, 2.0, 3.0]}, "/neumat/infer/cpu_time": {"records": [5.0] * 4},
        "/present/gpu_time": {"records": [1.0] * 4}, "/neumat/shell/gpu_time": {"records": [4.0, 5.0, 6.0, 7.0]}}}
    assert passes_from_capture(capture, 3) == {"infer": [1.0, 2.0, 3.0], "shell": [5.0, 6.0, 7.0]}
    with pytest.raises(ValueError, match="fewer than 5"):
        passes_from_capture(capture, 5)


# ---- on a GPU machine with Falcor ----------------------------------------------------------


def _falcor_or_skip():
    try:
        return import_falcor()
    except FalcorUnavailable as e:
        pytest.skip(str(e))


@pytest.mark.gpu
def test_falcor_render_matches_slangpy(tmp_path):
    """Same view through Falcor and through the slangpy renderer (leather, sphere, 256x192, INT8).
    Same Slang source, different compilers and GPUs: relative L1 of the radiance <= 1e-3 and
    99.9 % of display bytes within 1; Falcor's raster coverage within 2 % of the pixels of
    neumat's shell visibility (same camera, different rasterization rules)."""
    falcor = _falcor_or_skip()
    from neumat.falcor.driver import FalcorRenderer

    fr = FalcorRenderer(BUNDLE, "sphere", (256, 192), falcor=falcor, workdir=tmp_path)
    cam = fr.renderer.default_camera()
    frame = fr.render(cam, None)
    ref = fr.renderer.render(cam, None, **PLAN_OPTIONS)
    assert ref.image.max() > 0.05
    assert np.abs(frame.image - ref.image).sum() / np.abs(ref.image).sum() <= 1e-3
    assert (np.abs(frame.srgb.astype(int) - ref.srgb.astype(int)) <= 1).all(-1).mean() >= 0.999
    if frame.falcor_mask is not None:
        ours = ref.image.sum(-1) > 0
        assert np.mean((frame.falcor_mask > 0.5) != ours) <= 0.02


@pytest.mark.gpu
def test_falcor_profile_report(tmp_path):
    falcor = _falcor_or_skip()
    from neumat.falcor.profile import falcor_frame_report

    report = falcor_frame_report(BUNDLE, "sphere", [(256, 192)], frames=3, warmup=1, falcor=falcor)
    case = report["cases"][0]
    assert report["schema"] == "neumat.bench.frames/1" and case["resolution"] == [256, 192]
    assert set(case["passes"]) == {"shell", "infer", "compose"}
    assert all(0.0 < s["median_ms"] < 1e3 and len(s["samples"]) == 3 for s in case["passes"].values())
