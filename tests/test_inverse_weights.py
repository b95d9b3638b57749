"""Pretrained weights from local files (neumat.inverse.weights): a tiny model's parts saved in the
Pi3, Meta-DINOv2 and ResNeXt layouts (safetensors and torch) load back into another model, and
files lacking tensors are refused with the tensors named, loading nothing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from neumat.inverse.config import ModelConfig  # noqa: E402
from neumat.inverse.model import MVInverse  # noqa: E402
from neumat.inverse.weights import WeightsError, load_dinov2, load_pretrained, read_state_dict  # noqa: E402


def _model(seed: int) -> MVInverse:
    torch.manual_seed(seed)
    return MVInverse(ModelConfig.tiny())


def _meta_dinov2(model: MVInverse) -> dict[str, torch.Tensor]:
    """The encoder in Meta's DINOv2 layout: the class token's position embedding first in
    ``pos_embed`` (0.25 here, exact in float32), ``register_tokens``, a ``mask_token``."""
    sd = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    cls_pos = torch.full_like(sd["cls_token"], 0.25)
    sd["cls_token"] = sd["cls_token"] - cls_pos
    sd["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], dim=1)
    sd["register_tokens"] = sd.pop("reg_token")
    sd["mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    return sd


def _pi3(model: MVInverse) -> dict[str, torch.Tensor]:
    """Encoder + decoder in Pi3's checkpoint layout, with some of Pi3's own 3D-head tensors."""
    sd = {f"encoder.{k}": v for k, v in _meta_dinov2(model).items() if k != "mask_token"}
    for k, v in model.decoder.state_dict().items():
        sd[re.sub(r"^blocks\.", "decoder.", k)] = v.clone()
    sd["point_head.proj.weight"] = torch.zeros(4, 8)
    sd["camera_decoder.0.norm1.weight"] = torch.ones(8)
    return sd


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # cls_token went through - 0.25 + 0.25 (float32 rounding)
        assert torch.allclose(sa[k], sb[k], atol=1e-7) if k == "cls_token" else torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test01_parts_round_trip(tmp_path, suffix):
    src, dst = _model(0), _model(1)
    assert not torch.equal(src.decoder.blocks[0].attn.qkv.weight, dst.decoder.blocks[0].attn.qkv.weight)
    resnext = {**{k: v.clone() for k, v in src.detail.state_dict().items()}, "fc.weight": torch.zeros(10, 128),
               "fc.bias": torch.zeros(10)}
    files = {"pi3": _pi3(src), "resnext": resnext}
    paths = {}
    for name, tensors in files.items():
        paths[name] = tmp_path / f"{name}{suffix}"
        if suffix == ".safetensors":
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(paths[name]))
        else:
            torch.save({"model": tensors}, paths[name])
    reports = load_pretrained(dst, pi3=paths["pi3"], resnext=paths["resnext"])
    _assert_same(src.encoder, dst.encoder)
    _assert_same(src.decoder, dst.decoder)
    _assert_same(src.detail, dst.detail)
    assert [(r.part, r.unused) for r in reports] == [
        ("encoder", []), ("decoder", ["camera_decoder.0.norm1.weight", "point_head.proj.weight"]),
        ("detail", ["fc.bias", "fc.weight"])]
    assert reports[1].loaded == len(dst.decoder.state_dict())
    # the heads keep their own (random) weights
    assert not torch.equal(src.heads["albedo"].norm.weight + 1, dst.heads["albedo"].norm.weight)


def test02_dinov2_meta_and_timm_layouts(tmp_path):
    src = _model(0)
    save_file({k: v.contiguous() for k, v in _meta_dinov2(src).items()}, str(tmp_path / "meta.safetensors"))
    torch.save(src.encoder.state_dict(), tmp_path / "timm.pth")
    for name in ("meta.safetensors", "timm.pth"):
        dst = _model(2)
        report = load_dinov2(dst, tmp_path / name)
        _assert_same(src.encoder, dst.encoder)
        assert report.loaded == len(dst.encoder.state_dict()) and report.unused == []


def test03_missing_tensor_is_named_and_nothing_loads(tmp_path):
    src, dst = _model(0), _model(1)
    tensors = _pi3(src)
    del tensors["decoder.1.attn.q_norm.weight"]
    del tensors["encoder.blocks.0.ls1.gamma"]
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "pi3.safetensors"))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(WeightsError, match=r"encoder: 1 missing tensor\(s\): blocks\.0\.ls1\.gamma"):
        load_pretrained(dst, pi3=tmp_path / "pi3.safetensors")
    tensors["encoder.blocks.0.ls1.gamma"] = src.encoder.blocks[0].ls1.gamma.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "pi3.safetensors"))
    with pytest.raises(WeightsError, match=r"decoder: 1 missing tensor\(s\): blocks\.1\.attn\.q_norm\.weight"):
        load_pretrained(dst, pi3=tmp_path / "pi3.safetensors")
    after = dst.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the encoder was not loaded either


def test04_wrong_shapes_and_files(tmp_path):
    dst = _model(1)
    wide = MVInverse(replace(ModelConfig.tiny(), resnext_widths=(8, 8, 16, 32)))
    torch.save(wide.detail.state_dict(), tmp_path / "resnext.pt")
    with pytest.raises(WeightsError, match=r"detail: 22 tensor\(s\) of another shape: layer1\.0\.conv1\.weight: "
                                           r"file \(8, 64, 1, 1\), model \(4, 64, 1, 1\)"):
        load_pretrained(dst, resnext=tmp_path / "resnext.pt")
    with pytest.raises(FileNotFoundError, match="local files only"):
        read_state_dict(tmp_path / "absent.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="no tensor dictionary"):
        read_state_dict(tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not both"):
        load_pretrained(dst, pi3=tmp_path / "a", dinov2=tmp_path / "b")
