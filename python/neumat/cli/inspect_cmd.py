"""``neumat inspect FILE.nmat``: manifest, tensors, sizes and checksum status of a bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def inspect(
    path: Annotated[Path, typer.Argument(help="A .nmat bundle file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
) -> None:
    """Describe a .nmat bundle: manifest, tensors, sizes, checksum, validity.

    Broken files are described as far as they can be read; the exit code is 1 when the
    bundle does not load.
    """
    from ..bundle import inspect_bundle

    report = inspect_bundle(path)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        raise typer.Exit(0 if report["valid"] else 1)
    console = Console()
    manifest = report["manifest"] or {}
    size = report["file_size"]
    console.print(f"[bold]{report['path']}[/]  {size if size is not None else '?'} bytes")
    for key in ("format", "version", "kind", "colour_space", "angle_param", "height_range"):
        if key in manifest:
            console.print(f"  {key}: {manifest[key]}")
    table = Table(title="tensors")
    for col in ("name", "dtype", "shape", "bytes"):
        table.add_column(col)
    for t in report["tensors"]:
        table.add_row(t["name"], str(t["dtype"]), "x".join(map(str, t["shape"])), str(t["bytes"]))
    console.print(table)
    cs = report["checksum"]
    colour = {"OK": "green", "MISMATCH": "red"}.get(cs["status"], "yellow")
    console.print(f"checksum: [{colour}]{cs['status']}[/] (stored {cs['stored']})")
    if report["valid"]:
        console.print("[green]loads and validates[/]")
    else:
        console.print(f"[red]does not load:[/] {report['error']}")
        raise typer.Exit(1)
