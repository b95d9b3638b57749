"""The NeuMIP pass (shaders/neumip.slang) against the NeuMIP contract's numpy reference
(neumat.material.neumip.render_neumip_int8, neumat.render.reference.neumip), in the Renderer, side by side
with a triple-plane object (neumat.render.multi), and through ``neumat render``; 64² frames of a
random 12-channel NeuMIP bundle with four hidden layers of 64 (the NeuMIP shape).

The random networks are made non-degenerate (:func:`_spread`: non-negative output-layer weights,
outputs centred near 0.5), so that Δu spans [-max_offset, max_offset] instead of saturating
and the BTF is mostly non-zero — otherwise a wrong lookup could go unnoticed.

Tolerances: local directions within 2e-5 of the infer pass's numpy frame (as
tests/test_render_pipeline.py); given the device's own directions and uv, Δu within 1e-6 UV units
of neumat.material.neumip.offsets_int8 and the network inputs within 1e-6 (bilinear weights of the same
float32 formula; FMA contraction may move the last bit); both INT8 networks bit-exact given the
device's own inputs; the BTF equal to render_neumip_int8 on >= 99.9 % of masked pixels (an input
1 ulp away can round to the neighbouring int8 value; measured: 100 %); the FP32 path within
1e-4 of the numpy float32 reference neumat.render.reference.neumip (summation order differs;
measured max 3.2e-6) and Δu within 1e-6 (measured 3.7e-8).
"""

from __future__ import annotations

import numpy as np
import pytest
import typer
from neumat.bundle import Bundle, make_random_bundle, save_bundle
from neumat.material.neumip import network_input
from neumat.quant import Int8MLP, forward
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight
from neumat.render.multi import MultiRenderer, translated
from neumat.render.reference.neumip import reference_neumip
from neumat.render.reference.pipeline import reference_compose, shading_directions
from neumat.render.renderer import Renderer
from typer.testing import CliRunner

RES = 64
MAX_OFFSET = 0.05
DIRECTION_ATOL = 2e-5
INPUT_ATOL = 1e-6
GBUFFER = ("uv", "normal", "tangent", "position", "mask")
CAMERA = Camera.orbit(azimuth=20, elevation=25, distance=3.5, width=RES, height=RES)
LIGHT = DirectionalLight((0.3, -0.4, 0.87), (2.0, 1.5, 1.0))


def _spread(mlp: Int8MLP, target: float, rng: np.random.Generator) -> Int8MLP:
    """``mlp`` with non-negative output-layer weights, its output scale set so the median output
    on random inputs is ``target`` (few outputs clamp at 0 or 1)."""
    weights = [mlp.weights_int8(layer) for layer in range(mlp.n_layers)]
    weights[-1] = np.abs(weights[-1]).astype(np.int8)
    scales = np.asarray(mlp.scales, np.float32).copy()
    probe = Int8MLP.from_int8(weights, scales)
    x = rng.normal(0.0, 0.5, size=(2048, mlp.n_inputs)).astype(np.float32)
    median = float(np.median(forward(probe, x)[forward(probe, x) > 0]))
    scales[-1] *= np.float32(target / median)
    return Int8MLP.from_int8(weights, scales)


@pytest.fixture(scope="module")
def bundle():
    rng = np.random.default_rng(11)
    base = make_random_bundle(rng, "neumip", channels=12, hidden=(64,) * 4)
    return Bundle.neumip(base.planes["offset"], base.planes["rgb"], _spread(base.mlps["offset"], 0.5, rng),
                         _spread(base.mlps["rgb"], 0.3, rng), 2, angle_param=base.angle_param,
                         height=base.height, height_range=base.height_range,
                         provenance={**base.provenance, "value_scale": 2.0, "max_offset": MAX_OFFSET})


@pytest.fixture(scope="module")
def renderer(device, bundle):
    return Renderer(bundle, shapes.uv_sphere(1.0, 16, 32), (RES, RES), device=device)


@pytest.fixture(scope="module")
def frame(renderer):
    return renderer.render(CAMERA, [LIGHT], aovs=("offset", "btf"), debug=True)


def _gbuffer(res) -> dict[str, np.ndarray]:
    return {s: res.aovs[f"gbuffer.{s}"] for s in GBUFFER}


def test01_directions_are_the_infer_pass_frame(frame):
    g = _gbuffer(frame)
    wi, wo, _, idx = shading_directions(g, CAMERA.eye, LIGHT)
    assert idx.size > 0.2 * RES * RES
    dirs = frame.aovs["directions"].reshape(-1, 8)[idx]
    np.testing.assert_allclose(dirs[:, 0:3], wi, atol=DIRECTION_ATOL)
    np.testing.assert_allclose(dirs[:, 4:7], wo, atol=DIRECTION_ATOL)


def test02_offsets_match_contract(frame, bundle):
    g = _gbuffer(frame)
    ref = reference_neumip(bundle, g, CAMERA.eye, LIGHT, directions=frame.aovs["directions"])
    idx = ref["index"]
    got = frame.aovs["offset"].reshape(-1, 2)
    want = ref["offset"].reshape(-1, 2)
    assert np.abs(got - want).max() <= INPUT_ATOL
    assert np.mean(np.all(got[idx] == want[idx], axis=1)) >= 0.999
    assert not got[np.setdiff1d(np.arange(RES * RES), idx)].any()  # zeros off the mask
    du = got[idx]
    assert du.std() > 0.2 * MAX_OFFSET and np.mean(np.abs(du) >= MAX_OFFSET) < 0.25  # non-degenerate
    uv = g["uv"].reshape(-1, 4)[idx, :2]
    np.testing.assert_allclose(frame.aovs["offset_features"].reshape(-1, 14)[idx],
                               network_input(bundle, "offset", uv, ref["wo"], ref["wo"]), atol=INPUT_ATOL)
    np.testing.assert_allclose(frame.aovs["features"].reshape(-1, 16)[idx],
                               network_input(bundle, "rgb", (uv + du).astype(np.float32), ref["wi"], ref["wo"]),
                               atol=INPUT_ATOL)


def test03_int8_networks_bit_exact(frame, bundle):
    """Given the device's own network inputs, Δu and the BTF equal neumat.quant.forward's."""
    mask = frame.aovs["gbuffer.mask"].reshape(-1) > 0.5
    lit = frame.aovs["directions"].reshape(-1, 8)[:, 2] > 0
    keep = np.nonzero(mask & lit)[0]
    assert keep.size > 0.1 * RES * RES
    o = forward(bundle.mlps["offset"], frame.aovs["offset_features"].reshape(-1, 14)[keep])
    du = (o * np.float32(2) - np.float32(1)) * np.float32(MAX_OFFSET)
    assert np.array_equal(frame.aovs["offset"].reshape(-1, 2)[keep], du)
    rgb = forward(bundle.mlps["rgb"], frame.aovs["features"].reshape(-1, 16)[keep]) * np.float32(2.0)
    got = frame.aovs["btf"].reshape(-1, 3)[keep]
    assert np.array_equal(got, rgb)
    assert np.mean(got > 0) > 0.5  # mostly non-zero BTF values


def test04_btf_and_image_match_render_neumip_int8(frame, bundle):
    g = _gbuffer(frame)
    ref = reference_neumip(bundle, g, CAMERA.eye, LIGHT, directions=frame.aovs["directions"])
    idx = ref["index"]
    got = frame.aovs["btf"].reshape(-1, 3)[idx]
    want = ref["btf"].reshape(-1, 4)[idx, :3]
    same = np.all(got == want, axis=1)
    assert same.mean() >= 0.999, same.mean()  # measured 1.0
    radiance, srgb = reference_compose(ref["btf"], ref["irradiance"], g["mask"])
    close = np.all(np.isclose(frame.image, radiance, rtol=1e-6, atol=1e-7), axis=-1)
    assert close.mean() >= 0.999
    assert np.mean(np.abs(frame.srgb.astype(int) - srgb.astype(int)).max(-1) <= 1) >= 0.999
    assert frame.srgb.std() > 1.0


def test05_fp32_path(renderer, frame, bundle):
    fp = renderer.render(CAMERA, [LIGHT], fp32=True, aovs=("offset", "btf"), debug=True)
    g = _gbuffer(fp)
    ref = reference_neumip(bundle, g, CAMERA.eye, LIGHT, fp32=True, directions=fp.aovs["directions"])
    idx = ref["index"]
    np.testing.assert_allclose(fp.aovs["offset"].reshape(-1, 2)[idx], ref["offset"].reshape(-1, 2)[idx], atol=1e-6)
    err = np.abs(fp.aovs["btf"].reshape(-1, 3)[idx] - ref["btf"].reshape(-1, 4)[idx, :3])
    assert err.max() <= 1e-4, err.max()
    # FP32 vs INT8: close (activation quantization only), not equal
    diff = np.abs(fp.aovs["btf"] - frame.aovs["btf"])[g["mask"][..., 0] > 0.5]
    assert 0 < diff.mean() < 0.05, diff.mean()
    # precision="fp32" is the same path; NeuMIP has no FP16 one
    np.testing.assert_array_equal(renderer.render(CAMERA, [LIGHT], precision="fp32").image, fp.image)
    with pytest.raises(ValueError, match="'int8' or 'fp32'"):
        renderer.render(CAMERA, [LIGHT], precision="fp16")


def test06_every_light_shades(renderer, frame):
    """Two lights: radiance = Σ_i btf_i · E_i, each term the single-light render's."""
    second = PointLight((2.0, -1.0, 2.5), (20.0, 20.0, 20.0))
    alone = renderer.render(CAMERA, [second], aovs=("btf",))
    both = renderer.render(CAMERA, [LIGHT, second], aovs=("btf",))
    assert np.array_equal(both.aovs["btf"], frame.aovs["btf"])  # btf: the first light's
    mask = frame.aovs["gbuffer.mask"] > 0.5
    expect = np.where(mask, frame.image + alone.image, both.image)
    np.testing.assert_allclose(both.image, expect, rtol=1e-6, atol=1e-7)


def test07_renderer_graph_for_neumip(frame, device):
    """NeuMIP: no height-field tracing, shadows or synthesis, even for a bundle with a height map;
    the offset AOV is refused for triple-plane bundles."""
    assert set(frame.timings_ms) == {"shell", "infer", "compose", "total"}
    tp = Renderer(make_random_bundle(np.random.default_rng(1)), "plane", (16, 16), device=device)
    with pytest.raises(ValueError, match="offset"):
        tp.render(aovs=("offset",))


def test08_side_by_side(device, bundle):
    """A triple-plane and a NeuMIP sphere overlapping in view: each pixel shows the nearer
    object exactly as its single-object render does; the mask is the union."""
    triple = make_random_bundle(np.random.default_rng(5))
    triple.provenance["value_scale"] = 2.0
    sphere = shapes.uv_sphere(0.8, 16, 32)
    objects = [(triple, sphere, (0.0, -0.5, 0.0)), (bundle, sphere, (0.3, 0.5, 0.0))]
    cam = Camera.orbit(azimuth=10, elevation=15, distance=4.0, width=96, height=64)
    lights = [LIGHT]
    multi = MultiRenderer(objects, (96, 64), device=device).render(cam, lights, hf=False, synthesis=False)
    singles = [Renderer(b, translated(m, t), (96, 64), device=device).render(
        cam, lights, hf=False, synthesis=False, aovs=("mask", "depth")) for b, m, t in objects]
    masks = [s.aovs["mask"][..., 0] > 0.5 for s in singles]
    obj = multi.aovs["object"][..., 0]
    np.testing.assert_array_equal(multi.aovs["mask"][..., 0] > 0.5, masks[0] | masks[1])
    both = masks[0] & masks[1]
    assert both.sum() > 50 and (obj == 0).sum() > 200 and (obj == 1).sum() > 200
    depth = [s.aovs["depth"][..., 0] for s in singles]
    nearer = np.where(depth[1] < depth[0], 1, 0)
    np.testing.assert_array_equal(obj[both], nearer[both])
    for k, s in enumerate(singles):
        np.testing.assert_array_equal(multi.image[obj == k], s.image[obj == k])
        np.testing.assert_array_equal(multi.srgb[obj == k], s.srgb[obj == k])
    np.testing.assert_array_equal(multi.srgb[obj == -1], singles[0].srgb[obj == -1])  # background
    assert {"obj0.infer", "obj1.infer", "merge0", "merge1", "compose"} <= set(multi.timings_ms)


def _cli():
    from neumat.cli import render_cmd

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("render")(render_cmd.render)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    return app


@pytest.fixture(scope="module")
def bundle_file(bundle, tmp_path_factory):
    path = tmp_path_factory.mktemp("neumip_cli") / "random_neumip.nmat"
    save_bundle(bundle, path)
    return path


def test09_cli_renders_neumip_png(bundle_file, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "neumip.png"
    result = CliRunner().invoke(_cli(), ["render", str(bundle_file), "--shape", "sphere", "--out", str(out),
                                         "--size", "32x24", "--frames", "1", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    image = iio.imread(out)
    assert image.shape == (24, 32, 3) and image.std() > 1.0
    assert "infer" in result.output and "hf_trace" not in result.output


def test10_cli_side_by_side(bundle_file, tmp_path):
    """``neumat render A B --side-by-side``: both objects in the frame; two bundles without the
    flag are refused."""
    import imageio.v3 as iio

    triple = tmp_path / "triple.nmat"
    save_bundle(make_random_bundle(np.random.default_rng(2)), triple)
    out = tmp_path / "both.png"
    args = ["render", str(triple), str(bundle_file), "--shape", "sphere", "--out", str(out), "--size", "64x32",
            "--frames", "1", "--warmup", "0", "--no-hf", "--no-synthesis"]
    result = CliRunner().invoke(_cli(), args + ["--side-by-side"])
    assert result.exit_code == 0, result.output
    image = iio.imread(out).astype(int)
    background = image[0, 0]
    seen = np.any(image != background, axis=-1)
    assert seen[:, :32].mean() > 0.2 and seen[:, 32:].mean() > 0.2  # one object on each side
    assert "obj1.infer" in result.output and "merge1" in result.output
    refused = CliRunner().invoke(_cli(), args)
    assert refused.exit_code != 0 and "--side-by-side" in refused.output
