"""The MVInverse network (neumat.inverse.model): shapes and ranges, permutation equivariance over
views, input checks that name the frame, the full-size config on the meta device, lazy timm."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from neumat.inverse.batch import ViewError, check_images, stack_views  # noqa: E402
from neumat.inverse.config import ModelConfig  # noqa: E402
from neumat.inverse.intrinsics import SPECS, Intrinsic  # noqa: E402
from neumat.inverse.model import MVInverse, parameter_count, start_at_constants  # noqa: E402

EQUIVARIANCE_TOL = 1e-5
"""Largest |f(P x) - P f(x)| allowed (float32; only the summation order differs: measured ~1e-7)."""


@pytest.fixture(scope="module")
def tiny() -> MVInverse:
    torch.manual_seed(0)
    return MVInverse(ModelConfig.tiny()).eval()


@pytest.mark.parametrize("scenes,views", [(1, 2), (2, 5)])
def test01_output_shapes_and_ranges(tiny, scenes, views):
    images = torch.rand(scenes, views, 3, 28, 42, generator=torch.Generator().manual_seed(views))
    with torch.no_grad():
        out = tiny(images)
    assert list(out) == list(SPECS)
    for kind, spec in SPECS.items():
        assert out[kind].shape == (scenes, views, spec.channels, 28, 42), kind
        assert torch.isfinite(out[kind]).all()
    for kind in (Intrinsic.ALBEDO, Intrinsic.METALLIC, Intrinsic.ROUGHNESS, Intrinsic.SHADING):
        assert 0 <= float(out[kind].min()) and float(out[kind].max()) <= 1
    assert torch.allclose(out[Intrinsic.NORMAL].norm(dim=2), torch.ones(()), atol=1e-5)
    with torch.no_grad():  # a subset of the maps
        sub = tiny(images, maps=[Intrinsic.NORMAL, "metallic"])
    assert list(sub) == [Intrinsic.NORMAL, Intrinsic.METALLIC]
    assert torch.equal(sub[Intrinsic.NORMAL], out[Intrinsic.NORMAL])


def test02_permuting_views_permutes_outputs(tiny):
    images = torch.rand(2, 5, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        out, out_perm = tiny(images), tiny(images[:, perm])
    for kind in SPECS:
        err = float((out_perm[kind] - out[kind][:, perm]).abs().max())
        assert err <= EQUIVARIANCE_TOL, (kind, err)


def test03_global_attention_mixes_views():
    # not a per-view network: changing view 1 changes view 0's maps (through the global blocks).
    # LayerScale starts at 0.01 (Pi3), which keeps the effect at ~1e-6 at random init: use 1.
    torch.manual_seed(0)
    model = MVInverse(ModelConfig.tiny()).eval()
    with torch.no_grad():
        for blk in model.decoder.blocks:
            blk.ls1.gamma.fill_(1.0)
            blk.ls2.gamma.fill_(1.0)
    images = torch.rand(1, 3, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    other = images.clone()
    other[0, 1] = torch.rand(3, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = model(images)[Intrinsic.ALBEDO], model(other)[Intrinsic.ALBEDO]
    assert float((a[0, 0] - b[0, 0]).abs().max()) > 1e-5  # float noise of a per-view network: ~1e-7
    # in the decoder: block 0 (frame-wise) of view 0 does not see view 1, block 1 (global) does
    tokens = torch.randn(1, 3, 4, 32, generator=torch.Generator().manual_seed(4))
    changed = tokens.clone()
    changed[0, 1] = torch.randn(4, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        f, g = model.decoder(tokens, 2, 2, (0,))[0], model.decoder(changed, 2, 2, (0,))[0]
    assert torch.equal(f[0, 0, :, :32], g[0, 0, :, :32])
    assert float((f[0, 0, :, 32:] - g[0, 0, :, 32:]).abs().max()) > 1e-2


def test04_bad_input_names_the_frame(tiny):
    frames = [torch.rand(3, 28, 28) for _ in range(3)]
    with pytest.raises(ViewError, match=r"at least 2 views.*frame 0 \('a.png'\)"):
        stack_views(frames[:1], names=["a.png"])
    with pytest.raises(ViewError, match=r"at least 2 views"):
        tiny(torch.rand(1, 1, 3, 28, 28))
    odd = frames[:2] + [torch.rand(3, 42, 28)]
    with pytest.raises(ViewError, match=r"frame 2 \('c.png'\) is 42x28 pixels but frame 0 \('a.png'\) is 28x28"):
        stack_views(odd, names=["a.png", "b.png", "c.png"])
    with pytest.raises(ViewError, match="multiples of 14"):
        tiny(torch.rand(1, 2, 3, 30, 28))
    bright = torch.rand(1, 3, 3, 28, 28)
    bright[0, 2] *= 255
    with pytest.raises(ViewError, match=r"frame 2 \('c.png'\) of scene 0 has values outside \[0, 1\]"):
        check_images(bright, names=["a.png", "b.png", "c.png"])
    assert stack_views(frames).shape == (1, 3, 3, 28, 28)


def test05_full_size_on_meta_device():
    # The seed's network, built by timm without allocating memory: ViT-L/14 (reg4) 304.4 M as
    # DINOv2's ViT-L/14; Pi3's 36-block decoder 453.6 M; ResNeXt-101 32x8d without its classifier
    # 86.7 M (88.8 M with it); five DPT heads, two with the detail fusion.
    with torch.device("meta"):
        model = MVInverse(ModelConfig.full())
    assert all(p.device.type == "meta" for p in model.parameters())
    assert parameter_count(model.encoder) == 304_370_688
    assert parameter_count(model.decoder) == 453_552_128
    assert len(model.decoder.blocks) == 36
    assert parameter_count(model.detail) == 86_742_336
    assert parameter_count(model.heads) == 191_459_467
    assert parameter_count(model) == 1_036_124_619
    out = model(torch.empty(1, 3, 3, 518, 392, device="meta"))  # shapes only
    assert out[Intrinsic.SHADING].shape == (1, 3, 3, 518, 392)


def test06_neumat_and_render_do_not_import_timm():
    code = ("import sys\nimport neumat, neumat.inverse\nfrom neumat.inverse import ModelConfig, InverseTrainConfig\n"
            "from neumat.cli import main\nsys.argv = ['neumat', 'render', '--help']\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in ('timm', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test07_timm_import_leaves_no_torchvision(tiny):
    # timm is imported (the fixture built the model) and the torchvision stand-in is gone again
    assert "timm" in sys.modules
    stand_ins = [m for m in sys.modules if m.split(".")[0] == "torchvision" and "stand-in" in (sys.modules[m].__doc__ or "")]
    assert stand_ins == []


def test08_invalid_config_is_refused():
    with pytest.raises(ValueError, match="head_layers"):
        MVInverse(ModelConfig(pairs=4, head_layers=(0, 1, 2, 4)))
    with pytest.raises(ValueError, match="fused_heads"):
        MVInverse(ModelConfig(fused_heads="albedo,specular"))


def test09_start_at_constants_predicts_them_everywhere():
    """Zeroed output layers: the untrained network predicts the given constants (and normals
    facing the camera) at every pixel of every view, with or without the image skip."""
    constants = {"albedo": [0.3, 0.2, 0.1], "metallic": 0.25, "roughness": 0.6}
    images = torch.rand(1, 3, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    for skip in (True, False):
        torch.manual_seed(0)
        model = MVInverse(dataclasses.replace(ModelConfig.tiny(), image_skip=skip)).eval()
        start_at_constants(model, constants)
        with torch.no_grad():
            out = model(images)
        want = {Intrinsic.ALBEDO: constants["albedo"], Intrinsic.METALLIC: [0.25], Intrinsic.ROUGHNESS: [0.6],
                Intrinsic.NORMAL: [0.0, 0.0, -1.0], Intrinsic.SHADING: [0.5] * 3}
        for m, value in want.items():
            expected = torch.tensor(value)[None, None, :, None, None].expand_as(out[m])
            assert torch.allclose(out[m], expected, atol=1e-6), m
