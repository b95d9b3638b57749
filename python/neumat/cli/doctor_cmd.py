"""``neumat doctor``: check an install — versions, devices, INT8 backends, bit-exactness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .options import DeviceOption, check_device_choice


def doctor(
    vectors: Annotated[int, typer.Option(help="Random vectors per layer shape in the self-check.")] = 2000,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the report here.")] = None,
    device: DeviceOption = None,
) -> None:
    """Check this install: versions, render device, INT8 backends, bit-exactness.

    Every usable INT8 backend is run on random and adversarial vectors and compared bit for
    bit with the numpy reference; the exit code is 1 on any mismatch. The slang backend runs on
    the render device (--device); a device type this machine lacks is reported, not fatal.
    """
    from ..diagnostics import collect_report

    prefer = check_device_choice(device)
    console = Console()
    with console.status("checking INT8 backends against the numpy reference ..."):
        report = collect_report(n_random=vectors, prefer=prefer, from_env=device is None)
    m = report["machine"]
    console.print(f"[bold]neumat {m['versions']['neumat']}[/] on {m['cpu']} ({m['cores']} cores), Python {m['python']}")
    console.print("versions: " + ", ".join(f"{k} {v or '[dim]not installed[/]'}" for k, v in m["versions"].items()))
    dev = report["render_device"]
    if dev["ok"]:
        console.print(f"render device: {dev['device']}", markup=False)
    else:
        console.print(f"[red]render device: none[/] — {dev['error']}")
    table = Table(title="INT8 MLP backends (bit-exact self-check vs numpy reference)")
    for col in ("backend", "status", "vectors", "mismatches", "seconds"):
        table.add_column(col)
    for name, r in report["int8_backends"].items():
        if "unavailable" in r:
            table.add_row(name, "[yellow]unavailable[/]", "-", "-", r["unavailable"])
        else:
            style = "green" if r["total"] == 0 else "red"
            table.add_row(name, f"[{style}]{'ok' if r['total'] == 0 else 'MISMATCH'}[/]",
                          str(r["vectors"]), str(r["total"]), f"{r['seconds']:.2f}")
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))
    if not report["ok"]:
        console.print("[red bold]bit-exactness self-check FAILED[/]: a backend disagrees with the spec")
        raise typer.Exit(1)
    console.print("[green]all available INT8 backends are bit-exact[/]")
