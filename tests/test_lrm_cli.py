"""``neumat lrm train|reconstruct`` and ``neumat video2mat`` (neumat.cli.lrm_cmd, .video2mat_cmd,
neumat.lrm.inputs, .reconstruct) on the synthetic set of tests/lrm_fixtures.py.

A tiny LRM trained for 6 steps through the CLI reconstructs a material from its video folder and
from an MP4 of it; the bundle loads, holds the textures the network predicts for the 17 input
frames, and renders through the frame renderer as the network's own textures do (INT8 vs
fake-quantized decoders: within 1 % relative L1). Bad input exits 2 before any network is
loaded, naming the problem.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the LRM needs torch")
pytest.importorskip("diffusers", reason="the LRM needs diffusers (pip install 'neumat[video]')")

from lrm_fixtures import SIZE, synthetic_set  # noqa: E402
from neumat.bundle import load_bundle  # noqa: E402
from neumat.cli import app  # noqa: E402
from neumat.lrm.inputs import read_input  # noqa: E402
from neumat.lrm.reconstruct import TrainedLrm, predict_textures  # noqa: E402
from neumat.lrm.model import input_indices  # noqa: E402
from neumat.lrm.weights import NETWORK_FILE  # noqa: E402
from neumat.material.neumip import check_neumip  # noqa: E402
from neumat.video.folder import POSES_FILE, frame_path  # noqa: E402
from neumat.video.frame_render import render_bundle_frame  # noqa: E402
from neumat.video.trajectory import load_poses, save_poses  # noqa: E402


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _flat(text: str) -> str:
    """The CLI's message without rich's box and line breaks."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_set(tmp_path_factory, 3)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """``neumat lrm train`` for 6 steps: (result, run directory)."""
    run = tmp_path_factory.mktemp("lrm_cli") / "run"
    done = _cli("lrm", "train", str(data), "--out", str(run), "--steps", "6", "--device", "cpu", "--no-progress",
                "--set", "val_frames=2", "--set", "val_materials=1", "--set", "lr=1e-3", "--set", "warmup_steps=2",
                "--set", "log_every=2")
    return done, run


def test01_train_writes_weights(trained):
    done, run = trained
    assert done.exit_code == 0, done.output
    assert "trained 6 steps" in done.output and "1 - SSIM" in _flat(done.output)
    assert (run / "weights" / NETWORK_FILE).is_file() and (run / "val" / "step_00000006.json").is_file()


def test02_reconstruct_writes_the_predicted_material(trained, data, tmp_path):
    """The bundle holds the network's textures of frames 0, 5, …, 80 and renders as they do."""
    done, run = trained
    video = data / "stone_2" / "video"
    out = tmp_path / "stone.nmat"
    result = _cli("lrm", "reconstruct", str(video), "--weights", str(run / "weights"), "--out", str(out),
                  "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "one forward pass" in result.output and f"neumat view {out}" in _flat(result.output)
    bundle = load_bundle(out)
    check_neumip(bundle)
    assert bundle.provenance["lrm"]["input_frames"] == input_indices(81, 17)
    lrm = TrainedLrm.load(run / "weights")
    posed = read_input(video)
    off, rgb = predict_textures(lrm, posed.frames[input_indices(81, 17)])
    np.testing.assert_array_equal(bundle.planes["offset"], off)
    np.testing.assert_array_equal(bundle.planes["rgb"], rgb)
    from neumat.lrm.render import render_predicted
    from neumat.lrm.train import set_decoders_trained
    from neumat.lrm.render import decoder_field

    set_decoders_trained(lrm.decoders, False)
    field = decoder_field(lrm.decoders, lrm.info.max_offset)
    for k in (0, 45):
        pose = posed.poses[k]
        int8 = render_bundle_frame(bundle, pose, SIZE, SIZE, 1.0)
        with torch.no_grad():
            fake = render_predicted(field, torch.from_numpy(off), torch.from_numpy(rgb), [pose], SIZE, 1.0,
                                    lrm.info.value_scale)[0].numpy()
        assert np.abs(int8 - fake).sum() / np.abs(fake).sum() < 0.01


def test03_video_file_and_video2mat(trained, data, tmp_path):
    """An MP4 of the video (no poses: the default trajectory) reconstructs through
    ``neumat video2mat --weights``, which says what it did and how to view it."""
    import imageio.v3 as iio

    done, run = trained
    frames = np.stack([iio.imread(frame_path(data / "stone_1" / "video", i)) for i in range(81)])
    clip = tmp_path / "stone.mp4"
    iio.imwrite(clip, frames, plugin="pyav", codec="libx264", fps=16)
    out = tmp_path / "clip.nmat"
    result = _cli("video2mat", str(clip), "--out", str(out), "--weights", str(run / "weights"), "--device", "cpu")
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "LRM reconstruction (17 of 81 frames, 32x32 px" in text and f"neumat view {out}" in text
    assert load_bundle(out).planes["rgb"].shape == (32, 32, 12)


def test04_video2mat_fits_directly_without_weights(data, tmp_path):
    """Without --weights: direct fitting of a 17-frame posed folder (20 steps)."""
    video = tmp_path / "short"
    shutil.copytree(data / "stone_0" / "video", video)
    poses, meta = load_poses(video / POSES_FILE)
    keep = input_indices(81, 17)
    for j, i in enumerate(keep):
        shutil.copy(frame_path(data / "stone_0" / "video", i), frame_path(video, j))
    for i in range(17, 81):
        frame_path(video, i).unlink()
    save_poses(video / POSES_FILE, [type(p)(**{**p.__dict__, "index": j}) for j, p in enumerate(poses[i] for i in keep)],
               **meta)
    out = tmp_path / "fit.nmat"
    result = _cli("video2mat", str(video), "--out", str(out), "--steps", "20", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "direct fit, no --weights (17 frames of 32x32 px, 20 steps" in _flat(result.output)
    check_neumip(load_bundle(out))


def test05_bad_input_exits_2_before_any_network(trained, data, tmp_path):
    """Corrupt or missing weights, too few frames, wrong resolution, missing poses, another
    trajectory, a bad --out: exit 2 naming the problem, nothing written."""
    import imageio.v3 as iio

    done, run = trained
    weights = run / "weights"
    corrupt = Path(shutil.copytree(weights, tmp_path / "corrupt"))
    (corrupt / NETWORK_FILE).write_bytes((corrupt / NETWORK_FILE).read_bytes()[:3000])
    video = data / "stone_0" / "video"
    few = tmp_path / "few"
    few.mkdir()
    for i in range(10):
        shutil.copy(frame_path(video, i), few / f"{i:03d}.png")
    big = tmp_path / "big"
    big.mkdir()
    for i in range(81):
        iio.imwrite(big / f"{i:05d}.png", np.zeros((48, 48, 3), np.uint8))
    unposed = Path(shutil.copytree(video, tmp_path / "unposed"))
    poses, meta = load_poses(unposed / POSES_FILE)
    save_poses(unposed / POSES_FILE, poses[:80], **meta)
    short_clip = tmp_path / "short.mp4"
    iio.imwrite(short_clip, np.zeros((3, 32, 32, 3), np.uint8), plugin="pyav", codec="libx264", fps=8)
    out = tmp_path / "x.nmat"
    cases = [
        (["--weights", str(corrupt), str(video)], "not a readable safetensors file"),
        (["--weights", str(tmp_path / "none"), str(video)], "no LRM weights folder"),
        (["--weights", str(weights), str(few)], "10 frames (too few); the LRM takes the 81-frame trajectory video"),
        (["--weights", str(weights), str(big)], "frames of 48x48 pixels; the LRM was trained on 32x32"),
        (["--weights", str(weights), str(unposed)], "81 frames but 80 poses in poses.json"),
        (["--weights", str(weights), str(data / "stone_0" / "cross")], "not posed on the default trajectory"),
        (["--weights", str(weights), str(short_clip)], "3 frame(s); at least 5 needed"),
        (["--weights", str(weights), str(tmp_path / "nowhere")], "no such video file or frame folder"),
    ]
    for args, message in cases:
        for command in (["lrm", "reconstruct"], ["video2mat"]):
            result = _cli(*command, *args, "--out", str(out), "--device", "cpu")
            assert result.exit_code == 2 and message in _flat(result.output), (command, args, result.output)
    bad_out = _cli("lrm", "reconstruct", str(video), "--weights", str(weights), "--out", str(tmp_path / "x.png"))
    assert bad_out.exit_code == 2 and "must end in .nmat" in _flat(bad_out.output)
    assert not out.exists()


def test06_train_refuses_bad_input(data, tmp_path):
    """A missing data set, a bad --model, a Wan folder without its VAE, a data set of another
    frame size: exit 2 before training, nothing written."""
    from neumat.video.wan_tiny import write_tiny_wan

    wan = write_tiny_wan(tmp_path / "wan")
    shutil.rmtree(wan / "vae")
    out = tmp_path / "run"
    cases = [
        ([str(tmp_path / "nothing")], "no dataset folder"),
        ([str(data), "--model", "huge"], "--model must be one of"),
        ([str(data), "--wan-weights", str(wan)], "missing: vae/config.json, vae/*.safetensors"),
        ([str(data), "--set", "model.frame_size=64"], "the network takes 64²"),
        ([str(data), "--set", "perceptual=lpips"], "perceptual 'lpips' needs lpips_weights"),
    ]
    for args, message in cases:
        result = _cli("lrm", "train", *args, "--out", str(out), "--steps", "2", "--device", "cpu", "--no-progress")
        assert result.exit_code == 2 and message in _flat(result.output), (args, result.output)
    assert not out.exists()


def test07_neumat_render_opens_the_reconstruction(trained, data, device, tmp_path):
    """The viewer's renderer shows the reconstructed material (a 24² plane frame)."""
    import imageio.v3 as iio

    done, run = trained
    out = tmp_path / "stone.nmat"
    assert _cli("lrm", "reconstruct", str(data / "stone_2" / "video"), "--weights", str(run / "weights"), "--out",
                str(out), "--device", "cpu").exit_code == 0
    png = tmp_path / "stone.png"
    shown = _cli("render", str(out), "--shape", "plane", "--out", str(png), "--size", "24x24", "--frames", "1",
                 "--warmup", "0")
    assert shown.exit_code == 0, shown.output
    image = iio.imread(png)
    assert image.shape == (24, 24, 3) and image.mean() > 5.0  # lit, not black


def test08_init_continues_a_trained_stage(trained, data, tmp_path):
    """``--init`` starts from a trained LRM (its network and decoders); a network that differs
    beyond frame_size / texture_resolution / precision is refused."""
    from neumat.lrm.weights import load_lrm

    done, run = trained
    out = tmp_path / "stage2"
    result = _cli("lrm", "train", str(data), "--out", str(out), "--steps", "1", "--device", "cpu", "--no-progress",
                  "--init", str(run / "weights"), "--set", "lr=1e-9", "--set", "lr_decoders=1e-9", "--set", "val_frames=1")
    assert result.exit_code == 0, result.output
    before, after = load_lrm(run / "weights")[0], load_lrm(out / "weights")[0]
    a, b = before.dit.blocks[0].attn1.to_q.weight, after.dit.blocks[0].attn1.to_q.weight
    assert torch.allclose(a, b, atol=1e-6) and not torch.equal(a, torch.zeros_like(a))
    bad = _cli("lrm", "train", str(data), "--out", str(tmp_path / "x"), "--steps", "1", "--device", "cpu",
               "--init", str(run / "weights"), "--set", "model.dit_layers=3")
    assert bad.exit_code == 2 and "its network differs in ['dit_layers']" in _flat(bad.output)
