"""Reports of benchmark JSONs: a markdown table and a PNG plot of a frame benchmark, and the
comparison of two runs (``neumat bench --compare A.json B.json``).

Comparison ratios are B / A of the median times (ms for frame benchmarks, seconds per call for
``bench mlp``): below 1 means B is faster. Frame-benchmark cases are paired by (scene,
resolution, options) — the options both runs record; by material too when either run has
several (so one material can be compared with another); ``bench mlp`` results
by candidate name. Cases present in only one run are listed, not compared.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .frames import SCHEMA as FRAMES_SCHEMA

CASE_KEYS = ("scene", "material", "resolution", "options_name", "options", "coverage", "passes", "total")
"""Keys every frame-benchmark case must have to be reported or compared."""
MLP_BENCHMARK = "mlp_int8"
"""``benchmark`` key of a ``neumat bench mlp`` JSON."""


class BenchReportError(ValueError):
    """A benchmark JSON that cannot be read or compared; the message names the file and why."""


def load_report(path: str | Path) -> dict:
    """Read and check a frame (``schema`` :data:`neumat.bench.frames.SCHEMA`) or ``bench mlp`` JSON."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BenchReportError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise BenchReportError(f"{path} is not valid JSON: {e}") from None
    kind = report.get("benchmark") if isinstance(report, dict) else None
    if kind == "frames":
        if report.get("schema") != FRAMES_SCHEMA:
            raise BenchReportError(f"{path}: frame benchmark schema {report.get('schema')!r} is not the "
                                   f"supported {FRAMES_SCHEMA!r}; re-run `neumat bench frames`")
        required = ("cases", "device")
    elif kind == MLP_BENCHMARK:
        required = ("results",)
    else:
        raise BenchReportError(f"{path} is not a neumat benchmark JSON (no 'benchmark' key of "
                               f"'frames' or '{MLP_BENCHMARK}')")
    missing = [k for k in required if k not in report]
    if missing:
        raise BenchReportError(f"{path}: {kind} benchmark JSON lacks {missing}")
    if kind == "frames":
        for i, case in enumerate(report["cases"]):
            case = case if isinstance(case, dict) else {}
            lacking = [k for k in CASE_KEYS if k not in case]
            passes = case.get("passes") if isinstance(case.get("passes"), dict) else {}
            lacking += [f"{k}.median_ms" for k, v in {"total": case.get("total"), **passes}.items()
                        if not isinstance(v, dict) or "median_ms" not in v]
            if lacking:
                raise BenchReportError(f"{path}: case {i} lacks {lacking}")
    return report


def pass_names(cases: list[dict]) -> list[str]:
    """Pass names over all cases in execution order: each pass a case adds goes right after the
    pass that precedes it in that case (cases list their passes in graph order)."""
    order: list[str] = []
    for c in cases:
        previous = None
        for p in c["passes"]:
            if p not in order:
                order.insert(order.index(previous) + 1 if previous is not None else 0, p)
            previous = p
    return order


def resolution_text(case: dict) -> str:
    return "x".join(str(v) for v in case["resolution"])


def options_text(report: dict, case: dict) -> str:
    """A case's option set name, ``@device`` type appended when the run used several devices."""
    several = len(report.get("devices", [])) > 1
    return f"{case['options_name']} on {case['device']}" if several else case["options_name"]


def devices_text(report: dict) -> str:
    """The run's device descriptions, `` + ``-joined (one for a single-device run)."""
    return " + ".join(d["description"] for d in report.get("devices", [report["device"]]))


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def markdown_table(report: dict) -> str:
    """Markdown: a header (device, versions, frames), one table row per case (total median and
    p95, per-pass medians, ms), the INT8 vs FP32 infer ratios and the native vs slang infer ones."""
    cases = report["cases"]
    passes = pass_names(cases)
    cfg = report["config"]
    lines = [
        f"# neumat frame times — {devices_text(report)}",
        "",
        (f"neumat {report['neumat_version']}, slangpy {report['slangpy_version']}, "
         f"{report['machine']['cpu']} ({report['machine']['cores']} cores), {report['created']}. "
         f"Median of {cfg['frames']} frames after {cfg['warmup']} warm-up; per-pass: device "
         f"timestamps, total: host wall time (ms); coverage: pixels showing the material."),
        "",
        "| scene | material | resolution | coverage | options | total median | total p95 | "
        + " | ".join(passes)
        + " |",
        "|" + "---|" * (7 + len(passes)),
    ]
    for c in cases:
        cells = [c["scene"], c["material"], resolution_text(c), f"{100 * c['coverage']:.0f}%", options_text(report, c),
                 _ms(c["total"]["median_ms"]), _ms(c["total"]["p95_ms"])]
        cells += [_ms(c["passes"][p]["median_ms"]) if p in c["passes"] else "–" for p in passes]
        lines.append("| " + " | ".join(cells) + " |")
    ratios = report.get("summary", {}).get("infer_vs_int8", [])
    if ratios:
        lines += ["", "Infer pass, median time of the FP32 / FP16 MLP over the INT8 one:", ""]
        lines += [f"- {r['scene']} {'x'.join(map(str, r['resolution']))} ({r['options_name']}): "
                  f"INT8 {_ms(r['int8_ms'])} ms, {r['precision'].upper()} {_ms(r['other_ms'])} ms, "
                  f"{r['precision'].upper()}/INT8 {r['ratio']:.2f}"
                  for r in ratios]
    for backend in ("native", "cuda"):
        pairs = report.get("summary", {}).get(f"{backend}_vs_slang", [])
        if pairs:
            lines += ["", f"Infer backends, {backend} / slang medians (same run; {backend} steps gather + mlp + "
                          "decode):", ""]
            lines += [f"- {r['scene']} {'x'.join(map(str, r['resolution']))} ({r['options_name']}"
                      f"{', ' + r['device'] if r.get('device') else ''}): infer "
                      f"{_ms(r[f'{backend}_infer_ms'])} / {_ms(r['slang_infer_ms'])} ms = {r['infer_ratio']:.2f}, "
                      f"frame {_ms(r[f'{backend}_total_ms'])} / {_ms(r['slang_total_ms'])} ms = "
                      f"{r['total_ratio']:.2f}; steps "
                      + ", ".join(f"{k} {_ms(v)}" for k, v in r[f"{backend}_steps"].items())
                      for r in pairs]
    return "\n".join(lines) + "\n"


def write_plot(report: dict, path: str | Path) -> bool:
    """PNG of stacked per-pass median bars (device ms) per case with the total's median (host
    wall ms) as a black tick, one panel per resolution, titled with the device. Returns False
    (with a warning) when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        warnings.warn("matplotlib is not installed (pip install 'neumat[train]'); no PNG plot written",
                      stacklevel=2)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = report["cases"]
    passes = pass_names(cases)
    resolutions = list(dict.fromkeys(resolution_text(c) for c in cases))
    fig, axes = plt.subplots(1, len(resolutions), figsize=(max(6.0, 0.55 * len(cases) + 3), 5.0), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, res in zip(axes[0], resolutions):
        group = [c for c in cases if resolution_text(c) == res]
        bottom = [0.0] * len(group)
        for i, p in enumerate(passes):
            heights = [c["passes"][p]["median_ms"] if p in c["passes"] else 0.0 for c in group]
            ax.bar(range(len(group)), heights, bottom=bottom, color=colors(i % 10), label=p)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.scatter(range(len(group)), [c["total"]["median_ms"] for c in group], marker="_", s=400,
                   color="black", label="total (host wall)", zorder=3)
        ax.set_xticks(range(len(group)), [f"{c['scene']} · {options_text(report, c)}" for c in group],
                      rotation=45, ha="right", fontsize=8)
        ax.set_title(res)
        ax.set_ylabel("median ms per frame")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="center right", fontsize=8)  # top of the stack first
    fig.suptitle(f"neumat frame times — {devices_text(report)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


@dataclass
class Comparison:
    """Ratios B / A of two runs; ``columns`` name the entries of every row's ``ratios``."""

    benchmark: str
    key_names: list[str]
    """Names of the identifying fields of a row (e.g. scene, resolution, options)."""
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    """{"key": [values of key_names], "a_ms"/"b_ms": median of the first column in A/B (ms),
    "ratios": {column: B/A, or None where a run lacks that pass}}."""
    only_a: list[str] = field(default_factory=list)
    """Cases (or candidates) of A with no partner in B, as "scene/resolution/options"."""
    only_b: list[str] = field(default_factory=list)
    """Cases (or candidates) of B with no partner in A."""


def _ratio(a: float | None, b: float | None) -> float | None:
    return b / a if a and b is not None else None


def _options_key(options: dict, keys: set[str]) -> str:
    return json.dumps({k: v for k, v in options.items() if k in keys}, sort_keys=True)


def _compare_frames(a: dict, b: dict) -> Comparison:
    with_material = any(len({c["material"] for c in r["cases"]}) > 1 for r in (a, b))
    # options both runs know (a renderer option added between the runs does not break pairing)
    shared = set.intersection(*(set(c["options"]) for c in a["cases"] + b["cases"])) if a["cases"] else set()

    with_device = any(len(r.get("devices", [])) > 1 for r in (a, b))  # else one device per run, paired

    def key(c):
        k = (c["scene"], resolution_text(c), _options_key(c["options"], shared))
        return k + ((c["material"],) if with_material else ()) + ((c.get("device"),) if with_device else ())

    def label(c):
        return ([c["scene"], resolution_text(c), c["options_name"]] + ([c["material"]] if with_material else [])
                + ([str(c.get("device"))] if with_device else []))

    index_b = {key(c): c for c in b["cases"]}
    keys_a = {key(c) for c in a["cases"]}
    passes = pass_names(a["cases"] + b["cases"])
    cmp = Comparison("frames", ["scene", "resolution", "options"] + (["material"] if with_material else [])
                     + (["device"] if with_device else []),
                     ["total"] + passes)
    for ca in a["cases"]:
        cb = index_b.get(key(ca))
        if cb is None:
            cmp.only_a.append("/".join(label(ca)))
            continue
        ratios = {"total": _ratio(ca["total"]["median_ms"], cb["total"]["median_ms"])}
        for p in passes:
            pa, pb = ca["passes"].get(p), cb["passes"].get(p)
            ratios[p] = _ratio(pa["median_ms"], pb["median_ms"]) if pa and pb else None
        cmp.rows.append({"key": label(ca), "a_ms": ca["total"]["median_ms"], "b_ms": cb["total"]["median_ms"],
                         "ratios": ratios})
    cmp.only_b = ["/".join(label(c)) for c in b["cases"] if key(c) not in keys_a]
    return cmp


def _compare_mlp(a: dict, b: dict) -> Comparison:
    res_a = {r["name"]: r for r in a["results"] if r.get("available")}
    res_b = {r["name"]: r for r in b["results"] if r.get("available")}
    cmp = Comparison(MLP_BENCHMARK, ["candidate"], ["time per call"])
    for name, ra in res_a.items():
        if name not in res_b:
            cmp.only_a.append(name)
            continue
        sa, sb = ra["seconds"], res_b[name]["seconds"]
        cmp.rows.append({"key": [name], "a_ms": 1e3 * sa, "b_ms": 1e3 * sb,
                         "ratios": {"time per call": _ratio(sa, sb)}})
    cmp.only_b = [n for n in res_b if n not in res_a]
    return cmp


def compare_reports(a: dict, b: dict) -> Comparison:
    """Ratios B / A of median times of two reports of the same benchmark (see the module docstring).

    Raises:
        BenchReportError: the reports are of different benchmarks or schemas.
    """
    if a.get("benchmark") != b.get("benchmark") or a.get("schema") != b.get("schema"):
        raise BenchReportError(f"cannot compare a {a.get('benchmark')!r} report (schema {a.get('schema')!r}) "
                               f"with a {b.get('benchmark')!r} one (schema {b.get('schema')!r})")
    if a["benchmark"] == MLP_BENCHMARK:
        return _compare_mlp(a, b)
    return _compare_frames(a, b)
