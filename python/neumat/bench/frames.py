"""Frame-time benchmark: scenes × resolutions × render options, per-pass and total times.

Every case is one (material, scene, resolution, option set). One :class:`Renderer` is built
per (material, scene, resolution) and reused by all of that triple's option sets; each case
renders ``warmup`` untimed frames (kernel compilation, first-use tables) and then ``frames``
timed ones from the same camera and light. Per-pass times are device timestamps (ms; they
include submission gaps, see :mod:`neumat.render.graph`), the total is the host wall time of
the frame (:attr:`RenderResult.timings_ms`); each is reported
as median, 95th percentile (numpy's linear interpolation between order statistics, so with
few frames it lies between the two largest samples) and minimum, with the raw samples.

Option sets are dicts of :meth:`Renderer.render` keyword arguments, merged onto
:data:`BASE_OPTIONS`; any keyword ``render`` accepts (other than camera, lights, aovs, debug)
may appear, so options added to the renderer slot in without changes here. A case records its
complete effective options (``render``'s defaults + base + overrides). Named presets:
:data:`OPTION_PRESETS`. Scenes: :data:`BENCH_SCENES`, a built-in shape name
(:data:`neumat.render.renderer.SHAPES`) or a mesh file; each is framed as ``neumat render``
frames a mesh: orbit camera (azimuth -60°, elevation 35°) whose 40° vertical field of view holds
the sphere circumscribing the mesh's bounding box (+5%) — the unit sphere covers ~24% of the
pixels. ``coverage`` (fraction of pixels where the material is seen, from the last frame's
mask) is recorded per case: shading costs scale with it, not with the resolution alone.

Default resolutions: 512x512 and 1920x1080, plus 3840x2160 when the device is a hardware GPU
(on a software rasterizer such as lavapipe a 4K frame takes tens of seconds); an explicit
``resolutions`` list is used as given.

JSON schema (:data:`SCHEMA`, the dict :func:`run_frame_bench` returns)::

    schema          "neumat.bench.frames/1"
    benchmark       "frames"
    created         ISO 8601 UTC time of the run
    neumat_version, slangpy_version
    device          {adapter, api, software, description}   (neumat.device.describe; the first)
    devices         [the same, one per device the cases ran on]
    machine         neumat.bench.environment.machine_info()
    config          {frames, warmup, resolutions [[w, h]], scenes [..], materials [..],
                     options {name: {render kwarg: value}}, infer_backends [..], devices [..],
                     skipped [{options_name, device, reason}]}
    cases           [{device, scene, scene_source, material, material_path, resolution [w, h],
                      options_name, options {..}, infer_backend, frames, warmup, coverage,
                      passes {pass: STATS}, steps {"pass.step": STATS}, total STATS}]
                    STATS = {median_ms, p95_ms, min_ms, samples [ms per timed frame]}
                    device: the device type the case ran on (``vulkan`` / ``cuda``);
                    infer_backend: the backend the infer pass ran (``auto`` resolved);
                    steps: parts of a pass's time (the native infer's infer.gather /
                    infer.mlp / infer.decode, :mod:`neumat.render.passes.infer_native`)
    summary         {infer_vs_int8: [{scene, material, resolution, options_name, precision,
                      int8_ms, other_ms, ratio}],   (median infer time of an FP32 or FP16 MLP
                     / that of the INT8 one, for every case whose options differ from an
                     INT8 case's only in the MLP precision: ``fp32`` / ``precision``)
                     native_vs_slang: [{scene, material, resolution, options_name,
                      slang_infer_ms, native_infer_ms, infer_ratio, slang_total_ms,
                      native_total_ms, total_ratio, native_steps {step: median ms}}]}
                     (native / slang medians for every pair of cases that differ only in
                     ``infer_backend``; ``options_name`` without the ``@backend`` suffix),
                     cuda_vs_slang: the same with ``cuda_*`` keys}
                    (:mod:`neumat.bench.frames_summary`; each entry also names its ``device``)

``infer_backends`` (``--infer-backend``, repeatable) runs every option set once per backend, named
``<set>@<backend>``, so slang, native and cuda infer are measured side by side in one run; a case
the infer pass refuses (native or cuda with an FP32/FP16 set, cuda off a CUDA device) is skipped
and listed in ``skipped`` with the reason. ``devices`` (``--device``, repeatable) runs every case
once per device type (``vulkan``, ``cuda``, ``auto``), one :class:`Renderer` per device.
"""

from __future__ import annotations

import datetime
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..assets import DEFAULT_MATERIAL, DEMO_MESH
from .environment import machine_info, package_version
from .frames_summary import backend_pairs, infer_ratios, steps_of, with_backends

SCHEMA = "neumat.bench.frames/1"
"""Value of the ``schema`` key; bumped when a key changes meaning."""
BENCH_SCENES = {"draped_cloth": DEMO_MESH, "sphere": "sphere"}
"""Scene names of the benchmark: the demo's draped cloth mesh and the built-in unit sphere."""
DEFAULT_SCENES = ("draped_cloth", "sphere")
BASE_OPTIONS = {"hf": True, "synthesis": True, "fp32": False}
"""What every option set starts from (all features on, INT8 MLP)."""
OPTION_PRESETS = {
    "all": {},
    "no_hf": {"hf": False},
    "no_synthesis": {"synthesis": False},
    "fp32": {"fp32": True},
    "fp16": {"precision": "fp16"},
    "bare": {"hf": False, "synthesis": False},
    "no_shadows": {"shadows": False},
    "march_shadows": {"shadow_mode": "march"},
    "bvh_shell": {"visibility": "bvh"},
}
"""Named option sets (overrides of :data:`BASE_OPTIONS`): each feature switched off alone,
an FP32 or FP16 MLP instead of the INT8 one, hf and synthesis off (``bare``), the cheaper
shadow march instead of the prism walk (``march_shadows``), the shell's BVH walk instead of
its rasterized candidate lists (``bvh_shell``)."""
DEFAULT_OPTIONS = ("all", "no_hf", "no_synthesis", "fp32")
SMALL_RESOLUTIONS = ((512, 512), (1920, 1080))
UHD = (3840, 2160)
_NOT_OPTIONS = {"self", "camera", "lights", "aovs", "debug"}
CAMERA_AZIMUTH, CAMERA_ELEVATION = -60.0, 35.0
"""Benchmark camera orbit angles (degrees), the ``neumat render`` default view."""


class FrameBenchError(ValueError):
    """A bad benchmark argument (unknown option, scene or resolution); the message says which."""


@dataclass
class FrameBenchConfig:
    """What :func:`run_frame_bench` measures."""

    materials: tuple[str, ...] = (str(DEFAULT_MATERIAL),)
    """``.nmat`` bundle paths."""
    scenes: tuple[str, ...] = DEFAULT_SCENES
    """Scene names (:data:`BENCH_SCENES`, built-in shapes) or mesh file paths."""
    resolutions: tuple[tuple[int, int], ...] | None = None
    """(width, height) pixels; None = :data:`SMALL_RESOLUTIONS`, + 4K on a hardware GPU."""
    options: dict[str, dict] = field(default_factory=lambda: {n: OPTION_PRESETS[n] for n in DEFAULT_OPTIONS})
    """Option sets by name: :meth:`Renderer.render` keyword overrides of :data:`BASE_OPTIONS`."""
    frames: int = 5
    """Timed frames per case (median / p95 over these)."""
    warmup: int = 2
    """Untimed frames per case before timing (compilation, caches)."""
    infer_backends: tuple[str, ...] = ()
    """Infer backends every option set runs with (``slang``, ``native``, ``cuda``, ``auto``; module
    docstring); empty: as the option set says (the renderer's default ``auto``)."""
    devices: tuple[str, ...] = ()
    """Device types every case runs on (:data:`neumat.device.DEVICE_CHOICES`); empty: the
    ``device`` argument of :func:`run_frame_bench` (else the default device)."""


def render_option_defaults() -> dict:
    """Keyword arguments of :meth:`Renderer.render` an option set may set, with their defaults
    (tuples as lists, as JSON stores them)."""
    from ..render.renderer import Renderer

    params = inspect.signature(Renderer.render).parameters
    return {name: list(p.default) if isinstance(p.default, tuple) else p.default
            for name, p in params.items() if name not in _NOT_OPTIONS}


def render_option_names() -> list[str]:
    """Keyword arguments of :meth:`Renderer.render` an option set may set."""
    return list(render_option_defaults())


def _option_value(text: str):
    low = text.lower()
    if low in ("on", "true", "yes", "1"):
        return True
    if low in ("off", "false", "no", "0"):
        return False
    try:
        return float(text) if any(c in text for c in ".e") else int(text)
    except ValueError:
        return text


def parse_option_sets(text: str) -> dict[str, dict]:
    """Option sets from ``--options``: comma-separated preset names (:data:`OPTION_PRESETS`)
    or inline sets ``key=value+key=value`` (values on/off, numbers or words), e.g.
    ``all,fp32,hf=off+fp32=on``. Raises :class:`FrameBenchError` for unknown names or keys."""
    valid = render_option_names()
    sets: dict[str, dict] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            if item not in OPTION_PRESETS:
                raise FrameBenchError(f"unknown option set {item!r}; presets: {', '.join(OPTION_PRESETS)} "
                                      f"(or inline key=value+..., keys: {', '.join(valid)})")
            sets[item] = dict(OPTION_PRESETS[item])
            continue
        opts = {}
        for pair in item.split("+"):
            key, _, value = pair.partition("=")
            if key.strip() not in valid or not value:
                raise FrameBenchError(f"bad option {pair!r} in {item!r}; keys: {', '.join(valid)}")
            opts[key.strip()] = _option_value(value.strip())
        sets[item] = opts
    if not sets:
        raise FrameBenchError("no option set given")
    return sets


def parse_resolutions(text: str) -> tuple[tuple[int, int], ...]:
    """``"512x512,1920x1080"`` -> ((512, 512), (1920, 1080)); :class:`FrameBenchError` if malformed."""
    out = []
    for item in (t.strip().lower() for t in text.split(",")):
        parts = item.split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise FrameBenchError(f"resolutions must look like 512x512,1920x1080; got {item!r} in {text!r}")
        out.append((int(parts[0]), int(parts[1])))
    return tuple(out)


def default_resolutions(software_device: bool) -> tuple[tuple[int, int], ...]:
    """512², 1080p, and 4K unless the device is a software rasterizer (see the module docstring)."""
    return SMALL_RESOLUTIONS if software_device else SMALL_RESOLUTIONS + (UHD,)


def stats(samples_ms: list[float]) -> dict:
    """{median_ms, p95_ms, min_ms, samples} of timed frames (ms)."""
    a = np.asarray(samples_ms, np.float64)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)),
            "min_ms": float(a.min()), "samples": [float(x) for x in a]}


def scene_label(scene: str) -> str:
    """Short name of a scene: its :data:`BENCH_SCENES` / shape name, or a mesh file's stem."""
    from ..render.renderer import SHAPES

    return scene if scene in BENCH_SCENES or scene in SHAPES else Path(scene).stem


def _scene_source(scene: str) -> str:
    return str(BENCH_SCENES.get(scene, scene))


def framing_camera(mesh, width: int, height: int):
    """Orbit camera (:data:`CAMERA_AZIMUTH`, :data:`CAMERA_ELEVATION`) aimed at the mesh's
    bounding-box centre, far enough that the sphere around that box (+5%) fits the vertical field."""
    from ..render.camera import Camera

    lo, hi = mesh.positions.min(0), mesh.positions.max(0)
    centre = tuple(float(x) for x in (lo + hi) / 2)
    radius = float(np.linalg.norm(hi - lo) / 2)
    distance = 1.05 * radius / math.sin(math.radians(Camera.fov_y / 2))  # the default field of view
    return Camera.orbit(centre, CAMERA_AZIMUTH, CAMERA_ELEVATION, distance, width=width, height=height)


def _check(cfg: FrameBenchConfig) -> None:
    from ..render.passes.infer_native import INFER_BACKEND_NAMES
    from ..render.renderer import SHAPES

    from ..device import DEVICE_CHOICES

    bad = [b for b in cfg.infer_backends if b not in INFER_BACKEND_NAMES]
    if bad:
        raise FrameBenchError(f"unknown infer backends {bad}; valid: {', '.join(INFER_BACKEND_NAMES)}")
    bad = [d for d in cfg.devices if d not in DEVICE_CHOICES]
    if bad:
        raise FrameBenchError(f"unknown device types {bad}; valid: {', '.join(DEVICE_CHOICES)}")

    if cfg.frames < 1 or cfg.warmup < 0:
        raise FrameBenchError(f"need frames >= 1 and warmup >= 0, got {cfg.frames}, {cfg.warmup}")
    if not cfg.options or not cfg.scenes or not cfg.materials:
        raise FrameBenchError("need at least one material, scene and option set")
    valid = set(render_option_names())
    for name, opts in cfg.options.items():
        bad = sorted(set(opts) - valid)
        if bad:
            raise FrameBenchError(f"option set {name!r}: unknown render options {bad}; valid: {sorted(valid)}")
    for m in cfg.materials:
        if not Path(m).is_file():
            raise FrameBenchError(f"material {m!r} is not a file (pass a .nmat bundle)")
    for s in cfg.scenes:
        src = _scene_source(s)
        if src not in SHAPES and not Path(src).is_file():
            raise FrameBenchError(f"scene {s!r} is neither a bench scene ({', '.join(BENCH_SCENES)}), "
                                  f"a built-in shape ({', '.join(sorted(SHAPES))}) nor a mesh file")


def _devices(cfg: FrameBenchConfig, device) -> list:
    """The slangpy devices of ``cfg.devices`` (:func:`neumat.device.shared_device`; one per device
    type: ``auto`` after ``vulkan`` adds nothing when it resolves to Vulkan), else ``[device]`` or
    the default device."""
    from ..device import default_device, describe, shared_device

    if not cfg.devices:
        return [device if device is not None else default_device()]
    by_type = {}
    for choice in cfg.devices:
        dev = shared_device(None if choice == "auto" else choice)
        by_type.setdefault(describe(dev).api, dev)
    return list(by_type.values())


def _run_case(renderer, camera, opts: dict, cfg: FrameBenchConfig, on_frame, label: str) -> tuple[list, object]:
    """``warmup`` + ``frames`` frames of one case: the timed frames' timings and the last result
    (with the mask AOV; its read-back is outside its timings)."""
    from ..render.lights import DirectionalLight

    timings, n = [], cfg.warmup + cfg.frames
    for i in range(n):
        res = renderer.render(camera, [DirectionalLight()], aovs=("mask",) if i == n - 1 else (), **opts)
        if i >= cfg.warmup:
            timings.append(res.timings_ms)
        if on_frame:
            on_frame(label)
    return timings, res


def run_frame_bench(cfg: FrameBenchConfig | None = None, device=None,
                    on_frame: Callable[[str], None] | None = None,
                    on_plan: Callable[[int], None] | None = None) -> dict:
    """Run every case of ``cfg`` and return the JSON-ready report (schema in the module docstring).

    Args:
        cfg: what to measure (default :class:`FrameBenchConfig`).
        device: slangpy device when ``cfg.devices`` is empty (default
            :func:`neumat.device.default_device`).
        on_frame: called after every rendered frame (warm-up included) with the case label.
        on_plan: called once, before rendering, with the number of frames the run will render
            (at most: a case the infer pass refuses renders none).

    Raises:
        FrameBenchError: a bad option, scene, material path, device type or count.
        neumat.bundle.BundleError: a material file that is not a valid bundle.
        neumat.device.DeviceError: no render device (of a type ``cfg.devices`` asks for).
    """
    from ..bundle import load_bundle
    from ..device import describe
    from ..render.passes.infer_native import InferBackendError
    from ..render.renderer import Renderer, resolve_mesh

    cfg = cfg or FrameBenchConfig()
    _check(cfg)
    devices = _devices(cfg, device)
    descs = [describe(d) for d in devices]
    resolutions = tuple(cfg.resolutions) if cfg.resolutions else default_resolutions(descs[0].software)
    defaults = {**render_option_defaults(), **BASE_OPTIONS}
    options = with_backends({name: {**defaults, **opts} for name, opts in cfg.options.items()},
                            tuple(dict.fromkeys(cfg.infer_backends)))
    n_frames = (len(devices) * len(cfg.materials) * len(cfg.scenes) * len(resolutions) * len(options)
                * (cfg.warmup + cfg.frames))
    if on_plan:
        on_plan(n_frames)
    cases, skipped = [], []
    for dev, desc in zip(devices, descs):
        for material in cfg.materials:
            bundle = load_bundle(material)
            for scene in cfg.scenes:
                mesh = resolve_mesh(_scene_source(scene))
                for width, height in resolutions:
                    renderer = Renderer(bundle, mesh, (width, height), device=dev)
                    camera = framing_camera(mesh, width, height)
                    for opt_name, opts in options.items():
                        label = (f"{desc.api}/" if len(devices) > 1 else "") + \
                            f"{Path(material).stem}/{scene_label(scene)}/{width}x{height}/{opt_name}"
                        try:
                            timings, res = _run_case(renderer, camera, opts, cfg, on_frame, label)
                        except InferBackendError as e:
                            if not any(s["options_name"] == opt_name and s["device"] == desc.api for s in skipped):
                                skipped.append({"options_name": opt_name, "device": desc.api, "reason": str(e)})
                            continue
                        steps = steps_of(timings[0])
                        passes = [k for k in timings[0] if k != "total" and k not in steps]
                        cases.append({
                            "device": desc.api,
                            "scene": scene_label(scene), "scene_source": _scene_source(scene),
                            "material": Path(material).stem, "material_path": str(material),
                            "resolution": [width, height], "options_name": opt_name, "options": opts,
                            "infer_backend": renderer.infer_pass().resolved_backend(),
                            "frames": cfg.frames, "warmup": cfg.warmup,
                            "coverage": float(res.aovs["mask"].mean()),
                            "passes": {p: stats([t[p] for t in timings]) for p in passes},
                            "steps": {p: stats([t[p] for t in timings]) for p in steps},
                            "total": stats([t["total"] for t in timings]),
                        })
    described = [{"adapter": d.adapter, "api": d.api, "software": d.software, "description": str(d)} for d in descs]
    return {
        "schema": SCHEMA,
        "benchmark": "frames",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "neumat_version": _neumat_version(),
        "slangpy_version": package_version("slangpy"),
        "device": described[0],
        "devices": described,
        "machine": machine_info(),
        "config": {"frames": cfg.frames, "warmup": cfg.warmup, "resolutions": [list(r) for r in resolutions],
                   "scenes": list(cfg.scenes), "materials": [str(m) for m in cfg.materials], "options": options,
                   "infer_backends": list(cfg.infer_backends), "devices": [d.api for d in descs], "skipped": skipped},
        "cases": cases,
        "summary": {"infer_vs_int8": infer_ratios(cases), "native_vs_slang": backend_pairs(cases, "native"),
                    "cuda_vs_slang": backend_pairs(cases, "cuda")},
    }


def _neumat_version() -> str:
    from .. import __version__

    return package_version("neumat") or __version__
