"""Random unit directions for tests."""

import numpy as np


def upper_hemisphere(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 [n, 3] random unit vectors with z >= ~0.05 (away from the horizon)."""
    w = rng.normal(size=(n, 3))
    w[:, 2] = np.abs(w[:, 2]) + 0.05
    return (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)
