"""Frozen VGG loss networks (VGG19, VGG16) with layers addressed by name.

The module mirrors torchvision's ``vgg19().features`` and ``vgg16().features`` (so its state dicts
use the keys ``features.N.weight``) but is defined here: torchvision is not a dependency.
Layers are named as in the papers: ``conv1_1``, ``relu1_1``, ``pool1`` ... ``relu5_4`` (VGG19) or
``relu5_3`` (VGG16).

Inputs are RGB images in [0, 1]; the input convention of the weights
(``caffe``: BGR, 0-255, mean-subtracted; ``torchvision``: RGB, ImageNet mean/std)
is applied inside :meth:`VGG.forward`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError, one_line

# Channels per conv of each network (Simonyan & Zisserman 2015, table 1); "M" is a 2x2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    # configuration D: blocks of 2, 2, 3, 3, 3 convolutions
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    # configuration E: blocks of 2, 2, 4, 4, 4 convolutions
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
ARCHITECTURES = tuple(CONFIGS)


def layer_names(architecture: str = "vgg19") -> list[str]:
    """All layer names of ``features`` of ``architecture`` in order; ``names[i]`` is ``features[i]``."""
    if architecture not in CONFIGS:
        raise ValueError(f"unknown VGG architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    names: list[str] = []
    block, conv = 1, 1
    for v in CONFIGS[architecture]:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def conv_indices(architecture: str = "vgg19") -> list[int]:
    """The indices ``N`` of the convolutions (the ``features.N`` holding weights) of ``architecture``."""
    return [i for i, name in enumerate(layer_names(architecture)) if name.startswith("conv")]


LAYER_NAMES: list[str] = layer_names("vgg19")
"""All 37 layer names of VGG19 ``features`` in order; ``LAYER_NAMES[i]`` is ``features[i]``."""

CONVENTIONS = ("caffe", "torchvision")

# Caffe convention: BGR order, 0-255 scale, per-channel mean subtracted (no std).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# Where the weights come from. The Caffe weights are the original Oxford VGG19 and VGG16,
# as the Keras application files distribute them (the md5s are the ones Keras checks).
CAFFE_H5_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
CAFFE_H5_MD5 = "253f8cb515780f3b799900260a226db6"
CAFFE_PTH_NAME = "vgg19_features_caffe.pth"  # converted once into the torch hub cache
VGG16_H5_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
VGG16_H5_MD5 = "6d6bbae143d832006294945121d1f1fc"
VGG16_PTH_NAME = "vgg16_features_caffe.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
WEIGHTS_ENV = "FASTNST_VGG_WEIGHTS"


class WeightsSource(NamedTuple):
    """A named source of weights (``loss.vgg_weights=<name>``)."""

    architecture: str
    convention: str
    patterns: tuple[str, ...]  # names of its local files ($FASTNST_VGG_WEIGHTS, the hub cache)
    file_name: str  # its file in the hub cache
    url: str
    md5: str | None  # of the Keras h5 at url; None: a torch.hub file with its hash in the name


SOURCES: dict[str, WeightsSource] = {
    "caffe": WeightsSource(
        "vgg19", "caffe", ("vgg19_features_caffe*.pth",), CAFFE_PTH_NAME, CAFFE_H5_URL, CAFFE_H5_MD5
    ),
    "torchvision": WeightsSource(
        "vgg19", "torchvision", ("vgg19-*.pth",), Path(TORCHVISION_URL).name, TORCHVISION_URL, None
    ),
    "vgg16": WeightsSource(
        "vgg16", "caffe", ("vgg16_features*caffe*.pth",), VGG16_PTH_NAME, VGG16_H5_URL, VGG16_H5_MD5
    ),
}


def source_architecture(weights: str) -> str | None:
    """The architecture a named weights source is (``vgg16`` -> ``"vgg16"``); None for a file path,
    whose architecture only its keys tell (:func:`state_architecture`)."""
    return SOURCES[weights].architecture if weights in SOURCES else None


class VGGWeightsError(FastNSTError):
    """Raised when VGG weights cannot be found, downloaded or read, or lack a requested layer."""


def unknown_layers_message(layers: Iterable[str], architecture: str = "vgg19") -> str | None:
    """The one-line complaint about ``layers`` that ``architecture`` lacks (or none given); None if all are fine."""
    layers = list(layers)
    names = layer_names(architecture)
    unknown = [name for name in layers if name not in names]
    if unknown or not layers:
        return f"unknown {architecture.upper()} layer(s) {unknown or '[]'}; valid names: {', '.join(names)}"
    return None


class VGG(nn.Module):
    """VGG feature extractor (VGG19 or VGG16) returning the activations of named layers.

    Args:
        layers: names of the layers to return (e.g. ``["relu2_2", "relu4_2"]``).
            The network is truncated after the deepest of them.
        convention: input convention of the weights, ``"caffe"`` or ``"torchvision"``.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. suggest it for synthesis).
        architecture: ``"vgg19"`` (configuration E) or ``"vgg16"`` (configuration D).

    The module is frozen: eval mode, ``requires_grad=False`` on every parameter.
    Gradients still flow to the *input*, which is what style transfer needs.
    """

    def __init__(
        self, layers: Iterable[str], convention: str = "caffe", pooling: str = "max", architecture: str = "vgg19"
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.layer_names = layer_names(architecture)
        self.layers = list(dict.fromkeys(layers))  # unique, order kept
        problem = unknown_layers_message(self.layers, architecture)
        if problem:
            raise ValueError(problem)
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown VGG input convention {convention!r}; expected one of {CONVENTIONS}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"unknown pooling {pooling!r}; expected 'max' or 'avg'")
        self.convention = convention
        self.pooling = pooling

        modules: list[nn.Module] = []
        in_channels = 3
        for v in CONFIGS[architecture]:  # the full network, in the order of its layer names
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
            else:
                # ReLU not in place: a conv activation may itself be a requested layer.
                modules += [nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_channels = int(v)
        depth = max(self.layer_names.index(name) for name in self.layers) + 1
        self.features = nn.Sequential(*modules[:depth])

        if convention == "caffe":
            mean, scale = torch.tensor(_CAFFE_MEAN_BGR), torch.full((3,), 1 / 255.0)
        else:
            mean, scale = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        # Non-persistent: they belong to the convention, not to the weights file.
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG:
        """Keep the loss network in eval mode whatever its parent does."""
        return super().train(False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Map an RGB [0, 1] batch to the input convention of the weights (never in place)."""
        if self.convention == "caffe":
            image = image.flip(1) * 255.0  # RGB -> BGR, 0-255
        return (image - self.mean) / self.scale if self.convention == "torchvision" else image - self.mean

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{layer_name: activation}`` for the requested layers of an RGB [0, 1] batch."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB batch of shape (N, 3, H, W), got {tuple(image.shape)}")
        x = self.normalize(image)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(self.layer_names, self.features, strict=False):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


class VGG19(VGG):
    """:class:`VGG` with VGG19's layers (configuration E): the default loss network and the judge's."""

    def __init__(self, layers: Iterable[str], convention: str = "caffe", pooling: str = "max") -> None:
        super().__init__(layers, convention=convention, pooling=pooling, architecture="vgg19")


# ---------------------------------------------------------------------------
# Weights: find, download (with a checksum), convert, load.
# ---------------------------------------------------------------------------


def hub_checkpoint_dir() -> Path:
    """The torch hub cache folder for weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_keras_h5(h5_path: str | Path, architecture: str = "vgg19") -> OrderedDict[str, torch.Tensor]:
    """Convert a Keras VGG19 or VGG16 ``notop`` h5 file into a torchvision-layout state dict.

    Keras names the convolutions ``block{b}_conv{c}`` and stores their kernels as ``[kh, kw, in, out]``;
    PyTorch wants ``[out, in, kh, kw]``. Both frameworks compute cross-correlation, so no kernel flip is needed.
    """
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        raise VGGWeightsError("converting the Keras VGG weights needs h5py: pip install h5py") from e

    names = layer_names(architecture)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    with h5py.File(h5_path, "r") as f:
        for index in conv_indices(architecture):
            block, conv = re.fullmatch(r"conv(\d)_(\d)", names[index]).groups()  # type: ignore[union-attr]
            group = f[f"block{block}_conv{conv}"]
            weight_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            kernel = torch.from_numpy(group[weight_names[0]][()]).permute(3, 2, 0, 1).contiguous()
            bias = torch.from_numpy(group[weight_names[1]][()])
            state[f"features.{index}.weight"] = kernel.float()
            state[f"features.{index}.bias"] = bias.float()
    return state


def _atomic_torch_save(obj: object, path: Path) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


def download_caffe_weights(
    url: str | None = None,
    md5: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    source: str = "caffe",
) -> Path:
    """Download the Keras h5 of ``source`` (``caffe``: VGG19, ``vgg16``), check its md5 and convert it
    once into the hub cache. ``url`` and ``md5`` default to the source's.

    Returns the path of the converted ``.pth`` file. Later calls find it and download nothing.
    """
    spec = SOURCES[source]
    url, md5 = url or spec.url, md5 or spec.md5
    cache = Path(cache_dir) if cache_dir is not None else hub_checkpoint_dir()
    target = cache / spec.file_name
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        h5_path = Path(tmp) / f"{spec.architecture}_notop.h5"
        try:
            torch.hub.download_url_to_file(url, str(h5_path), progress=progress)
        except Exception as e:  # network errors come in many types
            raise VGGWeightsError(_missing_weights_message(source, f"download of {url} failed: {e}")) from e
        got = _md5(h5_path)
        if got != md5:
            raise VGGWeightsError(
                f"{spec.architecture.upper()} weights from {url}: md5 {got} does not match the expected {md5}"
            )
        _atomic_torch_save(convert_keras_h5(h5_path, spec.architecture), target)
    return target


def download_torchvision_weights(url: str = TORCHVISION_URL, progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's VGG19 through torch.hub, checking the hash in the file name."""
    try:
        state = torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True, weights_only=True)
    except Exception as e:
        raise VGGWeightsError(_missing_weights_message("torchvision", f"download of {url} failed: {e}")) from e
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _missing_weights_message(source: str, why: str) -> str:
    spec = SOURCES[source]
    return (
        f"no {spec.architecture.upper()} weights ({source}): {why}. For offline use, put the weights file in "
        f"{hub_checkpoint_dir()}/ (as {spec.file_name}) or set {WEIGHTS_ENV}=/path/to/file.pth (or its folder)"
    )


def _named_by_file(path: Path) -> tuple[str, str] | None:
    """What a weights file's name says it holds: ``("source", name)`` when it is a named source's file,
    ``("convention", name)`` when it only says the convention, None when it says nothing."""
    name = path.name.lower()
    for source, spec in SOURCES.items():
        if any(fnmatch.fnmatch(name, pattern) for pattern in spec.patterns):
            return "source", source
    try:
        return "convention", guess_convention(str(path))
    except VGGWeightsError:
        return None


def _check_env_file(path: Path, env: str, source: str) -> None:
    """Refuse a $FASTNST_VGG_WEIGHTS file whose name says it holds other weights than ``source``."""
    named = _named_by_file(path)
    if named is None:
        return  # a name that says nothing: trust the user (the keys tell the architecture on load)
    kind, value = named
    if value != (source if kind == "source" else SOURCES[source].convention):
        raise VGGWeightsError(
            f"{WEIGHTS_ENV}={env} holds {value} weights, but loss.vgg_weights={source}; "
            f"set loss.vgg_weights={env} or point {WEIGHTS_ENV} at the {source} file"
        )


def _find_local(source: str) -> Path | None:
    """A local weights file for ``source`` from $FASTNST_VGG_WEIGHTS or the hub cache, if any."""
    patterns = SOURCES[source].patterns
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            _check_env_file(path, env, source)
            return path
        if not path.is_dir():
            raise VGGWeightsError(f"{WEIGHTS_ENV}={env}: no such file or folder")
        candidates = sorted(p for pattern in patterns for p in path.glob(pattern))
        if candidates:
            return candidates[0]
    cache = hub_checkpoint_dir()
    candidates = sorted(p for pattern in patterns for p in cache.glob(pattern)) if cache.is_dir() else []
    return candidates[0] if candidates else None


def guess_convention(weights: str) -> str:
    """The input convention of a weights source: by name, or from a file name."""
    if weights in SOURCES:
        return SOURCES[weights].convention
    name = Path(weights).name.lower()
    if "caffe" in name:
        return "caffe"
    if re.fullmatch(r"vgg1[69]-[0-9a-f]+\.pth", name):  # torchvision's files: vgg19-dcbb9e9d.pth, vgg16-397923af.pth
        return "torchvision"
    raise VGGWeightsError(
        f"VGG weights {weights}: cannot tell the input convention from the file name; "
        "set loss.vgg_convention=caffe or loss.vgg_convention=torchvision"
    )


# ---------------------------------------------------------------------------
# Loading: the architecture from the keys, the layers the file can serve.
# ---------------------------------------------------------------------------


def state_architecture(state: Iterable[str], origin: str = "weights", default: str = "vgg19") -> str:
    """The architecture whose convolutions the keys of ``state`` are: VGG16's 4th conv is ``features.7``
    and then come ``.10, .12, .14, .17``; VGG19's block 3 has ``features.16``. A file truncated before
    the two differ (conv3_3 or shallower) fits both: ``default`` then."""
    present = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"features\.(\d+)\.weight", k))})
    fits = [a for a in ARCHITECTURES if present and present == conv_indices(a)[: len(present)]]
    if not fits:
        raise VGGWeightsError(
            f"VGG weights {origin}: convolutions at features.{present} are neither VGG16's nor VGG19's"
        )
    return default if default in fits else fits[0]


def _read_state(path: Path, cast: bool = True) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a weights file: float32, or as stored (``cast=False``, memory-mapped
    where the file allows it: a look at the keys that reads almost nothing)."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=not cast)
        except RuntimeError:
            if cast:
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) file: no mmap
    except Exception as e:
        raise VGGWeightsError(f"VGG weights file {path}: cannot be read ({e.__class__.__name__}: {one_line(e)})") from e
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise VGGWeightsError(f"VGG weights file {path}: not a VGG state dict (no 'features.0.weight' key)")
    # fp16 copies (the VGG16 file, the ones carried to a GPU box) are upcast on load.
    return {k: v.float() if cast else v for k, v in state.items() if k.startswith("features.")}


def _local_file(weights: str) -> Path | None:
    """The file a weights source reads from, without downloading (None: it would be downloaded)."""
    if weights in SOURCES:
        return _find_local(weights)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsError(f"VGG weights file {weights}: no such file")
    return path


def _load_state(weights: str, download: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The float32 ``features`` state dict of a weights source, and where it came from (for messages)."""
    path = _local_file(weights)
    if path is None:
        if not download:
            raise VGGWeightsError(_missing_weights_message(weights, "not found and download=False"))
        if weights == "torchvision":
            return download_torchvision_weights(), TORCHVISION_URL
        path = download_caffe_weights(source=weights)
    return _read_state(path), str(path)


def load_vgg_state_dict(weights: str = "caffe", download: bool = True) -> dict[str, torch.Tensor]:
    """Load a VGG19 or VGG16 ``features`` state dict (float32).

    Args:
        weights: ``"caffe"`` (default, original Oxford VGG19), ``"torchvision"`` (VGG19), ``"vgg16"``
            (original Oxford VGG16), or a file path. A file given in ``$FASTNST_VGG_WEIGHTS`` (or found
            in that folder) is used in place of a download.
        download: allow downloading when no local file is found.
    """
    return _load_state(weights, download)[0]


def load_vgg19_state_dict(weights: str = "caffe", download: bool = True) -> dict[str, torch.Tensor]:
    """:func:`load_vgg_state_dict` for VGG19 weights only (a VGG16 state dict is refused)."""
    state, origin = _load_state(weights, download)
    _architecture_of(state, origin, weights, "vgg19")
    return state


def _architecture_of(state: dict[str, torch.Tensor], origin: str, weights: str, wanted: str | None) -> str:
    """The architecture of ``state``; an error if it is not the one its source name or the caller needs."""
    named = source_architecture(weights)
    found = state_architecture(state, origin, default=wanted or named or "vgg19")
    for needed, who in ((named, f"{weights} weights are"), (wanted, "this needs")):
        if needed is not None and found != needed:
            raise VGGWeightsError(f"VGG weights {origin} are {found.upper()}, but {who} {needed.upper()}")
    return found


def _check_layers_in(state: dict[str, torch.Tensor], origin: str, architecture: str, layers: list[str]) -> None:
    """Raise (one line, naming the file) unless ``state`` holds every weight up to the deepest of ``layers``."""
    problem = unknown_layers_message(layers, architecture)
    if problem:
        raise ValueError(f"VGG weights {origin}: {problem}")
    names = layer_names(architecture)
    have = [f"features.{i}.weight" in state and f"features.{i}.bias" in state for i in conv_indices(architecture)]
    # The deepest usable layer is the one before the first convolution the file lacks.
    reach = conv_indices(architecture)[have.index(False)] if False in have else len(names)
    deepest = max(layers, key=names.index)
    if names.index(deepest) >= reach:
        raise VGGWeightsError(
            f"VGG weights {origin}: layer {deepest} is missing from this {architecture.upper()} file, "
            f"whose deepest layer is {names[reach - 1] if reach else 'none'}"
        )


def check_weights_serve(weights: str, layers: Iterable[str]) -> None:
    """Raise the error :func:`pretrained_vgg` would for ``layers`` from the keys of the local file of
    ``weights`` alone (memory-mapped: cheap). Nothing is downloaded; a source with no local file yet
    passes (its download holds every layer)."""
    path = _local_file(weights)
    if path is None:
        return
    state = _read_state(path, cast=False)
    _check_layers_in(state, str(path), _architecture_of(state, str(path), weights, None), list(layers))


def pretrained_vgg(
    layers: Iterable[str],
    weights: str = "caffe",
    convention: str | None = None,
    pooling: str = "max",
    download: bool = True,
    architecture: str | None = None,
) -> VGG:
    """Build a frozen, truncated VGG with pretrained weights; VGG19 or VGG16 as the weights are.

    Args:
        layers: layer names to return; the network stops after the deepest one.
        weights: ``"caffe"``, ``"torchvision"``, ``"vgg16"`` or a path to a state dict file
            (its architecture is told by its keys).
        convention: input convention; ``None`` infers it from ``weights``.
        pooling: ``"max"`` or ``"avg"``.
        download: allow downloading the weights when no local copy exists.
        architecture: refuse weights of another architecture (``None``: any).
    """
    layers = list(dict.fromkeys(layers))
    convention = convention or guess_convention(weights)
    known = architecture or source_architecture(weights)
    if known is not None and (problem := unknown_layers_message(layers, known)):
        raise ValueError(problem)  # before any file is read or downloaded
    state, origin = _load_state(weights, download)
    found = _architecture_of(state, origin, weights, architecture)
    _check_layers_in(state, origin, found, layers)
    model = VGG(layers, convention=convention, pooling=pooling, architecture=found)
    # Strict: every key of the truncated network, and only those, with matching shapes.
    model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True)
    return model


def vgg19(
    layers: Iterable[str],
    weights: str = "caffe",
    convention: str | None = None,
    pooling: str = "max",
    download: bool = True,
) -> VGG:
    """:func:`pretrained_vgg` for VGG19 only (the judge's and ``fastnst optimize``'s network)."""
    return pretrained_vgg(layers, weights, convention, pooling, download, architecture="vgg19")


def save_caffe_weights_fp16(path: str | Path, up_to: str = "relu5_1", weights: str = "caffe") -> Path:
    """Write an fp16 copy of the weights truncated after ``up_to`` (small enough to carry around)."""
    state, origin = _load_state(weights, download=True)
    architecture = _architecture_of(state, origin, weights, None)
    _check_layers_in(state, origin, architecture, [up_to])
    depth = layer_names(architecture).index(up_to) + 1
    keep = {k: v.half() for k, v in state.items() if int(k.split(".")[1]) < depth}
    out = Path(path)
    _atomic_torch_save(keep, out)
    return out


__all__ = [
    "ARCHITECTURES",
    "LAYER_NAMES",
    "SOURCES",
    "VGG",
    "VGG19",
    "VGGWeightsError",
    "check_weights_serve",
    "conv_indices",
    "convert_keras_h5",
    "download_caffe_weights",
    "download_torchvision_weights",
    "guess_convention",
    "layer_names",
    "load_vgg19_state_dict",
    "load_vgg_state_dict",
    "pretrained_vgg",
    "save_caffe_weights_fp16",
    "source_architecture",
    "state_architecture",
    "vgg19",
]
