"""The infer pass's ``cuda`` backend and the ``--device`` option.

On a GPU (``gpu``): renders on a slangpy CUDA device with the cuda backend (gather kernel → dp4a
CUDA MLP on the device's own buffers → decode kernel) equal slang's in every slot, to the bit.
Everywhere: the backend choice (``auto``'s rule on software and hardware devices, with
:data:`~neumat.render.passes.infer_native.MEASURED_FASTEST`), clear refusals (cuda off a CUDA
device, with a float MLP, without a CUDA build), the ``__cuda_array_interface__`` view of a
CUDA buffer, ``--device`` on render / view / doctor / bench frames (one-line error for a type
this machine lacks), and bench frames recording the device type per case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import slangpy as spy
import typer
from test_infer_backend import CASES, assert_split_matches_slang
from typer.testing import CliRunner

from neumat import device as dev
from neumat.backends.cuda import CudaBackend
from neumat.bench.frames import FrameBenchConfig, FrameBenchError, run_frame_bench
from neumat.material.kinds import NEUMIP_KIND, TRIPLE_PLANE_KIND
from neumat.render.passes import infer_native
from neumat.render.passes.infer_cuda import CudaBufferView
from neumat.render.passes.infer_native import InferBackendError, resolve_backend

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "materials"
TP = TRIPLE_PLANE_KIND.infer_backends


@pytest.fixture(scope="module")
def cuda_device():
    """slangpy's CUDA device with the cuda backend usable; skips with the reason elsewhere."""
    try:
        device = dev.shared_device("cuda")
    except dev.DeviceError as e:
        pytest.skip(f"no CUDA render device: {e}")
    reason = CudaBackend.unavailable_reason()
    if reason is not None:
        pytest.skip(f"CUDA MLP unavailable: {reason}")
    return device


@pytest.fixture(scope="module")
def renderers():
    return {}


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test01_cuda_is_bit_identical_to_slang(renderers, cuda_device, case):
    assert_split_matches_slang(renderers, cuda_device, case, "cuda")


def _pretend(monkeypatch, api: str, software: bool, fastest: dict, cuda_reason: str | None = None) -> None:
    """Make resolve_backend see a device of ``api`` / ``software`` and ``fastest`` as recorded."""
    monkeypatch.setattr(infer_native, "describe", lambda device: dev.DeviceDescription("GPU", api, software))
    monkeypatch.setattr(infer_native, "MEASURED_FASTEST", fastest)
    monkeypatch.setattr(CudaBackend, "unavailable_reason", classmethod(lambda cls: cuda_reason))


def test02_auto_on_hardware_takes_the_measured_fastest_else_slang(monkeypatch):
    _pretend(monkeypatch, "cuda", False, {})
    assert resolve_backend("auto", None, "int8", TP) == "slang"  # nothing recorded
    _pretend(monkeypatch, "cuda", False, {"cuda": "cuda"})
    assert resolve_backend("auto", None, "int8", TP) == "cuda"
    assert resolve_backend("auto", None, "fp32", TP) == "slang"  # cuda runs INT8 only
    assert resolve_backend("auto", None, "int8", NEUMIP_KIND.infer_backends) == "slang"
    assert resolve_backend("cuda", None, "int8", TP) == "cuda"
    _pretend(monkeypatch, "cuda", False, {"cuda": "cuda"}, cuda_reason="no CUDA device: driver too old")
    assert resolve_backend("auto", None, "int8", TP) == "slang"  # the recorded one cannot run here
    with pytest.raises(InferBackendError, match="driver too old"):
        resolve_backend("cuda", None, "int8", TP)
    _pretend(monkeypatch, "vulkan", False, {"vulkan": "cuda"})
    assert resolve_backend("auto", None, "int8", TP) == "slang"  # cuda needs a CUDA device
    _pretend(monkeypatch, "vulkan", True, {"vulkan": "cuda"})  # software: native as before
    want = "native" if infer_native.native_import_error() is None else "slang"
    assert resolve_backend("auto", None, "int8", TP) == want


def test03_cuda_refusals_say_what_to_use(device):
    with pytest.raises(InferBackendError, match="INT8 MLP only"):
        resolve_backend("cuda", device, "fp16", TP)
    if dev.describe(device).api != "cuda":
        with pytest.raises(InferBackendError, match=r"needs a CUDA render device \(--device cuda"):
            resolve_backend("cuda", device, "int8", TP)
    with pytest.raises(InferBackendError, match=r"\['auto', 'slang'\]"):
        resolve_backend("cuda", device, "int8", NEUMIP_KIND.infer_backends)


class _Buffer:
    def __init__(self, kind, pointer: int, size: int) -> None:
        self.native_handle, self.size = spy.NativeHandle(kind, pointer), size


def test04_cuda_buffer_view():
    view = CudaBufferView(_Buffer(spy.NativeHandleType.CUdeviceptr, 0x7F0000001000, 4 * 10 * 3), 10, 3)
    cai = view.__cuda_array_interface__
    assert cai == {"shape": (10, 3), "typestr": "<f4", "data": (0x7F0000001000, False), "version": 3,
                   "strides": None}
    with pytest.raises(InferBackendError, match="does not fit"):
        CudaBufferView(_Buffer(spy.NativeHandleType.CUdeviceptr, 0x1000, 100), 10, 3)
    with pytest.raises(InferBackendError, match="VkBuffer"):
        CudaBufferView(_Buffer(spy.NativeHandleType.VkBuffer, 0x1000, 4096), 10, 3)


def _app(command) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("x")(command)
    app.command("noop")(lambda: None)
    return app


def test05_device_option_on_every_rendering_command():
    from neumat.cli import bench_cmd, doctor_cmd, render_cmd, view_cmd

    runner = CliRunner()
    leather = str(ASSETS / "leather.nmat")
    for command in (render_cmd.render, view_cmd.view, bench_cmd.frames, doctor_cmd.doctor):
        res = runner.invoke(_app(command), ["x", "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "--device" in res.output and "vulkan, cuda" in res.output
    for command, args in ((render_cmd.render, [leather]), (view_cmd.view, [leather, "--headless"]),
                          (bench_cmd.frames, []), (doctor_cmd.doctor, [])):
        res = runner.invoke(_app(command), ["x", *args, "--device", "metal"])
        assert res.exit_code == 2 and "--device must be one of ['auto', 'vulkan', 'cuda']" in res.output


def test06_absent_device_type_is_a_one_line_error(tmp_path):
    if dev._cuda_driver_loaded():
        pytest.skip("an NVIDIA driver is loaded here: a CUDA device may exist")
    from neumat.cli import render_cmd

    res = CliRunner().invoke(_app(render_cmd.render), ["x", str(ASSETS / "leather.nmat"), "--device", "cuda",
                                                       "--out", str(tmp_path / "a.png")])
    assert res.exit_code == 1 and not (tmp_path / "a.png").exists()
    (line,) = res.output.strip().splitlines()
    assert line.startswith("error: --device cuda: could not create a cuda device") and "libcuda" in line
    with pytest.raises(FrameBenchError, match="unknown device types"):
        run_frame_bench(FrameBenchConfig(devices=("metal",)))


def test07_bench_records_the_device_per_case_and_skips_cuda_off_cuda(device):
    api = dev.describe(device).api
    cfg = FrameBenchConfig(scenes=("plane",), resolutions=((16, 16),), frames=1, warmup=0,
                           options={"all": {"synthesis": False}}, infer_backends=("slang", "cuda"), devices=(api,))
    report = run_frame_bench(cfg)
    assert report["config"]["devices"] == [api] and report["devices"][0]["api"] == api
    assert {c["device"] for c in report["cases"]} == {api}
    if api != "cuda":
        assert [c["options_name"] for c in report["cases"]] == ["all@slang"]
        (skip,) = report["config"]["skipped"]
        assert skip["options_name"] == "all@cuda" and skip["device"] == api and "CUDA render device" in skip["reason"]
        assert report["summary"]["cuda_vs_slang"] == []
    assert np.isfinite(report["cases"][0]["total"]["median_ms"])
