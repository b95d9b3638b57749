"""neumat.video.captioner: a local image-to-text captioner through the real transformers path.

The captioner is a tiny randomly initialised BLIP (16-wide, one layer, 32² px images) with a
21-word vocabulary written here, saved to a tmp folder and loaded back offline; the file runs
in ~15 s on 2 cores (one 24² px, 5-frame Mitsuba render included).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from neumat.data import make_material  # noqa: E402
from neumat.video.captioner import (LEAD, MATERIAL_ONLY_PROMPT, CaptionerError, check_captioner_dir,  # noqa: E402
                                    load_captioner, representative_frame)
from neumat.video.captions import LIGHTING_WORDS, filter_lighting  # noqa: E402
from neumat.video.trajectory import cross_trajectory, video_trajectory  # noqa: E402

WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] [DEC] a close - up view of the material stone rough grey "
         "light shadow surface wood brick . , : its texture colour and relief").split()


def _save_tiny_blip(folder, seed: int = 0, favour: str | None = None) -> None:
    """A random tiny BLIP captioner + processor in ``folder``; ``favour``: a word its text head
    always prefers (a large output bias)."""
    from transformers import (BertTokenizerFast, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                              BlipProcessor)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    text = dict(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=64, bos_token_id=5, pad_token_id=0, sep_token_id=3,
                eos_token_id=3)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16))
    if favour is not None:
        with torch.no_grad():
            model.text_decoder.cls.predictions.bias[WORDS.index(favour)] += 100.0
    model.save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blip")
    _save_tiny_blip(folder)
    return folder


def _image(seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((40, 40, 3)) * 255).astype(np.uint8)


def test01_tiny_blip_captions_in_both_styles(blip):
    captioner = load_captioner(blip)
    assert load_captioner(str(blip) + "/") is captioner  # loaded once per folder
    caps, prov = captioner.captions(_image())
    assert caps["material_only"].startswith(f"{LEAD} {MATERIAL_ONLY_PROMPT} ")
    assert prov["raw"]["material_only"] and caps["material_only"].endswith(".")
    assert set(prov["raw"]["material_only"].split()) <= set(WORDS)  # the model's own vocabulary
    free = f"{LEAD} {prov['raw']['filtered']}."
    assert caps["filtered"] == (filter_lighting(free) or caps["material_only"])
    assert prov["filtered_fallback"] == (not filter_lighting(free))
    assert prov["captioner"] == captioner.name and captioner.fingerprint in captioner.name
    assert captioner.captions(_image()) == (caps, prov)  # greedy: the same every time


def test02_lighting_sentences_are_filtered_out(tmp_path):
    """A captioner that only says "light": the free description is removed entirely by the
    lighting filter and the filtered style falls back to the material-only caption."""
    _save_tiny_blip(tmp_path / "m", favour="light")
    caps, prov = load_captioner(tmp_path / "m").captions(_image())
    assert "light" in prov["raw"]["filtered"].split() and "light" in prov["raw"]["material_only"].split()
    assert prov["filtered_fallback"] and caps["filtered"] == caps["material_only"]


def test03_bad_folders_are_named(tmp_path, blip):
    with pytest.raises(CaptionerError, match="does not exist"):
        check_captioner_dir(tmp_path / "nothing")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(blip / "config.json", partial)
    with pytest.raises(CaptionerError, match=r"missing weights \(model.safetensors.*image processor.*tokenizer"):
        check_captioner_dir(partial)
    from transformers import BertConfig, BertModel

    other = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(other)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        shutil.copy(blip / name, other)
    with pytest.raises(CaptionerError, match="'bert'.* is not an image-to-text model"):
        load_captioner(other)


def test04_representative_frame_looks_straight_down():
    assert representative_frame(video_trajectory(frames=9)) == 0
    cross = cross_trajectory(per_axis=3)
    best = representative_frame(cross)
    tilt = [np.subtract(p.camera_position, p.camera_target) for p in cross]
    assert all(tilt[best][2] / np.linalg.norm(tilt[best]) >= t[2] / np.linalg.norm(t) - 1e-9 for t in tilt)


def test05_dataset_video_captioned_then_recaptioned(tmp_path, blip):
    """``neumat video render-dataset --captioner``, then the same video without it: only the
    captions are rewritten (from the templates)."""
    pytest.importorskip("mitsuba")
    from neumat.video.dataset import dataset_jobs, render_dataset
    from neumat.video.scene import RenderSettings

    settings = RenderSettings(24, 24, 2)
    jobs = dataset_jobs([make_material("gravel", 16)], settings, ("video",), (0,), frames=5)
    from typer.testing import CliRunner

    from neumat.cli import app

    done = CliRunner().invoke(app, ["video", "render-dataset", str(tmp_path), "--material", "gravel", "--size", "24",
                                    "--spp", "2", "--resolution", "16", "--frames", "5", "--rotations", "0",
                                    "--trajectories", "video", "--variant", "scalar_rgb", "--no-progress",
                                    "--captioner", str(blip)])
    assert done.exit_code == 0, done.output
    caption = tmp_path / "gravel_rot000" / "video" / "caption.json"
    doc = json.loads(caption.read_text())
    assert doc["provenance"]["captioner"] == load_captioner(blip).name and doc["provenance"]["frame"] == 0
    assert doc["material_only"].startswith(f"{LEAD} {MATERIAL_ONLY_PROMPT}") and doc["filtered"]
    assert doc["metadata"]["material_id"] == "gravel_rot000"
    again = render_dataset(jobs, tmp_path, settings, "scalar_rgb", progress=False)  # templates: captions only
    assert again[0]["cached"]
    doc = json.loads(caption.read_text())
    assert doc["provenance"] == {"captioner": "templates"} and "gravel" in doc["material_only"]
    assert not {w.strip(".,").lower() for w in doc["filtered"].split()} & set(LIGHTING_WORDS)
