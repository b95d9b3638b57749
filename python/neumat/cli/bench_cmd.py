"""``neumat bench ...``: benchmarks with JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..backends import BACKEND_NAMES

app = typer.Typer(help="Benchmarks (figures measured side by side in one run; JSON output).",
                  no_args_is_help=True)


def _parse_widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"widths must be comma-separated integers, got '{text}'") from None
    if len(widths) < 2 or min(widths) < 1:
        raise typer.BadParameter("need at least two positive widths (inputs,...,outputs)")
    return widths


@app.command("mlp")
def mlp(
    widths: Annotated[str, typer.Option(help="Layer widths inputs,hidden...,outputs.")] = "24,32,32,32,3",
    samples: Annotated[int, typer.Option(min=1, help="Input vectors per timed call.")] = 1 << 18,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls (median reported).")] = 5,
    backend: Annotated[Optional[list[str]], typer.Option(help=f"Backends to run (default all: {', '.join(BACKEND_NAMES)}).")] = None,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the torch FP32 baseline.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results here as JSON.")] = None,
) -> None:
    """INT8 MLP throughput of every backend and of a torch FP32 MLP.

    All candidates run the same network on the same inputs in one run; samples/s is from the
    median of the timed calls.
    """
    from ..bench.mlp import MlpBenchConfig, run_mlp_bench

    unknown = [b for b in backend or [] if b not in BACKEND_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown backend(s) {unknown}; valid: {', '.join(BACKEND_NAMES)}")
    cfg = MlpBenchConfig(widths=_parse_widths(widths), samples=samples, repeats=repeats,
                         backends=tuple(backend) if backend else BACKEND_NAMES, torch_fp32=not no_torch)
    from ..quant import QuantSpecError

    console = Console()
    try:
        with console.status("benchmarking ...") as status:
            report = run_mlp_bench(cfg, progress=lambda n: status.update(f"benchmarking {n} ..."))
    except QuantSpecError as e:
        raise typer.BadParameter(str(e)) from None
    table = Table(title=f"INT8 MLP {cfg.widths}, {cfg.samples} samples/call, median of {cfg.repeats}")
    for col in ("candidate", "samples/s", "ms/call", "details"):
        table.add_column(col)
    for r in report["results"]:
        if r["available"]:
            table.add_row(r["name"], f"{r['samples_per_s'] / 1e6:.2f} M", f"{r['seconds'] * 1e3:.2f}", r["description"])
        else:
            table.add_row(r["name"], "-", "-", f"[yellow]unavailable:[/] {r['reason']}")
    console.print(table)
    for k, v in report["speed_ratios"].items():
        console.print(f"  {k}: {v:.2f}x")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_out}")
