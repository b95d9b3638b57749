"""MVInverse training and evaluation data made here: multi-view renders of the project's materials
(procedural and photo-based, :data:`neumat.data.materials.MATERIALS`, or PBR map folders) on a
plane or wrapped on a sphere or a cylinder (:attr:`DataSettings.shape`; :mod:`.shapes`: Mitsuba's
own shapes with the same BSDF and normal map, ground truth from the analytic shapes, checked
against Mitsuba's intersection, ``normalmap`` and ``aov`` integrator), with exact ground-truth
intrinsic maps per view.

**Renderers.** Images and diffuse shading are rendered by **Mitsuba 3**
(:class:`neumat.video.scene.TrajectoryScene`: the displaced height field as a mesh, the project's
BRDF with the field's shading normals, a small disk light, ``direct`` integrator, box filter);
the shading image is the same scene with every BSDF made a white Lambertian (blend weight 0,
diffuse reflectance 1), so it is ``(1/π)·∫ L_i cos θ dω`` with traced shadows and the diffuse
image is ``(1 − metallic)·albedo · shading`` up to Monte-Carlo noise. Albedo, metallic,
roughness, camera-space normals, hit points and depth come from the project's own reference
geometry (:func:`.views.gt_buffers`: exact ray / height-field intersection, bilinear maps,
pixel box average). ``tests/test_inverse_dataset.py`` checks one against the other: the albedo
and normal buffers against Mitsuba's ``aov`` integrator on the same view.

**Scenes.** One scene = one material (a random 90° rotation; with probability
``metal_probability`` part of it turned to metal, :func:`with_metal`, since the shipped
materials are all dielectrics), one light, ``views`` cameras (:func:`.views.capture_poses`).

**Folder** (every scene written to a staged folder and renamed into place: a killed render
leaves no half scene, and a rerun skips finished ones)::

    <out>/<scene_id>/views.npz   image (uint8 sRGB [V, H, W, 3]), radiance (float16 linear),
                                 albedo, metallic, roughness, normal, shading (float16),
                                 points, depth (float32), all [V, H, W, C], row 0 at the top;
                                 sphere and cylinder scenes: mask (uint8 [V, H, W, 1],
                                 1 = pixel fully on the shape's outside; the batches and
                                 the figures mask every map by it)
    <out>/<scene_id>/poses.json  neumat.video.poses/1 (width, height, sample_size in meta)
    <out>/<scene_id>/scene.json  material name, source, seed, metal flag, renderer settings
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data.pbr import PbrMaterial
from ..data.procedural import smoothstep
from ..fileio import atomic_write_bytes, staged_folder
from ..video.trajectory import FramePose, load_poses, save_poses
from .config import PATCH
from .shapes import CURVED, SHAPES, shape_gt_buffers
from .views import CaptureGeometry, capture_poses, gt_buffers

VIEWS_FILE, POSES_FILE, SCENE_FILE = "views.npz", "poses.json", "scene.json"
MAPS = ("albedo", "metallic", "roughness", "normal", "shading")
"""The supervised maps a scene stores (names of :class:`~.intrinsics.Intrinsic`)."""
METAL_COLOURS = ((1.0, 0.766, 0.336), (0.955, 0.638, 0.538), (0.972, 0.960, 0.915), (0.562, 0.565, 0.578),
                 (0.913, 0.922, 0.924))
"""Linear F0 of gold, copper, silver, iron and aluminium (the usual PBR reference values)."""


@dataclass(frozen=True)
class DataSettings:
    """How every scene of a data set is rendered."""

    size: int = 112
    """Image width and height, pixels (a multiple of 14, MVInverse's patch)."""
    views: int = 6
    """Cameras per scene."""
    spp: int = 16
    """Mitsuba samples per pixel (image and shading)."""
    supersample: int = 2
    """Ground-truth rays per pixel along each axis (box-averaged)."""
    resolution: int = 64
    """Texels per side of registry materials (map folders are resampled to it)."""
    sample_size: float = 1.0
    """Side of the sample square, scene units (the maps' tile)."""
    metal_probability: float = 0.3
    """Chance that a scene's material is partly turned to metal (:func:`with_metal`)."""
    variant: str = "auto"
    """Mitsuba variant: ``auto`` (llvm_ad_rgb where it runs), ``scalar_rgb`` or ``llvm_ad_rgb``."""
    geometry: CaptureGeometry = field(default_factory=CaptureGeometry)
    """Camera and light distribution."""
    shape: str = "plane"
    """Sample shape (:data:`~.shapes.SHAPES`): ``plane`` (the displaced height field), ``sphere``
    or ``cylinder`` (:class:`~.shapes.Sphere`, :class:`~.shapes.Cylinder`: the maps wrapped on
    it, normal-mapped; a ``mask`` of the pixels fully on it)."""

    def __post_init__(self) -> None:
        if self.size < PATCH or self.size % PATCH:
            raise ValueError(f"size must be a positive multiple of {PATCH} pixels, got {self.size}")
        if min(self.views, self.spp, self.supersample) < 1 or self.resolution < 8:
            raise ValueError("views, spp and supersample must be >= 1 and resolution >= 8")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose from {SHAPES}")
        if not 0.0 <= self.metal_probability <= 1.0:
            raise ValueError(f"metal_probability must be in [0, 1], got {self.metal_probability}")


def with_metal(material: PbrMaterial, rng: np.random.Generator) -> PbrMaterial:
    """``material`` with its raised parts turned to worn metal: metallic = a soft step of the
    height at a random quantile (30-70 %), albedo there = a metal's F0 (:data:`METAL_COLOURS`)
    modulated by the original's relative luminance, roughness there drawn in [0.15, 0.5]."""
    h = material.height
    edge = float(np.quantile(h, rng.uniform(0.3, 0.7)))
    metal = smoothstep(edge - 0.05, edge + 0.05, h).astype(np.float32)
    lum = material.albedo.mean(axis=-1, keepdims=True)
    tone = np.clip(0.85 + 0.15 * (lum / max(float(lum.mean()), 1e-6) - 1.0), 0.6, 1.0)
    colour = np.asarray(METAL_COLOURS[rng.integers(len(METAL_COLOURS))]) * tone
    albedo = np.clip(material.albedo * (1 - metal[..., None]) + colour * metal[..., None], 0, 1)
    rough = material.roughness * (1 - metal) + rng.uniform(0.15, 0.5) * metal
    return replace(material, name=f"{material.name}_metal", albedo=albedo, roughness=rough, metallic=metal,
                   meta={**material.meta, "metal": True})


def render_views(material: PbrMaterial, poses: Sequence[FramePose], settings: DataSettings, variant: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mitsuba's images of ``poses`` (module docstring): (radiance, shading), float32
    ``[V, size, size, 3]`` linear Rec.709, row 0 at the top. Needs Mitsuba 3."""
    from ..fidelity.reference import mitsuba_variant
    from ..video.scene import RenderSettings, TrajectoryScene

    rs = RenderSettings(settings.size, settings.size, settings.spp, settings.sample_size)
    with mitsuba_variant(variant) as mi:
        if settings.shape in CURVED:
            from .shapes import shape_scene

            scene = shape_scene(material, CURVED[settings.shape](), rs)
        else:
            scene = TrajectoryScene(material, list(poses), rs)
        radiance = np.stack([scene.render(p) for p in poses])
        params = mi.traverse(scene.mesh)
        params["bsdf.nested_bsdf.weight.value"] = 0.0  # all weight on the diffuse lobe ...
        reflectance = params["bsdf.nested_bsdf.bsdf_0.reflectance.data"]
        params["bsdf.nested_bsdf.bsdf_0.reflectance.data"] = type(reflectance)(
            np.ones(np.array(reflectance).shape, np.float32))  # ... of reflectance 1
        params.update()  # the loaded scene shares the mesh's BSDF: no reload (same pixels, checked)
        shading = np.stack([scene.render(p) for p in poses])
    return radiance, shading


def render_scene(material: PbrMaterial, poses: Sequence[FramePose], settings: DataSettings, variant: str
                 ) -> dict[str, np.ndarray]:
    """Every array of one scene's ``views.npz`` (module docstring), ``[V, H, W, C]``."""
    from ..video.folder import srgb8

    radiance, shading = render_views(material, poses, settings, variant)
    if settings.shape in CURVED:
        gt = [shape_gt_buffers(material, p, settings.size, settings.size, CURVED[settings.shape](),
                               settings.sample_size, settings.supersample) for p in poses]
    else:
        gt = [gt_buffers(material, p, settings.size, settings.size, settings.sample_size, settings.supersample)
              for p in poses]
    out = {k: np.stack([g[k] for g in gt]) for k in gt[0]}
    out["image"] = np.stack([srgb8(r) for r in radiance])
    out["radiance"] = radiance.astype(np.float16)
    out["shading"] = np.clip(shading, 0.0, 1.0)
    for k in MAPS:
        out[k] = out[k].astype(np.float16)
    if "mask" in out:
        out["mask"] = out["mask"].astype(np.uint8)
    return out


def scene_materials(names: Sequence[str], maps: Sequence[Path], resolution: int) -> list[Callable[[int], PbrMaterial]]:
    """One factory ``seed -> PbrMaterial`` per registry name and map folder (checked now: an
    unknown name or an unreadable folder fails before anything renders)."""
    from ..data.materials import MATERIALS, make_material
    from ..data.pbr_io import load_pbr_maps

    unknown = [n for n in names if n not in MATERIALS]
    if unknown:
        raise ValueError(f"unknown materials {unknown}; choose from {sorted(MATERIALS)}")
    factories: list[Callable[[int], PbrMaterial]] = [
        (lambda seed, n=n: make_material(n, resolution, seed)) for n in names]
    for folder in maps:
        loaded = load_pbr_maps(folder, allow_flat=True).resized(resolution)
        factories.append(lambda seed, m=loaded: m)
    return factories


def render_data(out: str | Path, factories: Sequence[Callable[[int], PbrMaterial]], scenes_per_material: int,
                settings: DataSettings, seed: int = 0, on_scene: Callable[[str], None] | None = None) -> list[Path]:
    """Render ``scenes_per_material`` scenes of every material into ``out`` (module docstring).

    Scene ``j`` of material ``i`` draws everything from ``default_rng([seed, i, j])``, so a scene's
    files do not depend on the others; finished scenes (``scene.json`` present) are skipped.
    ``on_scene(scene_id)`` is called after each. Returns the scene folders in order.
    """
    from ..video.dataset import choose_variant, rotated

    variant = choose_variant(settings.variant)
    out = Path(out)
    folders = []
    for i, factory in enumerate(factories):
        for j in range(scenes_per_material):
            rng = np.random.default_rng([seed, i, j])
            material = rotated(factory(int(rng.integers(2**31))), int(rng.integers(4)) * 90)
            if rng.uniform() < settings.metal_probability:
                material = with_metal(material, rng)
            scene_id = f"{i:03d}_{j:04d}_{material.name}"
            folder = out / scene_id
            folders.append(folder)
            if not (folder / SCENE_FILE).is_file():
                poses = capture_poses(rng, settings.views, settings.geometry, settings.sample_size)
                arrays = render_scene(material, poses, settings, variant)
                with staged_folder(folder) as tmp:
                    buf = io.BytesIO()
                    np.savez_compressed(buf, **arrays)
                    atomic_write_bytes(tmp / VIEWS_FILE, buf.getvalue())
                    save_poses(tmp / POSES_FILE, poses, width=settings.size, height=settings.size,
                               sample_size=settings.sample_size)
                    doc = {"material": material.name, "source": material.meta.get("generator", material.meta.get(
                        "source", "")), "seed": [seed, i, j], "metal": bool(material.meta.get("metal")),
                        "variant": variant, "settings": asdict(settings), "renderer": "mitsuba3 images + shading; "
                        "neumat.inverse.views ground truth"}
                    atomic_write_bytes(tmp / SCENE_FILE, json.dumps(doc, indent=1, default=str).encode())
            if on_scene is not None:
                on_scene(scene_id)
    return folders


@dataclass
class Scene:
    """One rendered scene read back: ``arrays`` as in ``views.npz``, its poses and metadata."""

    folder: Path
    arrays: dict[str, np.ndarray]
    poses: list[FramePose]
    meta: dict

    @property
    def views(self) -> int:
        """Cameras of the scene (V)."""
        return int(self.arrays["image"].shape[0])


def scene_folders(root: str | Path) -> list[Path]:
    """The finished scene folders of a data set, sorted. Raises ValueError when there are none."""
    root = Path(root)
    folders = sorted(p.parent for p in root.glob(f"*/{SCENE_FILE}"))
    if not folders:
        raise ValueError(f"{root}: no rendered scenes (expected <scene>/{SCENE_FILE}; `neumat inverse render-data`)")
    return folders


def read_scene(folder: str | Path) -> Scene:
    """Read one scene folder (module docstring)."""
    folder = Path(folder)
    with np.load(folder / VIEWS_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    poses, pose_meta = load_poses(folder / POSES_FILE)
    meta = json.loads((folder / SCENE_FILE).read_text())
    meta["sample_size"] = float(pose_meta["sample_size"])
    return Scene(folder, arrays, poses, meta)


def dataset_batches(root: str | Path):
    """A :data:`~.train.BatchSource` over a rendered data set (all scenes held in memory): each
    request draws its scenes and views from ``default_rng([seed, stage, step, rank])``, views
    without repetition where the scene has enough, and a random ``long_side``² crop per view
    (the whole view resized bilinearly when it is smaller; normals renormalized)."""
    import torch

    from .batch import InverseBatch
    from .intrinsics import Intrinsic

    scenes = [read_scene(f) for f in scene_folders(root)]

    def batch(request) -> InverseBatch:
        stage = 0 if request.stage == "pretrain" else 1
        rng = np.random.default_rng([request.seed, stage, request.step, request.rank])
        picked = []
        for _ in range(request.scenes):
            s = scenes[int(rng.integers(len(scenes)))]
            idx = rng.choice(s.views, size=request.views, replace=s.views < request.views)
            h, w = s.arrays["image"].shape[1:3]
            corners = rng.integers(0, [max(h - request.long_side, 0) + 1, max(w - request.long_side, 0) + 1],
                                   size=(request.views, 2))
            arrays = {**s.arrays, "mask": s.arrays.get("mask", np.ones((s.views, h, w, 1), np.uint8))}
            picked.append({k: _crop(np.asarray(arrays[k][idx], np.float32) / (255.0 if k == "image" else 1.0),
                                    request.long_side, corners, k == "normal")
                           for k in ("image", "mask", *MAPS)})
        stack = {k: torch.from_numpy(np.stack([p[k] for p in picked]).transpose(0, 1, 4, 2, 3).copy())
                 for k in picked[0]}
        image, mask = stack.pop("image"), stack.pop("mask") > 0.999
        return InverseBatch(image, {Intrinsic(k): v for k, v in stack.items()},
                            {Intrinsic(k): mask for k in stack})

    return batch


def _crop(views: np.ndarray, side: int, corners: np.ndarray, unit: bool) -> np.ndarray:
    """``[V, H, W, C]`` -> ``[V, side, side, C]``: the window at ``corners[i]`` = (row, column)
    of view i, or the whole view resized bilinearly when it is smaller than ``side``;
    ``unit``: renormalize (normals)."""
    v, h, w, _ = views.shape
    if h < side or w < side:
        import torch
        import torch.nn.functional as F

        t = F.interpolate(torch.from_numpy(views).permute(0, 3, 1, 2), size=(side, side), mode="bilinear",
                          align_corners=False).permute(0, 2, 3, 1).numpy()
    else:
        t = np.stack([views[i, y:y + side, x:x + side] for i, (y, x) in enumerate(corners)])
    if unit:
        t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-8)
    return np.ascontiguousarray(t, np.float32)
