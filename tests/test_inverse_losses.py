"""MVInverse losses (neumat.inverse.losses) against hand-computed values."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from neumat.inverse.batch import InverseBatch  # noqa: E402
from neumat.inverse.intrinsics import Intrinsic  # noqa: E402
from neumat.inverse.losses import (albedo_scale, cosine_normal_loss, map_loss, msg_loss, mse_loss,  # noqa: E402
                                   relative_mse, reliable_albedo, scale_invariant_mse, total_loss)


def _map(rows: list[list[float]]) -> torch.Tensor:
    """A one-channel map [1, 1, H, W]."""
    return torch.tensor(rows, dtype=torch.float64)[None, None]


def test01_mse_counts_only_masked_pixels():
    pred, target = _map([[1, 2], [3, 4]]), torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    full = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    assert float(mse_loss(pred, target, full)) == pytest.approx((1 + 4 + 9 + 16) / 4)
    mask = full.clone()
    mask[0, 0, 1, 1] = False
    assert float(mse_loss(pred, target, mask)) == pytest.approx((1 + 4 + 9) / 3)
    assert float(mse_loss(pred, target, torch.zeros_like(mask))) == 0.0


def test02_multi_scale_gradient_hand_values():
    # residual r[i, j] = 4 i + j on 4x4: scale 0: 12 horizontal differences of 1, 12 vertical of 4
    # -> (12 + 48) / 24 = 2.5; scale 1 (every 2nd pixel: [[0, 2], [8, 10]]): (2 + 2 + 8 + 8) / 4 = 5
    r = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    zero, full = torch.zeros_like(r), torch.ones_like(r, dtype=torch.bool)
    assert float(msg_loss(r, zero, full, scales=1)) == pytest.approx(2.5)
    assert float(msg_loss(r, zero, full, scales=2)) == pytest.approx(7.5)
    # a masked pixel removes the differences it takes part in: 2x2 [[1, 2], [3, 4]] without (1, 1)
    # leaves |2 - 1| and |3 - 1| -> 3 / 2
    mask = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    mask[0, 0, 1, 1] = False
    assert float(msg_loss(_map([[1, 2], [3, 4]]), torch.zeros(1, 1, 2, 2, dtype=torch.float64), mask, 1)) == 1.5
    # a constant offset has no gradient
    assert float(msg_loss(r + 3.0, r, full, scales=4)) == 0.0


def test03_albedo_scale_least_squares():
    # channel 0: p = [1, 2], t = [2, 4] -> s = (2 + 8) / (1 + 4) = 2, exact fit;
    # channel 1: p = [1, 1], t = [1, 3] -> s = 4 / 2 = 2, residuals 1 and 1 -> SI-MSE (0 + 0 + 1 + 1) / 4
    pred = torch.tensor([[[[1.0, 2.0]], [[1.0, 1.0]]]], dtype=torch.float64)  # [1, 2, 1, 2]
    target = torch.tensor([[[[2.0, 4.0]], [[1.0, 3.0]]]], dtype=torch.float64)
    mask = torch.ones(1, 1, 1, 2, dtype=torch.bool)
    assert albedo_scale(pred, target, mask).flatten().tolist() == pytest.approx([2.0, 2.0])
    assert float(scale_invariant_mse(pred, target, mask)) == pytest.approx(0.5)


def test04_scale_invariant_albedo_ignores_per_channel_scale():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 3, 6, 5, generator=gen), torch.rand(4, 3, 6, 5, generator=gen)
    mask = torch.rand(4, 1, 6, 5, generator=gen) > 0.3
    scale = torch.tensor([3.0, 0.25, 1.7])[None, :, None, None] * torch.tensor([1.0, 2.0, 0.5, 4.0])[:, None, None, None]
    for si in (scale_invariant_mse, lambda p, t, m: map_loss(Intrinsic.ALBEDO, p, t, m, scale_invariant=True)):
        assert float(si(pred * scale, target, mask)) == pytest.approx(float(si(pred, target, mask)), rel=1e-5)
    assert float(mse_loss(pred * scale, target, mask)) != pytest.approx(float(mse_loss(pred, target, mask)), rel=1e-2)


def test05_unreliable_albedo_mask():
    pixels = [[0.005, 0.005, 0.005], [0.995, 0.995, 0.995], [0.9, 0.005, 0.005], [0.5, 0.5, 0.5],
              [0.995, 0.995, 0.5], [0.0, 0.0, 0.0]]
    target = torch.tensor(pixels).T.reshape(1, 3, 1, 6)
    assert reliable_albedo(target).flatten().tolist() == [False, False, True, True, True, False]


def test06_total_loss_drops_unreliable_albedo_pixels():
    # 1 scene, 2 views, 1x2 pixels: the second pixel of view 0 is near-black (masked); plain MSE
    # over the other three pixels, 3 channels each; flat maps have no gradient term
    target = torch.full((1, 2, 3, 1, 2), 0.5)
    target[0, 0, :, 0, 1] = 0.004
    pred = torch.full((1, 2, 3, 1, 2), 0.5)
    pred[0, 0, :, 0, 1] = 0.9  # would dominate if it counted
    pred[0, 1, :, 0, 0] = 0.7  # 0.2 off on one counted pixel
    batch = InverseBatch(torch.zeros(1, 2, 3, 1, 2), {Intrinsic.ALBEDO: target})
    loss, parts = total_loss({Intrinsic.ALBEDO: pred}, batch, {Intrinsic.ALBEDO: 1.0}, scale_invariant_albedo=False,
                             scales=1)
    mse = (3 * 0.2 ** 2) / (3 * 3)
    gradient = (3 * 0.2) / (3 * 1)  # view 1's one horizontal difference of 0.2 per channel; view 0's pair is masked
    assert float(loss) == pytest.approx(mse + gradient)
    assert parts == {"albedo": pytest.approx(mse + gradient)}
    # a set's own mask composes with the range mask
    batch.masks[Intrinsic.ALBEDO] = torch.tensor([True, True, False, True]).reshape(1, 2, 1, 1, 2)
    loss, _ = total_loss({Intrinsic.ALBEDO: pred}, batch, {Intrinsic.ALBEDO: 1.0}, False, scales=1)
    assert float(loss) == pytest.approx(0.0)


def test07_cosine_normal_loss():
    n = torch.nn.functional.normalize(torch.tensor([0.3, -0.2, -1.0]), dim=0).reshape(1, 3, 1, 1).expand(2, 3, 4, 4)
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    assert float(cosine_normal_loss(n, n, mask)) == pytest.approx(0.0, abs=1e-6)  # float32: 1 ulp of 1
    assert float(cosine_normal_loss(2.5 * n, n, mask)) == pytest.approx(0.0, abs=1e-6)  # direction only
    assert float(cosine_normal_loss(-n, n, mask)) == pytest.approx(2.0)
    x, z = torch.tensor([1.0, 0, 0]).reshape(1, 3, 1, 1), torch.tensor([0, 0, -1.0]).reshape(1, 3, 1, 1)
    assert float(cosine_normal_loss(x, z, torch.ones(1, 1, 1, 1, dtype=torch.bool))) == pytest.approx(1.0)


def test08_weighted_sum_over_supervised_maps():
    b = InverseBatch(torch.zeros(1, 2, 3, 2, 2), {Intrinsic.METALLIC: torch.zeros(1, 2, 1, 2, 2),
                                                   Intrinsic.NORMAL: torch.tensor([0, 0, -1.0]).reshape(1, 1, 3, 1, 1)
                                                   .expand(1, 2, 3, 2, 2)})
    pred = {Intrinsic.METALLIC: torch.full((1, 2, 1, 2, 2), 0.5),
            Intrinsic.NORMAL: torch.tensor([1.0, 0, 0]).reshape(1, 1, 3, 1, 1).expand(1, 2, 3, 2, 2),
            Intrinsic.ALBEDO: torch.zeros(1, 2, 3, 2, 2)}  # predicted but not supervised: no term
    weights = {Intrinsic.METALLIC: 2.0, Intrinsic.NORMAL: 0.5}
    loss, parts = total_loss(pred, b, weights, True)
    assert parts == {"metallic": pytest.approx(0.25), "normal": pytest.approx(1.0)}
    assert float(loss) == pytest.approx(2.0 * 0.25 + 0.5 * 1.0)
    with pytest.raises(ValueError, match="supervises no map"):
        total_loss(pred, InverseBatch(b.images), weights, True)


def test09_relative_mse_divides_each_view_by_its_variance():
    # view 0: target [0, 2] (variance 1), error 1 everywhere -> 1 / (1 + f); view 1: target [1, 1]
    # (variance 0), error 0.1 -> 0.01 / f; the mean over the two views; the masked pixel is ignored
    target = torch.tensor([[[[0.0, 2.0, 9.0]]], [[[1.0, 1.0, 9.0]]]], dtype=torch.float64)
    pred = target + torch.tensor([1.0, 0.1], dtype=torch.float64)[:, None, None, None]
    mask = torch.tensor([True, True, False]).reshape(1, 1, 1, 3).expand(2, 1, 1, 3)
    f = 0.01
    assert float(relative_mse(pred, target, mask, floor=f)) == pytest.approx((1 / (1 + f) + 0.01 / f) / 2)
    # the view's mean colour scores 1 (up to the floor) whatever the view's contrast
    rng = torch.Generator().manual_seed(0)
    t = torch.rand(3, 3, 5, 4, generator=rng) * torch.tensor([0.01, 0.1, 1.0])[:, None, None, None]
    full = torch.ones(3, 1, 5, 4, dtype=torch.bool)
    assert float(relative_mse(t.mean(dim=(-2, -1), keepdim=True).expand_as(t), t, full, floor=0.0)) == pytest.approx(1.0)
