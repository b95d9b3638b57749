"""Load PBR texture sets as people download them (ambientCG, Poly Haven, MatSynth, ...).

A file's *role* comes from the tokens of its name (split at anything not a letter or digit,
case-insensitive), scanning from the end and skipping resolution/format/convention tokens
(``2k``, ``png``, ``gl``, ...), so ``metal_plate_diff_2k.jpg`` is a colour map, not a metal map:

=========== ===================================================== ==========================
role        name tokens (first = preferred when several match)    if missing
=========== ===================================================== ==========================
albedo      basecolor, albedo, color, col, diffuse, diff           error
height      height, displacement, disp                             error (``allow_flat``: 0)
roughness   roughness, rough                                       ARM green, else 0.5
metallic    metallic, metalness, metal                             ARM blue, else 0.0
normal      normal, normalgl, normaldx, nor, nrm                   shading from the height
arm         arm (Poly Haven: R = occlusion, G = roughness, B = metal)  —
=========== ===================================================== ==========================

Formats: PNG / JPEG / TIFF through imageio (8- and 16-bit, grey or RGB(A); alpha dropped) —
except 16-bit *colour* PNGs, which Pillow truncates to 8 bits: those go through Mitsuba's
``Bitmap`` when installed (else 8 bits and a warning); OpenEXR through Mitsuba's ``Bitmap`` or
the ``OpenEXR`` package when installed (otherwise a :class:`PbrLoadError` says how to
convert). Integer colour maps are decoded from sRGB to
linear; float (EXR) colour maps are taken as linear already; all other maps are linear data.
Grey maps stored as RGB use the channel mean. Maps whose resolution differs from the albedo's
are resampled to it (bilinear, anti-aliased) with a warning.

Normal maps: +x = u (image right). ``normal_convention="auto"`` reads ``gl``/``dx`` from the
name and otherwise assumes **OpenGL** (what ambientCG ``NormalGL``, Poly Haven ``nor_gl`` and
MatSynth ship): green points to the *top* of the image, i.e. toward row 0 = −v in our frame,
so green is negated; DirectX maps (green toward the bottom = +v) are used as they are.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from .errors import PbrLoadError
from .pbr import PbrMaterial, srgb_to_linear

log = logging.getLogger(__name__)

ROLE_TOKENS: dict[str, tuple[str, ...]] = {
    "albedo": ("basecolor", "albedo", "color", "col", "diffuse", "diff"),
    "height": ("height", "displacement", "disp"),
    "roughness": ("roughness", "rough"),
    "metallic": ("metallic", "metalness", "metal"),
    "normal": ("normal", "normalgl", "normaldx", "nor", "nrm"),
    "arm": ("arm",),
}
"""Name tokens of each role, most specific first."""

EXTENSIONS = (".png", ".exr", ".tif", ".tiff", ".jpg", ".jpeg")
"""Readable extensions, preferred first when a role has several files (lossless, deep first)."""

SKIP_TOKEN = re.compile(r"^(\d+k|\d+px|png|jpe?g|exr|tiff?|gl|dx|opengl|directx|\d+)$")

DEFAULT_HEIGHT_SCALE = 0.03
"""Displacement of height 1 in UV units when the user gives none (texture sets rarely say):
3 % of the tile width."""
DEFAULT_ROUGHNESS = 0.5
"""Roughness used when a set has neither a roughness nor an ARM map."""
DEFAULT_METALLIC = 0.0
"""Metalness used when a set has neither a metal nor an ARM map (most materials are not)."""
NORMAL_CONVENTIONS = ("auto", "opengl", "directx")


def find_pbr_maps(directory: str | Path) -> dict[str, Path]:
    """The file chosen for each recognized role in ``directory`` (see the module table)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PbrLoadError(f"{directory}: not a directory of PBR texture maps")
    found: dict[str, list[tuple[int, int, Path]]] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        role, rank = _role_of(path)
        if role is not None:
            ext_rank = EXTENSIONS.index(path.suffix.lower())
            # OpenGL normal maps before DirectX ones of equal rank (Poly Haven ships nor_gl and nor_dx)
            is_dx = role == "normal" and _convention_of(path) == "directx"
            found.setdefault(role, []).append((rank, is_dx, ext_rank, path))
    chosen = {}
    for role, cands in found.items():
        cands.sort()
        chosen[role] = cands[0][-1]
        if len(cands) > 1:
            log.info("%s: %s map %s chosen over %s", directory, role, cands[0][-1].name,
                     [c[-1].name for c in cands[1:]])
    return chosen


def load_pbr_maps(directory: str | Path, *, name: str | None = None,
                  height_scale: float = DEFAULT_HEIGHT_SCALE,
                  normal_convention: str = "auto", allow_flat: bool = False) -> PbrMaterial:
    """Load a downloaded texture set into a :class:`PbrMaterial`.

    Args:
        directory: folder holding the set's images.
        name: material name (default: the folder's name).
        height_scale: displacement of height 1 in UV units (texture sets rarely say; default
            :data:`DEFAULT_HEIGHT_SCALE`).
        normal_convention: ``"auto"``, ``"opengl"`` or ``"directx"`` (module docstring).
        allow_flat: accept a set without a height map (flat, no parallax) instead of failing.

    The file used for each role is logged at INFO (and recorded in ``meta["files"]``).

    Raises:
        PbrLoadError: missing directory / albedo / height, unreadable file, non-square albedo.
    """
    if normal_convention not in NORMAL_CONVENTIONS:
        raise PbrLoadError(f"normal_convention must be one of {NORMAL_CONVENTIONS}, got "
                           f"{normal_convention!r}")
    directory = Path(directory)
    maps = find_pbr_maps(directory)
    for role, path in sorted(maps.items()):
        log.info("%s: %s map %s", directory.name, role, path.name)
    if "albedo" not in maps:
        raise PbrLoadError(f"{directory}: no albedo map (expected a file named with one of "
                           f"{ROLE_TOKENS['albedo']}); recognized: {_describe(maps)}")
    albedo_raw, encoded = _read(maps["albedo"])
    if albedo_raw.shape[0] != albedo_raw.shape[1]:
        raise PbrLoadError(f"{maps['albedo']}: albedo is {albedo_raw.shape[1]}x"
                           f"{albedo_raw.shape[0]}; square texture tiles are required (crop it)")
    res = albedo_raw.shape[0]
    albedo = _channels(albedo_raw, 3, maps["albedo"])
    if encoded:  # 8/16-bit colour is sRGB-encoded; float (EXR) colour is linear already
        albedo = srgb_to_linear(albedo)
    meta = {"source": str(directory), "files": {k: v.name for k, v in maps.items()}}

    def grey(role: str) -> np.ndarray:
        return _fit(_channels(read_image(maps[role]), 1, maps[role]), res, maps[role])

    if "height" in maps:
        height = grey("height")
        lo, hi = float(height.min()), float(height.max())
        if lo < 0.0 or hi > 1.0:
            warnings.warn(f"{maps['height']}: heights span [{lo:.4g}, {hi:.4g}]; rescaled to "
                          "[0, 1] (set height_scale for the physical depth)", stacklevel=2)
            height = (height - lo) / max(hi - lo, 1e-12)
            meta["height_range"] = [lo, hi]
    elif allow_flat:
        log.warning("%s: no height map; the material is flat (no parallax)", directory)
        height = np.zeros((res, res), dtype=np.float32)
    else:
        raise PbrLoadError(f"{directory}: no height map (expected a file named with one of "
                           f"{ROLE_TOKENS['height']}); parallax and self-shadowing need it. To load "
                           f"it flat: `neumat train --allow-flat` (config source.allow_flat = true; "
                           f"load_pbr_maps(allow_flat=True) in Python). Recognized: {_describe(maps)}")
    arm = (_fit(_channels(read_image(maps["arm"]), 3, maps["arm"]), res, maps["arm"])
           if "arm" in maps else None)
    roughness = _scalar_map(maps, "roughness", grey, arm, 1, DEFAULT_ROUGHNESS, res)
    metallic = _scalar_map(maps, "metallic", grey, arm, 2, DEFAULT_METALLIC, res)
    normal = None
    if "normal" in maps:
        path = maps["normal"]
        convention = (normal_convention if normal_convention != "auto"
                      else _convention_of(path))
        normal = decode_normal_map(_fit(_channels(read_image(path), 3, path), res, path),
                                   convention)
        meta["normal_convention"] = convention
        log.info("%s: normal map read as %s (green toward %s)", directory.name, convention,
                 "the image top" if convention == "opengl" else "the image bottom")
    return PbrMaterial(
        name=name or directory.name, albedo=np.clip(albedo, 0, 1), height=np.clip(height, 0, 1),
        roughness=np.clip(roughness, 0, 1), metallic=np.clip(metallic, 0, 1),
        height_scale=height_scale, normal=normal, meta=meta)


def decode_normal_map(rgb: np.ndarray, convention: str) -> np.ndarray:
    """[R, R, 3] unit normals (+x = u, +y = v, z > 0) from an encoded map with values in [0, 1]
    (``n = 2·rgb - 1``; ``"opengl"`` negates green). z is clamped to >= 1e-3 first so that
    quantization never yields a normal at or below the horizon."""
    if convention not in ("opengl", "directx"):
        raise PbrLoadError(f"normal convention must be 'opengl' or 'directx', got {convention!r}")
    n = 2.0 * np.asarray(rgb, dtype=np.float64) - 1.0
    if convention == "opengl":
        n[..., 1] = -n[..., 1]
    n[..., 2] = np.maximum(n[..., 2], 1e-3)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as float32 [H, W] or [H, W, C]: integers scaled to [0, 1] by their bit
    depth (8 or 16), floats as stored. Raises :class:`PbrLoadError` naming the file."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[np.ndarray, bool]:
    """(pixels as in :func:`read_image`, whether the file stored integers)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise PbrLoadError(f"{path}: cannot open ({e})") from e
    if magic == b"\x76\x2f\x31\x01":
        return _read_exr(path)
    if magic == b"\x89PNG" and _png_is_16bit_colour(path):
        return _read_png16_colour(path)
    import imageio.v3 as iio
    try:
        img = np.asarray(iio.imread(path, plugin=_plugin(path)))
    except Exception as e:  # imageio raises many types for foreign or broken files
        raise PbrLoadError(f"{path}: not a readable PNG/JPEG/TIFF image ({e})") from e
    return _normalize(img, path)


def _normalize(img: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    elif img.dtype == np.bool_:
        out = img.astype(np.float32)
    elif np.issubdtype(img.dtype, np.integer):
        if img.min() < 0 or img.max() > 65535:
            raise PbrLoadError(f"{path}: integer pixels outside 0..65535; save it as 8/16-bit")
        out = img.astype(np.float32) / (255.0 if img.max() <= 255 else 65535.0)
    elif np.issubdtype(img.dtype, np.floating):
        out = img.astype(np.float32)
    else:
        raise PbrLoadError(f"{path}: unsupported pixel type {img.dtype}")
    if out.ndim not in (2, 3) or not np.all(np.isfinite(out)):
        raise PbrLoadError(f"{path}: expected a 2D grey or colour image of finite values, got "
                           f"shape {list(out.shape)}")
    return out, not np.issubdtype(img.dtype, np.floating)


def _read_exr(path: Path) -> tuple[np.ndarray, bool]:
    try:
        import mitsuba as mi
    except ImportError:
        mi = None
    if mi is not None:
        if mi.variant() is None:
            mi.set_variant("scalar_rgb")
        try:
            return _normalize(np.array(mi.Bitmap(str(path)), dtype=np.float32), path)
        except RuntimeError as e:
            raise PbrLoadError(f"{path}: unreadable OpenEXR file ({e})") from e
    try:
        import OpenEXR
    except ImportError:
        raise PbrLoadError(
            f"{path}: OpenEXR file but no EXR reader is installed; `pip install mitsuba` or "
            "`pip install openexr`, or convert it to a 16-bit PNG (e.g. `oiiotool in.exr -d "
            "uint16 -o out.png`)") from None
    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            key = "RGB" if "RGB" in channels else next(iter(channels))
            return _normalize(np.asarray(channels[key].pixels, dtype=np.float32), path)
    except Exception as e:  # the OpenEXR binding raises plain exceptions of several types
        raise PbrLoadError(f"{path}: unreadable OpenEXR file ({e})") from e


def _plugin(path: Path) -> str:
    """The imageio plugin for a file: tifffile for TIFF (float and 16-bit), Pillow otherwise."""
    return "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "pillow"


def _png_is_16bit_colour(path: Path) -> bool:
    """IHDR says 16 bits per sample and an RGB / RGBA colour type (2 or 6)."""
    with open(path, "rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 6)


def _read_png16_colour(path: Path) -> tuple[np.ndarray, bool]:
    """16-bit RGB(A) PNG: Pillow (behind imageio) reduces these to 8 bits, so use Mitsuba's
    reader when installed; otherwise read at 8 bits with a warning."""
    try:
        import mitsuba as mi
    except ImportError:
        warnings.warn(f"{path}: 16-bit colour PNG read at 8-bit precision (Pillow's limit); "
                      "`pip install mitsuba` to keep 16 bits, or save it as 16-bit TIFF",
                      stacklevel=4)
        import imageio.v3 as iio
        return _normalize(np.asarray(iio.imread(path, plugin="pillow")), path)
    if mi.variant() is None:
        mi.set_variant("scalar_rgb")
    return _normalize(np.array(mi.Bitmap(str(path))), path)


def _channels(img: np.ndarray, want: int, path: Path) -> np.ndarray:
    """Drop alpha; grey (want=1): mean of RGB; colour (want=3): replicate grey."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        img = img[..., : img.shape[2] - 1]
    if want == 1:
        return img if img.ndim == 2 else img.mean(axis=2)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] != 3:
        raise PbrLoadError(f"{path}: expected 1, 3 or 4 channels, got {img.shape[2]}")
    return img


def _fit(img: np.ndarray, res: int, path: Path) -> np.ndarray:
    """Resample to res×res (with a warning) when the map's size differs from the albedo's."""
    if img.shape[:2] == (res, res):
        return img
    warnings.warn(f"{path}: {img.shape[1]}x{img.shape[0]} resampled to the albedo's "
                  f"{res}x{res}", stacklevel=3)
    from skimage.transform import resize
    shape = (res, res) + img.shape[2:]
    return resize(img, shape, order=1, anti_aliasing=img.shape[0] > res,
                  mode="wrap").astype(np.float32)


def _scalar_map(maps, role, grey, arm, arm_channel, default, res) -> np.ndarray:
    if role in maps:
        return grey(role)
    if arm is not None:
        log.info("%s from the ARM map's %s channel", role, "RGB"[arm_channel])
        return arm[..., arm_channel]
    log.info("no %s map; using the constant %s", role, default)
    return np.full((res, res), default, dtype=np.float32)


def _role_of(path: Path) -> tuple[str | None, int]:
    """(role, token rank) of a file from its name; (None, 0) if it has no role token."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", path.stem.lower()) if t]
    for token in reversed(tokens):
        if SKIP_TOKEN.match(token):
            continue
        for role, names in ROLE_TOKENS.items():
            if token in names:
                return role, names.index(token)
        break  # the last meaningful token names the role, or the file has none
    return None, 0


def _convention_of(path: Path) -> str:
    tokens = set(re.split(r"[^a-z0-9]+", path.stem.lower()))
    if tokens & {"dx", "directx", "normaldx"}:
        return "directx"
    return "opengl"


def _describe(maps: dict[str, Path]) -> str:
    return ", ".join(f"{k}={v.name}" for k, v in sorted(maps.items())) or "no maps"
