"""neumat.material: kind declarations the renderer and viewer ask instead of testing
``bundle.kind``, and the package's promise to stay torch- and device-free."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from neumat.bundle import NEUMIP, TRIPLE_PLANE, make_random_bundle
from neumat.material import MaterialKind, MaterialKindError, kind_of, register_kind
from neumat.material.kinds import NEUMIP_KIND, TRIPLE_PLANE_KIND


def test01_declarations_of_the_shipped_kinds():
    bundle = make_random_bundle(np.random.default_rng(0), u_res=8, channels=4)
    kind = kind_of(bundle)
    assert kind is TRIPLE_PLANE_KIND and kind.name == TRIPLE_PLANE
    assert kind.height_tracing and kind.synthesis and kind.precisions[0] == "int8"
    assert kind.load_pass().__name__ == "InferPass" and kind.load_reference().__name__ == "render_int8"
    assert NEUMIP_KIND.name == NEUMIP and not NEUMIP_KIND.height_tracing and not NEUMIP_KIND.synthesis
    assert NEUMIP_KIND.load_pass().__name__ == "NeuMipPass" and "offset" in NEUMIP_KIND.extra_aovs


def test02_unknown_kinds_and_registration():
    class Toy:
        kind = "toy_unregistered"

    with pytest.raises(MaterialKindError, match="no material kind 'toy_unregistered'.*neumip, .*triple_plane"):
        kind_of(Toy())
    toy = register_kind(MaterialKind("toy_unregistered", "neumat.render.passes.infer:InferPass",
                                     "neumat.material.triple_plane:render_int8", height_tracing=False,
                                     synthesis=False, precisions=("int8",)))
    try:
        assert kind_of(Toy()) is toy
    finally:
        from neumat.material import kinds

        del kinds._KINDS["toy_unregistered"]


def test03_material_package_imports_no_torch_and_no_device():
    code = ("import sys, neumat.material, neumat.material.triple_plane, neumat.material.neumip, neumat.metrics; "
            "bad = [m for m in ('torch', 'slangpy', 'neumat.render') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
