"""The LRM network (neumat.lrm.model, neumat.lrm.weights): shapes and conventions of the tiny
network, what trains, the full size on the meta device, pretrained Wan parts from a local
folder, and the trained-LRM folder (round trip, corrupt folders refused before loading)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="the LRM needs torch")
pytest.importorskip("diffusers", reason="the LRM needs diffusers (pip install 'neumat[video]')")

from neumat.lrm.config import LrmModelConfig  # noqa: E402
from neumat.lrm.model import LrmNetwork, input_indices, parameter_counts  # noqa: E402
from neumat.lrm.weights import (CONFIG_FILE, DECODERS_FILE, NETWORK_FILE, LrmWeightsError, check_lrm,  # noqa: E402
                                check_wan_weights, load_lrm, load_wan_weights, save_lrm)
from neumat.train.neumip import load_decoders  # noqa: E402
from neumat.lrm.synthetic import DECODERS  # noqa: E402

FULL_PARAMETERS = {"dit": 1_418_996_800, "vae_encoder": 53_596_928, "upsampler": 73_350_056, "text_tokens": 4096,
                   "total": 1_545_947_880, "trainable": 1_492_350_952}
"""Parameters of the full network (Wan2.1-T2V-1.3B DiT + Wan2.1 VAE, 12 + 12 output channels)."""


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LrmNetwork(LrmModelConfig.tiny())


def test01_input_frames_are_17_uniform_of_81():
    assert input_indices(81, 17) == list(range(0, 81, 5))
    assert input_indices(17, 5) == [0, 4, 8, 12, 16]
    with pytest.raises(ValueError):
        input_indices(5, 17)


def test02_tiny_forward_shapes_and_what_trains(tiny):
    """17 frames of 32² → 5 latent frames of 4² → textures 2 x [32, 32, 12], float32, flat at
    start (the residual head is zero: the textures are its bias); once the head is not zero, the
    DiT, the text tokens and the upsampler get gradients and the frozen VAE encoder none."""
    frames = torch.rand(2, 3, 17, 32, 32) * 2 - 1
    z = tiny.encode(frames)
    assert z.shape == (2, 16, 5, 4, 4) and not z.requires_grad
    off, rgb = tiny(z)
    assert off.shape == rgb.shape == (2, 32, 32, 12) and off.dtype == torch.float32
    assert not off.any() and not rgb.any()
    net = LrmNetwork(LrmModelConfig.tiny())
    torch.nn.init.normal_(net.vae.decoder.conv_out.weight, std=0.01)  # as after a first optimizer step
    off, rgb = net(net.encode(frames))
    (off.square().mean() + rgb.mean()).backward()
    names = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert not any(n.startswith("vae.encoder") or n.startswith("vae.quant_conv") for n in names)
    for must in ("dit.proj_out.weight", "dit.blocks.0.attn1.to_q.weight", "vae.decoder.conv_out.weight",
                 "vae.post_quant_conv.weight", "text_tokens"):
        assert must in names, must
    assert net.vae.encoder.training is False and net.train().vae.encoder.training is False


def test03_textures_are_the_decoded_first_frame_rows_flipped():
    """Texture row 0 (v = 0) is the decoder image's bottom row (frame 0 shows v = 1 at row 0);
    a texture side other than the frame's resamples it."""

    class RowRamp(torch.nn.Module):
        def forward(self, x):
            b, _, _, h, w = x.shape
            rows = torch.arange(h * 8, dtype=torch.float32).view(1, 1, 1, -1, 1)
            return rows.expand(b, 24, 1, h * 8, w * 8)

    net = LrmNetwork(LrmModelConfig.tiny())
    net.vae.decoder = RowRamp()
    off, rgb = net(torch.zeros(1, 16, 5, 4, 4))
    assert off[0, :, 0, 0].tolist() == list(range(31, -1, -1)) and torch.equal(off, rgb)
    net.cfg = LrmModelConfig.tiny(texture_resolution=16)
    off, _ = net(torch.zeros(1, 16, 5, 4, 4))
    assert off.shape == (1, 16, 16, 12) and off[0, 0, 0, 0] == pytest.approx(30.5)  # mean of rows 31, 30


def test04_full_size_on_meta():
    """The seed's network instantiated on the meta device: 1.42 B DiT parameters (Wan2.1 1.3B),
    1.55 B in all, 1.49 B trained (everything but the VAE encoder)."""
    assert parameter_counts(LrmModelConfig.full()) == FULL_PARAMETERS


def test05_pretrained_wan_folder(tiny, tmp_path):
    """A tiny diffusers Wan folder fills the DiT and the VAE (encoder and decoder), except the
    heads, which are re-drawn; a folder missing tensors is refused naming them, nothing loaded."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from safetensors.torch import load_file, save_file

    from neumat.video.wan_tiny import write_tiny_wan

    wan = write_tiny_wan(tmp_path / "wan", seed=3)
    check_wan_weights(wan, LrmModelConfig.tiny())
    net = LrmNetwork(LrmModelConfig.tiny())
    load_wan_weights(net, wan)
    dit = WanTransformer3DModel.from_pretrained(str(wan / "transformer"))
    vae = AutoencoderKLWan.from_pretrained(str(wan / "vae"))
    assert torch.equal(net.dit.blocks[1].ffn.net[0].proj.weight, dit.blocks[1].ffn.net[0].proj.weight)
    assert torch.equal(net.vae.encoder.conv_in.weight, vae.encoder.conv_in.weight)
    assert torch.equal(net.vae.decoder.up_blocks[0].resnets[0].conv1.weight, vae.decoder.up_blocks[0].resnets[0].conv1.weight)
    assert not torch.equal(net.dit.proj_out.weight, dit.proj_out.weight)
    assert net.vae.decoder.conv_out.weight.shape[0] == 24
    shard = wan / "transformer" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(shard))
    state.pop("blocks.0.attn1.to_q.weight")
    state["proj_out.bias"] = torch.zeros(7)
    save_file(state, str(shard))
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    with pytest.raises(LrmWeightsError, match=r"1 missing: blocks\.0\.attn1\.to_q\.weight.*proj_out\.bias \[7\]"):
        load_wan_weights(tiny, wan)
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in before.items())
    with pytest.raises(LrmWeightsError, match="missing: vae/config.json"):
        (wan / "vae" / "config.json").unlink()
        check_wan_weights(wan, LrmModelConfig.tiny())


def test06_trained_folder_round_trip_and_corruption(tiny, tmp_path):
    """save_lrm → load_lrm gives the same tensors; a truncated network file, a missing decoder
    file, foreign JSON and a config that does not fit the tensors are refused by check_lrm."""
    nets, max_offset, _ = load_decoders(DECODERS)
    folder = save_lrm(tmp_path / "w", tiny, nets, 0.5, max_offset, {"steps": 3, "materials": ["a"]})
    info = check_lrm(folder)
    assert info.value_scale == 0.5 and info.model == LrmModelConfig.tiny() and info.training["steps"] == 3
    net, decoders, _ = load_lrm(folder)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in tiny.state_dict().items())
    assert torch.equal(decoders.rgb.layers[0].weight, nets.rgb.layers[0].weight)

    def broken(name, edit):
        import shutil

        copy = shutil.copytree(folder, tmp_path / name)
        edit(copy)
        return copy

    cases = [
        (lambda f: (f / NETWORK_FILE).write_bytes((f / NETWORK_FILE).read_bytes()[:5000]), "not a readable safetensors"),
        (lambda f: (f / DECODERS_FILE).unlink(), "missing: decoders.safetensors"),
        (lambda f: (f / CONFIG_FILE).write_text("[1, 2"), "not readable JSON"),
        (lambda f: (f / CONFIG_FILE).write_text(json.dumps({"format": "x"})), "format 'x'"),
        (lambda f: (f / CONFIG_FILE).write_text(json.dumps({**json.loads((f / CONFIG_FILE).read_text()),
                                                            "model": {"dit_layers": 3}})), "does not fit the network"),
        (lambda f: (f / DECODERS_FILE).write_bytes(b"\0" * 64), "not a readable safetensors file"),
    ]
    for k, (edit, message) in enumerate(cases):
        with pytest.raises(LrmWeightsError, match=message):
            check_lrm(broken(f"c{k}", edit))
    with pytest.raises(LrmWeightsError, match="no LRM weights folder"):
        check_lrm(tmp_path / "nothing")


def test07_bf16_autocast_gives_float32_textures():
    """precision bf16 (the seed's 1024² stage) autocasts the DiT and the upsampler; the textures
    come out float32, within bf16 rounding of the fp32 network's (a randomly drawn head: a zero
    one makes flat textures)."""
    torch.manual_seed(0)
    net = LrmNetwork(LrmModelConfig.tiny(residual=False))
    z = torch.randn(1, 16, 5, 4, 4)
    with torch.no_grad():
        ref, _ = net(z)
        net.cfg = LrmModelConfig.tiny(precision="bf16", residual=False)
        off, _ = net(z)
    assert off.dtype == torch.float32 and torch.isfinite(off).all()
    assert float((off - ref).abs().max()) < 0.05 * float(ref.abs().max())
