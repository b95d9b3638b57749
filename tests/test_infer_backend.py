"""The infer pass's backends (neumat.render.passes.infer_native): the native backend (gather
kernel → C++ INT8 MLP on the host → decode kernel) writes btf / irradiance / shaded (and the
debug features / directions) bit-identical to the one-kernel slang backend at precision int8,
in real renders (several lights, point light, shadows on/off, synthesis on/off, relief on/off),
on every device type present (vulkan, cuda); so does the cuda backend (the dp4a CUDA MLP on a CUDA
device's buffers; GPU only); ``auto`` picks native on a software rasterizer for int8 triple-plane
bundles only, and on hardware what :data:`MEASURED_FASTEST` records, else slang; requests that
cannot run are clear errors; the bench pairs the backends in one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from neumat.backends.native_cpu import BUILD_HINT, native_import_error
from neumat.bench.frames_summary import backend_pairs, with_backends
from neumat.bundle import make_random_bundle
from neumat.material.kinds import NEUMIP_KIND, TRIPLE_PLANE_KIND
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight
from neumat.render.passes import infer_native
from neumat.render.passes.base import RenderContext
from neumat.render.passes.compose import ComposeSettings
from neumat.render.passes.infer_native import FIRST_CAPACITY, InferBackendError, resolve_backend
from neumat.render.renderer import Renderer, frame_view

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "materials"
SIZE = 48
CAMERA = Camera.orbit(azimuth=-60.0, elevation=40.0, distance=3.0)
DIRECTIONAL = DirectionalLight((0.6, -0.3, 0.35), (2.0, 1.5, 1.0))
GRAZING = DirectionalLight((0.95, 0.0, 0.12), (1.0, 1.0, 1.0))
POINT = PointLight((-0.8, 0.9, 0.6), (4.0, 5.0, 6.0))
NEAR_CAMERA = PointLight((0.5, -2.5, 2.0), (20.0, 20.0, 20.0))
SLOTS = ("btf", "irradiance", "shaded")
DEBUG_SLOTS = ("features", "directions")
CASES = {
    # name: (material, shape, lights, render options)
    "leather_3lights_shadows_synth": ("leather", "plane", [DIRECTIONAL, POINT, GRAZING],
                                      dict(hf=True, synthesis=True, shadows=True)),
    "leather_no_shadows_no_synth": ("leather", "plane", [DIRECTIONAL, POINT], dict(hf=True, synthesis=False, shadows=False)),
    "leather_point_no_hf": ("leather", "sphere", [NEAR_CAMERA], dict(hf=False, synthesis=True, shadows=False)),
    "gravel_4lights_sphere": ("gravel", "sphere", [GRAZING, POINT, DIRECTIONAL, POINT],
                              dict(hf=True, synthesis=True, shadows=True)),
    "random_15_inputs": ("random", "plane", [DIRECTIONAL, POINT], dict(hf=True, synthesis=False, shadows=True)),
    "random_15_inputs_synth": ("random", "plane", [DIRECTIONAL], dict(hf=True, synthesis=True, shadows=False)),
}
"""Renders compared slot by slot: relief frame from the synthesized relief (synthesis on), the
tiled height map (off), several lights with shadows, a point light alone, a network of 15 inputs
in H, U, D order. The shipped leather and gravel are v3 bundles, the random one v4 (the default
of new bundles: the slope of the interpolated unit normals, tiled and synthesized)."""


def _bundle(name: str):
    if name == "random":
        return make_random_bundle(np.random.default_rng(5), channels=5, hidden=(16, 24), order=("H", "U", "D"))
    return str(ASSETS / f"{name}.nmat")


@pytest.fixture(scope="module")
def renderers(device):
    return {}


def _renderer(renderers, device, material: str, shape: str) -> Renderer:
    key = (device.info.type.name, material, shape)
    if key not in renderers:
        renderers[key] = Renderer(_bundle(material), shape, (SIZE, SIZE), device=device)
    return renderers[key]


def render_slots(renderer: Renderer, lights, backend: str, **opts) -> tuple[dict[str, np.ndarray], dict]:
    """The infer node's output slots (+ debug slots and the mask) of one frame, and its timings."""
    camera, lights = frame_view(CAMERA, lights, renderer.width, renderer.height)
    graph = renderer.build_graph(camera, lights, opts["hf"], opts["synthesis"], False, True, ComposeSettings(),
                                 shadows=opts["shadows"], infer_backend=backend)
    res, timings = graph.execute(RenderContext(renderer.device, renderer.width, renderer.height))
    vis = "hf_trace" if "hf_trace.mask" in res else "shell"
    out = {s: res[f"infer.{s}"].numpy() for s in SLOTS + DEBUG_SLOTS}
    out["mask"] = res[f"{vis}.mask"].numpy()[..., 0] >= 0.5
    return out, timings


def assert_split_matches_slang(renderers, device, case: str, backend: str) -> None:
    """Render ``case`` with slang and the split ``backend``: every slot equal to the bit."""
    material, shape, lights, opts = CASES[case]
    r = _renderer(renderers, device, material, shape)
    slang, _ = render_slots(r, lights, "slang", **opts)
    native, timings = render_slots(r, lights, backend, **opts)
    mask = slang["mask"]
    assert mask.mean() > 0.2 and np.array_equal(mask, native["mask"])
    assert slang["shaded"][mask][:, :3].max() > 0  # something is lit
    for s in SLOTS:  # on the mask (off it the culled tiles leave them undefined)
        assert np.array_equal(slang[s][mask], native[s][mask]), s
    for s in DEBUG_SLOTS:  # written on the mask only
        assert np.array_equal(slang[s][mask], native[s][mask]), s
    assert {"infer.gather", "infer.mlp", "infer.decode"} <= set(timings)


@pytest.mark.parametrize("case", list(CASES))
def test01_native_is_bit_identical_to_slang(renderers, typed_device, case):
    if native_import_error() is not None:
        pytest.skip(native_import_error())
    assert_split_matches_slang(renderers, typed_device, case, "native")


def test02_capacity_grows_and_shrinking_coverage_reuses_it(renderers, device):
    """A plane covering more than FIRST_CAPACITY of the pixels overflows the first exchange
    buffers (gather runs again with room for 1.25x the masked pixels); a sphere of less coverage
    then fits the grown buffers; both frames stay bit-identical to slang."""
    if native_import_error() is not None:
        pytest.skip(native_import_error())
    r = Renderer(_bundle("leather"), "plane", (SIZE, SIZE), device=device)
    opts = dict(hf=True, synthesis=False, shadows=False)
    native, _ = render_slots(r, [DIRECTIONAL], "native", **opts)
    masked = int(native["mask"].sum())
    assert masked > FIRST_CAPACITY * SIZE * SIZE
    assert r.infer_pass(True).native()._shape == (min(SIZE * SIZE, int(np.ceil(1.25 * masked))), 1)
    slang, _ = render_slots(r, [DIRECTIONAL], "slang", **opts)
    for s in SLOTS:
        assert np.array_equal(slang[s][native["mask"]], native[s][native["mask"]]), s


def test03_auto_picks_native_on_software_int8_triple_plane(device):
    from neumat.device import describe

    native_ok = native_import_error() is None
    software = describe(device).software
    tp, neumip = TRIPLE_PLANE_KIND.infer_backends, NEUMIP_KIND.infer_backends
    assert resolve_backend("auto", device, "int8", tp) == ("native" if native_ok and software else "slang")
    assert resolve_backend("auto", device, "fp32", tp) == "slang"
    assert resolve_backend("auto", device, "fp16", tp) == "slang"
    assert resolve_backend("auto", device, "int8", neumip) == "slang"  # NeuMIP declares slang only
    assert resolve_backend("slang", device, "fp32", tp) == "slang"


def test04_requests_that_cannot_run_are_clear_errors(device, monkeypatch):
    tp = TRIPLE_PLANE_KIND.infer_backends
    with pytest.raises(InferBackendError, match="INT8 MLP only"):
        resolve_backend("native", device, "fp32", tp)
    with pytest.raises(InferBackendError, match=r"\['auto', 'slang'\]"):
        resolve_backend("native", device, "int8", NEUMIP_KIND.infer_backends)
    with pytest.raises(InferBackendError, match="must be one of"):
        resolve_backend("metal", device, "int8", tp)
    monkeypatch.setattr(infer_native, "native_import_error", lambda: f"no extension; {BUILD_HINT}")
    with pytest.raises(InferBackendError, match="make setup"):
        resolve_backend("native", device, "int8", tp)
    assert resolve_backend("auto", device, "int8", tp) == "slang"  # falls back without the extension


def test05_renderer_reports_native_steps_only_when_native_runs(renderers, device):
    if native_import_error() is not None:
        pytest.skip(native_import_error())
    r = _renderer(renderers, device, "leather", "plane")
    slang = r.render(CAMERA, [DIRECTIONAL], infer_backend="slang")
    native = r.render(CAMERA, [DIRECTIONAL], infer_backend="native")
    assert not any(k.startswith("infer.") for k in slang.timings_ms)
    steps = {k: native.timings_ms[f"infer.{k}"] for k in ("gather", "mlp", "decode")}
    assert all(v > 0 for v in steps.values())
    assert steps["gather"] + steps["decode"] < native.timings_ms["infer"]  # device parts of the node's time
    assert np.array_equal(slang.image, native.image) and np.array_equal(slang.srgb, native.srgb)
    with pytest.raises(InferBackendError, match="INT8 MLP only"):
        r.render(CAMERA, [DIRECTIONAL], precision="fp32", infer_backend="native")


def _case(backend: str, infer_ms: float, total_ms: float, **extra) -> dict:
    return {"scene": "sphere", "material": "leather", "resolution": [512, 512], "options_name": f"all@{backend}",
            "options": {"hf": True, "infer_backend": backend, **extra}, "infer_backend": backend,
            "passes": {"infer": {"median_ms": infer_ms}}, "total": {"median_ms": total_ms},
            "steps": {"infer.gather": {"median_ms": 4.0}, "infer.mlp": {"median_ms": 2.0}} if backend == "native" else {}}


def test06_bench_crosses_option_sets_with_backends_and_pairs_them():
    sets = with_backends({"all": {"fp32": False}, "fp32": {"fp32": True}}, ("slang", "native"))
    assert sets == {"all@slang": {"fp32": False, "infer_backend": "slang"},
                    "all@native": {"fp32": False, "infer_backend": "native"},
                    "fp32@slang": {"fp32": True, "infer_backend": "slang"},
                    "fp32@native": {"fp32": True, "infer_backend": "native"}}  # refused when rendered
    assert with_backends({"all": {}}, ()) == {"all": {}}
    (pair,) = backend_pairs([_case("slang", 80.0, 400.0), _case("native", 20.0, 340.0),
                             _case("native", 10.0, 300.0, hf=False)])  # the last has no slang twin
    assert pair["options_name"] == "all" and pair["infer_ratio"] == 0.25 and pair["total_ratio"] == 0.85
    assert pair["native_steps"] == {"gather": 4.0, "mlp": 2.0}
    cuda = _case("native", 40.0, 200.0)
    cuda.update(infer_backend="cuda", options={**cuda["options"], "infer_backend": "cuda"}, device="cuda")
    slang_cuda = {**_case("slang", 50.0, 250.0), "device": "cuda"}
    (pair,) = backend_pairs([_case("slang", 80.0, 400.0), cuda, slang_cuda], "cuda")  # twins on one device only
    assert pair["device"] == "cuda" and pair["infer_ratio"] == 0.8 and pair["cuda_total_ms"] == 200.0


def test07_cli_option_and_help():
    from neumat.cli import bench_cmd, render_cmd, view_cmd

    runner = CliRunner()
    for command in (render_cmd.render, view_cmd.view, bench_cmd.frames):
        app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        app.command("x")(command)
        app.command("noop")(lambda: None)
        res = runner.invoke(app, ["x", "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "--infer-backend" in res.output and "lavapipe" in res.output
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("render")(render_cmd.render)
    app.command("noop")(lambda: None)
    res = runner.invoke(app, ["render", str(ASSETS / "leather.nmat"), "--infer-backend", "metal"])
    assert res.exit_code == 2 and "--infer-backend must be one of" in res.output
