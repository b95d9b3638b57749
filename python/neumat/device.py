"""The slangpy compute/render device every neumat GPU pass runs on.

Choice (``prefer=None``), first that works:

1. Vulkan on a hardware adapter (discrete/integrated GPU): compute, rasterization and the
   viewer's interop all work there;
2. CUDA (slangpy's CUDA device, when an NVIDIA driver is loaded but no Vulkan ICD is);
3. Vulkan on Mesa lavapipe ("llvmpipe"), a software rasterizer on the CPU: slow (~1-5
   Msamples/s for the INT8 MLP) but exact, so every pass runs and is tested without a GPU.

If none works, :class:`DeviceError` says how to install lavapipe. A created device runs a tiny
self-check kernel (arithmetic + ``dot4add_i8packed``) before it is returned, so a broken driver
(e.g. Debian bookworm's Mesa 22 lavapipe) fails loudly instead of rendering black images.
Ray queries are never required (lavapipe has them, the GPU machines' Vulkan does not).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .slang_kernels import shader_dir

if TYPE_CHECKING:  # slangpy is imported lazily so that `import neumat.render` never fails
    import slangpy as spy

PREFERENCES = (None, "vulkan", "cuda")
"""Valid values of ``prefer`` (None = automatic, see the module docstring)."""
DEVICE_CHOICES = ("auto", "vulkan", "cuda")
"""Values of the CLI's ``--device`` (``auto`` = ``prefer=None``)."""

DEVICE_ENV = "NEUMAT_DEVICE"
"""Environment variable read by :func:`default_device`: ``vulkan`` or ``cuda`` (unset = auto)."""

LAVAPIPE_INSTALL = (
    "install Mesa's Vulkan software driver lavapipe (Mesa >= 24; bookworm's Mesa 22 lacks "
    "VK_KHR_shader_non_semantic_info). On Debian bookworm, as root:\n"
    "  echo 'deb http://deb.debian.org/debian bookworm-backports main' "
    "> /etc/apt/sources.list.d/bpo.list\n"
    "  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1\n"
    "(on a machine with a GPU, install its Vulkan or CUDA driver instead)"
)

_SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "softpipe")

_CHECK_SOURCE = r"""
RWStructuredBuffer<int> result;
uniform uint count;

[shader("compute")]
[numthreads(32, 1, 1)]
void neumat_device_check(uint3 tid: SV_DispatchThreadID)
{
    uint i = tid.x;
    if (i >= count)
        return;
    int a = int(i % 100u);
    int b = -int(i % 50u);
    uint pa = (uint(a) & 0xFFu) | (1u << 8) | ((uint(-2) & 0xFFu) << 16) | (3u << 24);
    uint pb = 1u | ((uint(b) & 0xFFu) << 8) | (5u << 16) | ((uint(-7) & 0xFFu) << 24);
    result[i] = dot4add_i8packed(pa, pb, int(i) * 3);
}
"""


class DeviceError(RuntimeError):
    """No usable slangpy device; the message lists what was tried and how to fix it."""


@dataclass(frozen=True)
class DeviceDescription:
    """What a device is, for logs, reports and ``neumat doctor``."""

    adapter: str
    """Adapter name as the driver reports it, e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``."""
    api: str
    """Graphics/compute API: ``"vulkan"`` or ``"cuda"``."""
    software: bool
    """True for CPU rasterizers (lavapipe/llvmpipe, SwiftShader): correct but slow."""

    def __str__(self) -> str:
        kind = "software" if self.software else "hardware"
        return f"{self.adapter} [{self.api}, {kind}]"


def _is_software_name(name: str) -> bool:
    lowered = name.lower()
    return any(s in lowered for s in _SOFTWARE_NAMES)


def describe(device: spy.Device) -> DeviceDescription:
    """Adapter name, API and whether ``device`` is a software (CPU) implementation."""
    import slangpy as spy

    info = device.info
    software = device.has_feature(spy.Feature.software_device) or _is_software_name(
        info.adapter_name
    )
    return DeviceDescription(info.adapter_name, info.type.name, bool(software))


def _cuda_driver_loaded() -> bool:
    """True if the NVIDIA driver library can be loaded (checked before asking slangpy, which
    prints noise to stderr when it is absent)."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def self_check(device: spy.Device) -> None:
    """Run a tiny kernel (integer arithmetic + ``dot4add_i8packed``) and compare with numpy.

    Raises:
        DeviceError: the kernel failed to compile/run or returned wrong numbers.
    """
    import slangpy as spy

    count = 100
    try:
        module = device.load_module_from_source("neumat_device_check", _CHECK_SOURCE)
        program = device.link_program([module], [module.entry_point("neumat_device_check")])
        kernel = device.create_compute_kernel(program)
        result = device.create_buffer(
            element_count=count, struct_size=4, usage=spy.BufferUsage.unordered_access
        )
        kernel.dispatch(thread_count=[count, 1, 1], vars={"result": result, "count": count})
        got = result.to_numpy().view(np.int32)[:count]
    except Exception as e:  # slangpy raises RuntimeError/SlangCompileError from native code
        raise DeviceError(f"self-check kernel failed on {describe(device)}: {e}") from e
    i = np.arange(count, dtype=np.int64)
    expect = (i % 100) * 1 + 1 * -(i % 50) + (-2) * 5 + 3 * (-7) + 3 * i
    if not np.array_equal(got.astype(np.int64), expect):
        raise DeviceError(
            f"self-check kernel returned wrong numbers on {describe(device)} "
            f"(first: {got[:4].tolist()}, expected {expect[:4].tolist()}); "
            f"the driver is broken: {LAVAPIPE_INSTALL}"
        )


def _vulkan_adapters() -> list:
    import slangpy as spy

    try:
        return list(spy.Device.enumerate_adapters(spy.DeviceType.vulkan))
    except Exception:  # no Vulkan loader/ICD: treated as "no adapters", reported below
        return []


def _candidates(prefer: str | None) -> list[tuple[str, object, list[int] | None]]:
    """Ordered (label, DeviceType, adapter luid) attempts for ``prefer``."""
    import slangpy as spy

    vulkan = _vulkan_adapters()
    hardware = [a for a in vulkan if not _is_software_name(a.name)]
    software = [a for a in vulkan if _is_software_name(a.name)]
    vk_hw = [(f"vulkan '{a.name}'", spy.DeviceType.vulkan, list(a.luid)) for a in hardware]
    vk_sw = [(f"vulkan '{a.name}'", spy.DeviceType.vulkan, list(a.luid)) for a in software]
    cuda = [("cuda", spy.DeviceType.cuda, None)] if _cuda_driver_loaded() else []
    if prefer == "cuda":
        return cuda
    if prefer == "vulkan":
        return vk_hw + vk_sw
    return vk_hw + cuda + vk_sw


def create(
    prefer: str | None = None,
    *,
    include_paths: tuple[str | os.PathLike, ...] = (),
    hot_reload: bool = False,
    verify: bool = True,
) -> spy.Device:
    """Create a slangpy device, preferring a GPU, falling back to Vulkan on lavapipe.

    Args:
        prefer: None (automatic: Vulkan GPU, then CUDA, then lavapipe), ``"vulkan"`` (any
            Vulkan adapter, hardware first) or ``"cuda"`` (CUDA only).
        include_paths: extra Slang include folders, after :func:`neumat.slang_kernels.shader_dir`.
        hot_reload: let slangpy recompile modules when their files change (viewer use).
        verify: run :func:`self_check` before returning (on by default; ~0.1 s).

    Returns:
        A ready ``slangpy.Device`` whose include paths start with neumat's shader folder.

    Raises:
        ValueError: ``prefer`` is not one of :data:`PREFERENCES`.
        DeviceError: nothing usable; the message lists every attempt and how to install
            lavapipe.
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {PREFERENCES}, got {prefer!r}")
    try:
        import slangpy as spy
    except ImportError as e:
        raise DeviceError(f"slangpy is not importable ({e}); pip install slangpy==0.43.1") from e

    paths = [str(shader_dir()), *(str(p) for p in include_paths)]
    failures = []
    for label, device_type, luid in _candidates(prefer):
        try:
            device = spy.create_device(
                type=device_type,
                adapter_luid=luid,
                include_paths=paths,
                enable_hot_reload=hot_reload,
            )
        except Exception as e:  # native creation errors are RuntimeError with driver text
            failures.append(f"{label}: {e}")
            continue
        if verify:
            try:
                self_check(device)
            except DeviceError as e:
                failures.append(f"{label}: {e}")
                device.close()
                continue
        return device
    nothing = {
        None: "no Vulkan adapter and no CUDA driver (libcuda.so.1) was found",
        "vulkan": "no Vulkan adapter was found (is libvulkan1 + an ICD installed?)",
        "cuda": "no CUDA driver (libcuda.so.1) was found",
    }[prefer]
    tried = "; ".join(failures) if failures else nothing
    wanted = "a device" if prefer is None else f"a {prefer} device"
    if prefer == "cuda":  # one line: lavapipe would not help
        raise DeviceError(f"could not create {wanted} ({tried}); it needs an NVIDIA GPU and driver, "
                          "else use device type 'vulkan' or 'auto'")
    raise DeviceError(f"could not create {wanted} ({tried}). To fix: {LAVAPIPE_INSTALL}")


def preference_from_env() -> str | None:
    """``prefer`` as set by the ``NEUMAT_DEVICE`` environment variable (None if unset/empty).

    Raises:
        DeviceError: the variable holds something other than ``vulkan`` or ``cuda``.
    """
    prefer = os.environ.get(DEVICE_ENV) or None
    if prefer not in PREFERENCES:
        raise DeviceError(f"{DEVICE_ENV}={prefer!r} is invalid; use 'vulkan', 'cuda' or unset it")
    return prefer


@lru_cache(maxsize=None)
def shared_device(prefer: str | None) -> spy.Device:
    """The process-wide device of ``prefer`` (:data:`PREFERENCES`), created once by :func:`create`."""
    return create(prefer)


def default_device() -> spy.Device:
    """The process-wide device of ``prefer`` from :func:`preference_from_env` (:func:`shared_device`)."""
    return shared_device(preference_from_env())
