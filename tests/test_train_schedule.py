"""The learning-rate schedule, the time-budget rescaling and the automatic U-plane size."""

from __future__ import annotations

import pytest

from neumat.train.config import OptimConfig
from neumat.train.schedule import lr_factor, steps_in_budget


def test01_one_cycle_decays_to_the_minimum_at_the_end_of_any_run():
    cfg = OptimConfig(warmup_steps=10, restart_period=0, min_lr_ratio=0.02)
    for total in (50, 300, 7000):
        assert lr_factor(0, cfg, total) == pytest.approx(0.1)
        assert lr_factor(10, cfg, total) == pytest.approx(1.0)
        mid = 10 + (total - 10) // 2
        assert lr_factor(mid, cfg, total) == pytest.approx(0.51, abs=0.01 + 2 / total)
        assert lr_factor(total - 1, cfg, total) == pytest.approx(0.02, abs=1e-3 + 10 / total ** 2)


def test02_steps_in_budget_projects_the_measured_rate():
    # 0.1 s/step: 90 % of a 60 s budget fits 540 steps.
    assert steps_in_budget(0.1, 60.0, 100_000) == 540
    assert steps_in_budget(0.1, 60.0, 300) == 300          # never more than planned
    assert steps_in_budget(10.0, 60.0, 100_000) == 5
    assert steps_in_budget(100.0, 60.0, 100_000) == 1      # always finishes the step it is in
    assert steps_in_budget(0.1, 60.0, 100_000, reserve=0.5) == 300


def test03_automatic_u_res_follows_the_maps_up_to_512():
    from types import SimpleNamespace

    import numpy as np

    from neumat.train.loop import AUTO_U_RES_FALLBACK, resolve_u_res

    def with_maps(side):
        return SimpleNamespace(material=SimpleNamespace(height=np.zeros((side, side), np.float32)))

    assert resolve_u_res(0, with_maps(256)) == 256
    assert resolve_u_res(0, with_maps(1024)) == 512
    assert resolve_u_res(0, SimpleNamespace()) == AUTO_U_RES_FALLBACK == 400  # a measured BTF
    assert resolve_u_res(300, with_maps(1024)) == 300                        # explicit wins
