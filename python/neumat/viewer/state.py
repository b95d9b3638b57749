""":class:`ViewerState`: everything the viewer's user (or a script) can change, and the
``Renderer.render`` call it stands for.

The state is plain data: the UI, the mouse handling and scripted events all edit it, and
:class:`~neumat.viewer.app.App` renders whatever it says. :meth:`ViewerState.render_kwargs`
is the single place where the state becomes renderer options, so a test can render the same
frame with its own :class:`~neumat.render.renderer.Renderer`.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

from ..render import renderer as renderer_module
from ..render.passes import infer as infer_pass
from ..render.passes.compose import TONEMAPS
from ..render.passes.infer_native import AUTO, INFER_BACKEND_NAMES
from ..render.renderer import Renderer
from .camera_control import LightControl, OrbitCamera
from .debug_views import DEBUG_VIEWS

KNOWN_RENDER_OPTIONS = ("camera", "lights", "hf", "synthesis", "fp32", "precision", "exposure", "tonemap",
                        "background", "aovs", "debug", "infer_backend")
"""``Renderer.render`` parameters the viewer sets explicitly."""
HAS_PRECISION = "precision" in inspect.signature(Renderer.render).parameters
"""Whether this Renderer takes ``precision=`` (else only ``fp32=``)."""
PRECISIONS = getattr(infer_pass, "PRECISIONS", ("int8", "fp32")) if HAS_PRECISION else ("int8", "fp32")
"""MLP variants the precision menu offers."""
MAX_LIGHTS = getattr(renderer_module, "MAX_LIGHTS", 1)
"""Lights one frame can shade (1 when the Renderer shades only the first)."""


def extra_bool_options() -> dict[str, bool]:
    """Boolean ``Renderer.render`` parameters the viewer does not know by name (e.g. options
    added later such as ``shadows``), with their defaults: the UI shows a checkbox for each."""
    params = inspect.signature(Renderer.render).parameters
    return {name: p.default for name, p in params.items()
            if name not in KNOWN_RENDER_OPTIONS and isinstance(p.default, bool)}


@dataclass
class ViewerState:
    """The viewer's settings (one frame's worth of renderer options plus display choices)."""

    material: int = 0
    """Index into the viewer's loaded bundles."""
    mesh: str = "sphere"
    """Shape name (:data:`~neumat.render.renderer.SHAPES`) or mesh file path."""
    orbit: OrbitCamera = field(default_factory=OrbitCamera)
    lights: list[LightControl] = field(default_factory=lambda: [LightControl()])
    """1 .. :data:`MAX_LIGHTS` directional lights (the first one is :attr:`light`)."""
    hf: bool = True
    """Trace the bundle's height field."""
    synthesis: bool = True
    """ACF-guided synthesis of the U features."""
    precision: str = "int8"
    """MLP variant, one of :data:`PRECISIONS` (``fp32``: dequantized weights)."""
    infer_backend: str = AUTO
    """Where the infer pass's MLP runs, one of :data:`~neumat.render.passes.infer_native.INFER_BACKEND_NAMES`."""
    exposure: float = 0.0
    """Stops."""
    tonemap: str = "aces"
    """One of :data:`~neumat.render.passes.compose.TONEMAPS`."""
    extra: dict[str, bool] = field(default_factory=extra_bool_options)
    """Further boolean renderer options (see :func:`extra_bool_options`)."""
    view: str = "final"
    """What the viewport shows: one of :data:`~neumat.viewer.debug_views.DEBUG_VIEWS`."""
    feature_group: int = 0
    """``features`` view: channels 3k .. 3k+2 of the MLP input features."""
    diff_gain: float = 16.0
    """``int8_fp32_diff`` view: |INT8 − FP32| display gain."""
    render_scale: float = 1.0
    """Render resolution / viewport resolution (the image is stretched to the viewport)."""
    continuous: bool = False
    """Render every frame (for timing) instead of only when something changed."""

    def __post_init__(self) -> None:
        if self.tonemap not in TONEMAPS:
            raise ValueError(f"tonemap must be one of {sorted(TONEMAPS)}, got {self.tonemap!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.infer_backend not in INFER_BACKEND_NAMES:
            raise ValueError(f"infer_backend must be one of {list(INFER_BACKEND_NAMES)}, got {self.infer_backend!r}")
        if self.view not in DEBUG_VIEWS:
            raise ValueError(f"view must be one of {list(DEBUG_VIEWS)}, got {self.view!r}")

    def render_kwargs(self, width: int, height: int) -> dict:
        """Keyword arguments of ``Renderer.render`` for the final image of this state at
        ``width × height`` (camera, lights and techniques; no AOVs)."""
        mlp = {"precision": self.precision} if HAS_PRECISION else {"fp32": self.precision == "fp32"}
        return dict(camera=self.orbit.camera(width, height), lights=[x.light() for x in self.lights], hf=self.hf,
                    synthesis=self.synthesis, exposure=self.exposure, tonemap=self.tonemap, infer_backend=self.infer_backend,
                    **mlp, **self.extra)

    @property
    def light(self) -> LightControl:
        """The first light."""
        return self.lights[0]

    def snapshot(self) -> tuple:
        """A hashable value that changes whenever the rendered image would."""
        return (self.material, self.mesh, dataclasses.astuple(self.orbit), tuple(dataclasses.astuple(x) for x in self.lights),
                self.hf, self.synthesis, self.precision, self.infer_backend, self.exposure, self.tonemap,
                tuple(sorted(self.extra.items())), self.view, self.feature_group, self.diff_gain, self.render_scale)
