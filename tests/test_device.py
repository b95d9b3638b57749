"""neumat.device picks a working slangpy device (llvmpipe on CPU-only machines) and
fails with install instructions instead of silently rendering nothing; neumat.slang_kernels finds
the Slang modules."""

from __future__ import annotations

import numpy as np
import pytest

from neumat import device as dev
from neumat.slang_kernels import shader_dir, shader_path

_SQUARES = r"""
RWStructuredBuffer<float> result;
uniform uint count;

[shader("compute")]
[numthreads(32, 1, 1)]
void squares(uint3 tid: SV_DispatchThreadID)
{
    if (tid.x < count)
        result[tid.x] = float(tid.x * tid.x) + 0.25f;
}
"""


def test01_shader_dir_holds_the_modules():
    folder = shader_dir()
    assert folder.is_dir()
    assert shader_path("mlp_int8.slang").parent == folder
    assert shader_path("rusinkiewicz.slang").is_file()
    with pytest.raises(FileNotFoundError, match="no_such_module"):
        shader_path("no_such_module.slang")


def test02_default_device_is_cached(device):
    assert dev.default_device() is device


def test03_describe(device):
    info = dev.describe(device)
    assert info.api in ("vulkan", "cuda")
    assert info.adapter == device.info.adapter_name
    assert str(info).startswith(info.adapter)
    has_gpu = any(not dev._is_software_name(a.name) for a in dev._vulkan_adapters())
    if not has_gpu and not dev._cuda_driver_loaded():
        # CPU-only machine: the only way to run is Mesa lavapipe, reported as software.
        assert info.software and "llvmpipe" in info.adapter.lower()


def test04_compute_dispatch_returns_correct_numbers(device):
    import slangpy as spy

    module = device.load_module_from_source("neumat_test_squares", _SQUARES)
    kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point("squares")]))
    n = 1000
    result = device.create_buffer(element_count=n, struct_size=4, usage=spy.BufferUsage.unordered_access)
    kernel.dispatch(thread_count=[n, 1, 1], vars={"result": result, "count": n})
    got = result.to_numpy().view(np.float32)[:n]
    expect = (np.arange(n, dtype=np.float64) ** 2 + 0.25).astype(np.float32)
    assert np.array_equal(got, expect)
    dev.self_check(device)  # integer + dot4add_i8packed check used by create()


def test05_shader_dir_is_on_the_include_path(device):
    module = device.load_module("rusinkiewicz.slang")
    assert module is not None


def test06_invalid_preference():
    with pytest.raises(ValueError, match="prefer"):
        dev.create("metal")


def test07_nothing_usable_says_how_to_install(monkeypatch):
    monkeypatch.setattr(dev, "_candidates", lambda prefer: [])
    with pytest.raises(dev.DeviceError) as err:
        dev.create()
    message = str(err.value)
    assert "bookworm-backports" in message and "mesa-vulkan-drivers libvulkan1" in message


def test08_cuda_preference_without_driver():
    if dev._cuda_driver_loaded():
        pytest.skip("an NVIDIA driver is loaded here; the no-driver message cannot be tested")
    with pytest.raises(dev.DeviceError, match="libcuda"):
        dev.create("cuda")


def test09_environment_variable(monkeypatch):
    monkeypatch.setenv(dev.DEVICE_ENV, "vulkan")
    assert dev.preference_from_env() == "vulkan"
    monkeypatch.setenv(dev.DEVICE_ENV, "")
    assert dev.preference_from_env() is None
    monkeypatch.setenv(dev.DEVICE_ENV, "opengl")
    with pytest.raises(dev.DeviceError, match=dev.DEVICE_ENV):
        dev.preference_from_env()
