"""Mitsuba 3 scenes of a material sample seen along a trajectory: true displacement, traced
shadows, a perspective camera and a small disk light per :class:`~.trajectory.FramePose`.

Scene (Mitsuba works in the material's UV frame: world point p of :mod:`.trajectory` is at
``p / sample_size + (1/2, 1/2, 0)``, so the sample is the UV tile [0, 1]² and heights are
``height_scale·h`` UV units; radiance is unchanged by the uniform scale):

* **surface**: the displaced height field as a mesh (:func:`neumat.fidelity.periodic_surface.
  surface_mesh`, :func:`neumat.fidelity.reference.mesh_subdivision` vertices per texel) over
  every part of the plane that the trajectory's cameras see, plus the reach of shadow rays
  toward its lights; the maps repeat outside the sample (the tileable flag of a dataset video
  says whether that is seamless). BSDF: :func:`neumat.fidelity.reference.suite_bsdf`, the
  project's BRDF with the height field's texel normals as a bilinear normal map — what the
  training data and the fidelity ground truth use;
* **camera**: Mitsuba ``perspective`` with the pose's eye, target, up and vertical fov
  (``fov_axis="y"``), box pixel filter, ``independent`` sampler seeded with the frame index;
* **light**: a ``disk`` with an ``area`` emitter of the pose's radiance, facing the sample
  centre (one-sided), so shadows are soft and near-field;
* **integrator**: ``direct`` (emitter and BSDF samples with MIS); no indirect light.

Pixel values are linear Rec.709 radiance; with the trajectory's default irradiance π a
Lambertian albedo a at the centre, facing the light, shows a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.pbr import PbrMaterial
from ..fidelity.periodic_surface import surface_mesh
from ..fidelity.reference import mesh_subdivision, suite_bsdf
from ..material.heightfield import HeightField
from .trajectory import FramePose

SHADOW_MARGIN_TEXELS = 2
"""Extra mesh around the shadow-ray reach, texels."""


@dataclass(frozen=True)
class RenderSettings:
    """How every frame of a dataset video is rendered."""

    width: int = 512
    """Image width, pixels (the seed trains at 512² and 1024²)."""
    height: int = 512
    """Image height, pixels."""
    spp: int = 64
    """Samples per pixel (independent sampler)."""
    sample_size: float = 1.0
    """Side of the sample square, scene units (the trajectory's); the sample shows one tile."""

    def __post_init__(self) -> None:
        for key in ("width", "height", "spp"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not self.sample_size > 0:
            raise ValueError(f"sample_size must be > 0, got {self.sample_size}")


def to_uv(p, sample_size: float) -> np.ndarray:
    """World point(s) [..., 3] of :mod:`.trajectory` in the UV frame of the scene."""
    return np.asarray(p, float) / sample_size + np.array([0.5, 0.5, 0.0])


def plane_bounds(poses: list[FramePose], settings: RenderSettings, z_top: float, texel: float
                 ) -> tuple[float, float, float, float]:
    """(u0, u1, v0, v1): the UV region every pose's camera sees between z = 0 and ``z_top``
    (the relief's top, UV units), grown by the reach of shadow rays toward the farthest light
    edge and :data:`SHADOW_MARGIN_TEXELS`."""
    s = settings.sample_size
    aspect = settings.width / settings.height
    points, lights = [], []
    for pose in poses:
        origin = to_uv(pose.camera_position, s)
        right, up, forward = pose.camera_basis()
        t = math.tan(math.radians(pose.fov_deg) / 2.0)
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                d = forward + sx * t * aspect * right + sy * t * up
                if d[2] >= 0:
                    raise ValueError(f"frame {pose.index}: the camera sees the horizon; lower its fov or raise it")
                for z in (0.0, z_top):
                    points.append(origin + (z - origin[2]) / d[2] * d)
        light = to_uv(pose.light_position, s)
        if light[2] <= z_top:
            raise ValueError(f"frame {pose.index}: the light is inside the relief (z {light[2]:.4g} UV)")
        lights.append((light, pose.light_radius / s))
    xy = np.array(points)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    corners = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]])
    # a shadow ray from a visible point rises to z_top within this horizontal distance
    reach = max(z_top * (np.linalg.norm(corners - light[:2], axis=1).max() + radius) / (light[2] - z_top)
                for light, radius in lights)
    lo, hi = lo - reach - SHADOW_MARGIN_TEXELS * texel, hi + reach + SHADOW_MARGIN_TEXELS * texel
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


class TrajectoryScene:
    """The surface of ``material`` for all ``poses``, built once; :meth:`render` makes a frame.

    A Mitsuba scene is loaded per light (the surface as an instance of a shape group, which
    loads faster) and frames that share that light only move its camera, which is cheap. Render
    frames that share a light one after another (:func:`light_order`): a scene per frame took
    ~1.7 s to build for a 256² map (3.4 M triangles) against ~0.02 s to render at 64² × 4 spp.

    Needs Mitsuba with its variant already set (:func:`neumat.fidelity.reference.mitsuba_variant`).

    Args:
        material: the PBR maps (one tile = the sample; ``height_scale`` 0 renders it flat).
        poses: every pose that will be rendered (they decide the mesh's extent).
        settings: image size, spp, sample size.
    """

    def __init__(self, material: PbrMaterial, poses: list[FramePose], settings: RenderSettings) -> None:
        import mitsuba as mi

        self.mi, self.settings = mi, settings
        field = HeightField(material.height, material.height_scale)
        texel = 1.0 / material.resolution
        bounds = plane_bounds(poses, settings, max(field.z_max, texel * 1e-3), texel)
        self.mesh = surface_mesh(field, bounds, mesh_subdivision(material.resolution), suite_bsdf(material))
        self._scene = None
        self._params = None
        self._light: tuple | None = None

    def _camera_to_world(self, pose: FramePose):
        """Mitsuba scalar transform of frame ``pose``'s camera (UV frame, module docstring)."""
        st = self.settings
        eye, target = to_uv(pose.camera_position, st.sample_size), to_uv(pose.camera_target, st.sample_size)
        return self.mi.ScalarTransform4f().look_at(origin=eye.tolist(), target=target.tolist(), up=list(pose.camera_up))

    def _light_to_world(self, pose: FramePose):
        """Mitsuba scalar transform of frame ``pose``'s disk light, facing the sample centre."""
        mi, st = self.mi, self.settings
        light = to_uv(pose.light_position, st.sample_size)
        radius = pose.light_radius / st.sample_size
        aim = np.array([1.0, 0.0, 0.0]) if abs(light[0] - 0.5) + abs(light[1] - 0.5) < 1e-9 else np.array([0.0, 0.0, 1.0])
        return mi.ScalarTransform4f().look_at(origin=light.tolist(), target=[0.5, 0.5, 0.0],
                                              up=aim.tolist()) @ mi.ScalarTransform4f().scale(radius)

    def scene_dict(self, pose: FramePose) -> dict:
        """The Mitsuba scene description of one frame (module docstring)."""
        st = self.settings
        return {
            "type": "scene",
            "surface_group": {"type": "shapegroup", "surface": self.mesh},
            "surface": {"type": "instance", "shapegroup": {"type": "ref", "id": "surface_group"}},
            "sensor": {
                "type": "perspective", "fov": pose.fov_deg, "fov_axis": "y",
                "near_clip": 1e-3, "far_clip": 1e3, "to_world": self._camera_to_world(pose),
                "film": {"type": "hdrfilm", "width": st.width, "height": st.height,
                         "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                "sampler": {"type": "independent", "sample_count": st.spp},
            },
            "light": {"type": "disk", "to_world": self._light_to_world(pose),
                      "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [pose.light_intensity] * 3}}},
            "integrator": {"type": "direct"},
        }

    def _pose_scene(self, pose: FramePose):
        """The scene of ``pose``: loaded anew when the light (or the field of view) differs from
        the last frame's, else the last one with the camera moved.

        Moving the light through the scene parameters instead would cost about as much (the
        top-level rebuild) and leaves round-off that depends on the lights visited before; the
        camera is always set through the parameters, also right after a load. A frame's pixels
        are then the same whatever frame came before, so a resumed or a Ray-split video writes
        the same bytes."""
        mi = self.mi
        light = (tuple(pose.light_position), pose.light_radius, pose.light_intensity, pose.fov_deg)
        if self._scene is None or light != self._light:
            self._scene = mi.load_dict(self.scene_dict(pose))
            self._params = mi.traverse(self._scene)
            self._light = light
        self._params["sensor.to_world"] = mi.Transform4f(self._camera_to_world(pose))
        self._params.update()
        return self._scene

    def render(self, pose: FramePose) -> np.ndarray:
        """float32 [height, width, 3] linear Rec.709 radiance of frame ``pose`` (row 0 at the
        top), sampled with seed ``pose.index``: the same pose renders the same pixels whatever
        frame came before."""
        image = self.mi.render(self._pose_scene(pose), seed=pose.index)
        return np.array(image, dtype=np.float32)[..., :3]


def light_order(poses) -> list[FramePose]:
    """``poses`` with those that share a light next to each other (first appearance order), for
    :meth:`TrajectoryScene.render`: the cross set moves its light every frame otherwise."""
    first: dict[tuple, int] = {}
    for i, p in enumerate(poses):
        first.setdefault(tuple(p.light_position), i)
    return sorted(poses, key=lambda p: (first[tuple(p.light_position)], p.index))
