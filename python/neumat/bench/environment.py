"""What a benchmark or a report records about the machine and the software it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name``, or None if it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU, core count, OS and the versions of the packages neumat's figures depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: package_version(name) for name in ("neumat", "numpy", "torch", "slangpy", "safetensors")
        },
    }
