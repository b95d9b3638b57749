"""``compose`` pass: shade, tone map and encode (``shaders/compose.slang``; numpy reference
:func:`neumat.render.reference.pipeline.reference_compose`).

``radiance = shaded.rgb`` (the infer pass's sum over lights) where ``mask`` = 1 — or, for a
material pass that writes no ``shaded`` slot, ``btf.rgb · irradiance.rgb`` (one light) — else
``background`` (linear Rec.709; the BTF value already holds the cosine foreshortening and is
decoded by the bundle's output encoding).
Display: ``x = radiance · 2^exposure``, tone map (``"aces"``: Narkowicz 2015 fit of the ACES
RRT+ODT, ``x(2.51x + 0.03) / (x(2.43x + 0.59) + 0.14)``; ``"reinhard"``: ``x / (1 + x)``;
``"clamp"``: none), clamp to [0, 1], sRGB OETF, ``byte = floor(v · 255 + 0.5)``.

Slots:

==============  ========  ============================================================
slot            channels  meaning
==============  ========  ============================================================
``btf`` (in)    4 f32     from :mod:`.infer`
``irradiance``  4 f32     (in) from :mod:`.infer`
``mask`` (in)   1 f32     g-buffer mask
``shaded``      4 f32     optional input: radiance under all lights, from :mod:`.infer`
``radiance``    4 f32     (linear rgb radiance, 1), before exposure
``display``     1 i32     packed RGBA8 sRGB (r in the low byte, alpha 255)
==============  ========  ============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...slang_kernels import compute_kernel
from .base import MASK, RenderContext, RenderPass, Resource, SlotSpec
from .infer import BTF, IRRADIANCE, SHADED

RADIANCE = "radiance"
DISPLAY = "display"
SHADER = "compose.slang"
ENTRY = "compose"
TONEMAPS = {"clamp": 0, "reinhard": 1, "aces": 2}
"""Tone-map operators by name (shader ``toneMapOp``)."""
MAX_EXPOSURE_STOPS = 64.0
"""Largest |exposure|, stops: a factor of 2^±64 (1.8e19) already saturates or blackens any
radiance the passes produce, and stays well inside float32."""


@dataclass
class ComposeSettings:
    """Display settings of the compose pass."""

    background: tuple[float, float, float] = (0.02, 0.02, 0.025)
    """Linear Rec.709 radiance of pixels that miss the material."""
    exposure: float = 0.0
    """Exposure in stops (radiance × 2^exposure before tone mapping)."""
    tonemap: str = "aces"
    """One of :data:`TONEMAPS`."""

    def __post_init__(self) -> None:
        if self.tonemap not in TONEMAPS:
            raise ValueError(f"tonemap must be one of {sorted(TONEMAPS)}, got {self.tonemap!r}")
        if not (math.isfinite(self.exposure) and abs(self.exposure) <= MAX_EXPOSURE_STOPS):
            raise ValueError(f"exposure must be a finite number of stops in [-{MAX_EXPOSURE_STOPS:g}, "
                             f"{MAX_EXPOSURE_STOPS:g}], got {self.exposure!r}")


class ComposePass(RenderPass):
    """Radiance, background, exposure, tone map and sRGB encoding."""

    INPUTS = (BTF, IRRADIANCE, MASK)
    OUTPUTS = (RADIANCE, DISPLAY)

    def __init__(self, device, settings: ComposeSettings | None = None) -> None:
        self.device = device
        self.settings = settings or ComposeSettings()
        self.kernel = compute_kernel(device, SHADER, ENTRY)

    def reflect(self) -> dict[str, SlotSpec]:
        return {BTF: SlotSpec("float32", 4), IRRADIANCE: SlotSpec("float32", 4), MASK: SlotSpec("float32", 1),
                SHADED: SlotSpec("float32", 4), RADIANCE: SlotSpec("float32", 4), DISPLAY: SlotSpec("int32", 1)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        """Inputs: ``btf``, ``irradiance``, ``mask``, and ``shaded`` when the material pass writes it."""
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        shaded = inputs.get(SHADED)
        s = self.settings
        self.kernel.dispatch(
            thread_count=[ctx.width, ctx.height, 1], width=ctx.width, height=ctx.height,
            background=[float(x) for x in s.background], exposureScale=float(np.float32(2.0 ** s.exposure)),
            toneMapOp=TONEMAPS[s.tonemap], btf=inputs[BTF].buffer, irradiance=inputs[IRRADIANCE].buffer,
            mask=inputs[MASK].buffer, useShaded=int(shaded is not None),
            shaded=(shaded or inputs[BTF]).buffer, radiance=out[RADIANCE].buffer, display=out[DISPLAY].buffer,
        )
        return out


def unpack_display(display: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` sRGB from the ``display`` slot's int32 ``[H, W, 1]``."""
    d = np.ascontiguousarray(display[..., 0]).view(np.uint32)
    return np.stack([(d >> (8 * c)) & 0xFF for c in range(3)], axis=-1).astype(np.uint8)
