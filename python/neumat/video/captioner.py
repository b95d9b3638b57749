"""An image-to-text captioner loaded from a local folder (VideoNeuMat seed §3.2, "Caption
generation"), for :func:`.dataset.render_video` when ``--captioner DIR`` is given.

The model is anything ``transformers.AutoModelForImageTextToText`` and ``AutoProcessor`` load
from ``DIR`` with ``local_files_only=True`` (nothing is ever downloaded) whose processor takes
an image and a text *prefix* that the model continues — BLIP (``Salesforce/blip-image-captioning-*``
saved with ``save_pretrained``), GIT and similar conditional captioners. Chat-template models
(the seed's Qwen2-VL, which take an instruction) are not handled.

Each video is captioned from one representative frame (:func:`representative_frame`: the
first frame whose camera is most nearly overhead — frame 0 of the two-phase video, whose light
is at 56.31° elevation so relief casts shadows — seen without perspective foreshortening), as
its 8-bit sRGB PNG, in the seed's two styles:

* **material-only**: the model continues :data:`MATERIAL_ONLY_PROMPT`, a prefix about the
  material's intrinsic attributes (texture, colour, relief), so the text is steered away from
  the lighting;
* **filtered**: the model describes the frame freely (no prefix), and
  :func:`.captions.filter_lighting` removes every sentence holding a lighting word; if nothing
  is left, the material-only caption is used (``provenance["filtered_fallback"]``).

Both are written in the training format, "The video clip features …" (seed §3.3). Decoding is
greedy, so a captioner gives the same captions on every run and worker.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from .captions import filter_lighting
from .trajectory import FramePose

MATERIAL_ONLY_PROMPT = "a close-up view of the material, its texture, colour and relief:"
"""Prefix the captioner continues for the material-only caption."""
LEAD = "The video clip features"
"""Opening of every caption (the seed's training format)."""
REQUIRED_FILES = {
    "config.json": ("config.json",),
    "weights": ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json"),
    "image processor": ("processor_config.json", "preprocessor_config.json"),
    "tokenizer": ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model"),
}
"""What a captioner folder must hold: for each part, any one of these file names."""


class CaptionerError(ValueError):
    """A captioner folder that is missing or is not a loadable captioning model (message says why)."""


def check_captioner_dir(path: str | Path) -> Path:
    """The folder as an absolute path, after checking it exists and holds every part of
    :data:`REQUIRED_FILES`.

    Raises:
        CaptionerError: no such folder, or the missing parts and the file names that would do.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise CaptionerError(f"captioner folder {path} does not exist (give a local model folder "
                             "saved with save_pretrained; nothing is downloaded)")
    missing = [f"{part} ({' or '.join(names)})" for part, names in REQUIRED_FILES.items()
               if not any((folder / n).is_file() for n in names)]
    if missing:
        raise CaptionerError(f"captioner folder {folder} is not a captioning model: missing {'; '.join(missing)}")
    return folder


def representative_frame(poses: list[FramePose]) -> int:
    """Index of the first frame whose camera is most nearly overhead (largest cosine between
    the view direction and +z, to 1e-9)."""
    def cos_up(p: FramePose) -> float:
        d = np.subtract(p.camera_position, p.camera_target)
        return float(d[2] / np.linalg.norm(d))

    best = max(cos_up(p) for p in poses)
    return next(p.index for p in poses if cos_up(p) >= best - 1e-9)


class Captioner:
    """An image-to-text model and its processor, from a local folder (module docstring).

    Args:
        path: the model folder (:func:`check_captioner_dir`).
        max_new_tokens: most generated tokens per caption.

    Raises:
        CaptionerError: as :func:`check_captioner_dir`, or the folder's model is not an
            image-to-text model transformers can load (its ``model_type`` is named).
    """

    def __init__(self, path: str | Path, max_new_tokens: int = 40) -> None:
        self.path = check_captioner_dir(path)
        self.max_new_tokens = max_new_tokens
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as e:
            raise ImportError("a captioner needs transformers and torch: pip install -e '.[video]'") from e
        try:
            kind = json.loads((self.path / "config.json").read_text()).get("model_type")
        except (ValueError, AttributeError) as e:
            raise CaptionerError(f"{self.path / 'config.json'} is not a JSON model configuration ({e})") from e
        try:
            self.processor = AutoProcessor.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModelForImageTextToText.from_pretrained(self.path, local_files_only=True).eval()
        except (ValueError, OSError, KeyError) as e:
            raise CaptionerError(f"captioner folder {self.path} (model_type {kind!r}) is not an image-to-text "
                                 f"model transformers can load: {e}") from e
        self._torch = torch
        digest = hashlib.sha256((self.path / "config.json").read_bytes())
        for names in REQUIRED_FILES.values():
            for name in names:
                if (self.path / name).is_file():
                    digest.update(f"{name}:{(self.path / name).stat().st_size}".encode())
        self.fingerprint = digest.hexdigest()[:16]
        """SHA-256 (16 hex digits) of config.json and the sizes of the other model files."""
        self.name = f"{self.path.name}/{type(self.model).__name__}@{self.fingerprint}"
        """Which captioner: folder name, model class and fingerprint."""

    def continue_text(self, image: np.ndarray, prefix: str = "") -> str:
        """The model's greedy continuation of ``prefix`` for uint8 sRGB [H, W, 3] ``image``,
        without the prefix, stripped."""
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), text=prefix or None, return_tensors="pt")
        shown = self.processor.decode(inputs["input_ids"][0], skip_special_tokens=True).strip() if prefix else ""
        with self._torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
        text = self.processor.decode(out[0], skip_special_tokens=True).strip()
        return text[len(shown):].strip() if text.startswith(shown) else text

    def captions(self, image: np.ndarray) -> tuple[dict[str, str], dict]:
        """``({"material_only": …, "filtered": …}, provenance)`` for uint8 sRGB ``image``.

        Raises:
            CaptionerError: the model generated no text for the material-only prompt.
        """
        material = self.continue_text(image, MATERIAL_ONLY_PROMPT)
        free = self.continue_text(image)
        if not material:
            raise CaptionerError(f"captioner {self.name} generated no text for the material-only prompt")
        material_only = _sentence(f"{LEAD} {MATERIAL_ONLY_PROMPT} {material}")
        filtered = filter_lighting(_sentence(f"{LEAD} {free}")) if free else ""
        provenance = {"captioner": self.name, "path": str(self.path), "prompts": {"material_only": MATERIAL_ONLY_PROMPT,
                      "filtered": ""}, "raw": {"material_only": material, "filtered": free},
                      "filtered_fallback": not filtered}
        return {"material_only": material_only, "filtered": filtered or material_only}, provenance


def load_captioner(path: str | Path) -> Captioner:
    """:class:`Captioner` of ``path``, loaded once per process and folder (a Ray worker loads
    it on its first video)."""
    return _load(str(check_captioner_dir(path)))


@functools.lru_cache(maxsize=2)
def _load(folder: str) -> Captioner:
    return Captioner(folder)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."
