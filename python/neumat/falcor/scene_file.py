"""A neumat mesh, camera and lights written out as a Falcor scene (``.pyscene`` + OBJ).

Falcor's Python scene format runs with ``sceneBuilder`` and Falcor's scene classes in scope::

    sceneBuilder.importScene("mesh.obj")
    camera = Camera("neumat"); camera.position = float3(...); camera.target = ...
    sceneBuilder.addCamera(camera)
    light = DirectionalLight("light0"); light.direction = float3(...); light.intensity = ...
    sceneBuilder.addLight(light)

Conventions: positions in scene units as in the mesh (neumat is z-up, so the camera's ``up``
is written explicitly); Falcor's camera is a thin lens with ``frameHeight`` 24 mm film, so the
vertical field of view fov_y maps to ``focalLength = 12 / tan(fov_y / 2)`` mm; a Falcor
``DirectionalLight.direction`` is the direction light travels (neumat's
``DirectionalLight.direction`` points towards the light: negated), its ``intensity`` is
neumat's radiance (irradiance on a facing surface, linear RGB); a ``PointLight`` keeps its
position and intensity. Written by :func:`write_pyscene`; not loaded by anything here (no
Falcor on CPU machines).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..render.camera import Camera
from ..render.lights import DirectionalLight, PointLight
from ..render.shapes import Mesh, save_mesh

FRAME_HEIGHT_MM = 24.0
"""Falcor's default film height (mm), the reference of ``focalLength``."""


def focal_length_mm(fov_y_deg: float, frame_height_mm: float = FRAME_HEIGHT_MM) -> float:
    """Falcor focal length (mm) of a vertical field of view (degrees)."""
    return 0.5 * frame_height_mm / math.tan(math.radians(fov_y_deg) / 2.0)


def _f3(v) -> str:
    return "float3({})".format(", ".join(repr(float(x)) for x in v))


def pyscene_source(obj_name: str, camera: Camera, lights) -> str:
    """The ``.pyscene`` text importing ``obj_name`` (relative to the script) with ``camera`` and
    ``lights`` (module docstring)."""
    lines = ["# neumat.falcor.scene_file: a neumat mesh, camera and lights for Falcor",
             f"sceneBuilder.importScene({obj_name!r})", 'camera = Camera("neumat")',
             f"camera.position = {_f3(camera.eye)}", f"camera.target = {_f3(camera.target)}",
             f"camera.up = {_f3(camera.up)}", f"camera.frameHeight = {FRAME_HEIGHT_MM!r}",
             f"camera.focalLength = {focal_length_mm(camera.fov_y)!r}", "sceneBuilder.addCamera(camera)"]
    for i, light in enumerate(lights):
        if isinstance(light, DirectionalLight):
            lines += [f'light{i} = DirectionalLight("light{i}")',
                      f"light{i}.direction = {_f3([-x for x in light.direction])}",
                      f"light{i}.intensity = {_f3(light.radiance)}"]
        elif isinstance(light, PointLight):
            lines += [f'light{i} = PointLight("light{i}")', f"light{i}.position = {_f3(light.position)}",
                      f"light{i}.intensity = {_f3(light.intensity)}"]
        else:
            raise TypeError(f"unsupported light {type(light).__name__}; use DirectionalLight or PointLight")
        lines.append(f"sceneBuilder.addLight(light{i})")
    return "\n".join(lines) + "\n"


def write_pyscene(folder: str | Path, mesh: Mesh, camera: Camera, lights, stem: str = "neumat_scene") -> Path:
    """Write ``<stem>.obj`` and ``<stem>.pyscene`` into ``folder`` (created); returns the
    ``.pyscene`` path."""
    from ..fileio import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_mesh(mesh, folder / f"{stem}.obj")
    path = folder / f"{stem}.pyscene"
    atomic_write_bytes(path, pyscene_source(f"{stem}.obj", camera, list(lights)).encode())
    return path
