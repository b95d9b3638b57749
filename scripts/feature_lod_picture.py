"""The README's feature-LoD picture (`make pictures`): a gravel plane receding to the horizon,
relief traced, one sample per pixel with and without feature LoD beside a 16x16-supersampled
render (``tests/test_render_feature_lod.py`` measures the same view).

Usage: python scripts/feature_lod_picture.py BUNDLE OUT.png
"""

from __future__ import annotations

import dataclasses
import sys

import imageio.v3 as iio
import numpy as np
from neumat.bundle import load_bundle
from neumat.render import default_device, shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.reference.pipeline import display_values
from neumat.render.renderer import Renderer

W, H, SUPERSAMPLE, ZOOM = 192, 128, 16, 2
LIGHTS = [DirectionalLight((0.3, 0.2, 0.9))]
CAMERA = Camera(eye=(0.0, -19.0, 0.5), target=(0.0, -10.0, 0.0), fov_y=40, width=W, height=H)


def linear(renderer: Renderer, camera: Camera, lod: bool) -> np.ndarray:
    """Linear radiance [h, w, 3] of ``camera`` with feature LoD on or off."""
    renderer.infer_pass().feature_lod = lod
    return renderer.render(camera, LIGHTS, synthesis=False, shadows=False).image


def main(bundle_path: str, out: str) -> None:
    bundle, device, mesh = load_bundle(bundle_path), default_device(), shapes.plane(40.0, segments=8)
    low = Renderer(bundle, mesh, (W, H), device=device)
    panels = [linear(low, CAMERA, True), linear(low, CAMERA, False)]
    s = SUPERSAMPLE
    high = Renderer(bundle, mesh, (W * s, H * s), device=device)
    ref = linear(high, dataclasses.replace(CAMERA, width=W * s, height=H * s), False)
    panels.insert(0, ref.reshape(H, s, W, s, 3).mean(axis=(1, 3)))
    ldr = [display_values(p) for p in panels]
    gap = np.ones((H, 4, 3))
    image = np.concatenate([ldr[0], gap, ldr[1], gap, ldr[2]], axis=1)
    image = np.repeat(np.repeat(image, ZOOM, axis=0), ZOOM, axis=1)
    iio.imwrite(out, (image * 255 + 0.5).astype(np.uint8))
    print(f"{out}: 16x16 supersampled | 1 spp, feature LoD | 1 spp, level 0")


if __name__ == "__main__":
    main(*sys.argv[1:3])
