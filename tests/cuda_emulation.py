"""The CUDA kernel's host emulation (cuda/host_emulation.cpp) built with the host C++ compiler
and wrapped for the tests: the kernel's phases run block by block on the CPU, and the
launcher's CUDA-free decisions (block size and shared-memory layout, stream plan, x/y
aliasing check) are called directly."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYOUT_FIELDS = ("threads", "in_words", "in_stride", "in_offset", "out_stride", "out_offset", "total_words")


def build_emulation(out_dir: Path) -> ctypes.CDLL:
    """Compile cuda/host_emulation.cpp + cpp/mlp_desc.cpp into ``out_dir`` (skip if impossible)."""
    sources = [ROOT / "cuda" / "host_emulation.cpp", ROOT / "cpp" / "mlp_desc.cpp"]
    if not all(p.exists() for p in sources):
        pytest.skip("kernel sources are not in this checkout")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no host C++ compiler (c++/g++ or $CXX) to build the kernel emulation")
    lib_path = out_dir / "libneumat_kernel_emu.so"
    flags = ["-O2", "-std=c++17", "-ffp-contract=off", "-fno-strict-aliasing", "-fPIC", "-shared",
             "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas"]
    includes = [f"-I{ROOT / 'cpp'}", f"-I{ROOT / 'cuda'}"]
    cmd = [cxx, *flags, *includes, *map(str, sources), "-o", str(lib_path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
    lib = ctypes.CDLL(str(lib_path))
    p, i, i64, u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_uint64
    lib.neumat_emulated_forward.restype = i
    lib.neumat_emulated_forward.argtypes = [p, i, p, p, i, p, p, i64, i, i64, i]
    lib.neumat_emulated_layout.restype = i
    lib.neumat_emulated_layout.argtypes = [p, i, p, p, i, i64, p]
    lib.neumat_plan_streams.restype = None
    lib.neumat_plan_streams.argtypes = [i, u64, i, u64, i, u64, p]
    lib.neumat_require_disjoint.restype = i
    lib.neumat_require_disjoint.argtypes = [u64, u64, u64, u64, ctypes.c_char_p, i]
    return lib


def _net(mlp):
    return mlp.flat_weights(), np.asarray(mlp.widths, np.int32), mlp.multipliers()


def emulated_forward(lib, mlp, x, threads: int = 256, blocks: int | None = None,
                     descending: bool = False) -> tuple[np.ndarray, int]:
    """``(y, MW)``: ``x`` float32 [N, n_0] through the emulated kernel launch with ``blocks``
    blocks (default: one per tile) of ``threads`` threads; ``y`` starts as NaN everywhere, so
    an output the kernel never writes shows up."""
    x = np.ascontiguousarray(x, np.float32)
    weights, widths, mult = _net(mlp)
    y = np.full((x.shape[0], mlp.n_outputs), np.nan, np.float32)
    if blocks is None:
        blocks = max(1, -(-x.shape[0] // threads))
    mw = lib.neumat_emulated_forward(widths.ctypes.data, widths.size, mult.ctypes.data, weights.ctypes.data,
                                     weights.size, x.ctypes.data, y.ctypes.data, x.shape[0], threads, blocks,
                                     int(descending))
    return y, mw


def layout(lib, mlp, max_bytes: int) -> dict[str, int]:
    """The launcher's block size and shared-memory layout (words) for ``max_bytes`` per block."""
    weights, widths, mult = _net(mlp)
    out = np.zeros(len(LAYOUT_FIELDS), np.int32)
    lib.neumat_emulated_layout(widths.ctypes.data, widths.size, mult.ctypes.data, weights.ctypes.data,
                               weights.size, max_bytes, out.ctypes.data)
    return dict(zip(LAYOUT_FIELDS, map(int, out)))


def plan_streams(lib, requested=None, x=None, y=None) -> tuple[int, list[int]]:
    """``(launch stream, streams waited for)`` from the launcher's plan_streams."""
    out = np.zeros(4, np.uint64)
    lib.neumat_plan_streams(requested is not None, requested or 0, x is not None, x or 0,
                            y is not None, y or 0, out.ctypes.data)
    return int(out[0]), [int(s) for s in out[2:2 + int(out[1])]]


def disjoint_error(lib, x: int, x_bytes: int, y: int, y_bytes: int) -> str | None:
    """None when the byte ranges are disjoint, else the launcher's ValueError message."""
    buf = ctypes.create_string_buffer(512)
    if lib.neumat_require_disjoint(x, x_bytes, y, y_bytes, buf, len(buf)) == 0:
        return None
    return buf.value.decode()
