"""The schema of the training configuration: one dataclass per group of ``conf/train.yaml``.

Each setting is declared once, here: its type, its default (where a sane one exists), its range
or choices, a one-line doc, and which object takes it (``to``: the LightningModule, the
DataModule or the Trainer, and under which argument name). The YAML files in ``conf/`` are
presets that give values. :func:`check_schema` checks a composed config against these dataclasses
(unknown keys, types, ranges) with one-line errors naming the full key; :func:`module_arguments`,
:func:`datamodule_arguments` and :func:`trainer_arguments` derive what each object is built with.
Values that depend on the machine or on files are checked by
:func:`fastnst.training.checks.validate_config`.

Adding a hyperparameter: one :func:`setting` in a dataclass below, its value in a YAML preset,
and the code that uses it.
"""

# setting() (fastnst.schema) returns a dataclasses.field(); ruff sees only a call in a default:
# ruff: noqa: RUF009

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib.resources
import re
import typing
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import OverrideParseException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from fastnst.errors import FastNSTError
from fastnst.nn.conditioning import FULL_STRENGTH_SHARE
from fastnst.nn.export import PRECISIONS
from fastnst.nn.optimize import Settings
from fastnst.nn.transformer_net import ARCHITECTURES
from fastnst.nn.vgg import layer_names, source_architecture
from fastnst.schema import AUTO_OR_BOOL, KINDS, check_ranges, setting

PROFILERS = ("simple", "advanced", "pytorch")  # Lightning's profilers, by the names its Trainer takes


class ConfigError(FastNSTError):
    """A setting that does not exist, has the wrong type or is out of range (one-line message)."""


def _to(name: str, *consumers: str) -> dict[str, str]:
    """``_to("lr", "module")`` -> ``{"module": "lr"}``: the argument ``name`` of each consumer."""
    return dict.fromkeys(consumers, name)


@dataclass
class StyleConfig:
    name: str = setting(MISSING, doc="name of the style: run folder and export name", to=_to("style_name", "module"))
    image: str = setting(
        MISSING, doc="a built-in painting (fastnst/assets/styles/) or any image path", to=_to("style_image", "module")
    )
    size: int = setting(
        512,
        "short side (px) at which the style's Gram matrices are computed",
        to=_to("style_size", "module"),
        min=16,
        what="a whole number of pixels",
    )
    style_weight: float = setting(2.0, "this style's loss.style_weight (loss.style_weight interpolates it)", min=0)


@dataclass
class ModelConfig:
    architecture: str = setting(
        "johnson",
        "the style network (fastnst.nn.transformer_net)",
        to=_to("architecture", "module"),
        choices=tuple(ARCHITECTURES),
    )
    width: float = setting(1.0, "channel multiplier of the style network", to=_to("width", "module"), above=0)
    num_residual_blocks: int = setting(
        5, "residual blocks of the style network", to=_to("num_residual_blocks", "module"), min=0
    )
    dilation: int = setting(
        1,
        "dilation of the residual blocks' convs (2: twice their reach, the same multiply-adds)",
        to=_to("dilation", "module"),
        min=1,
        max=3,
    )
    strength: bool = setting(
        False,
        "train a strength input (0: the photo back, 1: full style); a conditional network, also for one style",
        to=_to("strength", "module"),
    )


@dataclass
class LossConfig:
    vgg_weights: str = setting(
        "caffe",
        "the loss network's weights: caffe (VGG19) | torchvision (VGG19) | vgg16 (VGG16, Caffe) | /path/to/weights.pth",
        to=_to("vgg_weights", "module"),
    )
    vgg_convention: str | None = setting(
        None,
        "input convention of a weights file: caffe | torchvision (null: from the name)",
        to=_to("vgg_convention", "module"),
        choices=("caffe", "torchvision"),
    )
    content_layers: dict[str, float] = setting(
        {"relu4_2": 1.0}, "{vgg_layer: weight} of the content term (0: layer off)", to=_to("content_layers", "module")
    )
    style_layers: dict[str, float] = setting(
        {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0},
        "{vgg_layer: weight} of the style term (0: layer off)",
        to=_to("style_layers", "module"),
    )
    content_weight: float = setting(3.0, "weight of the content term", to=_to("content_weight", "module"), min=0)
    style_weight: float = setting(2.0, "weight of the style term", to=_to("style_weight", "module"), min=0)
    tv_weight: float = setting(1.0, "weight of the total-variation term", to=_to("tv_weight", "module"), min=0)
    temporal_weight: float = setting(
        0.0,
        "weight of the stability term: stylizing a slightly moved, noisy copy must equal moving the result (video)",
        to=_to("temporal_weight", "module"),
        min=0,
    )
    stability_motion: str = setting(
        "global",
        "the stability term's motion: the camera's (global), or the camera's with an object moving over "
        "the photo (layered: for texture at moving edges)",
        to=_to("stability_motion", "module"),
        choices=("global", "layered"),
    )
    identity_weight: float = setting(
        10.0,
        "with a trained strength: weight of (1 - strength) x the pixel error to the photo (strength 0: the photo)",
        to=_to("identity_weight", "module"),
        min=0,
    )
    teacher: str | None = setting(
        None,
        "a network whose results the trained one also learns to match (distillation): a .onnx file or a shipped "
        "model's name (udnie_hq); null: none",
        to=_to("teacher", "module"),
    )
    teacher_weight: float = setting(
        1.0, "with loss.teacher: weight of the distance to its results", to=_to("teacher_weight", "module"), min=0
    )


@dataclass
class DataConfig:
    root: str | None = setting(
        "data/coco/train2017",
        "a folder of photos (scanned recursively), or the image folder of annotations; null: the embedded photos",
        to=_to("root", "data"),
    )
    annotations: str | None = setting(None, "a COCO annotations JSON listing the photos", to=_to("annotations", "data"))
    image_size: int = setting(
        256,
        "training crop (a random square crop of the photo, its short side resized to short_side)",
        to=_to("image_size", "data", "module"),
        min=16,
        what="a whole number of pixels",
    )
    short_side: int | None = setting(
        None,
        "the photo's short side before the crop (null: image_size, the whole photo; larger: objects at the "
        "scale they are stylized at)",
        to=_to("short_side", "data"),
        min=16,
        what="a whole number of pixels",
    )
    flip: bool = setting(False, "mirror half of the training crops left-right", to=_to("flip", "data"))
    color_jitter: float = setting(
        0.0,
        "random colours of each training crop: brightness, contrast and saturation factors in [1-x, 1+x], "
        "hues turned by up to x/2 of the colour circle (0: off)",
        to=_to("color_jitter", "data"),
        min=0,
        max=1,
    )
    batch_size: int = setting(4, "images per batch and process", to=_to("batch_size", "data"), min=1)
    num_workers: int = setting(4, "data-loader worker processes", to=_to("num_workers", "data"), min=0)
    val_images: Any = setting(
        None, "folder or list of preview photos; null: the photos embedded in fastnst", to=_to("val_images", "data")
    )
    num_val_images: int = setting(4, "how many preview photos", to=_to("num_val_images", "data"), min=1)


@dataclass
class TrainerConfig:
    accelerator: str = setting("auto", "auto | cpu | cuda | gpu ...", to=_to("accelerator", "trainer"))
    devices: Any = setting("auto", "auto, a count, or GPU indices (a list or '0,1')", to=_to("devices", "trainer"))
    num_nodes: int = setting(1, "machines of a DDP run", to=_to("num_nodes", "trainer"), min=1)
    strategy: str = setting("auto", "auto | ddp | any of Lightning's", to=_to("strategy", "trainer"))
    precision: Any = setting(
        "auto", "auto or any of Lightning's (strings, or 16/32/64)", to=_to("precision", "trainer")
    )
    channels_last: Any = setting(
        "auto", "channels-last tensors; auto: on", to=_to("channels_last", "module"), choices=AUTO_OR_BOOL
    )
    compile: Any = setting(
        "auto", "torch.compile the style network; auto: on GPUs only", to=_to("compile", "module"), choices=AUTO_OR_BOOL
    )
    max_steps: int = setting(40_000, "optimizer steps of the run", to=_to("max_steps", "trainer"), min=1)
    lr: float = setting(1e-3, "Adam learning rate", to=_to("lr", "module"), above=0, what="")
    lr_final: float | None = setting(
        None,
        "cosine decay of the learning rate to this value at max_steps; null: constant",
        to=_to("lr_final", "module"),
        min=0,
    )
    decay_steps: int | None = setting(
        None,
        "with lr_final: hold lr until the last decay_steps steps before max_steps, then decay it on a cosine "
        "to lr_final; the rate is a function of the step alone, so a resumed constant-rate run can be given "
        "its decay; null: decay over the whole run; no effect when lr_final is null (a constant rate)",
        to=_to("decay_steps", "module"),
        min=1,
    )
    ema_decay: float | None = setting(
        None,
        "keep an exponential moving average of the weights with this decay per step (e.g. 0.999), warming up as "
        "min(decay, (1 + n) / (10 + n)) after n steps; validation, previews and export use the average; null: off",
        to=_to("ema_decay", "trainer"),
        above=0,
        max=0.99999,
    )
    accumulate_grad_batches: int = setting(
        1, "batches per optimizer step", to=_to("accumulate_grad_batches", "trainer"), min=1
    )
    gradient_clip_val: float | None = setting(
        None, "clip the gradient norm to this; null: no clipping", to=_to("gradient_clip_val", "trainer"), min=0
    )
    max_nonfinite_steps: int = setting(
        10,
        "stop after this many NaN/inf losses in a row (each one skips its step)",
        to=_to("max_nonfinite_steps", "module"),
        min=1,
    )
    log_every_n_steps: int = setting(
        50, "steps between logged losses and progress lines", to=_to("log_every_n_steps", "trainer"), min=1
    )
    val_every_n_steps: int = setting(
        500, "steps between validations (loss and preview grid)", to=_to("val_every_n_steps", "trainer"), min=1
    )
    checkpoint_every_n_steps: int = setting(
        1000, "steps between kept checkpoints", to=_to("checkpoint_every_n_steps", "trainer"), min=1
    )
    deterministic: bool = setting(False, "Lightning's deterministic algorithms", to=_to("deterministic", "trainer"))
    enable_progress_bar: bool = setting(True, "Lightning's progress bar", to=_to("enable_progress_bar", "trainer"))
    logger: bool = setting(True, "TensorBoard logs", to=_to("logger", "trainer"))
    profiler: str | None = setting(
        None,
        "where a step's time goes, written to the run folder at the end: simple (Lightning's hooks, data "
        "loading included), advanced (cProfile of each hook), pytorch (operators and GPU kernels of a few "
        "steps, with a Chrome trace); null: off",
        to=_to("profiler", "trainer"),
        choices=PROFILERS,
    )
    norm_lr_scale: float = setting(
        10.0,
        "conditional networks: learning-rate multiplier of the norms' per-style scales and shifts",
        to=_to("norm_lr_scale", "module"),
        above=0,
    )
    train_all_from_step: int | None = setting(
        None,
        "with init: train every weight from this step on (before it, only the new styles' scales and shifts); "
        "null: only those",
        to=_to("train_all_from_step", "module"),
        min=0,
    )
    full_strength_share: float = setting(
        FULL_STRENGTH_SHARE,
        "with a trained strength: the share of training samples drawn at strength 1 (the others uniform in "
        "[0, 1]); 1 trains the full style alone, as when adding a style to a base that already has its strength",
        to=_to("full_strength_share", "module"),
        min=0,
        max=1,
    )


@dataclass
class ExportConfig:
    onnx: bool = setting(True, "write <style>.onnx next to the checkpoints at the end of a run")
    precision: str = setting("fp32", "precision of that export", choices=PRECISIONS)


@dataclass
class TrainConfig:
    style: StyleConfig = field(default_factory=StyleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    seed: int = setting(
        0, "seed of the weights, the sample order and the crops", to=_to("seed", "data"), min=0, max=2**32 - 1
    )
    ckpt_path: str | None = setting(None, "resume: a checkpoint file, or last (the newest run of this style)")
    styles: list[Any] = setting(
        [],
        "several styles in one network, [{name, image, size, style_weight}]; filled from style=[a,b,...]",
        to=_to("styles", "module"),
    )
    init: str | None = setting(
        None,
        "a trained network to start from: a checkpoint, an .onnx export or a shipped network's name (fastnst "
        "styles lists them); a conditional one keeps its styles and gets this run's added, a one-style one is "
        "fine-tuned (every weight, from step 0)",
        to=_to("init", "module"),
    )
    init_style: str | None = setting(
        None,
        "with init: the base style whose scales and shifts the new style starts from: a style name, or nearest "
        "(the one whose painting is closest by the judge's Gram distance); null: the mean of the base's styles",
        to=_to("init_style", "module"),
    )


@dataclass
class OptimizeConfig(Settings):
    """``conf/optimize.yaml``: the algorithm's :class:`~fastnst.nn.optimize.Settings` plus the command's own keys."""

    content: str | None = setting(None, "the photo")
    styles: list[Any] = setting([], "[{image: painting.jpg, weight: 1.0, mask: null}]; --style adds to it")
    output: str = setting("stylized.png", ".png or .jpg")
    output_bits: int = setting(8, "8, or 16 (PNG only)", choices=(8, 16))
    auto_size_down: bool = setting(False, "on a GPU out of memory: continue at the largest size that fits")
    tensorboard: str | None = setting(None, "a folder: loss terms every iteration, the image every log_every")
    log_every: int = setting(50, "iterations between images in TensorBoard", min=1)


def typed_settings(cfg: DictConfig, schema: type = TrainConfig) -> dict[str, Any]:
    """``cfg`` checked against ``schema`` (unknown keys, types, ranges), as plain resolved values with
    the schema's defaults filled in. Raises :class:`ConfigError` (one line)."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        values = OmegaConf.to_container(typed, resolve=True, throw_on_missing=True)
        given = OmegaConf.to_container(cfg, resolve=True)
        _check_types(given, values)
    except OmegaConfBaseException as e:
        raise ConfigError(_describe(e, cfg, schema)) from None
    check_ranges(schema, values, error=ConfigError, given=given)
    return _dicts_as_given(schema, values, given)


def _dicts_as_given(schema: Any, values: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every mapping setting (layer weights) exactly as given: merging onto the schema's
    defaults would bring back a layer that the config removed (``~content_layers.relu4_2``)."""
    hints = typing.get_type_hints(schema)
    result = dict(values)
    for f in dataclasses.fields(schema):
        if f.name not in given:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            result[f.name] = _dicts_as_given(hints[f.name], values[f.name], given[f.name])
        elif isinstance(given[f.name], dict):
            result[f.name] = {k: values[f.name][k] for k in given[f.name]}
    return result


def check_schema(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line) for an unknown key, a value of the wrong type or out of range,
    or a loss layer that the loss network lacks."""
    check_loss_layers(typed_settings(cfg)["loss"])


def check_loss_layers(loss: dict[str, Any]) -> None:
    """Every content and style layer is a layer of the VGG that ``loss.vgg_weights`` names (VGG16's
    layers are not VGG19's: ``relu3_4`` is VGG19 only). A weights file's network is told by its keys
    only, so here its layers are checked against VGG19's, which include VGG16's; the file itself is
    checked at start-up (:func:`fastnst.training.checks.validate_config`)."""
    architecture = source_architecture(loss["vgg_weights"])
    names = layer_names(architecture or "vgg19")
    network = f"{architecture.upper()} layer (loss.vgg_weights={loss['vgg_weights']})" if architecture else "VGG layer"
    for group in ("content_layers", "style_layers"):
        for layer in loss[group]:
            if layer not in names:
                raise ConfigError(f"loss.{group}.{layer}: no such {network}; valid: {', '.join(names)}")


def optimize_settings(cfg: DictConfig) -> Settings:
    """``fastnst optimize``'s composed config checked against :class:`OptimizeConfig` (one-line
    errors), as the algorithm's :class:`~fastnst.nn.optimize.Settings`."""
    values = typed_settings(cfg, OptimizeConfig)
    settings = Settings(**{f.name: values[f.name] for f in dataclasses.fields(Settings)})
    settings.check()  # what a range cannot say (scale_steps: one number per scale)
    return settings


def arguments(cfg: DictConfig, consumer: str) -> dict[str, Any]:
    """The keyword arguments of ``consumer`` (``module``, ``data`` or ``trainer``), read from the
    settings whose ``to`` names it (see :func:`setting`)."""
    return _collect(TrainConfig, typed_settings(cfg), consumer)


def _collect(schema: Any, values: dict[str, Any], consumer: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[f.name]):
            found.update(_collect(hints[f.name], values[f.name], consumer))
        elif consumer in f.metadata.get("to", {}):
            found[f.metadata["to"][consumer]] = copy.deepcopy(values[f.name])
    return found


def module_arguments(cfg: DictConfig, on_gpu: bool) -> dict[str, Any]:
    """``StyleTransferModule(**module_arguments(cfg, on_gpu))``: the module's settings, ``auto`` resolved."""
    values = arguments(cfg, "module")
    # auto: channels-last everywhere (tensor cores; oneDNN on CPU), compile on GPUs only (on a
    # CPU it gained 5% a step for a minute of compiling: docs/benchmarks.md).
    values["channels_last"] = values["channels_last"] in ("auto", True)
    values["compile"] = on_gpu if values["compile"] == "auto" else values["compile"]
    return values


def datamodule_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``PhotoDataModule(**datamodule_arguments(cfg))``."""
    return arguments(cfg, "data")


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``build_trainer(run_dir, **trainer_arguments(cfg))``."""
    return arguments(cfg, "trainer")


def module_defaults() -> dict[str, Any]:
    """Every argument of the module with its schema default (``MISSING`` where it has none)."""
    found: dict[str, Any] = {}
    for schema in (StyleConfig, ModelConfig, LossConfig, DataConfig, TrainerConfig, TrainConfig):
        for f in dataclasses.fields(schema):
            name = f.metadata.get("to", {}).get("module")
            if name:
                found[name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    found.update(channels_last=False, compile=False)  # plain booleans for the module (auto is the config's)
    return found


# -- checks -------------------------------------------------------------------------------------


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


def _describe(error: OmegaConfBaseException, cfg: DictConfig, root: type) -> str:
    """One line for an omegaconf error: the full key, the value and what is expected."""
    key = error.full_key or "config"
    if isinstance(error, ConfigKeyError) and not isinstance(error, MissingMandatoryValue):
        return f"{key}: no such setting{_nearest(key, root)}"
    if isinstance(error, MissingMandatoryValue):
        return f"{key}: missing; it needs a value"
    if isinstance(error, ValidationError):
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        return f"{key}={value}: expected {_kind(_field_type(key, root))}"
    message = str(getattr(error, "msg", None) or error).strip().splitlines()
    return f"{key}: {message[0] if message else error.__class__.__name__}"


def override_words(words: Sequence[str]) -> list[str]:
    """The overrides among command-line words: Hydra's flags (``--cfg job``, ``-m``) left out."""
    return [w for w in words if "=" in w and not w.startswith("-")]


def quote_equals(words: Sequence[str]) -> list[str]:
    """``words`` with each override value that holds ``=`` quoted for Hydra: ``ckpt_path=run/step=0000500.ckpt``
    becomes ``ckpt_path='run/step=0000500.ckpt'``. The checkpoints are named ``step=N.ckpt``, and Hydra's grammar
    refuses an unquoted ``=`` in a value ("mismatched input '=' expecting <EOF>"). A ``-m`` sweep ``a,b`` is quoted
    item by item. Values that are Hydra's own syntax (``sort(..., reverse=true)``, lists, mappings), quoted or
    escaped already, or that hold both kinds of quote are left as given."""
    out = list(words)
    for i, word in enumerate(out):
        if i and not word.startswith("-") and "=" in word:
            key, value = word.split("=", 1)
            bare = re.sub(r"\$\{[^}]*\}", "", value)  # ${...} interpolations resolve inside quotes too
            hydra_syntax = value.lstrip()[:1] in ("'", '"') or any(c in bare for c in "()[]{}\\")
            if "=" in value and not hydra_syntax and not ("'" in value and '"' in value):
                mark = '"' if "'" in value else "'"
                out[i] = f"{key}=" + ",".join(f"{mark}{item.strip()}{mark}" for item in value.split(","))
    return out


def check_override_keys(overrides: Sequence[str], root: type = TrainConfig, groups: Collection[str] = ()) -> None:
    """Refuse a command-line ``key=value`` whose key the schema lacks, in one line naming the nearest key,
    before Hydra composes (Hydra's own error is several lines and advises appending the key with ``+``).
    Appends (``+key``) are checked after composing; deletions, Hydra's keys and ``groups`` are Hydra's."""
    given = override_words(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(given)
    except OverrideParseException:
        return  # a syntax error: Hydra names it
    for override in parsed:
        key = override.key_or_group
        if override.type != OverrideType.CHANGE or "/" in key or key.split(".")[0] in {"hydra", *groups}:
            continue
        *parents, name = key.split(".")
        schema = _field_type(".".join(parents), root) if parents else root
        if dataclasses.is_dataclass(schema) and name not in {f.name for f in dataclasses.fields(schema)}:
            raise ConfigError(f"{key}: no such setting{_nearest(key, root)}")


TRAIN_GROUPS = ("style", "model", "loss", "data", "trainer")  # conf/<group>/<option>.yaml


def presets(group: str) -> list[str]:
    """The presets of a config group: the names of ``conf/<group>/*.yaml`` as shipped in the package."""
    folder = importlib.resources.files("fastnst.conf").joinpath(group)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def check_group_options(overrides: Sequence[str], groups: Collection[str] = TRAIN_GROUPS) -> None:
    """Refuse ``group=option`` (or ``style=[a,b]``) naming no preset, in one line listing the presets,
    before Hydra composes (its own error is several lines, printed twice)."""
    try:
        parsed = OverridesParser.create().parse_overrides(override_words(overrides))
    except OverrideParseException:
        return  # a syntax error: Hydra names it
    folder = importlib.resources.files("fastnst.conf")
    for override in parsed:
        group = override.key_or_group
        if override.type != OverrideType.CHANGE or group not in groups:
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]  # -m a,b
        for option in (o for value in values for o in (value if isinstance(value, list) else [value])):
            if not folder.joinpath(group, f"{option}.yaml").is_file():
                raise ConfigError(f"{group}={option}: no such {group} preset; choose from {', '.join(presets(group))}")


def _nearest(full_key: str, root: type) -> str:
    """`` (did you mean group.key?)`` for a close match, else the settings the group has."""
    *parents, name = full_key.split(".")
    schema = _field_type(".".join(parents), root) if parents else root
    if not dataclasses.is_dataclass(schema):
        return ""
    valid = sorted(f.name for f in dataclasses.fields(schema))
    prefix = "".join(f"{p}." for p in parents)
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        return f" (did you mean {prefix}{close[0]}?)"
    where = f"{prefix[:-1]} has" if parents else "the top level has"
    return f"; {where} {', '.join(valid)}"


def _field_type(full_key: str, root: type) -> Any:
    """The schema's type at ``full_key`` (``trainer.lr`` -> float), or None if it has none."""
    kind: Any = root
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
    return KINDS.get(kind, "another value")
