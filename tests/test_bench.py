"""``neumat bench frames`` and ``neumat bench --compare``: a tiny real run (64x64 sphere, 1
warm-up, 2 frames, 2 option sets) checked for a complete, well-formed JSON, a markdown row per
case and a valid PNG; comparisons of hand-written JSONs checked against ratios computed by hand.

No timing assertion: the machine is shared and noisy; only structure, consistency of the
statistics with their samples, and positivity are asserted.
"""

import json
import math

import numpy as np
import pytest
from neumat.bench.frames import (
    BASE_OPTIONS,
    SCHEMA,
    FrameBenchConfig,
    FrameBenchError,
    parse_option_sets,
    parse_resolutions,
    run_frame_bench,
)
from neumat.bench.report import BenchReportError, compare_reports, load_report, pass_names
from neumat.cli import app
from typer.testing import CliRunner

runner = CliRunner()
ALL_PASSES = {"shell", "hf_trace", "synthesis", "infer", "compose"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, device):
    """The CLI's tiny frame benchmark: (CliRunner result, output folder)."""
    out = tmp_path_factory.mktemp("bench")
    result = runner.invoke(app, ["bench", "frames", "--resolutions", "64x64", "--warmup", "1", "--frames", "2",
                                 "--scene", "sphere", "--options", "all,fp32", "--out", str(out)])
    return result, out


def _strict_json(path):
    def no_constants(name):
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=no_constants)


def check_stats(s, frames):
    assert set(s) == {"median_ms", "p95_ms", "min_ms", "samples"}
    samples = s["samples"]
    assert len(samples) == frames and all(math.isfinite(x) and x > 0 for x in samples)
    assert s["median_ms"] == pytest.approx(float(np.median(samples)), rel=1e-12)
    assert s["min_ms"] == min(samples)
    assert s["median_ms"] <= s["p95_ms"] <= max(samples)


def test01_frames_json_is_complete_and_well_formed(tiny_run):
    result, out = tiny_run
    assert result.exit_code == 0, result.output
    report = _strict_json(out / "bench.json")
    assert report["schema"] == SCHEMA and report["benchmark"] == "frames"
    assert report["neumat_version"] and report["slangpy_version"]
    assert set(report["device"]) == {"adapter", "api", "software", "description"}
    assert report["machine"]["cores"] >= 1 and "slangpy" in report["machine"]["versions"]
    assert report["config"]["resolutions"] == [[64, 64]] and report["config"]["frames"] == 2
    cases = report["cases"]
    assert [c["options_name"] for c in cases] == ["all", "fp32"]
    assert [c["options"]["fp32"] for c in cases] == [False, True]
    assert all(c["options"] == {**cases[0]["options"], "fp32": c["options"]["fp32"]} for c in cases)
    assert BASE_OPTIONS.items() <= cases[0]["options"].items()  # recorded in full (render's defaults too)
    for c in cases:
        assert (c["scene"], c["material"], c["resolution"]) == ("sphere", "leather", [64, 64])
        assert (c["frames"], c["warmup"]) == (2, 1)
        # unit sphere framed like `neumat render`: a disc of angular radius asin(1/(1.05·sqrt(3)/sin 20°))
        # = 10.84° in a 40° field covers (tan 10.84° / tan 20°)²·π/4 = 0.217 of the pixels; the height
        # field's shell sticks out a little (0.236 measured at 512x512)
        assert 0.20 < c["coverage"] < 0.27
        assert ALL_PASSES <= set(c["passes"])  # leather has a height field: hf_trace runs
        for s in (*c["passes"].values(), c["total"]):
            check_stats(s, 2)
    (ratio,) = report["summary"]["infer_vs_int8"]
    infer = [c["passes"]["infer"]["median_ms"] for c in cases]
    assert (ratio["precision"], ratio["int8_ms"], ratio["other_ms"]) == ("fp32", infer[0], infer[1])
    assert ratio["ratio"] == pytest.approx(infer[1] / infer[0], rel=1e-12)
    assert load_report(out / "bench.json") == report


def test02_markdown_has_a_row_per_case(tiny_run):
    _, out = tiny_run
    report = json.loads((out / "bench.json").read_text())
    md = (out / "bench.md").read_text()
    assert report["device"]["description"] in md
    rows = [line for line in md.splitlines() if line.startswith("| sphere |")]
    assert len(rows) == len(report["cases"]) == 2
    for row, case in zip(rows, report["cases"]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:5] == ["sphere", "leather", "64x64", f"{100 * case['coverage']:.0f}%", case["options_name"]]
        assert float(cells[5]) == pytest.approx(case["total"]["median_ms"], abs=0.05)  # 3 significant digits
        assert len(cells) == 7 + len(case["passes"])
    assert "FP32/INT8" in md


def test03_png_is_a_valid_image(tiny_run):
    import imageio.v3 as iio

    _, out = tiny_run
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = iio.imread(png)
    assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 400
    assert img[..., :3].std() > 10  # bars and text, not a blank canvas


def test04_api_runs_custom_option_sets(device):
    cfg = FrameBenchConfig(scenes=("plane",), resolutions=((32, 24),), frames=1, warmup=0,
                           options=parse_option_sets("hf=off+synthesis=off,hf=off+synthesis=off+precision=fp32"))
    frames_seen = []
    report = run_frame_bench(cfg, device=device, on_frame=frames_seen.append)
    assert frames_seen == ["leather/plane/32x24/hf=off+synthesis=off",
                           "leather/plane/32x24/hf=off+synthesis=off+precision=fp32"]
    int8, fp32 = report["cases"]
    assert (int8["options"]["hf"], int8["options"]["synthesis"], int8["options"]["fp32"]) == (False, False, False)
    assert fp32["options"] == {**int8["options"], "precision": "fp32"}
    for case in (int8, fp32):
        assert {"shell", "infer", "compose"} <= set(case["passes"])
        assert not {"hf_trace", "synthesis"} & set(case["passes"])
        assert case["resolution"] == [32, 24]
    (ratio,) = report["summary"]["infer_vs_int8"]  # the precision option pairs like fp32
    assert ratio["precision"] == "fp32" and ratio["options_name"] == "hf=off+synthesis=off"
    assert ratio["ratio"] == pytest.approx(fp32["passes"]["infer"]["median_ms"] / int8["passes"]["infer"]["median_ms"])


def _case(scene, res, options_name, options, total, passes):
    def s(ms):
        return {"median_ms": ms, "p95_ms": ms, "min_ms": ms, "samples": [ms]}

    return {"scene": scene, "material": "leather", "resolution": list(res), "options_name": options_name,
            "options": {**BASE_OPTIONS, **options}, "frames": 1, "warmup": 0, "coverage": 0.5,
            "passes": {p: s(v) for p, v in passes.items()}, "total": s(total)}


def _frames_report(cases):
    return {"schema": SCHEMA, "benchmark": "frames", "device": {"description": "hand-written"}, "cases": cases}


def _write(path, report):
    path.write_text(json.dumps(report))
    return str(path)


A_CASES = [_case("sphere", (512, 512), "all", {}, 100.0, {"shell": 10.0, "infer": 80.0}),
           _case("sphere", (512, 512), "fp32", {"fp32": True}, 200.0, {"shell": 10.0, "infer": 180.0}),
           _case("cloth", (512, 512), "all", {}, 50.0, {"shell": 5.0, "infer": 40.0})]
# B: the same cases reordered and renamed (pairing is by scene, resolution and options dict), one
# more case, and an option A does not know (a renderer option added between the runs)
B_CASES = [_case("sphere", (512, 512), "int8_fp32", {"fp32": True, "shadows": True}, 100.0,
                 {"shell": 20.0, "infer": 45.0}),
           _case("sphere", (512, 512), "all", {"shadows": True}, 50.0, {"shell": 5.0, "infer": 40.0, "hf_trace": 3.0}),
           _case("sphere", (1920, 1080), "all", {"shadows": True}, 400.0, {"shell": 40.0, "infer": 300.0})]


def test05_compare_pairs_cases_and_prints_ratios(tmp_path):
    a, b = _frames_report(A_CASES), _frames_report(B_CASES)
    cmp = compare_reports(a, b)
    rows = {tuple(r["key"]): r["ratios"] for r in cmp.rows}
    assert rows == {("sphere", "512x512", "all"): {"total": 0.5, "shell": 0.5, "hf_trace": None, "infer": 0.5},
                    ("sphere", "512x512", "fp32"): {"total": 0.5, "shell": 2.0, "hf_trace": None, "infer": 0.25}}
    assert cmp.only_a == ["cloth/512x512/all"] and cmp.only_b == ["sphere/1920x1080/all"]
    result = runner.invoke(app, ["bench", "--compare", _write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "sphere" in line and "512x512" in line]
    assert len(lines) == 2
    assert "0.500" in lines[0] and "2.000" in lines[1] and "0.250" in lines[1]
    assert "only in A (not compared): cloth/512x512/all" in result.output


def test06_compare_mlp_reports(tmp_path):
    def mlp(seconds):
        return {"benchmark": "mlp_int8", "results": [
            {"name": n, "available": True, "seconds": s} for n, s in seconds.items()]
            + [{"name": "cuda", "available": False, "reason": "no driver"}]}

    a, b = mlp({"numpy": 2.0, "native": 0.01}), mlp({"numpy": 3.0, "native": 0.005})
    cmp = compare_reports(a, b)
    assert {r["key"][0]: r["ratios"]["time per call"] for r in cmp.rows} == {"numpy": 1.5, "native": 0.5}
    result = runner.invoke(app, ["bench", "--compare", _write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)])
    assert result.exit_code == 0 and "1.500" in result.output and "0.500" in result.output


@pytest.mark.parametrize("b_text, message", [
    (None, "cannot read"),
    ("{not json", "not valid JSON"),
    (json.dumps({"benchmark": "frames", "schema": "neumat.bench.frames/0", "cases": []}), "schema"),
    (json.dumps({"benchmark": "mlp_int8", "results": []}), "cannot compare"),
    (json.dumps({"hello": 1}), "not a neumat benchmark JSON"),
    (json.dumps(_frames_report([{"scene": "sphere"}])), "case 0 lacks"),
])
def test07_compare_bad_input_is_a_clear_error(tmp_path, b_text, message):
    a = _write(tmp_path / "a.json", _frames_report(A_CASES))
    b = tmp_path / "b.json"
    if b_text is not None:
        b.write_text(b_text)
    result = runner.invoke(app, ["bench", "--compare", a, str(b)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["bench", "frames", "--options", "all,nope"],
    ["bench", "frames", "--options", "hf=off+colour=red"],
    ["bench", "frames", "--resolutions", "512x"],
    ["bench", "frames", "--material", "missing.nmat", "--resolutions", "8x8"],
    ["bench", "frames", "--scene", "no_such_mesh.obj", "--resolutions", "8x8"],
    ["bench", "--compare", "a.json", "b.json", "mlp"],
])
def test08_bad_frames_arguments_are_clear_errors(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test09_pass_columns_follow_execution_order():
    cases = [{"passes": dict.fromkeys(["shell", "infer", "compose"])},
             {"passes": dict.fromkeys(["shell", "hf_trace", "shadow", "synthesis", "infer", "compose"])}]
    assert pass_names(cases) == ["shell", "hf_trace", "shadow", "synthesis", "infer", "compose"]


def test10_option_and_resolution_parsing():
    assert parse_option_sets("all,no_hf,exposure=1.5+fp32=on") == {
        "all": {}, "no_hf": {"hf": False}, "exposure=1.5+fp32=on": {"exposure": 1.5, "fp32": True}}
    assert parse_resolutions("512x512, 1920X1080") == ((512, 512), (1920, 1080))
    with pytest.raises(FrameBenchError, match="keys"):
        parse_option_sets("camera=1")
    with pytest.raises(BenchReportError):
        compare_reports(_frames_report(A_CASES), {"benchmark": "mlp_int8", "results": []})
