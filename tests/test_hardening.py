"""Every input and every output is trusted only after a check (issue 14, items 3, 4, 7 and 8).

Item 3: a bundle's (or checkpoint's) recorded data source is whitelisted and bounded before
anything is built (:func:`neumat.train.sources.check_spec`): no ``cache_dir``, no
``supersample``, no billion views; a recorded path must be an existing folder / regular file.
Item 4: output paths (``train --out/--export``, ``export --out/--layout``, ``render --out``) are
checked before any work (:mod:`neumat.fileio`), and the trainer checkpoints before it exports,
so a failed export costs no checkpoint. Item 7: config values are finite and bounded, and a run
whose loss or weights turn non-finite stops (:class:`~neumat.train.guards.TrainingDiverged`).
Item 8: the missing-height error names the CLI flag; ``--resume`` skips a damaged newest
checkpoint.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.bundle import load_bundle, make_random_bundle, save_bundle  # noqa: E402
from neumat.cli import eval_cmd, export_cmd, render_cmd, train_cmd  # noqa: E402
from neumat.fileio import OutputPathError, check_output_dir, check_output_path  # noqa: E402
from neumat.train import ConfigError, TrainConfig, apply_overrides, train  # noqa: E402
from neumat.train import sources  # noqa: E402
from neumat.train.checkpoint import (  # noqa: E402
    CheckpointError, list_checkpoints, load_checkpoint, load_latest_checkpoint,
)
from neumat.train.guards import TrainingDiverged  # noqa: E402
from train_fixtures import SMALL, AnalyticBtf, analytic_registry, small_config  # noqa: E402, F401

runner = CliRunner()
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("train")(train_cmd.train)
app.command("export")(export_cmd.export)
app.command("eval")(eval_cmd.evaluate)
app.command("render")(render_cmd.render)


pytestmark = pytest.mark.usefixtures("analytic_registry")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _invoke(*args):
    """Run the CLI wide enough that no message is wrapped."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})


def _sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def _train_args(out, *extra):
    """A 24-step analytic run through the CLI (about a second)."""
    return ["train", "--material", "analytic", "--out", str(out), "--steps", "24",
            *_sets(*SMALL, "val_every=8", "ckpt_every=5"), *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 24-step run of ``--material analytic``: checkpoints 15, 20, 24 (keep 3)."""
    out = tmp_path_factory.mktemp("hardening") / "run"
    train(small_config(out, "source.kind=material", "source.name=analytic"), AnalyticBtf())
    return out


def _bundle_with_source(tmp_path, spec) -> str:
    bundle = make_random_bundle(np.random.default_rng(0))
    bundle.provenance["source"] = spec
    return str(save_bundle(bundle, tmp_path / "b.nmat"))


# ------------------------------------------------------------ item 3: provenance steers eval

LEATHER = {"kind": "material", "name": "leather"}


@pytest.mark.parametrize("spec, named", [
    ({**LEATHER, "slices": {"cache_dir": "EVIL"}}, "slices.cache_dir"),
    ({**LEATHER, "slices": {"supersample": 64}}, "slices.supersample"),
    ({**LEATHER, "slices": {"n_views": 10**9}}, "slices.n_views must be an integer in [1, 151]"),
    ({**LEATHER, "slices": {"n_views": 151, "n_lights": 151, "resolution": 512}}, "more than 134217728"),
    ({**LEATHER, "resolution": "abc"}, "resolution must be an integer"),
    ({**LEATHER, "resolution": 100000}, "[0, 4096]"),
    ({**LEATHER, "seed": -1}, "seed must be"),
    ({**LEATHER, "sampling": "points", "points": {"pool_size": 10**12}}, "points.pool_size"),
    ({**LEATHER, "sampling": "points", "points": {"heldout_resolution": 10**6}}, "points.heldout_resolution"),
    ({**LEATHER, "cache_dir": "EVIL"}, "unknown field 'cache_dir'"),
    ({"kind": "maps", "path": "x", "height_scale": math.inf}, "height_scale must be a finite number"),
    ({"kind": "btf"}, "'path' is missing"),
    ({"kind": "nope"}, "unknown data source kind"),
    ("leather", "must be a JSON object"),
])
def test01_recorded_source_fields_are_whitelisted_and_bounded(tmp_path, spec, named):
    spec = json.loads(json.dumps(spec).replace("EVIL", str(tmp_path / "evil")))
    with pytest.raises(sources.SourceError) as e:
        sources.make_source(spec)
    assert named in str(e.value)
    assert not (tmp_path / "evil").exists()


def test02_recorded_paths_are_read_only_and_of_the_expected_kind(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    for spec, message in [
        ({"kind": "maps", "path": str(tmp_path / "gone")}, "not an existing folder of PBR maps; pass --maps DIR"),
        ({"kind": "maps", "path": str(tmp_path / "file")}, "not an existing folder"),
        ({"kind": "btf", "path": str(tmp_path)}, "not an existing UBO2014 BTF file; pass --btf FILE"),
        ({"kind": "btf", "path": "/dev/zero"}, "not an existing UBO2014 BTF file"),
    ]:
        with pytest.raises(sources.SourceError, match=message):
            sources.make_source(spec)


def test03_eval_of_a_hostile_bundle_exits_1_and_writes_nothing(tmp_path):
    evil = tmp_path / "evil"
    for spec, named in [({**LEATHER, "slices": {"cache_dir": str(evil), "n_views": 1}}, "cache_dir"),
                        ({**LEATHER, "resolution": "abc"}, "resolution must be an integer"),
                        ({"kind": "maps", "path": str(tmp_path / "moved")}, "pass --maps DIR")]:
        result = _invoke("eval", _bundle_with_source(tmp_path, spec))
        assert result.exit_code == 1, result.output
        assert "eval failed" in result.output and named in result.output and "Traceback" not in result.output
    assert not evil.exists()


@pytest.mark.parametrize("args, message", [
    (["--resolution", "100000"], "less than or equal to 4096"),
    (["--height-scale", "inf"], "finite"),
])
def test04_eval_size_options_are_bounded(tmp_path, args, message):
    result = _invoke("eval", _bundle_with_source(tmp_path, LEATHER), *args)
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("args, message", [
    (["--resolution", "100000"], "less than or equal to 4096"),
    (["--views", "1000", "--sampling", "slices"], "less than or equal to 151"),
    (["--slice-resolution", "100000", "--sampling", "slices"], "less than or equal to 512"),
    (_sets("source.pool_size=1000000000000"), "source.pool_size must be an integer number of samples"),
    (_sets("source.seed=-1"), "source.seed must be an integer in [0, 4294967295]"),
])
def test05_train_source_sizes_are_bounded(tmp_path, args, message):
    result = _invoke("train", "--material", "analytic", "--out", tmp_path / "o", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


# ------------------------------------------------------------ item 4: output paths first

def test06_output_path_helper(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    assert check_output_path(tmp_path / "new" / "deeper" / "m.nmat", (".nmat",), "--out").name == "m.nmat"
    assert check_output_path(tmp_path / "M.NMAT", (".nmat",), "--out").suffix == ".NMAT"
    assert not (tmp_path / "new").exists()  # nothing is created
    (tmp_path / "dir.nmat").mkdir()
    for path, suffixes, message in [
        (tmp_path / "m.bin", (".nmat",), "must end in .nmat"),
        (tmp_path / "dir.nmat", (".nmat",), "is a directory"),
        (tmp_path / "file" / "m.nmat", (".nmat",), "is not a directory"),
        (tmp_path / "x.xyz", (".png", ".jpg"), "must end in .png or .jpg"),
    ]:
        with pytest.raises(OutputPathError, match=message):
            check_output_path(path, suffixes, "--out")
    with pytest.raises(OutputPathError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "file", "out")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_output_dir(tmp_path / "file" / "run", "out")


@pytest.mark.parametrize("export, message", [
    ("file/x.nmat", "is not a directory"),
    ("existing_dir", "is a directory; give a file name inside it"),
    ("existing_dir.nmat", "is a directory"),
    ("x.bin", "must end in .nmat"),
])
def test07_train_refuses_a_bad_export_path_before_training(tmp_path, export, message):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "existing_dir").mkdir()
    (tmp_path / "existing_dir.nmat").mkdir()
    result = _invoke(*_train_args(tmp_path / "run", "--export", str(tmp_path / export)))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test08_train_refuses_an_unwritable_run_directory(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    for out, message in [(tmp_path / "file" / "run", "is not a directory"),
                         (tmp_path / "file", "exists and is not a directory")]:
        result = _invoke(*_train_args(out))
        assert result.exit_code == 2 and message in result.output, result.output
    with pytest.raises(OutputPathError):
        train(small_config(tmp_path / "file" / "run"), AnalyticBtf())


def test09_export_checks_paths_before_reading_the_checkpoint(tmp_path, run_dir):
    (tmp_path / "file").write_bytes(b"x")
    for args, message in [
        (["--out", str(tmp_path)], "is a directory"),
        (["--out", str(tmp_path / "file" / "x.nmat")], "is not a directory"),
        (["--out", str(tmp_path / "x.nmat"), "--layout", "inm", str(tmp_path / "file")], "not a directory"),
    ]:
        result = _invoke("export", run_dir, *args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    result = _invoke("export", run_dir, "--out", tmp_path / "new" / "x.nmat")
    assert result.exit_code == 0, result.output
    assert load_bundle(tmp_path / "new" / "x.nmat").provenance["step"] == 24


def test10_render_checks_out_before_loading_anything(tmp_path):
    missing = str(tmp_path / "missing.nmat")  # never read: the --out check comes first
    (tmp_path / "d.png").mkdir()
    for out, message in [("x.xyz", "must end in .png"), ("x.exr", "must end in .png"), ("d.png", "is a directory")]:
        result = _invoke("render", missing, "--out", tmp_path / out)
        assert result.exit_code == 2, result.output
        assert message in result.output and "cannot load bundle" not in result.output


def test11_export_failure_mid_run_keeps_training_and_checkpoints(tmp_path, caplog):
    """A file takes the export folder's name at step 6: every export fails, none stops the run."""
    target = tmp_path / "exports" / "m.nmat"

    def block_exports(trainer, step):
        if step == 6:
            (tmp_path / "exports").write_bytes(b"not a folder")

    with caplog.at_level(logging.ERROR, logger="neumat.train.guards"):
        result = train(small_config(tmp_path / "run", f"export={json.dumps(str(target))}"), AnalyticBtf(),
                       callbacks=[block_exports])
    assert result.steps_done == 24 and "cannot write the bundle" in result.export_error
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["ckpt_00000015.pt", "ckpt_00000020.pt",
                                                                     "ckpt_00000024.pt"]
    assert "training goes on" in caplog.text


def test12_train_cli_exits_1_when_the_last_export_failed(tmp_path, monkeypatch, caplog):
    import neumat.train.guards as guards

    def full_disk(bundle, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(guards, "save_bundle", full_disk)
    result = _invoke(*_train_args(tmp_path / "run", "--export", str(tmp_path / "m.nmat")))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (tmp_path / "run" / "ckpt_00000024.pt").is_file()  # every checkpoint was written
    assert "No space left on device" in caplog.text and "checkpoints are intact" in caplog.text


# ------------------------------------------------------------ item 7: training config

@pytest.mark.parametrize("override, message", [
    ("optim.eps=-1", "optim.eps > 0"),
    ("optim.betas=[NaN, 2]", "not finite (NaN or infinity): optim.betas"),
    ("optim.betas=[0.9, 2]", "optim.betas must both be in [0, 1)"),
    ("model.u_res=100000000", "model.u_res must be in [0, 16384]"),
    ("model.u_res=16384", "exceed a bundle's"),
    ("optim.lr_mlp=1e400", "not finite (NaN or infinity): optim.lr_mlp"),
    ("optim.grad_clip=Infinity", "not finite (NaN or infinity): optim.grad_clip"),
    ("max_minutes=1e400", "not finite (NaN or infinity): max_minutes"),
    ("data.value_scale=Infinity", "not finite (NaN or infinity): data.value_scale"),
    ("source.height_scale=NaN", "not finite (NaN or infinity): source.height_scale"),
    ("data.batch_size=1073741824", "data.batch_size must be in [1, 1048576]"),
    ("data.val_samples=1073741824", "data.val_samples and calibration_samples must be in"),
    ("data.chunks=0", "data.accum_steps/chunks >= 1"),  # found by make fuzz: was ZeroDivisionError
    ("data.accum_steps=0", "data.accum_steps/chunks >= 1"),
])
def test13_config_values_are_finite_and_bounded(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(TrainConfig(), [override])
    assert message in str(e.value)


def test14_cli_config_errors_exit_2(tmp_path):
    result = _invoke(*_train_args(tmp_path / "run", *_sets("optim.lr_mlp=1e400")))
    assert result.exit_code == 2 and "not finite" in result.output and "Traceback" not in result.output


def test15_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    def poison(trainer, step):
        if step == 7:
            with torch.no_grad():
                trainer.model.planes["U"].fill_(math.nan)

    export = tmp_path / "m.nmat"
    with pytest.raises(TrainingDiverged, match=r"step 8: .*non-finite.*ckpt_00000005\.pt.*--resume"):
        train(small_config(tmp_path / "run", f"export={json.dumps(str(export))}"), AnalyticBtf(),
              callbacks=[poison])
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["ckpt_00000005.pt"]
    assert not export.exists()  # the step-8 bundle would have been NaN
    state = load_checkpoint(tmp_path / "run" / "ckpt_00000005.pt")
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test16_cli_reports_divergence_with_exit_1(tmp_path, caplog):
    result = _invoke(*_train_args(tmp_path / "run", *_sets("optim.lr_mlp=1e30", "optim.lr_planes=1e30")))
    assert result.exit_code == 1, result.output
    assert "training diverged" in caplog.text and "Traceback" not in result.output


# ------------------------------------------------------------ item 8: messages and resume

def test17_missing_height_names_the_cli_flag_and_the_config_field(tmp_path):
    import imageio.v3 as iio

    from neumat.data.errors import PbrLoadError
    from neumat.data.pbr_io import load_pbr_maps

    (tmp_path / "maps").mkdir()
    iio.imwrite(tmp_path / "maps" / "m_Color.png", np.full((8, 8, 3), 128, np.uint8))
    with pytest.raises(PbrLoadError) as e:
        load_pbr_maps(tmp_path / "maps")
    assert "neumat train --allow-flat" in str(e.value) and "source.allow_flat" in str(e.value)


def test18_resume_skips_a_damaged_newest_checkpoint(tmp_path, run_dir, caplog):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    newest = run / "ckpt_00000024.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a write cut short
    with caplog.at_level(logging.WARNING, logger="neumat.train.checkpoint"):
        path, state = load_latest_checkpoint(run)
    assert path.name == "ckpt_00000020.pt" and state["step"] == 20 and "ckpt_00000024.pt" in caplog.text
    result = _invoke("train", "--out", run, "--resume", "--steps", "30")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "ckpt_00000030.pt")["step"] == 30


def test19_resume_with_no_intact_checkpoint_is_an_error(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    for step in (5, 10):
        (run / f"ckpt_{step:08d}.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="no intact checkpoint.*ckpt_00000010.*ckpt_00000005"):
        load_latest_checkpoint(run)
    result = _invoke(*_train_args(run, "--resume"))
    assert result.exit_code == 1 and "no intact checkpoint" in caplog.text and "Traceback" not in result.output
