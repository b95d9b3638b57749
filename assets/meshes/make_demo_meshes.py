"""Regenerate the demo meshes of this folder (reproducible: closed-form shapes, no randomness).

    python assets/meshes/make_demo_meshes.py

* ``draped_cloth.obj``: :func:`neumat.render.shapes.draped_sheet` (32×32 quads, 2 UV repeats).
"""

from pathlib import Path

from neumat.render.shapes import draped_sheet, save_mesh

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    save_mesh(draped_sheet(size=2.0, segments=32, uv_repeat=2.0), HERE / "draped_cloth.obj")
