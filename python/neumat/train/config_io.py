"""Strict load, save and override of config dataclasses (:class:`~.config.TrainConfig`,
:class:`~neumat.train.neumip.NeuMipConfig`): one docstring per field there, here the rules.

Files may be JSON or TOML (by suffix) holding any subset of the fields, nested by section
(``[optim]`` / ``"optim": {...}``); unknown keys are a :class:`ConfigError` listing the valid
ones; values are type-checked (no silent int/bool/str coercion). :func:`apply_overrides` applies
``section.field=value`` strings (the CLI's ``--set``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file, key or value is invalid; the message says which and what is allowed."""


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-serializable dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(data: dict[str, Any], cls: type, where: str = "") -> Any:
    """Build ``cls`` from a (partial) dict; missing keys keep their defaults.

    Raises:
        ConfigError: unknown key (listing the valid ones) or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table/object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {[where + k for k in unknown]}; valid keys{' in ' + where[:-1] if where else ''}: "
            f"{sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = config_from_dict(value, kind, f"{where}{name}.")
        else:
            values[name] = _coerce(value, kind, where + name)
    return cls(**values)


def _coerce(value: Any, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {kind!r}")  # a bug in this module


def load_config(path: str | Path, cls: type) -> Any:
    """Read a ``.json`` or ``.toml`` file holding any subset of the fields of config dataclass
    ``cls`` (:class:`~.config.TrainConfig`, :class:`neumat.train.neumip.NeuMipConfig`, ...) and
    validate it (``cfg.validate()``)."""
    cfg = config_from_dict(read_config_file(path), cls)
    cfg.validate()
    return cfg


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The (partial) config dict of a ``.json`` or ``.toml`` file, unchecked.

    Raises:
        ConfigError: unreadable file or invalid JSON/TOML.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}") from e


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as JSON, atomically."""
    from ..fileio import atomic_write_bytes

    return atomic_write_bytes(path, (json.dumps(config_to_dict(cfg), indent=2) + "\n").encode())


def merge_config(cfg: Any, data: dict[str, Any]) -> Any:
    """A copy of config dataclass ``cfg`` with the (partial, nested) dict ``data`` applied (e.g. a
    config file over defaults), validated (``validate()``).

    Raises:
        ConfigError: unknown keys (the valid ones listed), values of the wrong type or range.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a table/object, got {type(data).__name__}")

    def update(node: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(node.get(key), dict):
                update(node[key], value)
            else:
                node[key] = value

    merged = config_to_dict(cfg)
    update(merged, data)
    out = config_from_dict(merged, type(cfg))
    out.validate()
    return out


def sections(cls: type) -> tuple[str, ...]:
    """The nested sections (dataclass-valued fields) of config dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name]))


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """A copy of config dataclass ``cfg`` (:class:`~.config.TrainConfig`, :class:`~neumat.train.neumip.
    NeuMipConfig`, ...) with ``"section.field=value"`` / ``"field=value"`` strings applied,
    validated (``validate()``).

    Values are parsed as JSON when possible (numbers, true/false, lists), else taken as strings.

    Raises:
        ConfigError: malformed item, unknown section or key (the valid ones listed), bad value.
    """
    cls = type(cfg)
    known = sections(cls)
    data = config_to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        *parents, leaf = key.strip().split(".")
        node = data
        for p in parents:
            if p not in known or not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: unknown section {p!r}; sections: {list(known)}")
            node = node[p]
        node[leaf] = value
    out = config_from_dict(data, cls)
    out.validate()
    return out


def layered_config(cfg: Any, config_file: str | Path | None, run_dir: str | Path, resume: bool,
                   options: dict[str, Any], sets: list[str] | None) -> Any:
    """A command's run config in layers: ``cfg`` (defaults), then ``config_file`` or, resuming,
    ``run_dir/config.json``, then the ``options`` given on the command line (None: not given),
    then ``--set`` overrides ``sets``."""
    saved = Path(run_dir) / "config.json"
    if config_file is not None:
        cfg = merge_config(cfg, read_config_file(config_file))
    elif resume and saved.is_file():
        cfg = merge_config(cfg, read_config_file(saved))
    given = [f"{k}={json.dumps(v)}" for k, v in options.items() if v is not None]
    return apply_overrides(cfg, given + list(sets or []))


def run_control_checks(cfg: Any) -> list[tuple[bool, str]]:
    """``(ok, what is expected)`` of the engine's run-control fields (``max_minutes``,
    ``budget_probe_steps``, ``keep_checkpoints``, ``val_every``, ``ckpt_every``, ``log_every``;
    :data:`neumat.train.engine.RUN_FIELDS`) for a config whose validations and checkpoints may
    be 0 (only at the last step)."""
    return [
        (cfg.max_minutes >= 0 and cfg.budget_probe_steps >= 1 and cfg.keep_checkpoints >= 1,
         "max_minutes >= 0, budget_probe_steps >= 1, keep_checkpoints >= 1"),
        (cfg.val_every >= 0 and cfg.ckpt_every >= 0 and cfg.log_every >= 1,
         "val_every >= 0 and ckpt_every >= 0 (0: only at the last step), log_every >= 1"),
    ]


def non_finite_fields(cfg: Any, where: str = "") -> list[str]:
    """Dotted names of the float fields of config dataclass ``cfg`` (tuple items included) that
    are NaN or infinite (JSON's ``1e400`` and ``NaN`` read as such)."""
    bad = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        items = value if isinstance(value, tuple) else (value,)
        if dataclasses.is_dataclass(value):
            bad += non_finite_fields(value, f"{where}{f.name}.")
        elif any(isinstance(v, float) and not math.isfinite(v) for v in items):
            bad.append(where + f.name)
    return bad
