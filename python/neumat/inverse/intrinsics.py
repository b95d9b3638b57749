"""The five intrinsic maps MVInverse predicts per view (seed 002, §3.1, eq. 1), declared once.

Every other module asks :data:`SPECS` what a map is (channels, activation, value range, loss)
instead of branching on names. All maps are per pixel of the input view, at its resolution:

=============  ========  ==========================  =========================================
map            channels  range / activation          meaning
=============  ========  ==========================  =========================================
``albedo``     3         [0, 1], sigmoid             base colour, linear Rec.709 (as the
                                                     training sets store it)
``metallic``   1         [0, 1], sigmoid             metalness (0 dielectric, 1 metal)
``roughness``  1         [0, 1], sigmoid             perceptual roughness (GGX alpha = r²)
``normal``     3         unit length, tanh then      surface normal in the view's camera
                         L2-normalized               frame, OpenCV axes (+x right, +y down,
                                                     +z forward into the scene; a visible
                                                     surface has n_z < 0); the data loaders
                                                     convert every training set to it
``shading``    3         [0, 1], sigmoid             diffuse shading, linear RGB: the
                                                     incoming radiance integrated over the
                                                     upper hemisphere, scaled so that the
                                                     diffuse image = albedo · shading
                                                     (Hypersim's diffuse illumination)
=============  ========  ==========================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Intrinsic(str, Enum):
    """Names of the predicted maps (output keys of :class:`~.model.MVInverse`)."""

    ALBEDO = "albedo"
    METALLIC = "metallic"
    ROUGHNESS = "roughness"
    NORMAL = "normal"
    SHADING = "shading"


@dataclass(frozen=True)
class IntrinsicSpec:
    """What one intrinsic map is."""

    channels: int
    """Channels per pixel."""
    activation: str
    """Output activation of its head: ``"sigmoid"`` ([0, 1]) or ``"unit"`` (tanh, then
    L2-normalized over the channels: unit vectors)."""
    loss: str
    """Supervision (:mod:`.losses`): ``"mse+msg"`` (MSE + multi-scale gradient, eq. 2-3) or
    ``"cosine"`` (eq. 4)."""


SPECS: dict[Intrinsic, IntrinsicSpec] = {
    Intrinsic.ALBEDO: IntrinsicSpec(3, "sigmoid", "mse+msg"),
    Intrinsic.METALLIC: IntrinsicSpec(1, "sigmoid", "mse+msg"),
    Intrinsic.ROUGHNESS: IntrinsicSpec(1, "sigmoid", "mse+msg"),
    Intrinsic.NORMAL: IntrinsicSpec(3, "unit", "cosine"),
    Intrinsic.SHADING: IntrinsicSpec(3, "sigmoid", "mse+msg"),
}
"""Declaration of every map, in output order."""
