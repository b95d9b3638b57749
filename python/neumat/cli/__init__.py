"""The ``neumat`` command: one entry point, one module per sub-command."""

from __future__ import annotations

import typer

from . import bench_cmd, doctor_cmd, eval_cmd, export_cmd, inspect_cmd, render_cmd, train_cmd, view_cmd
from . import fidelity_cmd, inverse_cmd, lrm_cmd, neumip_cmd, video2mat_cmd, video_cmd
from . import capture2mat_cmd
from . import falcor_cmd

app = typer.Typer(
    name="neumat",
    help="Real-time neural materials: train, export, inspect, render and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("doctor")(doctor_cmd.doctor)
app.command("inspect")(inspect_cmd.inspect)
app.command("train")(train_cmd.train)
app.command("export")(export_cmd.export)
app.command("eval")(eval_cmd.evaluate)
app.command("render")(render_cmd.render)
app.command("view")(view_cmd.view)
app.command("fidelity")(fidelity_cmd.fidelity)
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(neumip_cmd.app, name="neumip")
app.add_typer(video_cmd.app, name="video")
app.add_typer(lrm_cmd.app, name="lrm")
app.command("video2mat")(video2mat_cmd.video2mat)
app.add_typer(inverse_cmd.app, name="inverse")
app.command("capture2mat")(capture2mat_cmd.capture2mat)
app.add_typer(falcor_cmd.app, name="falcor")


def main() -> None:
    """Console-script entry point."""
    app()
