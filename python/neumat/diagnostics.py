"""Install diagnostics behind ``neumat doctor``: versions, devices, INT8 backends, self-check."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .backends import available_backends, backend_class
from .bench.environment import machine_info
from .quant.testvectors import check_cases, count_mismatches


def render_device_info(prefer: str | None = None, from_env: bool = True) -> tuple[dict, object | None]:
    """The slangpy render device neumat would use (``from_env``: :func:`~neumat.device.default_device`,
    else :func:`~neumat.device.shared_device` of ``prefer``) — ``{"ok": True, "device": "<adapter>
    [<api>, software|hardware]", "adapter", "api", "software"}`` — or ``{"ok": False, "error"}``
    saying why there is none; and the device itself (None without one)."""
    try:
        from .device import default_device, describe, shared_device

        device = default_device() if from_env else shared_device(prefer)
        description = describe(device)
        return {"ok": True, "device": str(description), **dataclasses.asdict(description)}, device
    except Exception as e:  # noqa: BLE001 — report any failure of device creation to the user
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}, None


def int8_self_check(n_random: int, seed: int = 0, device=None) -> dict[str, dict]:
    """Bit-exactness of every available INT8 backend against the numpy reference.

    Runs :func:`neumat.quant.testvectors.check_cases` (random vectors per shape plus edge
    cases). Returns ``{backend: {"mismatches": {case: count}, "total": n, "seconds": s}}``
    for usable backends and ``{backend: {"unavailable": reason}}`` for the others. ``device``:
    the slangpy device the ``slang`` backend runs on (None: its default).
    """
    out: dict[str, dict] = {}
    cases = check_cases(np.random.default_rng(seed), n_random)
    for name, reason in available_backends().items():
        if reason is not None:
            out[name] = {"unavailable": reason}
            continue
        cls = backend_class(name)
        kwargs = {"device": device} if name == "slang" and device is not None else {}
        t0 = time.perf_counter()
        counts = count_mismatches(lambda mlp, x: cls(mlp, **kwargs)(x), cases)
        out[name] = {
            "mismatches": counts,
            "total": sum(counts.values()),
            "vectors": int(sum(x.shape[0] for _, _, x in cases)),
            "seconds": time.perf_counter() - t0,
        }
    return out


def collect_report(n_random: int = 2000, seed: int = 0, prefer: str | None = None, from_env: bool = True) -> dict:
    """Everything ``neumat doctor`` shows, as a JSON-ready dict; ``ok`` is False on any mismatch.
    The render device is chosen as :func:`render_device_info` says; the ``slang`` INT8 backend
    runs on it."""
    render_device, device = render_device_info(prefer, from_env)
    check = int8_self_check(n_random, seed, device)
    ok = all(v.get("total", 0) == 0 for v in check.values())
    return {
        "machine": machine_info(),
        "render_device": render_device,
        "int8_backends": check,
        "ok": ok,
    }
