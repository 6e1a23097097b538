"""Frozen VGG19 loss network with layers addressed by name.

The module mirrors torchvision's ``vgg19().features`` (so its state dict uses the
keys ``features.N.weight``) but is defined here: torchvision is not a dependency.
Layers are named as in the papers: ``conv1_1``, ``relu1_1``, ``pool1`` ... ``relu5_4``.

Inputs are RGB images in [0, 1]; the input convention of the weights
(``caffe``: BGR, 0-255, mean-subtracted; ``torchvision``: RGB, ImageNet mean/std)
is applied inside :meth:`VGG19.forward`.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError, one_line

# Channels per conv block (VGG "configuration E"); "M" is a 2x2 max pool.
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def _layer_names() -> list[str]:
    names: list[str] = []
    block, conv = 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES: list[str] = _layer_names()
"""All 37 layer names of VGG19 ``features`` in order; ``LAYER_NAMES[i]`` is ``features[i]``."""

CONVENTIONS = ("caffe", "torchvision")

# Caffe convention: BGR order, 0-255 scale, per-channel mean subtracted (no std).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# Where the weights come from. The Caffe weights are the original Oxford VGG19,
# as the Keras application file distributes them (the md5 is the one Keras checks).
CAFFE_H5_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
CAFFE_H5_MD5 = "253f8cb515780f3b799900260a226db6"
CAFFE_PTH_NAME = "vgg19_features_caffe.pth"  # converted once into the torch hub cache
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
WEIGHTS_ENV = "FASTNST_VGG_WEIGHTS"


class VGGWeightsError(FastNSTError):
    """Raised when VGG19 weights cannot be found, downloaded or read."""


class VGG19(nn.Module):
    """VGG19 feature extractor returning the activations of named layers.

    Args:
        layers: names of the layers to return (e.g. ``["relu2_2", "relu4_2"]``).
            The network is truncated after the deepest of them.
        convention: input convention of the weights, ``"caffe"`` or ``"torchvision"``.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. suggest it for synthesis).

    The module is frozen: eval mode, ``requires_grad=False`` on every parameter.
    Gradients still flow to the *input*, which is what style transfer needs.
    """

    def __init__(self, layers: Iterable[str], convention: str = "caffe", pooling: str = "max") -> None:
        super().__init__()
        self.layers = list(dict.fromkeys(layers))  # unique, order kept
        unknown = [name for name in self.layers if name not in LAYER_NAMES]
        if unknown or not self.layers:
            raise ValueError(f"unknown VGG19 layer(s) {unknown or '[]'}; valid names: {', '.join(LAYER_NAMES)}")
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown VGG input convention {convention!r}; expected one of {CONVENTIONS}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"unknown pooling {pooling!r}; expected 'max' or 'avg'")
        self.convention = convention
        self.pooling = pooling

        modules: list[nn.Module] = []
        in_channels = 3
        for v in _CFG:  # the full network, in the order of LAYER_NAMES
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
            else:
                # ReLU not in place: a conv activation may itself be a requested layer.
                modules += [nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_channels = int(v)
        depth = max(LAYER_NAMES.index(name) for name in self.layers) + 1
        modules = modules[:depth]
        self.features = nn.Sequential(*modules)

        if convention == "caffe":
            mean, scale = torch.tensor(_CAFFE_MEAN_BGR), torch.full((3,), 1 / 255.0)
        else:
            mean, scale = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        # Non-persistent: they belong to the convention, not to the weights file.
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19:
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
        for name, module in zip(LAYER_NAMES, self.features, strict=False):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


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


def convert_keras_h5(h5_path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """Convert the Keras VGG19 ``notop`` h5 file into a torchvision-layout state dict.

    Keras stores conv kernels as ``[kh, kw, in, out]``; PyTorch wants ``[out, in, kh, kw]``.
    Both frameworks compute cross-correlation, so no kernel flip is needed.
    """
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        raise VGGWeightsError("converting the Keras VGG19 weights needs h5py: pip install h5py") from e

    conv_indices = [i for i, name in enumerate(LAYER_NAMES) if name.startswith("conv")]
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    with h5py.File(h5_path, "r") as f:
        for index in conv_indices:
            block, conv = re.fullmatch(r"conv(\d)_(\d)", LAYER_NAMES[index]).groups()  # type: ignore[union-attr]
            group = f[f"block{block}_conv{conv}"]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            kernel = torch.from_numpy(group[names[0]][()]).permute(3, 2, 0, 1).contiguous()
            bias = torch.from_numpy(group[names[1]][()])
            state[f"features.{index}.weight"] = kernel.float()
            state[f"features.{index}.bias"] = bias.float()
    return state


def _atomic_torch_save(obj: object, path: Path) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


def download_caffe_weights(
    url: str = CAFFE_H5_URL, md5: str = CAFFE_H5_MD5, cache_dir: str | Path | None = None, progress: bool = True
) -> Path:
    """Download the Keras VGG19 h5, check its md5, convert it once into the hub cache.

    Returns the path of the converted ``.pth`` file. Later calls find it and download nothing.
    """
    cache = Path(cache_dir) if cache_dir is not None else hub_checkpoint_dir()
    target = cache / CAFFE_PTH_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        h5_path = Path(tmp) / "vgg19_notop.h5"
        try:
            torch.hub.download_url_to_file(url, str(h5_path), progress=progress)
        except Exception as e:  # network errors come in many types
            raise VGGWeightsError(_missing_weights_message("caffe", f"download of {url} failed: {e}")) from e
        got = _md5(h5_path)
        if got != md5:
            raise VGGWeightsError(f"VGG19 weights from {url}: md5 {got} does not match the expected {md5}")
        _atomic_torch_save(convert_keras_h5(h5_path), target)
    return target


def download_torchvision_weights(url: str = TORCHVISION_URL, progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's VGG19 through torch.hub, checking the hash in the file name."""
    try:
        state = torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True, weights_only=True)
    except Exception as e:
        raise VGGWeightsError(_missing_weights_message("torchvision", f"download of {url} failed: {e}")) from e
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _missing_weights_message(source: str, why: str) -> str:
    name = CAFFE_PTH_NAME if source == "caffe" else Path(TORCHVISION_URL).name
    return (
        f"no VGG19 weights ({source}): {why}. For offline use, put the weights file in "
        f"{hub_checkpoint_dir()}/ (as {name}) or set {WEIGHTS_ENV}=/path/to/file.pth (or its folder)"
    )


def _find_local(source: str) -> Path | None:
    """A local weights file for ``source`` from $FASTNST_VGG_WEIGHTS or the hub cache, if any."""
    patterns = ["vgg19_features_caffe*.pth"] if source == "caffe" else ["vgg19-*.pth"]
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            try:
                named = guess_convention(str(path))
            except VGGWeightsError:
                named = source  # a name that says nothing: trust the user
            if named != source:
                raise VGGWeightsError(
                    f"{WEIGHTS_ENV}={env} holds {named} weights, but loss.vgg_weights={source}; "
                    f"set loss.vgg_weights={env} or point {WEIGHTS_ENV} at the {source} file"
                )
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
    if weights in CONVENTIONS:
        return weights
    name = Path(weights).name.lower()
    if "caffe" in name:
        return "caffe"
    if re.fullmatch(r"vgg19-[0-9a-f]+\.pth", name):
        return "torchvision"
    raise VGGWeightsError(
        f"VGG weights {weights}: cannot tell the input convention from the file name; "
        "set loss.vgg_convention=caffe or loss.vgg_convention=torchvision"
    )


def load_vgg19_state_dict(weights: str = "caffe", download: bool = True) -> dict[str, torch.Tensor]:
    """Load a VGG19 ``features`` state dict.

    Args:
        weights: ``"caffe"`` (default, original Oxford weights), ``"torchvision"``, or a file path.
            A file given in ``$FASTNST_VGG_WEIGHTS`` (or found in that folder) is used in place of
            a download.
        download: allow downloading when no local file is found.
    """
    if weights in CONVENTIONS:
        path = _find_local(weights)
        if path is None:
            if not download:
                raise VGGWeightsError(_missing_weights_message(weights, "not found and download=False"))
            if weights == "torchvision":
                return download_torchvision_weights()
            path = download_caffe_weights()
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise VGGWeightsError(f"VGG weights file {weights}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise VGGWeightsError(f"VGG weights file {path}: cannot be read ({e.__class__.__name__}: {one_line(e)})") from e
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise VGGWeightsError(f"VGG weights file {path}: not a VGG19 state dict (no 'features.0.weight' key)")
    # fp16 copies (e.g. the ones carried to a GPU box) are upcast on load.
    return {k: v.float() for k, v in state.items() if k.startswith("features.")}


def vgg19(
    layers: Iterable[str],
    weights: str = "caffe",
    convention: str | None = None,
    pooling: str = "max",
    download: bool = True,
) -> VGG19:
    """Build a frozen, truncated VGG19 with pretrained weights.

    Args:
        layers: layer names to return; the network stops after the deepest one.
        weights: ``"caffe"``, ``"torchvision"`` or a path to a state dict file.
        convention: input convention; ``None`` infers it from ``weights``.
        pooling: ``"max"`` or ``"avg"``.
        download: allow downloading the weights when no local copy exists.
    """
    model = VGG19(layers, convention=convention or guess_convention(weights), pooling=pooling)
    state = load_vgg19_state_dict(weights, download=download)
    wanted = model.state_dict().keys()  # features.N.* up to the truncation point
    missing = [k for k in wanted if k not in state]
    if missing:
        raise VGGWeightsError(f"VGG weights {weights}: missing {missing[:3]} for the requested layers")
    model.load_state_dict({k: state[k] for k in wanted}, strict=True)
    return model


def save_caffe_weights_fp16(path: str | Path, up_to: str = "relu5_1", weights: str = "caffe") -> Path:
    """Write an fp16 copy of the weights truncated after ``up_to`` (small enough to carry around)."""
    depth = LAYER_NAMES.index(up_to) + 1
    state = load_vgg19_state_dict(weights)
    keep = {k: v.half() for k, v in state.items() if int(k.split(".")[1]) < depth}
    out = Path(path)
    _atomic_torch_save(keep, out)
    return out


__all__ = [
    "LAYER_NAMES",
    "VGG19",
    "VGGWeightsError",
    "convert_keras_h5",
    "download_caffe_weights",
    "download_torchvision_weights",
    "guess_convention",
    "load_vgg19_state_dict",
    "save_caffe_weights_fp16",
    "vgg19",
]
