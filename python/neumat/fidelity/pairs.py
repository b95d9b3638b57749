"""The suite's fixed held-out light/view pairs, covering the whole hemisphere.

Angles in degrees in the material's local frame (+x = u, +y = v, +z = macro normal): θ from
+z, φ from +x toward +y; ωi points toward the light, ωo toward the camera (both away from the
surface). No pair lies on a training grid on purpose: training sources draw directions at
random (point sampling) or on their own grid, so these measure what a renderer asks of a
material — values between and beyond the training directions.

============== ========= ========= ===========================================================
name           θi, φi    θo, φo    why
============== ========= ========= ===========================================================
head_on        0, 0      0, 0      light and view along the normal (the top of the hemisphere)
head_on_view   45, 30    0, 0      camera straight above, oblique light
head_on_light  0, 0      50, 135   light straight above, oblique camera
grazing_view   40, 20    75, 200   camera at 75°: parallax, masking, foreshortened texture
grazing_light  78, 110   30, 300   light at 78°: long self-shadows
mirror         45, 60    45, 240   exact mirror configuration (θh = 0): peak of the specular lobe
near_mirror    35, 10    35.5, 190.5  ≈0.5° off mirror: continuity around θh = 0
grazing_mirror 72, 45    72, 225   mirror at grazing angles (Fresnel-heavy, masking)
back_scatter   55, 130   55, 130   ωi = ωo: retro-reflection, no visible shadows
oblique_a      60, 0     20, 90    generic oblique pairs at different azimuths
oblique_b      25, 250   65, 160
oblique_c      30, 330   50, 40
============== ========= ========= ===========================================================

They are the held-out pairs of point-sampled training (:data:`neumat.data.points.HELDOUT_PAIRS`,
one list): the trainer's and ``neumat eval``'s held-out figures and the suite's rendered
figures are measured at the same light/view pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.directions import spherical_to_vector
from ..data.errors import DataError
from ..data.points import HELDOUT_PAIRS


@dataclass(frozen=True)
class Pair:
    """One held-out light/view configuration (angles in degrees)."""

    name: str
    theta_i: float
    phi_i: float
    theta_o: float
    phi_o: float

    @property
    def wi(self) -> np.ndarray:
        """[3] float64 unit vector toward the light."""
        return direction(self.theta_i, self.phi_i)

    @property
    def wo(self) -> np.ndarray:
        """[3] float64 unit vector toward the camera."""
        return direction(self.theta_o, self.phi_o)

    def angles(self) -> dict[str, float]:
        """``{theta_i, phi_i, theta_o, phi_o}`` in degrees (for reports)."""
        return {"theta_i": self.theta_i, "phi_i": self.phi_i, "theta_o": self.theta_o,
                "phi_o": self.phi_o}


PAIRS: tuple[Pair, ...] = tuple(Pair(name, *light, *view) for name, light, view in HELDOUT_PAIRS)
"""The suite's pairs, in report order (module docstring table)."""


def direction(theta_deg: float, phi_deg: float) -> np.ndarray:
    """[3] float64 unit vector at polar angle θ (from +z) and azimuth φ (from +x toward +y)."""
    return np.asarray(spherical_to_vector(np.radians(theta_deg), np.radians(phi_deg)), np.float64)


def select_pairs(names: str | None) -> list[Pair]:
    """The pairs named in a comma-separated list (None or "": all of :data:`PAIRS`).

    Raises:
        DataError: an unknown name (the message lists the valid ones).
    """
    if not names:
        return list(PAIRS)
    by_name = {p.name: p for p in PAIRS}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise DataError(f"unknown fidelity pair(s) {unknown}; choose from {list(by_name)}")
    return [by_name[n] for n in wanted]
