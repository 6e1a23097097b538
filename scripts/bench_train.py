"""``bench.py train``: images/s of fastnst's training step against a straightforward reference loop.

The reference is written here the way pytorch/examples ``fast_neural_style`` trains: fp32, eager,
the full VGG19 (all sixteen convolutions), the style image's Gram matrices recomputed at every
step, a plain ``DataLoader`` over full-size decoded JPEGs (no workers, no tuning). It minimises
the same objective as fastnst (same layers, weights, relative losses; checked below at fp32), with
the same network (from :func:`fastnst.nn.transformer_net.build_network`), image size and batch.

fastnst is measured through its real path: :class:`fastnst.training.module.StyleTransferModule` and
:class:`fastnst.training.data.PhotoDataModule` in a Lightning ``Trainer`` built by
:func:`fastnst.training.trainer.build_trainer`, so loading, logging and the optimizer step all count.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import SHARED_ASSETS, Table, machine_lines, sync
from omegaconf import OmegaConf
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fastnst.nn.images import load_image
from fastnst.nn.precision import lightning_precision
from fastnst.nn.transformer_net import build_network
from fastnst.nn.vgg import LAYER_NAMES, load_vgg19_state_dict
from fastnst.photos import find_images
from fastnst.styles import resolve_style_image
from fastnst.training.config import ModelConfig, module_defaults
from fastnst.training.data import PhotoDataModule, PhotoDataset, collate
from fastnst.training.module import StyleTransferModule

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "conf" / "model"
MODELS = sorted(p.stem for p in MODEL_CONFIGS.glob("*.yaml"))  # the training presets: transformer_net, small, light


def model_settings(name: str) -> dict[str, Any]:
    """``conf/model/<name>.yaml`` on the schema's defaults: ``architecture``, ``width``, ``num_residual_blocks``."""
    preset = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(MODEL_CONFIGS / f"{name}.yaml"))
    values = OmegaConf.to_container(preset)
    return {k: values[k] for k in ("architecture", "width", "num_residual_blocks")}  # one style: no strength input


# -- the reference: pytorch/examples' way -------------------------------------------------------


class ReferenceVGG19(nn.Module):
    """All sixteen convolutions of VGG19, Caffe input convention, returning every ReLU by name."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
        layers: list[nn.Module] = []
        channels = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU()]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.load_state_dict(state_dict, strict=False)
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = image.flip(1) * 255.0 - self.mean  # RGB [0, 1] -> Caffe BGR, 0-255, mean-subtracted
        out = {}
        for name, layer in zip(LAYER_NAMES, self.features, strict=False):
            x = layer(x)
            out[name] = x
        return out


# The schema's loss settings that both sides of the benchmark take (fastnst.training.config's defaults).
OBJECTIVE_KEYS = ("content_layers", "style_layers", "content_weight", "style_weight", "tv_weight")


def reference_gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(x, target) / target.square().mean()


def reference_loss(vgg: ReferenceVGG19, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, s: Any):
    """The objective, computed as pytorch/examples does: every feature map from scratch, every step."""
    style_features = vgg(style)  # recomputed at every step
    content_features = vgg(content)
    output_features = vgg(output)
    content_term = sum(w * relative_mse(output_features[k], content_features[k]) for k, w in s.content_layers.items())
    style_term = sum(
        w
        * relative_mse(
            reference_gram(output_features[k]), reference_gram(style_features[k]).expand(len(output), -1, -1)
        )
        for k, w in s.style_layers.items()
    )
    # fastnst's recipe adds a total-variation term (loss.tv_weight): mean absolute neighbour differences, written
    # out here rather than fastnst's total_variation so that the check compares two implementations
    tv_term = (output[:, :, 1:] - output[:, :, :-1]).abs().mean() + (output[..., 1:] - output[..., :-1]).abs().mean()
    return s.content_weight * content_term + s.style_weight * style_term + s.tv_weight * tv_term


class ReferenceDataset(Dataset):
    """Full-size decode, resize, center crop, to tensor: no draft mode, no workers."""

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = Image.open(self.files[i]).convert("RGB")
        w, h = img.size
        scale = self.size / min(w, h)
        img = img.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        img = img.crop((left, top, left + self.size, top + self.size))
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


def run_reference(s: Any, files: list[Path], device: torch.device, steps: int, warmup: int) -> float:
    """Images/s of the reference loop (after ``warmup`` untimed steps)."""
    torch.manual_seed(s.seed)
    net = build_network(**model_settings(s.model)).to(device)
    vgg = ReferenceVGG19(load_vgg19_state_dict(s.vgg_weights)).to(device)
    style = load_image(resolve_style_image(s.style), size=s.style_size).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(ReferenceDataset(files, s.image_size), batch_size=s.batch_size, shuffle=True, drop_last=True)
    done, start = 0, 0.0
    while done < warmup + steps:
        for x in loader:
            if done == warmup:
                sync(device)
                start = time.perf_counter()
            x = x.to(device)
            optimizer.zero_grad()
            loss = reference_loss(vgg, net(x), x, style, s)
            loss.backward()
            optimizer.step()
            done += 1
            if done == warmup + steps:
                break
    sync(device)
    return steps * s.batch_size / (time.perf_counter() - start)


# -- fastnst: the real LightningModule in a real Trainer ----------------------------------------


def make_module(s: Any, precision_fp32: bool) -> StyleTransferModule:
    return StyleTransferModule(
        **model_settings(s.model),
        style_image=s.style,
        style_name=s.style,
        style_size=s.style_size,
        content_layers=s.content_layers,
        style_layers=s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
        vgg_weights=s.vgg_weights,
        image_size=s.image_size,
        channels_last=not precision_fp32,
        compile=False if precision_fp32 else s.compile,
    )


class StepTimer:
    """A Lightning callback: the wall time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start = self.end = 0.0
        self.steps = 0

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self.steps += 1
        if self.steps == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()
        sync(self.device)
        self.end = time.perf_counter()


def run_fastnst(s: Any, root: str, device: torch.device, steps: int, warmup: int, fp32: bool) -> tuple[float, str]:
    """Images/s of fastnst's training path and the precision it ran in."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback

    from fastnst.training.trainer import build_trainer

    pl.seed_everything(s.seed, verbose=False)
    for name in ("lightning.pytorch", "lightning.fabric"):  # no model summary or tips in the tables
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    timer = StepTimer(warmup, device)
    timer_cb = type("Timer", (Callback,), {"on_train_batch_end": lambda self, *a: timer.on_train_batch_end(*a)})()
    accelerator = "cuda" if device.type == "cuda" else "cpu"
    precision = "32-true" if fp32 else lightning_precision("auto", accelerator)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(
            run_dir,
            accelerator=accelerator,
            devices=1,
            precision=precision,
            max_steps=warmup + steps,
            log_every_n_steps=50,
            val_every_n_steps=10**9,
            checkpoint_every_n_steps=10**9,
            enable_progress_bar=False,
            logger=False,
        )
        trainer.callbacks.append(timer_cb)
        data = PhotoDataModule(
            root, image_size=s.image_size, batch_size=s.batch_size, num_workers=s.workers, seed=s.seed
        )
        trainer.fit(make_module(s, fp32), datamodule=data)
    return steps * s.batch_size / (timer.end - timer.start), precision


# -- checks and the data pipeline -----------------------------------------------------------------


def same_losses(s: Any, files: list[Path], device: torch.device) -> tuple[float, float]:
    """The fp32 loss of one batch through fastnst's module and through the reference, same weights."""
    module = make_module(s, precision_fp32=True).to(device)
    module.setup("fit")
    vgg = ReferenceVGG19(load_vgg19_state_dict(s.vgg_weights)).to(device)
    style = load_image(resolve_style_image(s.style), size=s.style_size).to(device)
    x = torch.stack([ReferenceDataset(files, s.image_size)[i] for i in range(s.batch_size)]).to(device)
    with torch.no_grad():
        output = module.net(x)
        ours = float(module.perceptual(output, x)["loss"])
        theirs = float(reference_loss(vgg, output, x, style, s))
    return ours, theirs


def data_rates(s: Any, files: list[Path], seconds: float) -> dict[str, float]:
    """Decoded images/s: fastnst's dataset (draft-mode JPEG decode) with its workers, and the reference's."""
    rates = {}
    fastnst_set = PhotoDataset(files, s.image_size)
    loaders = {
        f"fastnst PhotoDataset, {s.workers} workers": DataLoader(
            fastnst_set, batch_size=s.batch_size, shuffle=True, num_workers=s.workers, collate_fn=collate
        ),
        "reference dataset, 0 workers": DataLoader(ReferenceDataset(files, s.image_size), batch_size=s.batch_size),
    }
    for name, loader in loaders.items():
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in loader:
                n += s.batch_size
                if time.perf_counter() - start >= seconds:
                    break
        rates[name] = n / (time.perf_counter() - start)
    return rates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help="folder of training photos (default: ../shared/assets/photos)")
    p.add_argument("--style", default="starry_night")
    p.add_argument("--style-size", type=int, default=512, help="short side of the style image (most presets: 512)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--model", choices=MODELS, action="append", help="network(s) (default: transformer_net)")
    p.add_argument("--steps", type=int, help="timed steps per method (default 10; --quick: 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="fastnst's DataLoader workers")
    p.add_argument("--compile", action="store_true", help="also torch.compile the style network (fastnst)")
    p.add_argument("--vgg-weights", default="caffe")
    p.add_argument("--seed", type=int, default=0)


def deepest_layer(s: argparse.Namespace) -> str:
    """The deepest VGG19 layer the objective uses: where fastnst's loss network stops."""
    return max([*s.content_layers, *s.style_layers], key=LAYER_NAMES.index)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure, print the table, return the results (the last line printed is the ratio)."""
    device = torch.device(args.device)
    args.steps = args.steps or (3 if args.quick else 10)
    defaults = module_defaults()  # the schema's loss (fastnst.training.config): layers and weights
    for key in OBJECTIVE_KEYS:
        setattr(args, key, defaults[key])
    root = args.data or str(SHARED_ASSETS / "photos")
    files = find_images(root)
    for line in machine_lines(device):
        print(line)
    print(
        f"data: {root} ({len(files)} images); style {args.style} at {args.style_size} px; "
        f"{args.image_size}x{args.image_size}, batch {args.batch_size}; "
        f"{args.warmup} warm-up + {args.steps} timed steps"
    )
    results: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "func"}, "rows": []}
    data = data_rates(args, files, seconds=5 if args.quick else 15)
    table = Table(["network", "method", "precision", "images/s", "x reference"])
    ratios: dict[str, float] = {}
    for model in args.model or ["transformer_net"]:
        s = argparse.Namespace(**{**vars(args), "model": model})
        ours, theirs = same_losses(s, files, device)
        print(f"{model}: same batch, same weights, fp32 loss: fastnst {ours:.6g}, reference {theirs:.6g}")
        if abs(ours - theirs) > 1e-4 * abs(theirs):
            raise SystemExit(f"bench train: the losses differ ({ours} vs {theirs}): not the same objective")
        ref = run_reference(s, files, device, args.steps, args.warmup)
        fp32, _ = run_fastnst(s, root, device, args.steps, args.warmup, fp32=True)
        best, precision = run_fastnst(s, root, device, args.steps, args.warmup, fp32=False)
        rows = [
            ("reference (pytorch/examples way)", "fp32", ref),
            (f"fastnst, fp32 (precomputed Grams, VGG cut at {deepest_layer(s)})", "32-true", fp32),
            ("fastnst, defaults" + (" + compile" if args.compile else ""), precision, best),
        ]
        for method, prec, rate in rows:
            table.add(model, method, prec, f"{rate:.2f}", f"{rate / ref:.2f}x")
            results["rows"].append({"network": model, "method": method, "precision": prec, "images_per_s": rate})
        ratios[model] = best / ref
    table.print()
    print("data pipeline alone (decoded and cropped images/s):")
    for name, rate in data.items():
        print(f"  {name}: {rate:.1f}")
    results["data_images_per_s"] = data
    results["ratio"] = ratios
    print("train: fastnst / reference images/s: " + ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items()))
    return results
