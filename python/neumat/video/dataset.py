"""Dataset videos: materials rendered along the gonioreflectometer trajectories with Mitsuba 3
(VideoNeuMat seed §3.2), one posed video folder (:mod:`.folder`) per material × trajectory:
``<out>/<material_id>/<trajectory_name>/``.

* ``material_id`` = ``<name>_rot<deg>``: each material also rotated by 90°, 180°, 270° (the
  seed's rotation augmentation; maps, height field and normal map turned together);
* ``trajectory_name`` = ``video`` (:func:`.trajectory.video_trajectory`) or ``cross``
  (:func:`.trajectory.cross_trajectory`);
* the ``tileable`` flag of each material (its ``meta["tileable"]``, procedural ones are) is
  recorded in ``caption.json``'s metadata and ``done.json``, and can select the tileable
  subset (the seed's tileable variant);
* ``caption.json`` holds the two caption styles (:mod:`.captions`) from the metadata
  templates, or from a local captioner model (``captioner``, :mod:`.captioner`) run on the
  video's representative frame, and ``provenance`` saying which (``"captioner": "templates"``
  or the model's name and fingerprint, the frame, prompts and raw text).

**Cache and resume.** Each video's key is a SHA-256 (:func:`neumat.data.disk_cache.hash_key`)
over the maps, poses, render settings and Mitsuba variant. A video is rendered in
``<material_id>/.<trajectory_name>.partial/`` (every file written atomically; frames already
there under the same key are kept, so a killed render resumes frame by frame), then
``done.json`` is written and the folder renamed into place. A video whose ``done.json`` holds the
same key is skipped, so a repeated or resumed run redoes nothing finished; a different key
re-renders it. The captions are not in the key: a finished video whose ``caption.json`` came
from another captioner only has its captions rewritten (atomically).

**Scale.** :func:`render_dataset` runs one idempotent task per video: in this process
(``workers=0``), or on Ray — ``workers`` local worker processes, or the cluster at ``address``
(every node needs neumat with the ``video`` extra and the output folder on a shared file
system). Frames are seeded by their index, so every way gives the same files (tested with 2
local workers against one process, same variant).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..data.disk_cache import hash_key
from ..data.pbr import PbrMaterial
from ..fidelity.reference import mitsuba_variant, same_ray_available
from .captioner import load_captioner, representative_frame
from .captions import template_captions
from .folder import (CAPTION_FILE, DONE_FILE, MAPS_DIR, POSES_FILE, frame_path, srgb8, write_exr, write_json,
                     write_png)
from .scene import RenderSettings, TrajectoryScene, light_order
from .trajectory import TRAJECTORIES, FramePose, save_poses

log = logging.getLogger(__name__)

VARIANTS = ("scalar_rgb", "llvm_ad_rgb")
"""Mitsuba variants a dataset renders with (``auto``: :func:`choose_variant`)."""
ROTATIONS = (0, 90, 180, 270)
"""Rotation augmentation, degrees counter-clockwise seen from above."""
KEY_FILE = "key.txt"


@dataclass(frozen=True)
class VideoJob:
    """One dataset video: a (rotated) material along one trajectory."""

    material: PbrMaterial
    """The maps, already rotated; ``name`` is the ``material_id``."""
    trajectory: str
    """``"video"`` or ``"cross"`` (:data:`.trajectory.TRAJECTORIES`)."""
    poses: tuple[FramePose, ...]
    """The frames' poses."""
    tileable: bool
    """Whether the maps tile seamlessly."""


def choose_variant(name: str = "auto") -> str:
    """``llvm_ad_rgb`` where it runs (libLLVM >= 16, probed once in a subprocess), else
    ``scalar_rgb``; or ``name`` itself, checked against :data:`VARIANTS`."""
    if name == "auto":
        return "llvm_ad_rgb" if same_ray_available() else "scalar_rgb"
    if name not in VARIANTS:
        raise ValueError(f"unknown Mitsuba variant {name!r}; choose auto or one of {VARIANTS}")
    if name == "llvm_ad_rgb" and not same_ray_available():
        raise ValueError("Mitsuba's llvm_ad_rgb does not run here (needs libLLVM >= 16: "
                         "scripts/ensure_llvm.sh); use scalar_rgb")
    return name


def rotated(material: PbrMaterial, degrees: int) -> PbrMaterial:
    """``material`` turned by ``degrees`` (a multiple of 90) counter-clockwise seen from above
    (+x = u, +y = v): map value at (u, v) = the original's at the point turned back; tangent
    normals turn with it. The name gets ``_rot<deg>``."""
    if degrees % 90:
        raise ValueError(f"rotations must be multiples of 90 degrees, got {degrees}")
    k = (degrees // 90) % 4
    # maps are [row = v, col = u]; turning the uv content by +90° is np.rot90 on the transposed
    # layout, i.e. rot90 with k = -1 on [v, u] arrays.
    def turn(a):
        return np.ascontiguousarray(np.rot90(a, -k, axes=(0, 1)))

    normal = None
    if material.normal is not None:
        n = turn(material.normal)
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k]
        normal = np.stack([c * n[..., 0] - s * n[..., 1], s * n[..., 0] + c * n[..., 1], n[..., 2]], -1)
    return replace(material, name=f"{material.name}_rot{degrees % 360:03d}", albedo=turn(material.albedo),
                   height=turn(material.height), roughness=turn(material.roughness),
                   metallic=turn(material.metallic), normal=normal,
                   meta={**material.meta, "rotation_deg": degrees % 360})


def dataset_jobs(materials: list[PbrMaterial], settings: RenderSettings, trajectories=("video", "cross"),
                 rotations=ROTATIONS, frames: int = 81, per_axis: int = 3, tileable_only: bool = False
                 ) -> list[VideoJob]:
    """Every (material × rotation × trajectory) video, material-major. Checks every argument
    (names, rotations, duplicate materials) before anything is rendered."""
    unknown = [t for t in trajectories if t not in TRAJECTORIES]
    if unknown:
        raise ValueError(f"unknown trajectories {unknown}; choose from {sorted(TRAJECTORIES)}")
    names = [m.name for m in materials]
    if len(set(names)) != len(names):
        raise ValueError(f"material names must be unique (they name the folders), got {names}")
    args = {"video": {"frames": frames}, "cross": {"per_axis": per_axis}}
    poses = {t: tuple(TRAJECTORIES[t](sample_size=settings.sample_size, **args[t])) for t in trajectories}
    jobs = []
    for m in materials:
        tileable = bool(m.meta.get("tileable", True))
        if tileable_only and not tileable:
            continue
        for deg in rotations:
            turned = rotated(m, deg)
            jobs += [VideoJob(turned, t, poses[t], tileable) for t in trajectories]
    return jobs


def video_key(job: VideoJob, settings: RenderSettings, variant: str) -> str:
    """The cache key of a video: everything that changes its files."""
    return hash_key("neumat.video.dataset/1", job.material.content_hash(), job.trajectory,
                    [asdict(p) for p in job.poses], asdict(settings), variant, job.tileable)


def render_video(job: VideoJob, out: str | Path, settings: RenderSettings, variant: str,
                 captioner: str | None = None) -> dict:
    """Render (or find finished) one video under ``out`` (module docstring); idempotent.
    ``captioner``: a local captioner model folder (:mod:`.captioner`), or None for the templates.

    Returns:
        ``{"video": folder, "cached": bool, "seconds": render time, "frames": count}``.
    """
    final = Path(out) / job.material.name / job.trajectory
    key = video_key(job, settings, variant)
    done = final / DONE_FILE
    if done.is_file() and _done_key(done) == key:
        if _caption_source(final) != _captioner_name(captioner):
            _write_caption(job, final, settings, variant, captioner)
        return {"video": str(final), "cached": True, "seconds": 0.0, "frames": len(job.poses)}
    partial = final.parent / f".{job.trajectory}.partial"
    if (partial / KEY_FILE).is_file() and (partial / KEY_FILE).read_text() != key:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    (partial / KEY_FILE).write_text(key)
    start = time.perf_counter()
    with mitsuba_variant(variant):
        scene = TrajectoryScene(job.material, list(job.poses), settings)
        for pose in light_order(job.poses):
            png, exr = frame_path(partial, pose.index, "png"), frame_path(partial, pose.index, "exr")
            if png.is_file() and exr.is_file():
                continue
            linear = scene.render(pose)
            write_exr(exr, linear)
            write_png(png, srgb8(linear))
    seconds = time.perf_counter() - start
    _write_extras(job, partial, settings, variant, captioner)
    write_json(partial / DONE_FILE, {"key": key, "material_id": job.material.name, "trajectory": job.trajectory,
                                     "frames": len(job.poses), "variant": variant, "tileable": job.tileable,
                                     "settings": asdict(settings)})
    (partial / KEY_FILE).unlink()
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return {"video": str(final), "cached": False, "seconds": seconds, "frames": len(job.poses)}


def render_dataset(jobs: list[VideoJob], out: str | Path, settings: RenderSettings, variant: str = "auto",
                   workers: int = 0, address: str | None = None, progress: bool = True,
                   captioner: str | Path | None = None) -> list[dict]:
    """Render every job (module docstring), in this process (``workers=0``, no ``address``)
    or as Ray tasks, captioned by the model folder ``captioner`` if given (loaded here first,
    so a bad folder fails before any rendering). Returns :func:`render_video`'s results in job
    order."""
    variant = choose_variant(variant)
    if captioner is not None:
        captioner = str(load_captioner(str(captioner)).path)
    Path(out).mkdir(parents=True, exist_ok=True)
    bar = _Bar(len(jobs), progress)
    if workers <= 0 and address is None:
        results = []
        for job in jobs:
            results.append(render_video(job, out, settings, variant, captioner))
            bar.advance(results[-1])
        bar.close()
        return results
    try:
        import ray
    except ImportError as e:
        raise ImportError("distributed rendering needs Ray: pip install -e '.[video]'") from e
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(render_video)
        refs = {task.remote(job, str(out), settings, variant, captioner): i for i, job in enumerate(jobs)}
        results: list[dict | None] = [None] * len(jobs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            results[refs[ready[0]]] = ray.get(ready[0])
            bar.advance(results[refs[ready[0]]])
    finally:
        bar.close()
        if started:
            ray.shutdown()
    return results


def _write_extras(job: VideoJob, video: Path, settings: RenderSettings, variant: str,
                  captioner: str | None) -> None:
    """poses.json, caption.json and maps/*.png of a video folder (frames already there)."""
    m = job.material
    save_poses(video / POSES_FILE, list(job.poses), width=settings.width, height=settings.height,
               sample_size=settings.sample_size, trajectory=job.trajectory, material_id=m.name)
    _write_caption(job, video, settings, variant, captioner)
    maps = video / MAPS_DIR
    write_png(maps / "albedo.png", srgb8(m.albedo))
    write_png(maps / "height.png", np.round(m.height * 65535.0).astype(np.uint16))
    write_png(maps / "roughness.png", np.round(m.roughness * 255.0).astype(np.uint8))
    write_png(maps / "metallic.png", np.round(m.metallic * 255.0).astype(np.uint8))
    if m.normal is not None:
        write_png(maps / "normal.png", np.round((0.5 * m.normal + 0.5) * 255.0).astype(np.uint8))


def _write_caption(job: VideoJob, video: Path, settings: RenderSettings, variant: str,
                   captioner: str | None) -> None:
    """caption.json: the templates' captions, or the captioner's of the representative frame."""
    m = job.material
    metadata = {"material_id": m.name, "tileable": job.tileable, "height_scale": m.height_scale,
                "resolution": m.resolution, "variant": variant, "spp": settings.spp,
                **{k: v for k, v in m.meta.items() if isinstance(v, (str, int, float, bool))}}
    if captioner is None:
        captions, provenance = template_captions(m), {"captioner": _captioner_name(None)}
    else:
        import imageio.v3 as iio

        frame = representative_frame(list(job.poses))
        captions, provenance = load_captioner(captioner).captions(iio.imread(frame_path(video, frame)))
        provenance["frame"] = frame
    write_json(video / CAPTION_FILE, {**captions, "metadata": metadata, "provenance": provenance})


def _captioner_name(captioner: str | None) -> str:
    return "templates" if captioner is None else load_captioner(captioner).name


def _caption_source(video: Path) -> str | None:
    try:
        return json.loads((video / CAPTION_FILE).read_text()).get("provenance", {}).get("captioner")
    except (OSError, ValueError, AttributeError):
        return None


def _done_key(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


class _Bar:
    """A rich progress bar over videos (nothing when disabled)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn())
            self._task = self._progress.add_task("render videos", total=total)
            self._progress.start()

    def advance(self, result: dict) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=f"render videos ({Path(result['video']).parent.name})")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
