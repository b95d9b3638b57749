"""The trainer's data loss (neumat.train.data_loss): the torch decode equals the bundle's numpy
decode, L1 alone fits the median of targets a model cannot tell apart, and the relative L2
term moves the fit to their mean (the dark bias it exists to remove)."""

import numpy as np
import pytest
import torch

from neumat.output_encoding import OutputEncoding
from neumat.train.data_loss import DataLoss, decode_torch

ENCODINGS = [OutputEncoding("log-v1", (0.05, 0.1, 0.2), 12.0), OutputEncoding("reinhard-v1", (0.05, 0.1, 0.2)),
             OutputEncoding.linear(3.0)]


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.id)
def test01_torch_decode_matches_bundle_decode(encoding):
    y = np.random.default_rng(0).random((4096, 3), dtype=np.float32)
    y[0] = 0.0
    y[1] = 1.0
    ref = encoding.decode(y)
    got = decode_torch(encoding, torch.from_numpy(y)).numpy()
    # exp2 is not correctly rounded: a few ulp of 2^(k y), i.e. of the scale near y = 0
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-6 * max(encoding.scale))


def fit_constant(encoding: OutputEncoding, targets: np.ndarray, relative_l2: float, steps: int = 3000) -> float:
    """The decoded value of one constant prediction fitted to ``targets`` (values, one channel
    repeated over three) under :class:`DataLoss`."""
    loss = DataLoss(encoding, relative_l2)
    t = torch.from_numpy(encoding.encode(np.repeat(targets[:, None], 3, axis=1).astype(np.float32)))
    y = torch.full((1, 3), 0.3, requires_grad=True)
    opt = torch.optim.Adam([y], lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss(y.expand_as(t), t).backward()
        opt.step()
        with torch.no_grad():
            y.clamp_(0.0, 1.0)
    return float(decode_torch(encoding, y.detach())[0, 0])


def test02_l1_fits_the_median_relative_l2_the_mean():
    # One feature texel's targets at a grazing mirror configuration: most samples off the
    # lobe, a few on it (values in units of the encoding scale 0.1).
    rng = np.random.default_rng(1)
    targets = np.where(rng.random(2000) < 0.15, rng.uniform(2.0, 4.0, 2000), rng.uniform(0.05, 0.15, 2000))
    encoding = OutputEncoding("log-v1", (0.1, 0.1, 0.1), 12.0)
    mean, median = float(targets.mean()), float(np.median(targets))
    l1 = fit_constant(encoding, targets, 0.0)
    both = fit_constant(encoding, targets, 10.0)
    assert abs(l1 - median) < 0.05 * median, (l1, median)
    assert abs(both - mean) < 0.1 * mean, (both, mean)  # L1 pulls a little toward the median
    assert mean > 3 * median


def test03_zero_weight_is_the_l1_loss_and_weights_are_checked():
    encoding = ENCODINGS[0]
    pred, target = torch.rand(64, 3), torch.rand(64, 3)
    assert float(DataLoss(encoding, 0.0)(pred, target)) == pytest.approx(float((pred - target).abs().sum()))
    assert float(DataLoss(encoding, 1.0)(pred, target)) > float(DataLoss(encoding, 0.0)(pred, target))
    with pytest.raises(ValueError, match="relative_l2"):
        DataLoss(encoding, -1.0)
