"""``neumat bench ...``: benchmarks with JSON output, and their comparison.

``neumat bench mlp`` (INT8 MLP throughput), ``neumat bench frames`` (frame times per pass over
scenes × resolutions × render options; JSON + markdown + PNG), ``neumat bench --compare A.json
B.json`` (median-time ratios B / A of two runs of the same benchmark). Exit codes: 0 success,
1 a file that cannot be read or compared (or no render device), 2 a bad argument.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ..backends import BACKEND_NAMES
from ..bench.frames import DEFAULT_OPTIONS, OPTION_PRESETS
from ..render.passes.infer_native import INFER_BACKEND_HELP, INFER_BACKEND_NAMES
from .options import DEVICE_HELP, check_device_choice

app = typer.Typer(help="Benchmarks (figures measured side by side in one run; JSON output). "
                       "`neumat bench --compare A.json B.json` prints median-time ratios B/A.")


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    compare: Annotated[tuple[Path, Path] | None, typer.Option(
        "--compare", metavar="A.json B.json",
        help="Print median-time ratios B/A of two runs of `bench frames` (or of `bench mlp`).")] = None,
) -> None:
    """Benchmarks; with --compare and no sub-command, compare two benchmark JSONs."""
    if ctx.invoked_subcommand is not None:
        if compare is not None:
            raise typer.BadParameter("--compare is used alone: neumat bench --compare A.json B.json")
        return
    if compare is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    _print_comparison(*compare)


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
    backend: Annotated[list[str] | None, typer.Option(
        help=f"Backends to run (default all: {', '.join(BACKEND_NAMES)}).")] = None,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the torch FP32 baseline.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here as JSON.")] = None,
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


def _print_whole(console: Console, table: Table) -> None:
    """Print ``table`` at its natural width (a narrower console would elide digits)."""
    need = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    (Console(width=need) if need > console.width else console).print(table)


def _print_comparison(path_a: Path, path_b: Path) -> None:
    from ..bench.report import BenchReportError, compare_reports, load_report

    try:
        cmp = compare_reports(load_report(path_a), load_report(path_b))
    except BenchReportError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    console = Console()
    what = "frame time" if cmp.benchmark == "frames" else "INT8 MLP time per call"
    table = Table(title=f"{what}: ratios B/A of medians (<1: B faster)\nA = {path_a}\nB = {path_b}")
    for col in cmp.key_names + [f"A {cmp.columns[0]} ms", f"B {cmp.columns[0]} ms"] + cmp.columns:
        table.add_column(col, justify="left" if col in cmp.key_names else "right")
    for row in cmp.rows:
        ratios = [f"{r:.3f}" if r is not None else "-" for r in row["ratios"].values()]
        table.add_row(*row["key"], f"{row['a_ms']:.2f}", f"{row['b_ms']:.2f}", *ratios)
    _print_whole(console, table)
    if not cmp.rows:
        console.print("[yellow]no case of A matches a case of B[/]")
    for name, only in (("A", cmp.only_a), ("B", cmp.only_b)):
        if only:
            console.print(f"only in {name} (not compared): {', '.join(only)}")


def _frames_table(report: dict) -> Table:
    from ..bench.report import devices_text, options_text, pass_names, resolution_text

    cases = report["cases"]
    passes = pass_names(cases)
    keys = ("scene", "material", "resolution", "options")
    if len({c["material"] for c in cases}) == 1:
        keys = ("scene", "resolution", "options")
    table = Table(title=f"frame times (ms), median of {report['config']['frames']} after "
                        f"{report['config']['warmup']} warm-up: {devices_text(report)}")
    for col in (*keys, "coverage", "total median", "total p95", *passes):
        table.add_column(col, justify="left" if col in keys else "right")
    for c in cases:
        named = {"scene": c["scene"], "material": c["material"], "resolution": resolution_text(c),
                 "options": options_text(report, c)}
        table.add_row(*(named[k] for k in keys), f"{100 * c['coverage']:.0f}%",
                      f"{c['total']['median_ms']:.2f}", f"{c['total']['p95_ms']:.2f}",
                      *(f"{c['passes'][p]['median_ms']:.2f}" if p in c["passes"] else "-" for p in passes))
    return table


@app.command("frames")
def frames(
    resolutions: Annotated[str | None, typer.Option(
        help="WxH list, e.g. 512x512,1920x1080 (default: those two, + 3840x2160 on a hardware GPU).")] = None,
    uhd: Annotated[bool, typer.Option("--4k", help="Add 3840x2160 to the resolutions (slow on lavapipe).")] = False,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Timed frames per case (median, p95).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed frames per case first.")] = 2,
    material: Annotated[list[str] | None, typer.Option(
        help="A .nmat bundle (repeatable; default the shipped leather).")] = None,
    scene: Annotated[list[str] | None, typer.Option(
        help="draped_cloth, sphere, a built-in shape or a mesh file "
             "(repeatable; default draped_cloth and sphere).")] = None,
    options: Annotated[str, typer.Option(
        help=f"Option sets, comma-separated: presets ({', '.join(OPTION_PRESETS)}) or inline render "
             "kwargs key=value+key=value (e.g. hf=off+fp32=on).")] = ",".join(DEFAULT_OPTIONS),
    infer_backend: Annotated[list[str] | None, typer.Option(
        "--infer-backend",
        help=f"Run every option set once per backend ({', '.join(INFER_BACKEND_NAMES)}; repeatable: "
             "--infer-backend slang --infer-backend native measures both side by side in one run, as SET@BACKEND, "
             f"with native/slang ratios in the summary; default: the renderer's auto). {INFER_BACKEND_HELP}")] = None,
    device: Annotated[list[str] | None, typer.Option(
        "--device", help=f"{DEVICE_HELP} Repeatable: --device vulkan --device cuda runs every case on both "
                         "(the device type is recorded per case).")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for bench.json, bench.md, bench.png.")] = Path("out/bench_frames"),
) -> None:
    """Frame times per pass and in total over scenes × resolutions × render options.

    Per-pass times are device timestamps, the total is host wall time (ms); median and p95 of
    --frames timed frames after --warmup untimed ones. Writes OUT/bench.json, bench.md and
    bench.png (the PNG needs matplotlib).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..bench.frames import (
        SMALL_RESOLUTIONS,
        UHD,
        FrameBenchConfig,
        FrameBenchError,
        parse_option_sets,
        parse_resolutions,
        run_frame_bench,
    )
    from ..bench.report import markdown_table, write_plot
    from ..bundle import BundleError
    from ..device import DeviceError

    try:
        sizes = parse_resolutions(resolutions) if resolutions else None
        option_sets = parse_option_sets(options)
    except FrameBenchError as e:
        raise typer.BadParameter(str(e)) from None
    if uhd:  # the defaults already hold 4K on a hardware GPU; --4k adds it everywhere
        sizes = tuple(dict.fromkeys((sizes or SMALL_RESOLUTIONS) + (UHD,)))
    for d in device or ():
        check_device_choice(d)
    cfg = FrameBenchConfig(frames=frames, warmup=warmup, resolutions=sizes, options=option_sets,
                           infer_backends=tuple(infer_backend or ()), devices=tuple(device or ()))
    if material:
        cfg.materials = tuple(material)
    if scene:
        cfg.scenes = tuple(scene)
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("frames", total=None)
            report = run_frame_bench(
                cfg,
                on_plan=lambda n: progress.update(task, total=n),
                on_frame=lambda label: progress.update(task, advance=1, description=label))
    except FrameBenchError as e:
        raise typer.BadParameter(str(e)) from None
    except (BundleError, DeviceError, OSError, RuntimeError) as e:  # RuntimeError: slangpy failures
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    _print_whole(console, _frames_table(report))
    for r in report["summary"]["infer_vs_int8"]:
        console.print(f"  infer {r['precision'].upper()}/INT8 {r['scene']} {'x'.join(map(str, r['resolution']))}: "
                      f"{r['other_ms']:.2f} / {r['int8_ms']:.2f} ms = {r['ratio']:.2f}x")
    for backend in ("native", "cuda"):
        for r in report["summary"][f"{backend}_vs_slang"]:
            console.print(f"  {backend}/slang {r['device']} {r['scene']} {'x'.join(map(str, r['resolution']))} "
                          f"{r['options_name']}: infer {r[f'{backend}_infer_ms']:.2f} / {r['slang_infer_ms']:.2f} ms = "
                          f"{r['infer_ratio']:.2f}x, frame {r[f'{backend}_total_ms']:.2f} / {r['slang_total_ms']:.2f} ms "
                          f"= {r['total_ratio']:.2f}x")
    for skip in report["config"]["skipped"]:
        console.print(f"  [yellow]skipped[/] {skip['options_name']} on {skip['device']}: {skip['reason']}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    (out / "bench.md").write_text(markdown_table(report))
    wrote = ["bench.json", "bench.md"] + (["bench.png"] if write_plot(report, out / "bench.png") else [])
    console.print(f"wrote {', '.join(str(out / w) for w in wrote)}")
