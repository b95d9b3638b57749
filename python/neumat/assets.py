"""Where the repository's shipped assets are: the default material, the demo mesh.

They live in the top-level ``assets/`` folder of a source checkout (``make demo`` and the
viewer use them); a wheel install has none, so callers check :meth:`Path.is_file` and fall
back to built-in shapes or ask for a path.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
"""The repository's ``assets/`` folder (materials, meshes, configs)."""
DEFAULT_MATERIAL = ASSETS / "materials" / "leather.nmat"
"""The shipped default material (``make demo``, ``neumat view``, ``neumat bench frames``)."""
DEMO_MESH = ASSETS / "meshes" / "draped_cloth.obj"
"""The demo's draped cloth mesh."""
