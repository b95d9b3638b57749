"""Curved training shapes (neumat.inverse.shapes): the sphere's and the cylinder's ground-truth
buffers against Mitsuba's own shapes — its ``aov`` integrator (uv, shading normal) through the
data renderer's camera, and, ray by ray, its intersection (the cylinder's inside seen through an
open end included), shading frame and ``normalmap`` BSDF (the normal-mapped normal that the
ground truth states)."""

from __future__ import annotations

import math

import numpy as np
import pytest

mi = pytest.importorskip("mitsuba")

from neumat.data.materials import make_material  # noqa: E402
from neumat.fidelity.reference import mitsuba_variant  # noqa: E402
from neumat.inverse.shapes import CURVED, shape_gt_buffers, shape_scene  # noqa: E402
from neumat.inverse.views import camera_from_world, capture_poses  # noqa: E402
from neumat.material.heightfield import HeightField  # noqa: E402
from neumat.video.scene import RenderSettings  # noqa: E402

SIZE = 42


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


@pytest.mark.parametrize("name", ["sphere", "cylinder"])
def test01_shape_buffers_match_mitsuba(name):
    """Pixel centres (1 ray per pixel): the mask is exactly Mitsuba's hits on the outside (a hit
    whose geometric normal faces the ray; the cylinder's view 0 sees 84 inside hits through its
    open end, counted as hits and masked out); uv within 1e-4 texel
    widths of ``si.uv``, normal and tangent within 0.05° of ``si.sh_frame`` (float32 acos); the normal-mapped
    ground-truth normal against Mitsuba's ``normalmap`` over a white ``diffuse``: its value for
    wo = our normal is cos/π of the angle between the two normals (where the view is above the
    mapped normal, else the BSDF is 0) — mean < 0.05°, max < 0.1° (measured
    0.012° / 0.016° mean, 0.039° max: float32's acos floor).
    The ``aov`` integrator (16 random spp, box filter) through the data renderer's camera, on
    pixels away from the silhouette, against our 4x4-ray means: uv < 0.3 texel mean (measured
    0.19 sphere, 0.17 cylinder; a texel spans ~3 pixels along the sphere's u, so the two pixel
    estimates differ), ``sh_normal`` — which this Mitsuba reports with the ``normalmap`` applied —
    against the normal-mapped ground truth < 2.5° mean (measured 1.6° sphere, 2.1° cylinder;
    against the bare sphere normal it is 6.1°: the relief)."""
    material = make_material("stone_tiles", 32, 0)
    shape, pose = CURVED[name](), capture_poses(np.random.default_rng(0), 2)[0]
    gt = shape_gt_buffers(material, pose, SIZE, SIZE, shape, supersample=1)
    assert 0.2 < gt["mask"].mean() < 0.95  # the shape and background in view
    world_normal = gt["normal"].reshape(-1, 3).astype(np.float64) @ camera_from_world(pose)
    origin, rays = pose.rays(SIZE, SIZE)
    o = origin + np.array([0.5, 0.5, 0.0])
    normals = HeightField(material.height, material.height_scale).texel_normals
    with mitsuba_variant("scalar_rgb"):
        scene = mi.load_dict({"type": "scene", "s": shape.mitsuba({
            "type": "normalmap", "use_shadowing_function": False, "flip_invalid_normals": False,
            "normalmap": {"type": "bitmap", "bitmap": mi.Bitmap(np.ascontiguousarray(0.5 * (normals + 1), np.float32)),
                          "raw": True, "filter_type": "bilinear", "wrap_mode": "repeat"},
            "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}}})})
        uv_err, frame_err, mapped, inside = [], [], [], 0
        for i, d in enumerate(rays.reshape(-1, 3)):
            si = scene.ray_intersect(mi.Ray3f(o.tolist(), d.tolist()))
            outside = bool(si.is_valid()) and float(np.dot(np.array(si.n), d)) < 0
            inside += bool(si.is_valid()) and not outside
            assert outside == bool(gt["mask"].reshape(-1)[i]), i
            if not outside:
                continue
            p = np.array(si.p, np.float64)
            ours_uv, n, s, _ = shape.frame(p[None])
            uv_err.append(np.abs((np.array(si.uv) - ours_uv[0] + 0.5) % 1.0 - 0.5).max() * material.resolution)
            frame_err += [_angles(np.array(si.sh_frame.n), n[0]), _angles(np.array(si.sh_frame.s), s[0])]
            if world_normal[i] @ -d < 0.01:  # the view below the mapped normal: Mitsuba's BSDF is 0 there
                continue
            value = scene.shapes()[0].bsdf().eval(mi.BSDFContext(), si, si.to_local(mi.Vector3f(world_normal[i])))
            mapped.append(math.degrees(math.acos(min(1.0, float(value[0]) * math.pi))))
        assert max(uv_err) < 1e-4 and max(frame_err) < 0.05, (max(uv_err), max(frame_err))
        assert inside == (84 if name == "cylinder" else 0)
        mapped = np.array(mapped)
        assert len(mapped) > 0.9 * len(uv_err) and mapped.mean() < 0.05 and mapped.max() < 0.1, (mapped.mean(), mapped.max())

        render = shape_scene(material, shape, RenderSettings(SIZE, SIZE, 16))
        aov = mi.load_dict({"type": "aov", "aovs": "n:sh_normal,uv:uv"})
        out = np.array(mi.render(render._pose_scene(pose), integrator=aov, spp=16, seed=0), np.float64)
    fine = shape_gt_buffers(material, pose, SIZE, SIZE, shape, supersample=4)
    inner = (fine["mask"][..., 0] > 0) & (np.abs(fine["normal"][..., 2]) > 0.3)  # away from the silhouette
    normal_err = _angles(out[..., 0:3][inner], fine["normal"][inner].astype(np.float64) @ camera_from_world(pose))
    uv_fine = shape.frame(fine["points"][inner].astype(np.float64))[0]
    uv_aov = np.abs((out[..., 3:5][inner] - uv_fine + 0.5) % 1.0 - 0.5).mean() * material.resolution
    assert normal_err.mean() < 2.5 and uv_aov < 0.3, (normal_err.mean(), uv_aov)


@pytest.mark.parametrize("shape", ["sphere", "cylinder"])
def test02_curved_scene_folder_and_batches(tmp_path, shape):
    """A rendered sphere or cylinder scene: the mask covers part of each view, the image is black
    off the shape (no background, no ground), the maps are finite with unit normals on it, and
    the training batches carry the mask for every map."""
    from neumat.inverse.dataset import DataSettings, dataset_batches, read_scene, render_data, scene_materials
    from neumat.inverse.train import BatchRequest

    settings = DataSettings(size=28, views=2, spp=4, resolution=16, metal_probability=0.0, variant="scalar_rgb",
                            shape=shape)
    a = read_scene(render_data(tmp_path, scene_materials(["leather"], [], 16), 1, settings, seed=1)[0]).arrays
    mask = a["mask"][..., 0] > 0
    assert a["mask"].dtype == np.uint8 and 0.2 < mask.mean() < 0.95
    hit_any = np.pad(np.linalg.norm(a["points"], axis=-1) > 0, ((0, 0), (1, 1), (1, 1)))
    near = np.any([hit_any[:, 1 + dy:29 + dy, 1 + dx:29 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    # a pixel none of whose 2x2 ground-truth rays hits may still be grazed by Mitsuba's box-filter samples
    assert a["image"][~near].max() == 0 and a["image"][mask].mean() > 10
    np.testing.assert_allclose(np.linalg.norm(a["normal"][mask].astype(np.float64), axis=-1), 1, atol=2e-3)
    assert np.all(a["normal"][mask][:, 2] < 0)
    batch = dataset_batches(tmp_path)(BatchRequest("pretrain", 0, scenes=1, views=2, long_side=28, rank=0,
                                                   world_size=1, seed=0))
    assert set(batch.masks) == set(batch.targets)
    m = next(iter(batch.masks.values()))
    assert str(m.dtype) == "torch.bool" and 0.2 < m.float().mean() < 0.95
