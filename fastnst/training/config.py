"""The schema of the training configuration: one dataclass per group of ``conf/train.yaml``.

The YAML files in ``conf/`` are presets (they give the values); these dataclasses say which
keys exist and what type each one has. :func:`check_schema` checks a composed config against
them and turns omegaconf's multi-line errors into one line naming the full key, the value and
what is expected, or, for a key that does not exist, the nearest one. Ranges (``>= 1`` ...)
and values that depend on the machine are checked by :func:`fastnst.training.trainer.validate_config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from fastnst.errors import FastNSTError


class ConfigError(FastNSTError):
    """A setting that does not exist or has the wrong type (one-line message)."""


@dataclass
class StyleConfig:
    name: str = MISSING
    image: str = MISSING
    size: int = MISSING
    style_weight: float = MISSING


@dataclass
class ModelConfig:
    architecture: str = "johnson"
    width: float = MISSING
    num_residual_blocks: int = MISSING


@dataclass
class LossConfig:
    vgg_weights: str = MISSING
    vgg_convention: str | None = MISSING
    content_layers: dict[str, float] = MISSING
    style_layers: dict[str, float] = MISSING
    content_weight: float = MISSING
    style_weight: float = MISSING
    tv_weight: float = MISSING


@dataclass
class DataConfig:
    root: str | None = MISSING
    annotations: str | None = MISSING
    image_size: int = MISSING
    batch_size: int = MISSING
    num_workers: int = MISSING
    val_images: Any = MISSING  # a folder, a list of files, or null
    num_val_images: int = MISSING


@dataclass
class TrainerConfig:
    accelerator: str = MISSING
    devices: Any = MISSING  # auto, a count, or GPU indices (a list or "0,1")
    num_nodes: int = MISSING
    strategy: str = MISSING
    precision: Any = MISSING  # auto or any of Lightning's (strings, or 16/32/64)
    channels_last: Any = MISSING  # auto | true | false
    compile: Any = MISSING  # auto | true | false
    max_steps: int = MISSING
    lr: float = MISSING
    accumulate_grad_batches: int = MISSING
    gradient_clip_val: float | None = MISSING
    max_nonfinite_steps: int = MISSING
    log_every_n_steps: int = MISSING
    val_every_n_steps: int = MISSING
    checkpoint_every_n_steps: int = MISSING
    deterministic: bool = MISSING
    enable_progress_bar: bool = MISSING
    logger: bool = MISSING


@dataclass
class ExportConfig:
    onnx: bool = MISSING
    precision: str = MISSING


@dataclass
class TrainConfig:
    style: StyleConfig = field(default_factory=StyleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    seed: int = MISSING
    ckpt_path: str | None = MISSING


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def check_schema(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line) when ``cfg`` has an unknown key or a value of the wrong type."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
        _check_types(
            OmegaConf.to_container(cfg, resolve=True),
            OmegaConf.to_container(typed, resolve=True, throw_on_missing=True),
        )
    except OmegaConfBaseException as e:
        raise ConfigError(_describe(e, cfg)) from None


def _check_types(given: dict, typed: dict, prefix: str = "") -> None:
    """Refuse values that omegaconf would convert silently: ``"5"`` for a number, ``off`` for a boolean."""
    for key, value in typed.items():
        if key not in given or value is None:
            continue
        raw, full_key = given[key], f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(raw, dict):
            _check_types(raw, value, f"{full_key}.")
        elif isinstance(value, bool) and not isinstance(raw, bool):
            raise ConfigError(f"{full_key}={raw}: expected true or false")
        elif isinstance(value, int) and not isinstance(value, bool) and (type(raw) is not int):
            raise ConfigError(f"{full_key}={raw}: expected a whole number")
        elif isinstance(value, float) and (isinstance(raw, bool) or not isinstance(raw, int | float)):
            raise ConfigError(f"{full_key}={raw}: expected a number")
        elif isinstance(value, str) and not isinstance(raw, str):
            raise ConfigError(f"{full_key}={raw}: expected a string (quote it: {full_key}='{raw}')")


def _describe(error: OmegaConfBaseException, cfg: DictConfig) -> str:
    """One line for an omegaconf error: the full key, the value and what is expected."""
    key = error.full_key or "config"
    if isinstance(error, ConfigKeyError) and not isinstance(error, MissingMandatoryValue):
        return f"{key}: no such setting{_nearest(key)}"
    if isinstance(error, MissingMandatoryValue):
        return f"{key}: missing; it needs a value"
    if isinstance(error, ValidationError):
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        return f"{key}={value}: expected {_kind(_field_type(key))}"
    message = str(getattr(error, "msg", None) or error).strip().splitlines()
    return f"{key}: {message[0] if message else error.__class__.__name__}"


def _nearest(full_key: str) -> str:
    """`` (did you mean group.key?)`` for a close match, else the settings the group has."""
    *parents, name = full_key.split(".")
    schema = _field_type(".".join(parents)) if parents else TrainConfig
    if not dataclasses.is_dataclass(schema):
        return ""
    valid = sorted(f.name for f in dataclasses.fields(schema))
    prefix = "".join(f"{p}." for p in parents)
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        return f" (did you mean {prefix}{close[0]}?)"
    where = f"{prefix[:-1]} has" if parents else "the top level has"
    return f"; {where} {', '.join(valid)}"


def _field_type(full_key: str) -> Any:
    """The schema's type at ``full_key`` (``trainer.lr`` -> float), or None if it has none."""
    kind: Any = TrainConfig
    for part in full_key.split("."):
        if dataclasses.is_dataclass(kind):
            kind = typing.get_type_hints(kind).get(part)
        elif typing.get_origin(kind) is dict:
            kind = typing.get_args(kind)[1]
        else:
            return None
    return kind


def _kind(kind: Any) -> str:
    """Words for a schema type: ``int`` -> "a whole number", ``str | None`` -> "a string or null"."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is dict:
        return f"a mapping of names to {_kind(args[-1]).removeprefix('a ')}s"
    if len(args) == 1 and len(typing.get_args(kind)) == 2:  # Optional[X]
        return f"{_kind(args[0])} or null"
    if dataclasses.is_dataclass(kind):
        return "a group of settings"
    return _KINDS.get(kind, "another value")
