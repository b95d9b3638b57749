"""Drive the CUDA INT8 kernel once per instantiation (MW = 8, 16, 32) for compute-sanitizer
(scripts/gpu_check.sh runs it under memcheck, racecheck and synccheck): every output bit-exact
with numpy, the first network on a batch beyond the threads the grid holds, so each block runs
the grid-stride loop over several shared-memory tiles. Exit 1 on a mismatch."""

from __future__ import annotations

import sys

import numpy as np

from neumat.backends.cuda import CudaBackend
from neumat.quant import forward
from neumat.quant.testvectors import SHAPES, random_inputs, random_mlp


def main() -> int:
    rng = np.random.default_rng(0)
    failed = 0
    for name in ("triple_plane", "neumip_rgb", "widest"):
        mlp = random_mlp(SHAPES[name], rng)
        backend = CudaBackend(mlp)
        impl = backend._impl
        n = impl.resident_threads + 777 if name == "triple_plane" else 3 * impl.threads + 5
        x = random_inputs(mlp, n, rng)
        same = np.array_equal(backend(x).view(np.uint32), forward(mlp, x).view(np.uint32))
        print(f"{name}: N={n}, {impl.threads} threads/block, {impl.resident_threads} resident, "
              f"{impl.shared_bytes} B shared/block: {'bit-exact' if same else 'MISMATCH'}")
        failed += not same
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
