"""The ``neumat`` command line: doctor, bench mlp, inspect — real runs, checked outputs."""

import json

import pytest
from typer.testing import CliRunner

from neumat.cli import app

runner = CliRunner()


def test01_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("doctor", "inspect", "bench"):
        assert cmd in result.output


def test02_doctor_self_check_passes(tmp_path):
    out = tmp_path / "doctor.json"
    result = runner.invoke(app, ["doctor", "--vectors", "200", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["ok"] is True
    numpy_check = report["int8_backends"]["numpy"]
    assert numpy_check["total"] == 0 and numpy_check["vectors"] > 1000
    usable = [n for n, r in report["int8_backends"].items() if "unavailable" not in r]
    assert "numpy" in usable and "native" in usable
    for name, r in report["int8_backends"].items():
        assert ("unavailable" in r and r["unavailable"]) or r["total"] == 0, name
    # The render device is named as the device module describes it (llvmpipe on CPU-only machines).
    from neumat.device import DeviceError, default_device, describe

    try:
        device = describe(default_device())
    except DeviceError:
        assert report["render_device"]["ok"] is False and "render device: none" in result.output
        return
    assert report["render_device"] == {"ok": True, "device": str(device), "adapter": device.adapter,
                                       "api": device.api, "software": device.software}
    assert f"render device: {device}" in result.output.replace("\n", "")


def test03_bench_mlp_json_complete(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app, ["bench", "mlp", "--samples", "4096", "--repeats", "2", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["config"]["samples"] == 4096
    names = {r["name"] for r in report["results"]}
    assert names == {"numpy", "native", "slang", "cuda", "torch_fp32"}
    for r in report["results"]:
        if r["available"]:
            assert r["samples_per_s"] > 0 and len(r["all_times_s"]) == 2
        else:
            assert r["reason"]
    assert "native/torch_fp32" in report["speed_ratios"]
    assert report["machine"]["versions"]["numpy"]


@pytest.mark.parametrize("args", [["bench", "mlp", "--widths", "3,x"], ["bench", "mlp", "--backend", "nope"],
                                  ["bench", "mlp", "--widths", "300,3"]])
def test04_bench_mlp_bad_input_is_a_clear_error(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test05_inspect_good_and_broken_bundles(tmp_path):
    import numpy as np

    from neumat.bundle import make_random_bundle, save_bundle

    path = save_bundle(make_random_bundle(np.random.default_rng(0)), tmp_path / "m.nmat")
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"] and report["checksum"]["status"] == "OK"
    assert report["manifest"]["kind"] == "triple_plane"
    names = {t["name"] for t in report["tensors"]}
    assert {"plane.U", "plane.H", "plane.D"} <= names
    assert report["file_size"] == path.stat().st_size

    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0 and "checksum: OK" in result.output

    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip a byte in the last tensor's data
    broken = tmp_path / "broken.nmat"
    broken.write_bytes(bytes(data))
    result = runner.invoke(app, ["inspect", str(broken), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["checksum"]["status"] == "MISMATCH" and "checksum" in report["error"]

    result = runner.invoke(app, ["inspect", str(tmp_path / "missing.nmat")])
    assert result.exit_code == 1 and "Traceback" not in result.output
