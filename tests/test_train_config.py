"""Training config: strict loading (unknown keys listed), overrides, schedule and QAT phases."""

import json
import math

import pytest

from neumat.train.config import TrainConfig
from neumat.train.config_io import (
    ConfigError, apply_overrides, config_from_dict, config_to_dict, load_config, save_config,
)


def test01_unknown_keys_are_errors_listing_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        config_from_dict({"optim": {"lr_mlpp": 1e-3}}, TrainConfig)
    msg = str(e.value)
    assert "optim.lr_mlpp" in msg and "lr_mlp" in msg and "lr_planes" in msg
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['stpes'\].*'steps'"):
        config_from_dict({"stpes": 3}, TrainConfig)
    path = tmp_path / "c.toml"
    path.write_text("[model]\nhidden = 16\nbogus = 1\n")
    with pytest.raises(ConfigError, match="model.bogus"):
        load_config(path, TrainConfig)


def test02_types_and_ranges_are_checked():
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        config_from_dict({"steps": 1.5}, TrainConfig)
    with pytest.raises(ConfigError, match="expected true/false"):
        config_from_dict({"amp": 1}, TrainConfig)
    with pytest.raises(ConfigError, match="multiple of data.chunks"):
        apply_overrides(TrainConfig(), ["data.batch_size=100", "data.chunks=16"])
    with pytest.raises(ConfigError, match="quantize_start"):
        apply_overrides(TrainConfig(), ["qat.quantize_start=0"])
    with pytest.raises(ConfigError, match="unknown section"):
        apply_overrides(TrainConfig(), ["optimizer.lr_mlp=1"])


def test03_toml_json_roundtrip_and_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 123\nout = "x"\n[optim]\nbetas = [0.8, 0.9]\n[source]\nkind = "material"\nname = "felt"\n')
    cfg = load_config(toml, TrainConfig)
    assert cfg.steps == 123 and cfg.optim.betas == (0.8, 0.9) and cfg.source.name == "felt"
    assert cfg.model.hidden == TrainConfig().model.hidden  # missing keys keep defaults
    cfg = apply_overrides(cfg, ["optim.lr_mlp=0.002", "qat.enabled=false", "export=out/m.nmat", "model.hidden=64"])
    assert (cfg.optim.lr_mlp, cfg.qat.enabled, cfg.export, cfg.model.hidden) == (0.002, False, "out/m.nmat", 64)
    saved = save_config(cfg, tmp_path / "config.json")
    assert load_config(saved, TrainConfig) == cfg
    assert json.loads(saved.read_text())["optim"]["betas"] == [0.8, 0.9]
    assert config_from_dict(config_to_dict(cfg), TrainConfig) == cfg


def test04_every_field_has_a_docstring():
    import ast
    import inspect

    import neumat.train.config as mod

    tree = ast.parse(inspect.getsource(mod))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign):
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                        f"{node.name}.{stmt.target.id} has no docstring")


def test05_lr_schedule_warmup_and_warm_restarts():
    pytest.importorskip("torch")
    from neumat.train.schedule import lr_factor, qat_phase

    o = apply_overrides(TrainConfig(), ["optim.warmup_steps=10", "optim.restart_period=100",
                                        "optim.restart_mult=2", "optim.min_lr_ratio=0.1"]).optim
    assert lr_factor(0, o, 10_000) == pytest.approx(0.1) and lr_factor(9, o, 10_000) == pytest.approx(1.0)
    assert lr_factor(10, o, 10_000) == pytest.approx(1.0)  # cycle 1 starts at the peak
    assert lr_factor(60, o, 10_000) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(109, o, 10_000) == pytest.approx(0.1, abs=1e-3)  # end of cycle 1 (100 steps)
    assert lr_factor(110, o, 10_000) == pytest.approx(1.0)  # restart; cycle 2 lasts 200 steps
    assert lr_factor(210, o, 10_000) == pytest.approx(0.55)
    assert lr_factor(310, o, 10_000) == pytest.approx(1.0)

    q = apply_overrides(TrainConfig(), ["qat.quantize_start=0.25", "qat.finetune_start=0.75",
                                        "qat.finetune_lr_scale=0.2"]).qat
    names = [qat_phase(s, 8, q).name for s in range(8)]
    assert names == ["observe"] * 2 + ["quantize"] * 4 + ["finetune"] * 2
    assert qat_phase(7, 8, q).lr_scale == 0.2 and not qat_phase(7, 8, q).observe
    q_off = apply_overrides(TrainConfig(), ["qat.enabled=false"]).qat
    assert {qat_phase(s, 8, q_off).name for s in range(8)} == {"observe"}
