"""QAT in torch simulates the INT8 spec: the exported network reproduces the fake-quantized model."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QAT needs torch (pip install 'neumat[train]')")

from neumat.models.qat import QatMlp, QatMode, export_int8, fake_quantize  # noqa: E402
from neumat.quant import forward  # noqa: E402


def test01_fake_quantize_rounds_half_to_even_with_ste():
    x = torch.tensor([0.5, 1.5, 2.5, -2.5, 300.0], requires_grad=True)
    y = fake_quantize(x, torch.tensor(1.0), -127)
    assert y.tolist() == [0.0, 2.0, 2.0, -2.0, 127.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]  # no gradient where clamped


def _trained(widths, steps=200, seed=0):
    torch.manual_seed(seed)
    mlp = QatMlp(widths)
    x = torch.randn(2048, widths[0])
    target = torch.sigmoid(x[:, :3] * 2)
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for step in range(steps):
        mlp.set_mode(QatMode.OBSERVE if step < steps // 2 else QatMode.QUANTIZE)
        loss = (mlp(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mlp, x, target


def test02_export_matches_fake_quantized_forward():
    mlp, x, _ = _trained((24, 32, 32, 32, 3))
    mlp.eval()
    mlp.set_mode(QatMode.QUANTIZE)
    with torch.no_grad():
        fake = mlp(x).numpy()
    int8 = forward(export_int8(mlp), x.numpy())
    lsb = float(export_int8(mlp).multipliers()[-1])
    diff = np.abs(fake - int8)
    # float32 vs float64-derived multipliers may flip a rounding now and then (one step of
    # an activation); the bulk is identical to within float error.
    assert np.median(diff) < 1e-6
    assert np.mean(diff < 2 * lsb) > 0.99


def test03_quantized_training_fits_and_int8_follows():
    mlp, x, target = _trained((24, 32, 32, 32, 3), steps=400)
    mlp.eval()
    int8 = forward(export_int8(mlp), x.numpy())
    t = target.numpy()
    l1 = float(np.abs(int8 - t).mean())
    baseline = float(np.abs(t - np.median(t, axis=0)).mean())  # best constant predictor
    assert l1 < 0.3 * baseline, (l1, baseline)


def test04_export_without_observation_is_an_error():
    with pytest.raises(ValueError, match="never observed"):
        export_int8(QatMlp((4, 3)))
