"""Analytic height maps shared by the height-field tests (hf_trace visibility, shadows)."""

import numpy as np

R = 16
"""Texels per side of the analytic maps."""


def sinusoid() -> np.ndarray:
    """float32 [R, R] in [0, 1]: sin along u times cos (double frequency) along v."""
    x = (np.arange(R) + 0.5) / R
    return (0.5 + 0.5 * np.sin(2 * np.pi * x)[None, :] * np.cos(4 * np.pi * x)[:, None]).astype(np.float32)


def steps() -> np.ndarray:
    """float32 [R, R] in [0, 1]: a raised band along v plus a half-height step in v."""
    h = np.zeros((R, R), np.float32)
    h[:, R // 4: R // 2] = 1.0
    h[R // 2:, :] += 0.5
    return np.clip(h, 0, 1)
