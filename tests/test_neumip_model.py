"""The torch NeuMIP model (neumat.models.neumip) against the numpy contract (neumat.material.neumip)."""

import numpy as np
import pytest
import torch
from directions import upper_hemisphere
from neumat.bundle import load_bundle, save_bundle
from neumat.material import bilinear_lookup_np
from neumat.material.neumip import check_neumip, offsets_int8, render_neumip_int8
from neumat.models.neumip import (
    Int8Decoders,
    NeuMipDecoders,
    NeuMipField,
    int8_mlp_forward,
)
from neumat.models.qat import QatMode, export_int8
from neumat.quant import forward
from neumat.train.config_io import ConfigError
from neumat.train.neumip import load_decoders, save_decoders, to_bundle
from neumat.train.neumip.export import field_from_bundle


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(3)
    n = 8192
    return rng.uniform(-0.5, 1.5, (n, 2)).astype(np.float32), upper_hemisphere(rng, n), upper_hemisphere(rng, n)


@pytest.fixture(scope="module")
def observed_field(samples):
    """A random two-material field whose QAT ranges were observed, then briefly QAT-trained."""
    torch.manual_seed(0)
    field = NeuMipField(2, 16, max_offset=0.0625)
    uv, wi, wo = (torch.from_numpy(a[:2048]) for a in samples)
    opt = torch.optim.Adam(field.parameters(), 1e-2)
    for mode in (QatMode.OBSERVE, QatMode.QUANTIZE):
        field.decoders.set_qat_mode(mode)
        for _ in range(4):
            loss = (field(uv, wi, wo, sizes=[1024, 1024]) - 0.3).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return field


def test01_int8_mlp_forward_is_bit_exact(observed_field, samples):
    """Torch integer arithmetic in float32 == the numpy INT8 reference, bit for bit."""
    mlp = export_int8(observed_field.decoders.rgb)
    x = np.random.default_rng(1).normal(0, 0.3, (4096, mlp.n_inputs)).astype(np.float32)
    np.testing.assert_array_equal(int8_mlp_forward(mlp, torch.from_numpy(x)).numpy(), forward(mlp, x))


@pytest.mark.parametrize("index", [0, 1])
def test02_torch_int8_forward_matches_render_neumip_int8(observed_field, samples, index, tmp_path):
    """Exported bundle (saved + reloaded) through the numpy contract == the torch INT8 twin:
    offsets bit-exact, lookups and outputs within 1e-6."""
    bundle = to_bundle(observed_field, index, value_scale=0.25)
    path = save_bundle(bundle, tmp_path / "m.nmat")
    bundle = load_bundle(path)
    check_neumip(bundle)
    uv, wi, wo = samples
    twin = Int8Decoders(bundle.mlps["offset"], bundle.mlps["rgb"])
    sizes = [len(uv) if k == index else 0 for k in range(2)]
    t = [torch.from_numpy(a) for a in samples]
    with torch.no_grad():
        du = observed_field.offsets(t[0], t[2], sizes, twin).numpy()
        rgb = observed_field(*t, sizes, decoders=twin).numpy() * np.float32(0.25)
    np.testing.assert_array_equal(du, offsets_int8(bundle, uv, wo))
    ref = render_neumip_int8(bundle, uv, wi, wo)
    assert np.abs(rgb - ref).max() <= 1e-6
    assert float(np.std(du)) > 1e-4, "offsets must vary for the comparison to mean anything"


def test03_fake_quantized_forward_follows_int8(observed_field, samples):
    """The QAT forward (training) is the INT8 forward up to rare one-step rounding flips."""
    t = [torch.from_numpy(a) for a in samples]
    field = observed_field
    field.eval()
    field.decoders.set_qat_mode(QatMode.QUANTIZE)
    twin = Int8Decoders(export_int8(field.decoders.offset), export_int8(field.decoders.rgb))
    with torch.no_grad():
        fake = field(*t, sizes=[4096, 4096]).numpy()
        exact = field(*t, sizes=[4096, 4096], decoders=twin).numpy()
    field.train()
    diff = np.abs(fake - exact)
    assert np.median(diff) < 1e-6
    assert np.mean(diff < 1e-2) > 0.99


def test04_zero_offset_skips_the_offset_network(samples):
    torch.manual_seed(1)
    field = NeuMipField(1, 8)
    uv, wi, wo = (torch.from_numpy(a[:512]) for a in samples)
    field(uv, wi, wo, zero_offset=True).sum().backward()
    assert field.textures[0].offset.grad is None
    assert all(p.grad is None for p in field.decoders.offset.parameters())
    expected = field.decoders.rgb(torch.cat(
        [torch.from_numpy(bilinear_lookup_np(field.textures[0].rgb.detach().numpy(), uv.numpy(), True)),
         wi[:, :2], wo[:, :2]], 1))
    torch.testing.assert_close(field(uv, wi, wo, zero_offset=True), expected, rtol=0, atol=1e-6)


def test05_offsets_start_centred_and_learn_through_the_lookup(samples):
    """Fresh field: mean offset-network output 0.5 (Δu ≈ 0); gradients reach T_off through Δu."""
    torch.manual_seed(2)
    field = NeuMipField(1, 16, max_offset=0.0625)
    uv, wi, wo = (torch.from_numpy(a) for a in samples)
    du = field.offsets(uv, wo)
    assert float(du.detach().mean(0).abs().max()) < 0.1 * 0.0625
    assert float(du.detach().abs().max()) <= 0.0625
    field(uv, wi, wo).sum().backward()
    assert float(field.textures[0].offset.grad.abs().sum()) > 0
    assert float(field.textures[0].rgb.grad.abs().sum()) > 0


def test06_decoder_file_round_trip(observed_field, tmp_path):
    path = save_decoders(observed_field.decoders, tmp_path / "mlps.safetensors", 0.0625, ["a", "b"], {"seed": 0})
    decoders, max_offset, info = load_decoders(path)
    assert max_offset == 0.0625 and info["materials"] == ["a", "b"]
    for name in ("offset", "rgb"):
        a, b = export_int8(getattr(observed_field.decoders, name)), export_int8(getattr(decoders, name))
        np.testing.assert_array_equal(a.scales, b.scales)
        for layer in range(a.n_layers):
            np.testing.assert_array_equal(a.weights_int8(layer), b.weights_int8(layer))
    assert not any(p.requires_grad for p in decoders.parameters()), "loaded decoders are frozen"


def test07_bad_decoder_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_decoders(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="safetensors"):
        load_decoders(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(ConfigError, match="not a NeuMIP decoder file"):
        load_decoders(other)


def test08_field_from_bundle_reproduces_the_bundle(observed_field, samples):
    bundle = to_bundle(observed_field, 1, value_scale=2.0)
    field, twin = field_from_bundle(bundle)
    uv, wi, wo = samples
    with torch.no_grad():
        rgb = field(*(torch.from_numpy(a) for a in samples), decoders=twin).numpy() * np.float32(2.0)
    assert np.abs(rgb - render_neumip_int8(bundle, uv, wi, wo)).max() <= 1e-6


def test09_decoders_have_the_seed_shape():
    d = NeuMipDecoders()
    assert d.offset.widths == (14, 64, 64, 64, 64, 2)
    assert d.rgb.widths == (16, 64, 64, 64, 64, 3)


def test10_decoder_file_bytes_depend_only_on_the_contents(observed_field, tmp_path):
    """The safetensors writer orders metadata as a Rust HashMap (differently per call); the saved
    header is canonical, so saving the same decoders again gives the same bytes (5 saves)."""
    blobs = {save_decoders(observed_field.decoders, tmp_path / f"m{k}.safetensors", 0.0625, ["a", "b"],
                           {"seed": 0, "steps": 3}).read_bytes() for k in range(5)}
    assert len(blobs) == 1
    _, max_offset, info = load_decoders(tmp_path / "m0.safetensors")
    assert max_offset == 0.0625 and info == {"materials": ["a", "b"], "config": {"seed": 0, "steps": 3}}
