"""Captions of dataset videos from material metadata (VideoNeuMat seed §3.2).

The seed captions its renders with a vision-language model in two styles, mixed equally in
training: **material-only** (the captioner is told to describe intrinsic material attributes
only) and **filtered** (a free description, then every sentence holding a standalone lighting
word is removed). Without a captioner, both styles come from prompt templates filled with what
the material's metadata and maps say: its name (or a written description of the shipped
procedural ones), colour (from the mean albedo), finish (from the mean roughness and
metalness) and relief (from ``height_scale``). The filtered template describes the trajectory's
moving light and camera in its own sentences, which :func:`filter_lighting` then removes — the
same operation the seed applies to the captioner's free text.

With ``--captioner DIR`` both styles come instead from an image-to-text model loaded from a
local folder (:mod:`.captioner`), prompted the seed's two ways on a representative frame, its
free description passed through the same :func:`filter_lighting`.
"""

from __future__ import annotations

import re

import numpy as np

from ..data.pbr import PbrMaterial

DESCRIPTIONS = {
    "leather": "grained leather with domed cells between fine creases, wrinkles and small pores",
    "fabric": "plain-weave fabric whose dark blue warp threads cross over and under beige weft threads",
    "stone_tiles": "bevelled stone tiles laid in running bond, each tile slightly tilted, in rough recessed mortar",
    "brick": "a brick wall of rough fired bricks between deep mortar joints",
    "gravel": "loose gravel of small rounded pebbles packed together",
    "grass": "short dense grass blades growing in tufts",
}
"""Written descriptions of :data:`neumat.data.MATERIALS`, by name."""
LIGHTING_WORDS = ("light", "lights", "lighting", "lit", "illumination", "illuminated", "illuminating",
                  "shadow", "shadows", "highlight", "highlights", "reflection", "reflections")
"""Standalone words that make a sentence of a filtered caption go (case-insensitive)."""
MATERIAL_ONLY_TEMPLATE = "The video clip features a close-up view of {description}, {colour}, {finish}, {relief}."
FILTERED_TEMPLATE = ("The video clip features a close-up view of {description}. "
                     "A small light circles above the sample and then stays overhead. "
                     "The surface looks {colour}, {finish}. "
                     "The camera first looks straight down and then orbits around the sample. "
                     "Moving shadows and highlights reveal that it is {relief}.")
_LIGHTING = re.compile(r"(?<![\w-])(" + "|".join(LIGHTING_WORDS) + r")(?![\w-])", re.IGNORECASE)


def filter_lighting(text: str) -> str:
    """``text`` without the sentences that hold a standalone lighting word (:data:`LIGHTING_WORDS`;
    hyphenated compounds such as "light-brown" are not standalone)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(s for s in sentences if s and not _LIGHTING.search(s))


def material_attributes(material: PbrMaterial) -> dict[str, str]:
    """Words for the templates: ``description``, ``colour``, ``finish``, ``relief``."""
    name = material.name.split("_rot")[0]
    description = DESCRIPTIONS.get(name, f"a {name.replace('_', ' ')} material")
    albedo = material.albedo.reshape(-1, 3).mean(axis=0)
    lum = float(albedo @ np.array([0.2126, 0.7152, 0.0722]))
    tone = "dark" if lum < 0.08 else "light-toned" if lum > 0.4 else "mid-toned"
    hue = _hue_name(albedo)
    rough = float(material.roughness.mean())
    metal = float(material.metallic.mean())
    finish = ("metallic and " if metal > 0.5 else "") + ("matte" if rough > 0.7 else "satin" if rough > 0.4 else "glossy")
    relief = ("flat" if material.height_scale == 0 else "shallow in relief" if material.height_scale < 0.02
              else "deeply textured")
    return {"description": description, "colour": f"{tone} {hue}", "finish": finish, "relief": relief}


def template_captions(material: PbrMaterial) -> dict[str, str]:
    """{"material_only": …, "filtered": …} from the templates and :func:`material_attributes`."""
    words = material_attributes(material)
    return {"material_only": MATERIAL_ONLY_TEMPLATE.format(**words),
            "filtered": filter_lighting(FILTERED_TEMPLATE.format(**words))}


def _hue_name(rgb: np.ndarray) -> str:
    r, g, b = (float(x) for x in rgb)
    top, low = max(r, g, b), min(r, g, b)
    if top - low < 0.15 * max(top, 1e-6):
        return "grey"
    if r >= g and r >= b:
        return "brown" if g > 0.35 * r else "red"
    if g >= r and g >= b:
        return "green"
    return "blue"
