"""Summaries of a frame benchmark's cases (:mod:`neumat.bench.frames`): option sets crossed
with infer backends, FP32/FP16 vs INT8 infer ratios and backend vs slang ratios.

Two cases are *twins* when they share device type, scene, material, resolution and every
render option but the one compared (the MLP precision, or ``infer_backend``). Times are the
cases' medians (ms): per-pass device timestamps, total host wall time.
"""

from __future__ import annotations

import json


def mlp_precision(options: dict) -> str:
    """The MLP a case's options select: ``precision`` if set, else ``"fp32"`` / ``"int8"`` by ``fp32``."""
    return options.get("precision") or ("fp32" if options.get("fp32") else "int8")


def _twin_key(case: dict, ignored: tuple[str, ...]) -> tuple:
    rest = {k: v for k, v in case["options"].items() if k not in ignored}
    return (case.get("device"), case["scene"], case["material"], tuple(case["resolution"]),
            json.dumps(rest, sort_keys=True))


def infer_ratios(cases: list[dict]) -> list[dict]:
    """Median infer time of each FP32/FP16 case / that of its INT8 twin."""
    ignored = ("fp32", "precision")
    timed = [c for c in cases if "infer" in c["passes"]]
    int8 = {_twin_key(c, ignored): c for c in timed if mlp_precision(c["options"]) == "int8"}
    out = []
    for c in timed:
        base = int8.get(_twin_key(c, ignored))
        if base is None or base is c:
            continue
        i8, other = base["passes"]["infer"]["median_ms"], c["passes"]["infer"]["median_ms"]
        out.append({"scene": c["scene"], "material": c["material"], "resolution": c["resolution"],
                    "options_name": base["options_name"], "precision": mlp_precision(c["options"]),
                    "int8_ms": i8, "other_ms": other, "ratio": other / i8 if i8 > 0 else None})
    return out


def steps_of(timings: dict) -> list[str]:
    """Keys ``pass.step`` of one frame's timings whose ``pass`` is a key too (parts of its time)."""
    return [k for k in timings if k.rpartition(".")[0] in timings]


def backend_pairs(cases: list[dict], backend: str = "native") -> list[dict]:
    """``backend`` / slang medians of every pair of twin cases that differ only in
    ``infer_backend``: keys ``slang_infer_ms``, ``<backend>_infer_ms``, ``infer_ratio``, the same
    for ``total``, ``<backend>_steps`` {step: median ms}, and ``device`` (the device type)."""
    ignored = ("infer_backend",)
    slang = {_twin_key(c, ignored): c for c in cases if c["infer_backend"] == "slang" and "infer" in c["passes"]}
    out = []
    for c in cases:
        base = slang.get(_twin_key(c, ignored))
        if c["infer_backend"] != backend or base is None or "infer" not in c["passes"]:
            continue
        s_inf, b_inf = base["passes"]["infer"]["median_ms"], c["passes"]["infer"]["median_ms"]
        s_tot, b_tot = base["total"]["median_ms"], c["total"]["median_ms"]
        out.append({"device": c.get("device"), "scene": c["scene"], "material": c["material"],
                    "resolution": c["resolution"],
                    "options_name": c["options_name"].rpartition("@")[0] or c["options_name"],
                    "slang_infer_ms": s_inf, f"{backend}_infer_ms": b_inf,
                    "infer_ratio": b_inf / s_inf if s_inf > 0 else None,
                    "slang_total_ms": s_tot, f"{backend}_total_ms": b_tot,
                    "total_ratio": b_tot / s_tot if s_tot > 0 else None,
                    f"{backend}_steps": {k.partition(".")[2]: v["median_ms"] for k, v in c["steps"].items()
                                         if k.startswith("infer.")}})
    return out


def with_backends(options: dict[str, dict], backends: tuple[str, ...]) -> dict[str, dict]:
    """``options`` crossed with ``backends`` (``<set>@<backend>``; unchanged when empty). A
    combination that cannot run (native or cuda with a float MLP, cuda off a CUDA device) is
    skipped when it is rendered, with the infer pass's reason."""
    if not backends:
        return options
    return {f"{name}@{b}": {**opts, "infer_backend": b} for name, opts in options.items() for b in backends}
