"""Differentiable NeuMIP frames of a flat material sample seen along a trajectory (torch): the
rendering operator of direct fitting and of the LRM's rendering loss (VideoNeuMat seed §4.1:
"a rendering operator ... that evaluates the model on a flat plane with a perspective camera and
a point light").

World frame and poses: :mod:`.trajectory` (scene units; the sample is the square
``[-s/2, s/2]²`` of the plane z = 0, +z up, +x = u, +y = v, ``s = sample_size``). Per pixel
(row 0 at the top, centres at half-integers, the pinhole model of
:meth:`.trajectory.FramePose.rays`):

1. **hit**: the pixel-centre ray meets the plane z = 0 at ``p`` (rays that do not descend miss
   it: background, radiance 0; the dataset's cameras always see the plane);
2. **uv** = ``(p.x / s + 1/2, p.y / s + 1/2)`` wrapped to [0, 1): the material tiles with
   period ``s`` beyond the sample, as the dataset's Mitsuba surface does (:mod:`.scene`); the
   plane z = 0 is the material's reference plane (the NeuMIP "reference" uv space; a dataset
   relief rises above it and the offset network learns that parallax);
3. **directions** in the local frame, which on the plane *is* the world frame (+z normal, +x
   = u, +y = v), both pointing away from the surface: ωo = ``-ray``, ωi = towards the light's
   centre;
4. **irradiance** ``E`` (linear, equal in R, G, B) on a patch at ``p`` facing the light, with the
   pose's disk radiance ``L`` and radius ``r``, the light's axis towards the sample centre,
   distance ``d = |light - p|``:

   * ``"disk"`` (the dataset's light): ``E = π L r² · max(cos θe, 0) / (r² + d²)``, θe the angle
     between the disk's axis and ``p`` — exact on the axis (where the trajectory's intensity
     correction makes ``E`` the same every frame), within O(r²/d²) ≈ 1e-3 elsewhere for the
     trajectory's r = 0.05 s, d ≥ 1.5 s; 0 behind the one-sided disk;
   * ``"point"``: ``E = I / d²`` with ``I = π L r²`` (:func:`point_intensity`), an isotropic point
     light — what :class:`neumat.render.lights.PointLight` gives the viewer;

   and E = 0 where ωi.z <= 0 (the light below the plane);
5. **radiance** = ``f(uv, ωi, ωo) · value_scale · E``: ``f`` the NeuMIP model (BTF / value_scale,
   cosine included, :mod:`neumat.models.neumip`), linear Rec.709.

Differences from a Mitsuba frame of the dataset, by design: one ray through the pixel centre (no
pixel filter or spp), the light's solid angle collapsed to its centre (a highlight narrower than
the ~1.6° the disk subtends is sharper here), no traced shadows or relief (NeuMIP has neither).
The pass of the viewer (:mod:`neumat.render.passes.neumip`) computes the same uv, ωi and ωo from
a plane mesh and the pose's camera, so a bundle renders the same there under a point light
(``tests/test_video_render.py`` states the tolerance).

Geometry is computed in float64 with numpy and handed to the model as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .trajectory import FramePose

LIGHT_MODELS = ("disk", "point")
"""Light falloff models (module docstring, step 4)."""


def point_intensity(pose: FramePose) -> float:
    """On-axis radiant intensity ``π L r²`` of the pose's disk light, W/sr per channel (the
    intensity of a :class:`neumat.render.lights.PointLight` standing in for it)."""
    return float(math.pi * pose.light_intensity * pose.light_radius**2)


@dataclass(frozen=True)
class PoseArrays:
    """The poses of a video stacked for vectorized pixel geometry; float64 ``[T, ...]``."""

    eye: np.ndarray
    """[T, 3] camera positions, scene units (above the plane)."""
    basis: np.ndarray
    """[T, 3, 3] camera-to-world rotations, columns (right, up, forward)."""
    tan_half_fov: np.ndarray
    """[T] tan of half the vertical field of view."""
    light: np.ndarray
    """[T, 3] light centres, scene units."""
    light_axis: np.ndarray
    """[T, 3] unit axes of the disks, towards the sample centre."""
    light_radiance: np.ndarray
    """[T] disk radiance L."""
    light_radius: np.ndarray
    """[T] disk radius r, scene units."""

    @classmethod
    def from_poses(cls, poses: list[FramePose]) -> PoseArrays:
        """Stack ``poses``; ValueError for a camera or light not above the plane z = 0."""
        eye = np.array([p.camera_position for p in poses], np.float64).reshape(-1, 3)
        light = np.array([p.light_position for p in poses], np.float64).reshape(-1, 3)
        low = [p.index for p, e, q in zip(poses, eye, light) if e[2] <= 0 or q[2] <= 0]
        if low:
            raise ValueError(f"frames {low}: the camera and the light must be above the sample plane z = 0")
        return cls(eye, np.stack([p.rotation() for p in poses]),
                   np.array([math.tan(math.radians(p.fov_deg) / 2) for p in poses]),
                   light, -light / np.linalg.norm(light, axis=1, keepdims=True),
                   np.array([p.light_intensity for p in poses], np.float64),
                   np.array([p.light_radius for p in poses], np.float64))


@dataclass
class PixelGeometry:
    """Per-pixel inputs of the material and the light, float32 numpy, leading dimension N."""

    uv: np.ndarray
    """[N, 2] reference-plane texture coordinates in [0, 1) (0 where ``hit`` is False)."""
    wi: np.ndarray
    """[N, 3] unit directions towards the light's centre, local frame."""
    wo: np.ndarray
    """[N, 3] unit directions towards the camera, local frame."""
    irradiance: np.ndarray
    """[N] irradiance E on a patch facing the light (module docstring); 0 off the plane, behind
    the one-sided disk or with the light below the plane."""
    hit: np.ndarray
    """[N] bool: the pixel sees the plane."""


def light_at(poses: PoseArrays, frames: np.ndarray, points: np.ndarray,
             light_model: str = "disk") -> tuple[np.ndarray, np.ndarray]:
    """(ωi [N, 3], E [N]) float64 at plane ``points`` [N, 3] (z = 0) of ``frames`` [N]: the unit
    direction towards the light's centre and the irradiance of step 4 of the module docstring
    (0 behind the one-sided disk or with the light below the plane)."""
    if light_model not in LIGHT_MODELS:
        raise ValueError(f"light_model must be one of {LIGHT_MODELS}, got {light_model!r}")
    frames = np.asarray(frames, np.int64)
    to_light = poses.light[frames] - points
    dist2 = np.sum(to_light * to_light, axis=1)
    wi = to_light / np.sqrt(dist2)[:, None]
    radiance, radius = poses.light_radiance[frames], poses.light_radius[frames]
    if light_model == "disk":
        cos_e = np.maximum(-np.sum(poses.light_axis[frames] * wi, axis=1), 0.0)
        e = math.pi * radiance * radius**2 * cos_e / (radius**2 + dist2)
    else:
        e = math.pi * radiance * radius**2 / dist2
    return wi, np.where(wi[:, 2] > 0.0, e, 0.0)


def pixel_geometry(poses: PoseArrays, frames: np.ndarray, rows: np.ndarray, cols: np.ndarray, width: int,
                   height: int, sample_size: float, light_model: str = "disk") -> PixelGeometry:
    """Geometry of pixels (``rows``, ``cols``) of ``frames`` (int arrays [N] each: frame index
    into ``poses``, pixel row, pixel column) of ``width`` × ``height`` frames (module docstring)."""
    frames = np.asarray(frames, np.int64)
    rot, t = poses.basis[frames], poses.tan_half_fov[frames]
    x = ((np.asarray(cols) + 0.5) / width * 2.0 - 1.0) * t * (width / height)
    y = (1.0 - (np.asarray(rows) + 0.5) / height * 2.0) * t
    d = rot[:, :, 2] + x[:, None] * rot[:, :, 0] + y[:, None] * rot[:, :, 1]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    eye = poses.eye[frames]
    hit = d[:, 2] < 0.0
    dz = np.where(hit, d[:, 2], -1.0)
    p = eye - (eye[:, 2] / dz)[:, None] * d
    p[:, 2] = 0.0
    uv = np.mod(p[:, :2] / sample_size + 0.5, 1.0)
    wi, e = light_at(poses, frames, p, light_model)
    e = np.where(hit, e, 0.0)
    up = np.array([0.0, 0.0, 1.0])
    return PixelGeometry(np.where(hit[:, None], uv, 0.0).astype(np.float32),
                         np.where(hit[:, None], wi, up).astype(np.float32),
                         np.where(hit[:, None], -d, up).astype(np.float32), e.astype(np.float32), hit)


def frame_geometry(pose: FramePose, width: int, height: int, sample_size: float,
                   light_model: str = "disk") -> PixelGeometry:
    """:func:`pixel_geometry` of every pixel of one frame, row-major (N = height · width)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return pixel_geometry(PoseArrays.from_poses([pose]), np.zeros(rows.size, np.int64), rows.ravel(), cols.ravel(),
                          width, height, sample_size, light_model)


@dataclass
class FrameRender:
    """One rendered frame; torch tensors on the model's device, row 0 at the top."""

    radiance: torch.Tensor
    """float32 [H, W, 3] linear Rec.709 radiance ``btf · E`` (0 off the plane)."""
    btf: torch.Tensor
    """float32 [H, W, 3] BTF value ``f · value_scale`` (0 off the plane)."""
    irradiance: torch.Tensor
    """float32 [H, W] E of the module docstring."""
    hit: torch.Tensor
    """bool [H, W]: the pixel sees the plane."""


def render_frame(field, pose: FramePose, width: int, height: int, sample_size: float, value_scale: float, *,
                 material: int = 0, decoders=None, light_model: str = "disk", zero_offset: bool = False,
                 chunk: int = 1 << 16) -> FrameRender:
    """Render frame ``pose`` of material ``material`` of a NeuMIP ``field`` (module docstring).

    Differentiable in the field's textures and decoders (autograd as the field's forward; run
    under ``torch.no_grad()`` to render only).

    Args:
        field: a :class:`neumat.models.neumip.NeuMipField` (its QAT mode as set by the caller).
        pose: camera and light of the frame.
        width, height: image size, pixels.
        sample_size: side of the sample square, scene units (the pose file's ``sample_size``).
        value_scale: BTF value of model output 1.0 (the bundle's ``value_scale``).
        material: which of the field's texture pairs.
        decoders: other networks to evaluate with, e.g. the bundle's
            :class:`~neumat.models.neumip.Int8Decoders` (bit-exact with the ``.nmat``).
        light_model: ``"disk"`` (the dataset's light) or ``"point"`` (the viewer's point light).
        zero_offset: Δu = 0 (the parallax ablation).
        chunk: pixels per model call (bounds the activations' memory).
    """
    geo = frame_geometry(pose, width, height, sample_size, light_model)
    device = field.textures[material].rgb.device
    uv, wi, wo, e = (torch.from_numpy(a).to(device) for a in (geo.uv, geo.wi, geo.wo, geo.irradiance))
    n_materials = len(field.textures)
    parts = []
    for a in range(0, len(uv), chunk):
        n = len(uv[a:a + chunk])
        sizes = [n if k == material else 0 for k in range(n_materials)]
        parts.append(field(uv[a:a + chunk], wi[a:a + chunk], wo[a:a + chunk], sizes, zero_offset=zero_offset,
                           decoders=decoders))
    btf = torch.cat(parts) * torch.tensor(value_scale, dtype=torch.float32, device=device)
    btf = btf * torch.from_numpy(geo.hit).to(device)[:, None]
    radiance = btf * e[:, None]
    return FrameRender(radiance.reshape(height, width, 3), btf.reshape(height, width, 3), e.reshape(height, width),
                       torch.from_numpy(geo.hit).to(device).reshape(height, width))


def render_bundle_frame(bundle, pose: FramePose, width: int, height: int, sample_size: float,
                        light_model: str = "disk") -> np.ndarray:
    """float32 [H, W, 3] linear radiance of frame ``pose`` of a ``neumip`` bundle, both networks
    INT8 as the ``.nmat`` defines them (:func:`neumat.train.neumip.export.field_from_bundle`)."""
    from ..material import bundle_value_scale
    from ..train.neumip.export import field_from_bundle

    field, int8 = field_from_bundle(bundle)
    with torch.no_grad():
        out = render_frame(field, pose, width, height, sample_size, bundle_value_scale(bundle), decoders=int8,
                           light_model=light_model)
    return out.radiance.numpy()
