"""Outputs of a fidelity run: ``fidelity.json``, ``fidelity.md`` and ``fidelity.png``.

JSON (``schema`` :data:`neumat.fidelity.run.SCHEMA`, the dict :func:`~.run.run_fidelity`
returns)::

    schema, benchmark "fidelity", created, neumat_version, mitsuba_version, flip_version
    device          {adapter, api, software}      machine   neumat.bench.environment.machine_info()
    config          FidelityConfig fields + quick_overrides
    pairs           [{name, theta_i, phi_i, theta_o, phi_o}]  (degrees)
    materials       [{name, style, map_resolution, files {role: file}, folder, bundle,
                      height_scale (the bundle's, used for the ground truth), intended_height_scale,
                      training {trained, seconds, steps, overrides, heldout {neumat eval's
                                figures: int8/fp32 relative L1, PSNR, ... at the 12 pairs},
                                validation {the trainer's last random-sample figure},
                                stopped_by_budget} | {trained: false},
                      seconds {reference, render}    (all pairs; reference 0 when cached)
                      pairs [{pair, rel_l1, flip, psnr, mean_ratio [3], mean_ratio_min,
                              mean_ratio_max, coverage, uv_mismatch}],
                      mean {rel_l1, flip, psnr, mean_ratio_min, mean_ratio_max, uv_mismatch},
                      worst {pair, ...same keys}}]   (worst = largest relative L1)
    summary         {mean_rel_l1, mean_flip, worst {material, pair, ...}}

Contact sheet: one band per material, one column per pair; each band holds three rows —
Mitsuba's reference, neumat's render (black where not covered), the FLIP error map (magma,
0 black → 1 white). Reference and render share one exposure per cell (the reference's mean
luminance mapped to 0.18), then ``x / (1 + x)`` and sRGB encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .materials import linear_to_srgb
from .run import MaterialImages

CELL = 96
"""Largest side of one image in the contact sheet, pixels (larger images are box-reduced)."""
LABEL_W = 120
"""Width of the label column, pixels."""


def write_outputs(report: dict, images: list[MaterialImages], out: str | Path) -> dict[str, Path]:
    """Write ``fidelity.json``, ``fidelity.md`` and ``fidelity.png`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "fidelity.json", "markdown": out / "fidelity.md", "png": out / "fidelity.png"}
    paths["json"].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    import imageio.v3 as iio
    iio.imwrite(paths["png"], contact_sheet(images), plugin="pillow")
    return paths


def _heldout_text(train: dict) -> str:
    """``neumat eval``'s INT8 relative L1 at the 12 held-out pairs, as the run recorded it."""
    rel = train.get("heldout", {}).get("int8", {}).get("rel_l1")
    return f"{100 * rel:.1f} %" if rel is not None else "—"

def _reference_words(cfg: dict) -> str:
    """How the ground truth was computed, for the report's header line."""
    if cfg.get("reference_used") == "same-rays":
        return "Mitsuba at the same sub-pixel rays"
    return f"Mitsuba {cfg['spp']} spp"


def markdown(report: dict) -> str:
    """The report as markdown: a per-material summary and the relative L1 of every pair."""
    cfg = report["config"]
    mats = report["materials"]
    lines = [
        "# neumat fidelity",
        "",
        f"{report['created']} · {report['device']['adapter']} · maps {cfg['map_resolution']}² · images "
        f"{cfg['image_size']}² (neumat ×{cfg['supersample']}² sub-pixels, " + _reference_words(cfg) + ") · "
        f"{'quick training' if cfg['quick'] else 'bundles from ' + str(cfg['bundles']) if cfg['bundles'] else 'default training'}",
        "",
        "Relative L1 = Σ|pred − ref| / Σ|ref|; FLIP = mean HDR-ꟻLIP (0 = identical); PSNR peak 1 "
        "(BTF units); colour ratio = mean pred / mean ref per channel (min–max). "
        "Worst = the pair of largest relative L1. uv mismatch = fraction of pixels whose traced texture "
        "coordinate is off Mitsuba's first hit by more than half a pixel (geometry, independent of the "
        "material's fit; mean over pairs / largest).",
        "",
        "| material | rel. L1 mean | FLIP mean | PSNR mean | colour ratio (mean pair) | worst pair | "
        "worst rel. L1 | worst FLIP | worst colour ratio | uv mismatch | held-out INT8 (material alone) | "
        "train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in mats:
        mean, worst, train = m["mean"], m["worst"], m["training"]
        lines.append(
            f"| {m['name']} | {100 * mean['rel_l1']:.1f} % | {mean['flip']:.3f} | {mean['psnr']:.1f} dB | "
            f"{mean['mean_ratio_min']:.2f}–{mean['mean_ratio_max']:.2f} | {worst['pair']} | "
            f"{100 * worst['rel_l1']:.1f} % | {worst['flip']:.3f} | "
            f"{worst['mean_ratio_min']:.2f}–{worst['mean_ratio_max']:.2f} | "
            f"{100 * mean['uv_mismatch']:.1f} / {100 * max(r['uv_mismatch'] for r in m['pairs']):.1f} % | "
            f"{_heldout_text(train)} | {train['seconds'] if train.get('trained') else '—'} |")
    if report.get("summary"):
        s = report["summary"]
        lines += ["", f"Suite: mean relative L1 {100 * s['mean_rel_l1']:.1f} %, mean FLIP {s['mean_flip']:.3f}; "
                      f"worst: {s['worst']['material']} at {s['worst']['pair']} "
                      f"({100 * s['worst']['rel_l1']:.1f} %)."]
    pair_names = [p["name"] for p in report["pairs"]]
    lines += ["", "## Relative L1 per pair (%) / FLIP", "",
              "| material | " + " | ".join(pair_names) + " |",
              "|---|" + "---|" * len(pair_names)]
    for m in mats:
        by_pair = {r["pair"]: r for r in m["pairs"]}
        cells = [f"{100 * by_pair[n]['rel_l1']:.1f} / {by_pair[n]['flip']:.2f}" for n in pair_names]
        lines.append(f"| {m['name']} | " + " | ".join(cells) + " |")
    lines += ["", "## Pairs (degrees)", "", "| pair | θi | φi | θo | φo |", "|---|---|---|---|---|"]
    lines += [f"| {p['name']} | {p['theta_i']:g} | {p['phi_i']:g} | {p['theta_o']:g} | {p['phi_o']:g} |"
              for p in report["pairs"]]
    return "\n".join(lines) + "\n"


def contact_sheet(images: list[MaterialImages]) -> np.ndarray:
    """uint8 [H, W, 3] contact sheet (module docstring) with material and pair labels."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    if not images or not images[0].pairs:
        raise ValueError("no images for a contact sheet")
    side = images[0].ref[0].shape[0]
    factor = max(1, -(-side // CELL))
    cell = side // factor
    n_pairs, header = len(images[0].pairs), 14
    sheet = np.full((header + 3 * cell * len(images), LABEL_W + n_pairs * cell, 3), 255, np.uint8)
    magma = colormaps["magma"]
    for m, mat in enumerate(images):
        top = header + 3 * cell * m
        for j in range(len(mat.pairs)):
            ref, pred, flip = mat.ref[j], mat.pred[j], mat.flip[j]
            lum = float(np.mean(ref @ np.array([0.2126, 0.7152, 0.0722])))
            exposure = 0.18 / max(lum, 1e-8)
            tiles = [_display(ref, exposure), _display(pred, exposure),
                     (255 * magma(np.clip(flip, 0.0, 1.0))[..., :3]).astype(np.uint8)]
            for k, tile in enumerate(tiles):
                y, x = top + k * cell, LABEL_W + j * cell
                sheet[y:y + cell, x:x + cell] = _reduce(tile, factor)
    img = Image.fromarray(sheet)
    draw = ImageDraw.Draw(img)
    for j, name in enumerate(images[0].pairs):
        draw.text((LABEL_W + j * cell + 2, 1), name[: max(4, cell // 6)], fill=(0, 0, 0))
    for m, mat in enumerate(images):
        top = header + 3 * cell * m
        draw.text((2, top + 2), mat.name, fill=(0, 0, 0))
        for k, what in enumerate(("Mitsuba", "neumat", "FLIP")):
            draw.text((2, top + k * cell + cell // 2), what, fill=(80, 80, 80))
    return np.asarray(img)


def _display(rgb: np.ndarray, exposure: float) -> np.ndarray:
    """uint8 sRGB of linear ``rgb`` × exposure after the ``x / (1 + x)`` tone curve."""
    x = np.maximum(rgb * exposure, 0.0)
    return np.round(255 * linear_to_srgb(x / (1.0 + x))).astype(np.uint8)


def _reduce(tile: np.ndarray, factor: int) -> np.ndarray:
    """Box-reduce an [S, S, 3] uint8 tile by an integer factor (crops a remainder)."""
    if factor == 1:
        return tile
    s = (tile.shape[0] // factor) * factor
    t = tile[:s, :s].astype(np.float32).reshape(s // factor, factor, s // factor, factor, 3)
    return np.round(t.mean(axis=(1, 3))).astype(np.uint8)
