"""The fidelity benchmark: materials → (training) → Mitsuba ground truth vs neumat's render.

Per material (:mod:`.materials`):

1. its texture set is written to ``OUT/materials/NAME/`` (kept when already there);
2. its bundle is trained from that folder through the Python API
   (:func:`neumat.train.loop.train` with the project's *default* :class:`TrainConfig`,
   ``source.kind = "maps"`` and the material's intended ``source.height_scale`` — what
   ``neumat train --maps DIR --height-scale H`` does; the maps are resampled to the default
   ``source.resolution`` as for any user), plus :data:`QUICK_OVERRIDES` with ``quick`` and the
   caller's ``section.field=value`` overrides last; run folder ``OUT/runs/NAME``, bundle ``OUT/bundles/NAME.nmat``. With ``bundles``
   set, ``BUNDLES/NAME.nmat`` is evaluated instead (nothing is trained);
3. the maps are loaded back with :func:`neumat.data.pbr_io.load_pbr_maps` at the bundle's
   recorded height scale (``height_range``), and for every pair (:mod:`.pairs`) Mitsuba renders
   the ground truth (:mod:`.reference`; cached in ``OUT/reference/NAME/`` by content hash) and
   :class:`~neumat.render.renderer.Renderer` renders the bundle on a plane (INT8, height-field
   tracing and traced shadows on, synthesis off) from the same camera and light at
   ``supersample``× the resolution, box-averaged; pixels where any sub-sample misses the
   material are left out;
4. metrics (:mod:`.metrics`) per pair, the mean over pairs and the worst pair (largest
   relative L1); and a geometry check that needs no trained material: ``uv_mismatch``, the
   fraction of covered pixels whose pixel-averaged texture coordinate in neumat's render
   (``uv`` AOV of the traced height field) is more than :data:`UV_TOLERANCE_PIXELS` head-on
   pixel widths away (on the torus) from Mitsuba's (``aov`` integrator, first hits of the
   same rays). It stays near 0 when both renderers see the same surface points; a large
   value means the renderer's height-field tracing found other hits than the exact ones.

:func:`run_fidelity` returns the JSON report (:mod:`.report` describes and writes it) and the
images of the contact sheet.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.errors import DataError
from .materials import SuiteMaterial, select, write_texture_set
from .metrics import image_metrics
from .pairs import Pair, select_pairs
from .reference import FidelityView, reference_at_rays, render_reference, same_ray_available, suite_bsdf

log = logging.getLogger(__name__)

SCHEMA = "neumat.fidelity/1"
"""``schema`` of the JSON report."""
QUICK_OVERRIDES = ("steps=300", "data.batch_size=4096", "data.val_samples=4096",
                   "data.calibration_samples=4096", "val_every=300", "ckpt_every=300")
"""Training overrides of ``--quick``: a smoke run in about a minute per material on 2 CPU
cores, far from converged (its numbers say whether the pipeline works, not how good the
defaults are)."""
PLANE_SIZE = 16.0
"""Side of the rendered plane, scene units (= tiles); even, so world (x, y) shows uv (x, y) mod
1, and larger than any view's footprint (checked per view)."""
METRIC_KEYS = ("rel_l1", "flip", "psnr", "mean_ratio_min", "mean_ratio_max", "uv_mismatch")
"""Per-pair figures averaged per material."""
UV_TOLERANCE_PIXELS = 0.5
"""``uv_mismatch`` threshold, in head-on pixel widths (``extent / image_size`` tiles)."""
UV_SPP = 16
"""Mitsuba samples per pixel of the texture-coordinate image (image reference)."""
SAME_RAY_REFERENCE = "same-rays"
"""Mitsuba evaluated at neumat's own sub-pixel rays (:func:`.reference.reference_at_rays`)."""
IMAGE_REFERENCE = "image"
"""Mitsuba's own image render at ``spp`` samples per pixel (:func:`.reference.render_reference`)."""
REFERENCE_METHODS = ("auto", SAME_RAY_REFERENCE, IMAGE_REFERENCE)
"""``FidelityConfig.reference`` values."""
REFERENCE_VERSION = 4
"""Cache key version of the Mitsuba references (2: shading normals as a bilinear normal map; 3:
without Mitsuba's shadow-terminator factor and normal flipping)."""


class FidelityError(ValueError):
    """The suite cannot run as asked (missing bundle, bundle without a height map, bad option)."""


@dataclass
class FidelityConfig:
    """What one ``neumat fidelity`` run measures."""

    out: Path = Path("out/fidelity")
    """Output folder: materials/, runs/, bundles/, reference/, fidelity.json, .md, .png."""
    materials: str = ""
    """Comma-separated suite material names; "": all."""
    pairs: str = ""
    """Comma-separated pair names; "": all."""
    map_resolution: int = 1024
    """Texels per side of the written texture maps."""
    image_size: int = 128
    """Side of each compared image, pixels."""
    extent: float = 1.0
    """Tiles across the image at a head-on view."""
    supersample: int = 8
    """neumat renders at this many sub-pixels per pixel side (box-averaged, as Mitsuba's box filter).
    8 (64 sub-pixels, as many samples as Mitsuba's 64 spp): with 1024² maps a 128² pixel covers
    ~8 × 8 texels, and 2 × 2 point samples of them measured aliasing, not the material (basket
    weave, same bundle: 41.3 % relative L1 at 2², 13.1 % at 8²)."""
    spp: int = 64
    """Mitsuba samples per pixel of the image reference (stratified; a perfect square)."""
    reference: str = "auto"
    """Ground truth (:data:`REFERENCE_METHODS`): "same-rays" (Mitsuba at neumat's own sub-pixel
    rays: no Monte Carlo noise between the two images; needs Mitsuba's llvm_ad_rgb), "image"
    (Mitsuba's own render at ``spp``) or "auto" (same-rays where it runs)."""
    bundles: Path | None = None
    """Evaluate ``BUNDLES/NAME.nmat`` instead of training."""
    quick: bool = False
    """Apply :data:`QUICK_OVERRIDES` to the training config."""
    overrides: list[str] = field(default_factory=list)
    """Training config overrides, ``section.field=value`` (applied last)."""
    seed: int = 0
    """Seed of the generated materials."""


@dataclass
class MaterialImages:
    """The images of one material for the contact sheet, one entry per pair: Mitsuba's [S, S, 3],
    neumat's [S, S, 3] (0 where not covered) and the [S, S] FLIP error map."""

    name: str
    pairs: list[str]
    ref: list[np.ndarray]
    pred: list[np.ndarray]
    flip: list[np.ndarray]


def run_fidelity(cfg: FidelityConfig, device=None,
                 on_event: Callable[[str], None] | None = None,
                 on_pair: Callable[[str, int, int], None] | None = None) -> tuple[dict, list[MaterialImages]]:
    """Run the suite (module docstring).

    Args:
        cfg: what to run.
        device: slangpy device (default :func:`neumat.device.default_device`).
        on_event: called with a one-line status (training started, ...).
        on_pair: called as ``(material, pairs_done, pairs_total)`` after every pair.

    Returns:
        (report dict, contact-sheet images per material).

    Raises:
        FidelityError, neumat.data.DataError: bad options, missing bundle or maps.
    """
    from ..bench.environment import machine_info, package_version
    from ..device import default_device, describe

    _check(cfg)
    specs, pairs = select(cfg.materials), select_pairs(cfg.pairs)
    device = device if device is not None else default_device()
    say = on_event or (lambda msg: log.info("%s", msg))
    materials, images = [], []
    for spec in specs:
        folder = write_texture_set(spec, cfg.out / "materials" / spec.name, cfg.map_resolution, cfg.seed)
        bundle_path, training = _bundle_for(spec, folder, cfg, say)
        say(f"{spec.name}: ground truth and renders at {len(pairs)} pairs")
        entry, imgs = evaluate_material(spec, folder, bundle_path, pairs, cfg, device,
                                        (lambda i: on_pair(spec.name, i, len(pairs))) if on_pair else None)
        entry["training"] = training
        materials.append(entry)
        images.append(imgs)
    desc = describe(device)
    report = {
        "schema": SCHEMA, "benchmark": "fidelity",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "neumat_version": package_version("neumat"), "mitsuba_version": package_version("mitsuba"),
        "flip_version": package_version("flip-evaluator"),
        "device": {"adapter": desc.adapter, "api": desc.api, "software": desc.software},
        "machine": machine_info(),
        "config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
                   "quick_overrides": list(QUICK_OVERRIDES) if cfg.quick else [],
                   "reference_used": reference_method(cfg)},
        "pairs": [{"name": p.name, **p.angles()} for p in pairs],
        "materials": materials,
        "summary": _summary(materials),
    }
    return report, images


def evaluate_material(spec: SuiteMaterial, folder: Path, bundle_path: Path, pairs: list[Pair],
                      cfg: FidelityConfig, device, on_pair: Callable[[int], None] | None = None
                      ) -> tuple[dict, MaterialImages]:
    """Metrics of one bundle against the Mitsuba ground truth of its maps at every pair."""
    from ..bundle import load_bundle
    from ..data.pbr_io import find_pbr_maps, load_pbr_maps
    from ..render.renderer import Renderer
    from ..render.shapes import plane

    bundle = load_bundle(bundle_path)
    if bundle.height is None or bundle.height_units != "uv":
        raise FidelityError(f"{bundle_path}: the suite needs a bundle with a height map in UV units "
                            "(trained from PBR maps); this one has none")
    height_scale = float(bundle.height_range[1])
    material = load_pbr_maps(folder, height_scale=height_scale)
    side = cfg.image_size * cfg.supersample
    renderer = Renderer(bundle, plane(PLANE_SIZE, segments=16), (side, side), device=device)
    bsdf = suite_bsdf(material) if reference_method(cfg) == IMAGE_REFERENCE else None
    rows, imgs = [], MaterialImages(spec.name, [], [], [], [])
    seconds = {"reference": 0.0, "render": 0.0}
    for i, pair in enumerate(pairs):
        view = FidelityView(pair, cfg.image_size, cfg.extent)
        x0, x1, y0, y1 = view.surface_bounds(height_scale, 1.0 / material.resolution)
        if max(-x0, x1, -y0, y1) > PLANE_SIZE / 2:
            raise FidelityError(f"{pair.name}: the view spans [{x0:.2f}, {x1:.2f}] x [{y0:.2f}, {y1:.2f}], beyond "
                                f"the {PLANE_SIZE:g}-tile plane; use a smaller extent")
        start = time.perf_counter()
        ref, ref_uv = _cached_reference(material, view, cfg, bsdf)
        seconds["reference"] += time.perf_counter() - start
        start = time.perf_counter()
        pred, uv, covered = render_view(renderer, view, cfg.supersample)
        seconds["render"] += time.perf_counter() - start
        m = image_metrics(pred, ref, covered)
        flip_map = m.pop("flip_map")
        m["uv_mismatch"] = uv_mismatch(uv, ref_uv, covered, cfg.extent / cfg.image_size)
        rows.append({"pair": pair.name, **m})
        imgs.pairs.append(pair.name)
        imgs.ref.append(ref)
        imgs.pred.append(np.where(covered[..., None], pred, 0.0))
        imgs.flip.append(flip_map)
        if on_pair:
            on_pair(i + 1)
    worst = max(rows, key=lambda r: r["rel_l1"])
    entry = {
        "name": spec.name, "style": spec.style, "map_resolution": material.resolution,
        "files": {role: p.name for role, p in find_pbr_maps(folder).items()},
        "folder": str(folder), "bundle": str(bundle_path), "height_scale": height_scale,
        "intended_height_scale": spec.height_scale,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "pairs": rows,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS},
        "worst": {"pair": worst["pair"], **{k: worst[k] for k in METRIC_KEYS}},
    }
    return entry, imgs


def render_view(renderer, view: FidelityView, supersample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """neumat's image of ``view`` (INT8, hf + traced shadows, no synthesis), box-averaged over
    ``supersample``² sub-pixels: float32 [S, S, 3] radiance, float32 [S, S, 2] texture
    coordinates of the traced hits (scene units, not wrapped), and [S, S] bool coverage (every
    sub-pixel sees the material)."""
    from ..render.lights import DirectionalLight

    cam = view.camera(supersample)
    res = renderer.render(cam, [DirectionalLight(tuple(view.pair.wi), (1.0, 1.0, 1.0))], hf=True,
                          synthesis=False, shadows=True, precision="int8", aovs=("mask", "uv"))
    s, k = view.size, supersample
    image = res.image.reshape(s, k, s, k, 3).mean(axis=(1, 3))
    uv = res.aovs["uv"].reshape(s, k, s, k, 2).mean(axis=(1, 3))
    covered = res.aovs["mask"][..., 0].reshape(s, k, s, k).min(axis=(1, 3)) > 0.5
    return image.astype(np.float32), uv.astype(np.float32), covered


def uv_mismatch(uv: np.ndarray, ref_uv: np.ndarray, covered: np.ndarray, pixel: float) -> float:
    """Fraction of ``covered`` pixels whose [S, S, 2] texture coordinates differ (modulo whole
    tiles) by more than :data:`UV_TOLERANCE_PIXELS` × ``pixel`` (tiles) between the two images."""
    diff = (np.asarray(uv, np.float64) - ref_uv + 0.5) % 1.0 - 0.5
    far = np.linalg.norm(diff, axis=-1) > UV_TOLERANCE_PIXELS * pixel
    return float(far[covered].mean())


def train_material(spec: SuiteMaterial, folder: Path, cfg: FidelityConfig) -> tuple[Path, dict]:
    """Train ``spec`` from its texture folder with the default config (module docstring);
    returns (bundle path, training record for the report)."""
    from ..train import TrainConfig, apply_overrides
    from ..train.loop import train

    bundle_path = cfg.out / "bundles" / f"{spec.name}.nmat"
    bundle_path.parent.mkdir(parents=True, exist_ok=True)  # the trainer's export does not create it
    overrides = ["source.kind=maps", f"source.path={json.dumps(str(folder.resolve()))}",
                 f"out={json.dumps(str(cfg.out / 'runs' / spec.name))}",
                 f"export={json.dumps(str(bundle_path))}", f"source.height_scale={spec.height_scale}"]
    overrides += list(QUICK_OVERRIDES if cfg.quick else ()) + list(cfg.overrides)
    train_cfg = apply_overrides(TrainConfig(), overrides)
    start = time.perf_counter()
    result = train(train_cfg)
    seconds = time.perf_counter() - start
    if not bundle_path.is_file():
        raise FidelityError(f"{spec.name}: training finished without writing {bundle_path}")
    return bundle_path, {"trained": True, "seconds": round(seconds, 1), "steps": result.steps_done,
                         "overrides": overrides, "heldout": result.heldout, "validation": result.metrics,
                         "stopped_by_budget": result.stopped_by_budget}


def _bundle_for(spec: SuiteMaterial, folder: Path, cfg: FidelityConfig, say) -> tuple[Path, dict]:
    if cfg.bundles is not None:
        path = Path(cfg.bundles) / f"{spec.name}.nmat"
        if not path.is_file():
            raise FidelityError(f"--bundles {cfg.bundles}: no {path.name} for material {spec.name!r} "
                                "(bundles are looked up as NAME.nmat)")
        return path, {"trained": False}
    say(f"{spec.name}: training from {folder}")
    return train_material(spec, folder, cfg)


def reference_method(cfg: FidelityConfig) -> str:
    """:data:`SAME_RAY_REFERENCE` where Mitsuba's vectorized variant runs and ``cfg.reference``
    allows it, else :data:`IMAGE_REFERENCE`."""
    if cfg.reference == IMAGE_REFERENCE or not same_ray_available():
        return IMAGE_REFERENCE
    return SAME_RAY_REFERENCE


def _cached_reference(material, view: FidelityView, cfg: FidelityConfig, bsdf) -> tuple[np.ndarray, np.ndarray]:
    """Mitsuba's image and texture coordinates of ``view`` (:func:`reference_method`), from
    ``OUT/reference/NAME/`` when computed before with the same method, maps, height scale,
    view and samples."""
    method = reference_method(cfg)
    samples = [cfg.supersample] if method == SAME_RAY_REFERENCE else [cfg.spp, UV_SPP]
    key = hashlib.sha256(json.dumps([REFERENCE_VERSION, method, material.content_hash(), dataclasses.asdict(view.pair),
                                     view.size, view.extent, *samples], default=str).encode()).hexdigest()[:16]
    path = cfg.out / "reference" / material.name / f"{view.pair.name}_{key}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return cached["image"], cached["uv"]
    if method == SAME_RAY_REFERENCE:
        image, uv = reference_at_rays(material, view, cfg.supersample)
    else:
        image, uv = render_reference(material, view, cfg.spp, bsdf=bsdf, uv_spp=UV_SPP)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, image=image, uv=uv)
    return image, uv


def _summary(materials: list[dict]) -> dict:
    """Suite-wide figures: mean relative L1 / FLIP over materials, the worst material's worst pair."""
    if not materials:
        return {}
    worst = max(materials, key=lambda m: m["worst"]["rel_l1"])
    return {"mean_rel_l1": float(np.mean([m["mean"]["rel_l1"] for m in materials])),
            "mean_flip": float(np.mean([m["mean"]["flip"] for m in materials])),
            "worst": {"material": worst["name"], **worst["worst"]}}


def _check(cfg: FidelityConfig) -> None:
    if cfg.map_resolution < 8 or cfg.image_size < 8 or cfg.supersample < 1 or cfg.extent <= 0:
        raise FidelityError("map_resolution and image_size must be >= 8, supersample >= 1, extent > 0")
    if cfg.spp < 1 or int(round(cfg.spp ** 0.5)) ** 2 != cfg.spp:
        raise FidelityError(f"spp must be a perfect square (stratified sampler), got {cfg.spp}")
    if cfg.reference not in REFERENCE_METHODS:
        raise FidelityError(f"reference must be one of {', '.join(REFERENCE_METHODS)}, got {cfg.reference!r}")
    if cfg.reference == SAME_RAY_REFERENCE and not same_ray_available():
        raise FidelityError("reference 'same-rays' needs Mitsuba's llvm_ad_rgb variant, which does not run here "
                            "(it needs libLLVM >= 16: `make setup` installs libllvm19; or use --reference image)")
    if cfg.bundles is not None and not Path(cfg.bundles).is_dir():
        raise FidelityError(f"--bundles {cfg.bundles}: not a directory")
    try:
        select(cfg.materials), select_pairs(cfg.pairs)
    except DataError as e:
        raise FidelityError(str(e)) from None
