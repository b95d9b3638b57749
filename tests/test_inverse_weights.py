"""Pretrained weights from local files (neumat.inverse.weights), in the published key layouts.

The files are built the published way at tiny widths: the DINOv2 encoder and the ResNeXt by timm's
own model classes (``vit_large_patch14_reg4_dinov2`` / ``vit_large_patch14_dinov2`` /
``resnext101_32x8d`` with their published tensor names, classifier included), Meta's DINOv2 and
Pi3's layout by the renaming their code defines (yyfz/Pi3 ``pi3/models/pi3.py`` and its
``dinov2/models/vision_transformer.py``: ``register_tokens``, ``pos_embed`` with the class
position, ``decoder.<i>.*``, ``register_token``, 3D heads, ``image_mean``). They load into a
differently seeded model: tensors equal, forward passes equal; errors name the file, the part and
the tensors; nothing is loaded then.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from neumat.inverse.config import InverseTrainConfig, ModelConfig  # noqa: E402
from neumat.inverse.model import MVInverse  # noqa: E402
from neumat.inverse.timm_import import import_timm  # noqa: E402
from neumat.inverse.weights import (WeightsError, find_weight_files, load_pretrained, load_pretrained_dir,  # noqa: E402
                                    read_state_dict)

CLS_POS = 0.25
"""The class token's position embedding written into Meta-layout files (Pi3, Meta DINOv2)."""


def _model(seed: int, **changes) -> MVInverse:
    torch.manual_seed(seed)
    return MVInverse(replace(ModelConfig.tiny(), **changes))


def _timm_vit(cfg: ModelConfig, name: str, img_size: int, seed: int) -> torch.nn.Module:
    """timm's own DINOv2 class at the tiny config's widths (its published tensor names)."""
    torch.manual_seed(seed)
    return import_timm().create_model(name, pretrained=False, num_classes=0, img_size=img_size, dynamic_img_size=True,
                                      embed_dim=cfg.encoder_dim, depth=cfg.encoder_depth, num_heads=cfg.encoder_heads)


def _meta(vit: torch.nn.Module) -> dict[str, torch.Tensor]:
    """timm's registered DINOv2 ``vit`` in Meta's layout (the class position first in ``pos_embed``).
    ``vit``'s class token is set to Meta's plus the class position, as timm's conversion sums them
    in float32, so a loaded copy is bit-identical."""
    sd = {k: v.clone() for k, v in vit.state_dict().items()}
    cls_pos = torch.full_like(sd["cls_token"], CLS_POS)
    sd["cls_token"] = torch.randn(sd["cls_token"].shape, generator=torch.Generator().manual_seed(7)) * 0.02
    with torch.no_grad():
        vit.cls_token.copy_(sd["cls_token"] + cls_pos[:, 0])
    sd["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], dim=1)
    sd["register_tokens"] = sd.pop("reg_token")
    sd["mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    return sd


def _pi3(model: MVInverse, prefix: str = "") -> dict[str, torch.Tensor]:
    """Pi3's model.safetensors layout: Meta's DINOv2 without mask_token, decoder.<i>, register_token,
    and tensors of its 3D heads and buffers that MVInverse does not use."""
    sd = {f"encoder.{k}": v for k, v in _meta(model.encoder).items() if k != "mask_token"}
    for k, v in model.decoder.state_dict().items():
        sd[re.sub(r"^blocks\.", "decoder.", k)] = v.clone()
    sd["point_decoder.blocks.0.attn.qkv.weight"] = torch.zeros(12, 4)
    sd["camera_head.fc.weight"] = torch.ones(3)
    sd["image_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    return {prefix + k: v for k, v in sd.items()}


def _resnext(cfg: ModelConfig, seed: int) -> torch.nn.Module:
    """timm's ResNeXt class at the tiny widths, with its 10-class ``fc``."""
    torch.manual_seed(seed)
    return import_timm().create_model(cfg.resnext, pretrained=False, num_classes=10, layers=cfg.resnext_layers,
                                      channels=cfg.resnext_widths, cardinality=cfg.resnext_cardinality,
                                      base_width=cfg.resnext_base_width)


def _save(tensors: dict[str, torch.Tensor], path) -> None:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    else:
        torch.save({"state_dict": tensors}, path)


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _images(seed: int, side: int = 56) -> torch.Tensor:
    return torch.rand(1, 2, 3, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test01_pi3_and_resnext_folder_round_trip(tmp_path, suffix):
    src, dst = _model(0), _model(1)
    cfg = src.cfg
    resnext = _resnext(cfg, 3)
    src.detail.load_state_dict({k: v for k, v in resnext.state_dict().items() if not k.startswith("fc.")})
    _save(_pi3(src, prefix="model."), tmp_path / f"pi3{suffix}")
    _save(resnext.state_dict(), tmp_path / f"resnext{suffix}")
    dst.heads.load_state_dict(src.heads.state_dict())  # the heads are not pretrained: copy them for the forward

    reports = load_pretrained_dir(dst, tmp_path)
    for part in ("encoder", "decoder", "detail"):
        _assert_same(getattr(src, part), getattr(dst, part))
    assert [(r.part, r.loaded) for r in reports] == [
        ("encoder", len(dst.encoder.state_dict())), ("decoder", len(dst.decoder.state_dict())),
        ("detail", len(dst.detail.state_dict()))]
    assert reports[1].unused == ["model.camera_head.fc.weight", "model.image_mean",
                                 "model.point_decoder.blocks.0.attn.qkv.weight"]
    assert reports[2].unused == ["fc.bias", "fc.weight"]
    with torch.no_grad():
        a, b = src.eval()(_images(0)), dst.eval()(_images(0))
    for m in a:
        assert torch.equal(a[m], b[m]), m


@pytest.mark.parametrize("layout", ["timm", "meta"])
def test02_dinov2_resampled_from_another_grid(tmp_path, layout):
    """A DINOv2 laid out for 70 px (5 x 5 patches) into the tiny model's 56 px (4 x 4): resampled
    at load as timm resamples at run time, so the encoders agree on 56 px images."""
    dst = _model(2)
    vit = _timm_vit(dst.cfg, dst.cfg.encoder, img_size=70, seed=0).eval()
    assert vit.pos_embed.shape[1] == 25 and dst.encoder.pos_embed.shape[1] == 16
    sd = vit.state_dict() if layout == "timm" else _meta(vit)
    _save({f"backbone.{k}": v for k, v in sd.items()}, tmp_path / "dinov2.safetensors")
    (report,) = load_pretrained(dst, dinov2=tmp_path / "dinov2.safetensors")
    assert report.loaded == len(dst.encoder.state_dict()) and report.unused == []
    assert torch.equal(dst.encoder.blocks[1].attn.qkv.weight, vit.blocks[1].attn.qkv.weight)
    x = _images(1).reshape(2, 3, 56, 56)
    with torch.no_grad():
        assert torch.allclose(vit.forward_features(x), dst.encoder.eval().forward_features(x), rtol=0, atol=1e-6)


def test03_dinov2_without_registers(tmp_path):
    """timm's ``vit_large_patch14_dinov2`` layout (class position inside ``pos_embed``, no registers):
    loads into a model built with that encoder; into the registered one, ``reg_token`` is named."""
    cfg = replace(ModelConfig.tiny(), encoder="vit_large_patch14_dinov2")
    vit = _timm_vit(cfg, cfg.encoder, img_size=56, seed=0)
    assert vit.pos_embed.shape[1] == 17  # 16 patches + the class position
    torch.save(vit.state_dict(), tmp_path / "dinov2.pth")
    dst = _model(1, encoder="vit_large_patch14_dinov2")
    load_pretrained(dst, dinov2=tmp_path / "dinov2.pth")
    _assert_same(vit, dst.encoder)
    with pytest.raises(WeightsError, match=r"dinov2\.pth does not fit the model's encoder: 1 missing tensor\(s\): "
                                           r"reg_token; 1 tensor\(s\) of another shape: pos_embed"):
        load_pretrained(_model(1), dinov2=tmp_path / "dinov2.pth")


def test04_missing_and_unexpected_tensors_named_nothing_loaded(tmp_path):
    src, dst = _model(0), _model(1)
    tensors = _pi3(src)
    del tensors["decoder.1.attn.q_norm.weight"]
    _save(tensors, tmp_path / "pi3.safetensors")
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(WeightsError, match=r"pi3\.safetensors does not fit the model's decoder: 1 missing "
                                           r"tensor\(s\): blocks\.1\.attn\.q_norm\.weight\. Is it the right"):
        load_pretrained(dst, pi3=tmp_path / "pi3.safetensors")
    deeper = _pi3(_model(0, pairs=3))  # 6 decoder blocks against the model's 4
    _save(deeper, tmp_path / "pi3.safetensors")
    with pytest.raises(WeightsError, match=r"decoder: 36 unexpected tensor\(s\): blocks\.4\.attn\.k_norm\.bias, "
                                           r".*\(\+30 more\)"):
        load_pretrained(dst, pi3=tmp_path / "pi3.safetensors")
    after = dst.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the encoder was not loaded either


def test05_wrong_shapes_and_wrong_files(tmp_path):
    dst = _model(1)
    wide = _resnext(replace(dst.cfg, resnext_widths=(8, 8, 16, 32)), 0)
    torch.save(wide.state_dict(), tmp_path / "resnext.pt")
    with pytest.raises(WeightsError, match=r"resnext\.pt does not fit the model's detail: 22 tensor\(s\) of another "
                                           r"shape: layer1\.0\.conv1\.weight \(file \(8, 64, 1, 1\), model \(4, 64, 1, 1\)\)"):
        load_pretrained(dst, resnext=tmp_path / "resnext.pt")
    with pytest.raises(WeightsError, match=r"resnext\.pt is not a dinov2 checkpoint: no tensor 'patch_embed\.proj\."
                                           r"weight' under any prefix \(\d+ tensors, first: bn1\.bias"):
        load_pretrained(dst, dinov2=tmp_path / "resnext.pt")
    twice = {**{f"teacher.{k}": v.clone() for k, v in dst.encoder.state_dict().items()},
             **{f"student.{k}": v for k, v in dst.encoder.state_dict().items()}}
    _save(twice, tmp_path / "two.safetensors")
    with pytest.raises(WeightsError, match=r"under 2 prefixes \('student\.', 'teacher\.'\).*ambiguous"):
        load_pretrained(dst, dinov2=tmp_path / "two.safetensors")
    with pytest.raises(FileNotFoundError, match="local files only"):
        read_state_dict(tmp_path / "absent.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(WeightsError, match=r"junk\.safetensors is not a readable safetensors file"):
        read_state_dict(tmp_path / "junk.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="no tensor dictionary"):
        read_state_dict(tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not both"):
        load_pretrained(dst, pi3=tmp_path / "a", dinov2=tmp_path / "b")


def test06_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_weight_files(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match=r"holds none of pi3\.safetensors, dinov2\.safetensors, "
                                                r"resnext\.safetensors"):
        find_weight_files(tmp_path)
    for name in ("pi3.pth", "pi3.safetensors"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(WeightsError, match=r"2 pi3 files \(pi3\.safetensors, pi3\.pth\): keep one"):
        find_weight_files(tmp_path)
    (tmp_path / "pi3.pth").unlink()
    (tmp_path / "dinov2.bin").write_bytes(b"")
    with pytest.raises(WeightsError, match="both fill the encoder"):
        find_weight_files(tmp_path)
    (tmp_path / "pi3.safetensors").unlink()
    assert find_weight_files(tmp_path) == {"dinov2": tmp_path / "dinov2.bin"}


def test07_training_starts_from_the_folder(tmp_path):
    """``InverseTrainConfig.pretrained``: the run's model starts from the folder's weights (the
    encoders, frozen in pretraining, still equal the file after a step); a file that does not fit
    stops the run before its directory is written; ``--pretrained`` of a missing folder is named."""
    from typer.testing import CliRunner

    from neumat.cli import app
    from neumat.inverse.synthetic import synthetic_batch
    from neumat.inverse.train import BatchRequest, run_training

    src = _model(0)
    (tmp_path / "weights").mkdir()
    _save(_pi3(src), tmp_path / "weights" / "pi3.safetensors")
    cfg = InverseTrainConfig.tiny(steps=1, heads_steps=0, min_views=2, max_views=2, max_images=2,
                                  pretrained=str(tmp_path / "weights"))
    batch = synthetic_batch(BatchRequest("pretrain", 0, scenes=1, views=2, long_side=28, rank=0, world_size=1, seed=0))
    captured = {}
    run_training(cfg, lambda request: batch, callbacks=[lambda engine, step: captured.update(model=engine.model)])
    _assert_same(src.encoder, captured["model"].encoder)

    (tmp_path / "weights" / "pi3.safetensors").write_bytes(b"junk")
    with pytest.raises(WeightsError, match=r"pi3\.safetensors is not a readable safetensors file"):
        run_training(replace(cfg, out=str(tmp_path / "run")), lambda request: batch)
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(app, ["inverse", "train", str(tmp_path), "--out", str(tmp_path / "run"),
                                      "--model", "tiny", "--pretrained", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "pretrained weights folder" in " ".join(result.output.split()), result.output
