"""Generating posed material videos (neumat.video.generate) with tiny offline Wan pipelines: the
folder reads back as a posed video (frames + video_trajectory poses), finetuned models change
the output, the same seed repeats it bit for bit, and bad requests fail before weights load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_video_finetune_support import FRAMES, SIZE, clips_root, i2v_weights, t2v_weights, tiny_config  # noqa: F401


@pytest.fixture(scope="module")
def full_run(t2v_weights, clips_root, tmp_path_factory):
    """A 10-step full finetune of the tiny text-to-video model."""
    from neumat.video.finetune import finetune

    out = tmp_path_factory.mktemp("gen_runs") / "full"
    finetune(t2v_weights, clips_root, out, tiny_config(mode="full", steps=10, checkpoint_every=10), device="cpu",
             progress=False)
    return out


def _generate(weights, out, **kw):
    from neumat.video.generate import generate

    args = dict(frames=FRAMES, width=SIZE, height=SIZE, steps=2, progress=False)
    return generate(weights, out, **{**args, **kw})


def test01_text_to_video_writes_a_posed_video(t2v_weights, full_run, tmp_path):
    """Frames, poses of video_trajectory(5) at 32x32, caption, done marker; read_video reads it;
    seed-for-seed identical; the finetuned DiT changes the frames."""
    from neumat.video.folder import read_video
    from neumat.video.trajectory import video_trajectory

    video = _generate(t2v_weights, tmp_path, prompt="red stone texture", finetuned=full_run)
    assert video == tmp_path / "generated" / "video"
    frames, poses, meta = read_video(video)
    assert frames.shape == (FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert poses == video_trajectory(FRAMES) and (meta["width"], meta["height"]) == (SIZE, SIZE)
    caption = json.loads((video / "caption.json").read_text())
    assert caption["material_only"] == caption["filtered"] == "red stone texture"
    assert caption["metadata"]["finetuned"] == str(full_run.resolve()) and (video / "done.json").is_file()
    assert frames.std() > 1.0  # not a constant image
    again = read_video(_generate(t2v_weights, tmp_path, prompt="red stone texture", finetuned=full_run,
                                 material_id="again"))[0]
    base = read_video(_generate(t2v_weights, tmp_path, prompt="red stone texture", material_id="base"))[0]
    assert np.array_equal(frames, again)
    assert np.abs(frames.astype(int) - base).mean() > 0.5  # the finetuned DiT is in use
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary folder left behind


def test02_image_to_video_with_lora(i2v_weights, clips_root, tmp_path):
    """An image-to-video LoRA run applied through load_lora_weights; the generated video is posed."""
    from neumat.video.finetune import finetune
    from neumat.video.folder import read_video

    run = finetune(i2v_weights, clips_root, tmp_path / "run", tiny_config(steps=3, lr=2e-2), device="cpu",
                   progress=False)
    image = clips_root / "mat0" / "video" / "frames" / "00000.png"
    tuned = read_video(_generate(i2v_weights, tmp_path / "out", image=image, finetuned=run.final))[0]
    base = read_video(_generate(i2v_weights, tmp_path / "out", image=image, material_id="base"))[0]
    assert tuned.shape == (FRAMES, SIZE, SIZE, 3)
    assert not np.array_equal(tuned, base)


def test03_bad_requests_fail_before_weights_load(t2v_weights, i2v_weights, full_run, tmp_path, monkeypatch):
    """Each bad request names its problem; no pipeline is loaded and nothing is written."""
    from PIL import Image

    from neumat.video import wan_parts
    from neumat.video.finetuned import FinetunedError
    from neumat.video.generate import GenerateError
    from neumat.video.wan_parts import WeightsError

    def no_load(*args, **kwargs):
        raise AssertionError("weights loaded before the request was checked")

    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"not a png")
    good_image = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good_image)
    (tmp_path / "out" / "taken" / "video").mkdir(parents=True)
    monkeypatch.setattr(wan_parts, "load_pipeline", no_load)
    cases = [
        (dict(weights=tmp_path / "none", prompt="x"), WeightsError, "no Wan weights folder"),
        (dict(prompt=None), GenerateError, "give --prompt"),
        (dict(image=bad_image), GenerateError, "needs image-to-video weights"),
        (dict(weights=i2v_weights, prompt="x"), GenerateError, "image-to-video: give --image"),
        (dict(weights=i2v_weights, image=bad_image), GenerateError, "not a readable image"),
        (dict(prompt="x", frames=6), GenerateError, "4k\\+1"),
        (dict(prompt="x", width=40), GenerateError, "multiples of 16"),
        (dict(prompt="x", material_id="taken"), GenerateError, "exists: pass --overwrite"),
        (dict(prompt="x", finetuned=tmp_path), FinetunedError, "not a finished finetuning run"),
        (dict(weights=i2v_weights, image=good_image, finetuned=full_run), GenerateError,
         "finetuned for t2v"),
    ]
    for kw, error, text in cases:
        weights = kw.pop("weights", t2v_weights)
        with pytest.raises(error, match=text):
            _generate(weights, tmp_path / "out", **kw)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["taken"]



def test04_cli_finetune_resume_generate(clips_root, tmp_path):
    """``neumat video tiny-weights | finetune | finetune --resume | generate`` end to end; a
    missing weights folder exits 2 with the reason."""
    from typer.testing import CliRunner

    from neumat.cli import app
    from neumat.video.folder import read_video

    runner = CliRunner()
    weights, run, out = str(tmp_path / "w"), str(tmp_path / "run"), str(tmp_path / "gen")
    common = ["--set", "max_text_tokens=16", "--set", "gradient_checkpointing=false", "--device", "cpu",
              "--no-progress"]
    for args in (["video", "tiny-weights", weights],
                 ["video", "finetune", "--weights", weights, "--data", str(clips_root), "--out", run, "--steps", "2",
                  "--set", "lr=1e-3", *common],
                 ["video", "finetune", "--weights", weights, "--data", str(clips_root), "--out", run, "--steps", "3",
                  "--resume", *common],
                 ["video", "generate", "--weights", weights, "--finetuned", run, "--prompt", "moss", "--frames", "5",
                  "--size", "32x32", "--steps", "2", "--out", out, "--no-progress"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 1e-3  # kept through --resume
    assert (tmp_path / "run" / "ckpt_00000003.pt").is_file()
    assert read_video(tmp_path / "gen" / "generated" / "video")[0].shape == (FRAMES, SIZE, SIZE, 3)
    bad = runner.invoke(app, ["video", "finetune", "--weights", str(tmp_path / "none"), "--data", str(clips_root),
                              "--out", run])
    assert bad.exit_code == 2 and "no Wan weights folder" in bad.output


def test05_a_failed_write_leaves_nothing(t2v_weights, tmp_path, monkeypatch):
    """A write that fails after two frames leaves no video folder and no temporary folder."""
    from neumat.video import generate as gen

    calls = []

    def failing_png(path, pixels):
        calls.append(path)
        if len(calls) > 2:
            raise OSError("disk full")
        return real(path, pixels)

    real = gen.write_png
    monkeypatch.setattr(gen, "write_png", failing_png)
    with pytest.raises(OSError, match="disk full"):
        _generate(t2v_weights, tmp_path, prompt="moss")
    assert len(calls) == 3 and list((tmp_path / "generated").iterdir()) == []
