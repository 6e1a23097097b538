"""The LightningModule that trains a style network (:mod:`fastnst.nn.transformer_net`).

It takes plain numbers and strings only and saves them with ``save_hyperparameters()``,
so ``StyleTransferModule.load_from_checkpoint(path)`` works without Hydra. The frozen
VGG loss network (VGG19, or VGG16 for VGG16 weights) is built in :meth:`setup` for training and
is never saved in a checkpoint: a checkpoint holds the style network and the optimizer state only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import WeightAveraging
from omegaconf import MISSING

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.conditioning import (
    StyleSampler,
    extend_base,
    load_base,
    mask_gradients,
    nearest_style,
    trainable_rows,
)
from fastnst.nn.images import load_image, to_pil
from fastnst.nn.losses import NOISE as STABILITY_NOISE
from fastnst.nn.losses import (
    PerceptualLoss,
    identity_loss,
    layered_warp,
    object_masks,
    object_warps,
    random_warps,
    stability_loss,
    warp,
)
from fastnst.nn.transformer_net import STRENGTH_OUTPUT, StyleNetwork, build_network, conditional_norms
from fastnst.nn.vgg import pretrained_vgg
from fastnst.runtime.stylizer import Stylizer
from fastnst.styles import resolve_style_image
from fastnst.training.config import module_defaults
from fastnst.training.nonfinite import NonFiniteGuard

log = logging.getLogger(__name__)


def image_grid(rows: list[torch.Tensor], padding: int = 2) -> torch.Tensor:
    """Tile batches of equal-size images: one row per batch, one column per image.

    Args:
        rows: tensors of shape ``(N, 3, H, W)``, all of the same shape.

    Returns:
        A ``(3, H', W')`` image with white padding between tiles.
    """
    n, c, h, w = rows[0].shape
    grid = torch.ones(c, len(rows) * (h + padding) + padding, n * (w + padding) + padding)
    for r, batch in enumerate(rows):
        for i, image in enumerate(batch):
            top, left = padding + r * (h + padding), padding + i * (w + padding)
            grid[:, top : top + h, left : left + w] = image.detach().float().clamp(0, 1).cpu()
    return grid


def learning_rate_at(step: int, lr: float, lr_final: float, max_steps: int, decay_steps: int | None = None) -> float:
    """The learning rate of optimizer step ``step``: ``lr`` until the last ``decay_steps`` steps before
    ``max_steps`` (all of them when None), then a cosine from ``lr`` down to ``lr_final`` at ``max_steps``."""
    start = 0 if decay_steps is None else max(0, max_steps - decay_steps)
    if step <= start:
        return lr
    done = min(1.0, (step - start) / max(1, max_steps - start))
    return lr_final + (lr - lr_final) * (1 + math.cos(math.pi * done)) / 2


class StyleTransferModule(pl.LightningModule):
    """Johnson et al. training: stylize a batch, score it with the perceptual loss, step Adam.

    Takes the settings that :func:`fastnst.training.config.module_arguments` derives from a run's
    config, as plain keyword values (``style_image``, ``style_name``, ``style_size``, the ``loss``
    and ``model`` settings, ``lr``, ``lr_final``, ``image_size``, ``channels_last``, ``compile``,
    ``max_nonfinite_steps``); the schema in :mod:`fastnst.training.config` documents each one and
    gives the defaults of those left out. They are saved with ``save_hyperparameters()``, so
    ``load_from_checkpoint(path)`` needs no Hydra, and a checkpoint written before a setting
    existed loads with that setting's default.
    """

    def __init__(self, **settings: Any) -> None:
        defaults = module_defaults()
        # Derived, not set: what a strength network's output means, saved with it (see _network).
        output = settings.pop("output", None)
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise TypeError(f"StyleTransferModule: no setting {', '.join(unknown)}")
        hparams = {**defaults, **settings}
        missing = sorted(k for k, v in hparams.items() if v == MISSING)
        if missing:
            raise TypeError(f"StyleTransferModule: {', '.join(missing)} needed (no default)")
        super().__init__()
        net, hparams, self.trained = _network(hparams)
        if output is not None:  # a loaded checkpoint keeps what it recorded
            hparams["output"] = output
        self.save_hyperparameters(hparams)
        style_layers, content_layers = self.hparams.style_layers, self.hparams.content_layers
        # A zero weight switches a layer off (Hydra merges dict overrides, so this is how
        # a layer is removed from the command line: loss.style_layers.relu4_4=0).
        self.content_layers = {k: float(w) for k, w in content_layers.items() if w}
        self.style_layers = {k: float(w) for k, w in style_layers.items() if w}
        if not self.style_layers:
            raise ValueError("at least one style layer needs a non-zero weight")
        self.net = net
        self.sampler: StyleSampler | None = None  # conditional networks: each sample's style and strength
        self.perceptual: PerceptualLoss | None = None  # built in setup(), for training only
        self.teacher: Stylizer | None = None  # loss.teacher's network, in setup()
        # The compiled network when compile=True. Not a submodule (object.__setattr__ bypasses nn.Module's
        # registration): a checkpoint holds the network once, under net., which is what gets loaded.
        object.__setattr__(self, "_train_net", self.net)
        self.guard = NonFiniteGuard(self.hparams.max_nonfinite_steps)  # a NaN loss's step changes nothing

    # -- training -------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Build the loss network and the style's Gram matrices (once per process)."""
        if stage != "fit" or self.perceptual is not None:
            return
        hp = self.hparams
        vgg = pretrained_vgg(
            layers=[*self.content_layers, *self.style_layers], weights=hp.vgg_weights, convention=hp.vgg_convention
        )
        perceptual = PerceptualLoss(
            vgg,
            self.content_layers,
            self.style_layers,
            hp.content_weight,
            hp.style_weight,
            hp.tv_weight,
            teacher_weight=hp.teacher_weight,
        )
        if hp.teacher:  # onnxruntime on as many threads as torch trains on (one with --threads 1)
            self.teacher = Stylizer(hp.teacher, device="auto", threads=torch.get_num_threads())
        if hp.styles:
            trained = [hp.styles[i] for i in self.trained]
            perceptual.set_style_bank([load_image(resolve_style_image(s["image"]), size=s["size"]) for s in trained])
            weights = [s["style_weight"] / hp.style_weight if hp.style_weight else 1.0 for s in trained]
            self.sampler = StyleSampler(len(hp.styles), self.trained, weights, hp.strength, hp.full_strength_share)
        else:
            perceptual.set_style(load_image(resolve_style_image(hp.style_image), size=hp.style_size))
        self.perceptual = perceptual
        if hp.channels_last:
            self.to(memory_format=torch.channels_last)
        if hp.get("compile"):
            # Not registered as a submodule: checkpoints keep the plain network's keys.
            object.__setattr__(self, "_train_net", torch.compile(self.net, dynamic=False))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Stylize an RGB [0, 1] batch."""
        return self.net(image)

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.perceptual is not None, "setup('fit') builds the loss network"
        content = batch["image"]
        if self.hparams.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        if self.sampler is None:
            inputs: tuple[torch.Tensor, ...] = ()
            output = self._train_net(content)
            teacher = self._teacher_results(content) if self.teacher is not None else None
            terms = self.perceptual(output, content, teacher=teacher)
        else:
            content, output, terms, inputs = self._conditional_terms(content, stage)
        if stage == "train" and self.hparams.temporal_weight:
            terms["stability"] = self._stability_term(content, output, inputs)
            terms["loss"] = terms["loss"] + self.hparams.temporal_weight * terms["stability"]
        on_step = stage == "train"
        self.log(f"{stage}/loss", terms["loss"], prog_bar=True, on_step=on_step, on_epoch=not on_step)
        self.log_dict(
            {f"{stage}/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=on_step,
            on_epoch=not on_step,
            batch_size=content.shape[0],
        )
        return terms["loss"], content, output

    @torch.no_grad()
    def _teacher_results(self, content: torch.Tensor) -> torch.Tensor:
        """loss.teacher's results for the batch, as fastnst infer would give them (one onnxruntime pass)."""
        assert self.teacher is not None
        photos = content.float().permute(0, 2, 3, 1).cpu().numpy()
        results = np.stack([r.image for r in self.teacher.stylize_arrays(list(photos))])
        return torch.from_numpy(results).permute(0, 3, 1, 2).to(content.device, content.dtype)

    def _conditional_terms(self, content: torch.Tensor, stage: str) -> tuple[torch.Tensor, torch.Tensor, dict, tuple]:
        """A conditional network's pass and losses: training draws each sample's style and strength,
        validation runs every style at strength 1 (the photos repeated once per style)."""
        assert self.sampler is not None and self.perceptual is not None
        if stage == "train":
            c = self.sampler.sample(content.shape[0], self.global_step, self.device)
        else:
            c = self.sampler.every_style(content.shape[0], self.device)
            content = content.repeat(len(self.trained), 1, 1, 1)
        output = self._train_net(content, c.style_weights, c.strength)
        terms = self.perceptual(output, content, style_index=c.bank_index, style_scale=c.style_scale)
        if self.hparams.strength:  # strength 0 is the identity style: the photo, pixel for pixel
            terms["identity"] = identity_loss(output, content, 1 - c.strength)
            terms["loss"] = terms["loss"] + self.hparams.identity_weight * terms["identity"]
        self._log_per_style(terms.pop("style_per_sample"), c.bank_index, stage)
        return content, output, terms, (c.style_weights, c.strength)

    def _stability_term(self, content: torch.Tensor, output: torch.Tensor, inputs: tuple) -> torch.Tensor:
        """Stylizing a slightly moved, noisy second view must equal moving the stylized photo
        (Wang et al., AAAI 2020: stability learned from still photos). The draws depend on the step only."""
        gen = torch.Generator().manual_seed(0x57AB1E * 1_000_003 + self.global_step)
        move = self._stability_motion(content, gen)
        view, valid = move(content)
        noise = torch.randn(view.shape, generator=gen).to(view.device, view.dtype) * STABILITY_NOISE
        second = self._train_net((view + noise).clamp(0, 1), *inputs)
        moved, _ = move(output)
        return stability_loss(second, moved, valid)

    def _stability_motion(self, content: torch.Tensor, gen: torch.Generator) -> Callable:
        """The motion between the two views: a camera move (``global``), or a camera move with an
        object moving over it (``layered``). Returns a function of the images to move."""
        theta = random_warps(content.shape[0], gen)
        if self.hparams.stability_motion == "global":
            return partial(warp, theta=theta)
        n, _, h, w = content.shape
        masks = object_masks(n, h, w, gen).to(content.device)
        return partial(layered_warp, background=theta, objects=object_warps(theta, gen), masks=masks)

    def _log_per_style(self, per_sample: torch.Tensor, bank_index: torch.Tensor, stage: str) -> None:
        """Each trained style's style loss (over its samples in this batch) as ``<stage>/style@<name>``."""
        on_step = stage == "train"
        for b, i in enumerate(self.trained):
            chosen = bank_index == b
            if chosen.any():
                name = self.hparams.styles[i]["name"]
                value = per_sample[chosen].mean()
                self.log(f"{stage}/style@{name}", value, on_step=on_step, on_epoch=not on_step, batch_size=1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._step(batch, "train")
        # A non-finite loss makes this step a no-op, undone on the device after the optimizer step.
        strategy = self.trainer.strategy
        self.guard.observe(loss, partial(strategy.reduce, reduce_op="sum") if self.trainer.world_size > 1 else None)
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """With ``init``: only the new styles' rows train until ``train_all_from_step``."""
        if self.hparams.init and self.hparams.styles:
            trainable_rows(self.net, None if self._train_all() else self.trained)

    def _train_all(self) -> bool:
        start = self.hparams.train_all_from_step
        return start is not None and self.global_step >= start

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Snapshot what the step changes, and replace non-finite gradients by zeros."""
        if self.hparams.init and self.hparams.styles and not self._train_all():
            mask_gradients(self.net, self.trained)
        self.guard.before_step(list(self.net.parameters()), optimizer)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """The optimizer step, then undone on the device if the loss was not finite.

        Runs before any ``on_train_batch_end`` hook, so checkpoints never see an undone update.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        inner = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
        if not self.guard.after_step(list(self.net.parameters()), inner):
            return
        # Reading the counters is a host sync: every step on a CPU (free there), at log intervals on GPUs.
        if self.device.type == "cpu" or (self.global_step % self.trainer.log_every_n_steps == 0):
            self.guard.check(self.global_step)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, content, output = self._step(batch, "val")
        # TensorBoard's hparams tab shows the last value of hp_metric: the latest validation loss.
        self.log("hp_metric", loss, on_step=False, on_epoch=True, batch_size=content.shape[0])
        if batch_idx == 0 and self.global_rank == 0:
            photos = batch["image"].to(content.dtype)
            self._log_preview(image_grid([photos, *self._preview_rows(photos, output)]))

    @torch.no_grad()
    def _preview_rows(self, content: torch.Tensor, output: torch.Tensor) -> list[torch.Tensor]:
        """The stylized rows of the preview: one per trained style (photos x styles), and with a
        trained strength the first style at strengths 0 and 0.5 too."""
        if self.sampler is None:
            return [output]
        n = content.shape[0]
        rows = list(output.split(n))  # validation ran every trained style in turn
        for strength in (0.0, 0.5) if self.hparams.strength else ():
            c = self.sampler.fixed(0, n, self.device, strength)
            rows.append(self.net(content, c.style_weights, c.strength))
        return rows

    def _log_preview(self, grid: torch.Tensor) -> None:
        """Show the stylized validation photos in TensorBoard and as a PNG in the run folder."""
        step = self.global_step
        logger = self.logger
        if logger is not None and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("val/preview", grid, step)
        if self.trainer is not None and self.trainer.default_root_dir:
            with atomic_write(Path(self.trainer.default_root_dir) / "previews" / f"step_{step:07d}.png") as f:
                to_pil(grid).save(f, format="PNG")

    def configure_optimizers(self) -> Any:
        # fused: one kernel for all parameters, and its step counters live on the parameters'
        # device, so the non-finite guard can restore them without a host sync.
        # A conditional norm's row learns from its own style's samples only: a larger rate (norm_lr_scale).
        rows = {id(p) for n in conditional_norms(self.net) for p in (n.weight, n.bias)}
        groups = [
            {"params": [p for p in self.net.parameters() if id(p) not in rows]},
            {
                "params": [p for p in self.net.parameters() if id(p) in rows],
                "lr": self.hparams.lr * self.hparams.norm_lr_scale,
            },
        ]
        optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=self.hparams.lr, fused=True)
        if self.hparams.lr_final is None:
            return optimizer
        # Constant, then a cosine to lr_final over the last decay_steps (the whole run when None). The factor
        # reads the trainer's step and today's settings, not the scheduler's own count, so that a checkpoint
        # of a constant-rate run (no scheduler state) resumes straight into its decay, and a resumed run with
        # another max_steps follows the new curve. A plain function: LambdaLR keeps it out of the checkpoint.
        decay = torch.optim.lr_scheduler.LambdaLR(optimizer, self._rate_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": decay, "interval": "step"}}

    def _rate_factor(self, _: int = 0) -> float:
        """LambdaLR's factor (its own count unused): the rate of the trainer's next step over ``lr``."""
        return self._factor_at(self.global_step)

    def _factor_at(self, step: int) -> float:
        """The learning rate of step ``step`` over ``lr``: 1 without ``lr_final``, else the decay's."""
        hp = self.hparams
        if hp.lr_final is None:
            return 1.0
        return learning_rate_at(step, hp.lr, hp.lr_final, self.trainer.max_steps, hp.decay_steps) / hp.lr

    def _base_rates(self, groups: int) -> list[float]:
        """Each parameter group's base rate, in configure_optimizers' order (the conditional rows' last)."""
        return [self.hparams.lr, self.hparams.lr * self.hparams.norm_lr_scale][:groups]

    # -- TensorBoard's hparams tab: the settings and the validation loss -------

    def on_train_start(self) -> None:
        """Declare ``hp_metric`` (the validation loss) with the run's settings in TensorBoard's hparams tab.

        NaN until the first validation (Lightning's own placeholder, -1, is switched off in build_trainer).
        """
        if self.logger is None or not hasattr(self.logger, "log_hyperparams"):
            return
        settings = dict(self.hparams)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            settings.update({f"data.{k}": v for k, v in datamodule.hparams.items()})
        self.logger.log_hyperparams(settings, {"hp_metric": float("nan")})

    # -- checkpoints: the style network and optimizer only ---------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # current_model_state: the trained weights of a run with trainer.ema_decay (the average is state_dict).
        for key in ("state_dict", "current_model_state"):
            if key in checkpoint:
                checkpoint[key] = {k: v for k, v in checkpoint[key].items() if not k.startswith("perceptual.")}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {})
        changed = sorted(k for k in self.hparams if k in saved and saved[k] != self.hparams[k])
        if changed:
            log.warning(
                "resuming with changed settings: %s",
                ", ".join(f"{k} {saved[k]!r} -> {self.hparams[k]!r}" for k in changed),
            )
        if "current_model_state" in checkpoint and self._resuming_without_average():
            # A run with trainer.ema_decay resumed without it: go on from the trained weights, which the
            # optimizer state belongs to (state_dict holds their moving average).
            log.warning(
                "resuming a run with trainer.ema_decay without it: its trained weights go on, not their average"
            )
            checkpoint["state_dict"] = checkpoint.pop("current_model_state")
        for key in ("state_dict", "current_model_state"):
            if key in checkpoint:
                checkpoint[key] = self._with_loss_network(checkpoint[key])
        self._rates_from_settings(checkpoint)

    def _rates_from_settings(self, checkpoint: dict[str, Any]) -> None:
        """Put today's learning rates into a resumed run's optimizer and scheduler state, which would
        otherwise bring back the saved ones: a changed lr, norm_lr_scale or decay would be ignored."""
        if self._attached_trainer() is None:  # load_from_checkpoint: no optimizer to restore
            return
        factor = self._factor_at(checkpoint.get("global_step", 0))
        for state in checkpoint.get("optimizer_states", []):
            groups = state.get("param_groups", [])
            for group, base in zip(groups, self._base_rates(len(groups)), strict=True):
                group["lr"] = base * factor  # as LambdaLR sets it, so that an unchanged run resumes exactly
                if "initial_lr" in group:
                    group["initial_lr"] = base
        for state in checkpoint.get("lr_schedulers", []):
            if "base_lrs" in state:
                state["base_lrs"] = self._base_rates(len(state["base_lrs"]))
                state["_last_lr"] = [base * factor for base in state["base_lrs"]]

    def _attached_trainer(self) -> Any:
        """The Trainer restoring this module, or None under ``load_from_checkpoint`` (none attached)."""
        try:
            return self.trainer
        except RuntimeError:
            return None

    def _resuming_without_average(self) -> bool:
        """Whether a Trainer is restoring this module with no moving average of the weights attached.

        Not attached (load_from_checkpoint): False, the average as saved is the network."""
        trainer = self._attached_trainer()
        return trainer is not None and not any(isinstance(c, WeightAveraging) for c in trainer.callbacks)

    def _with_loss_network(self, saved: dict[str, Any]) -> dict[str, Any]:
        """A saved state as the module loads it: the loss network we built ourselves put back, so that
        strict loading still checks every key of the style network."""
        # Checkpoints of earlier versions also hold the network under _train_net. (the same tensors
        # as net., or _train_net._orig_mod. when compiled): net. is the network.
        state = {k: v for k, v in saved.items() if not k.startswith("_train_net.")}
        if self.perceptual is not None:
            state.update({f"perceptual.{k}": v for k, v in self.perceptual.state_dict().items()})
        return state


def _network(hparams: dict[str, Any]) -> tuple[StyleNetwork, dict[str, Any], list[int]]:
    """The style network, the settings to save, and the indices of the styles this run trains.

    With ``init`` the network is the base's with this run's style(s) added, and the saved settings
    list every style and take the base's network shape; a one-style ``init`` is the network itself,
    every weight of which trains (a fine-tune).
    """
    styles = [dict(s) for s in hparams["styles"]]
    if hparams.get("init_style") and not hparams.get("init"):
        raise FastNSTError(f"init_style={hparams['init_style']}: needs init=<base>, the base whose style to start from")
    if not hparams.get("init"):
        net = build_network(
            hparams["architecture"],
            hparams["width"],
            hparams["num_residual_blocks"],
            num_styles=len(styles),
            gated_strength=bool(hparams.get("strength")),
            dilation=hparams["dilation"],
        )
        # Recorded so that checkpoints of strength runs with another output are told apart when loaded.
        saved = {**hparams, "output": STRENGTH_OUTPUT} if hparams.get("strength") else hparams
        return net, saved, list(range(len(styles)))
    base, base_hparams = load_base(hparams["init"])
    base_styles = base_hparams.get("styles") or []
    if not base_styles:
        return _fine_tuned(base, base_hparams, hparams)
    if [s["name"] for s in styles[: len(base_styles)]] == [s["name"] for s in base_styles]:
        styles = styles[len(base_styles) :]  # saved settings (load_from_checkpoint) already list the base's
    if not styles:
        raise FastNSTError(f"init={hparams['init']}: this run adds no style to the base's (style=a new painting)")
    start = hparams.get("init_style")
    if start == "nearest":  # saved by name, so that a reloaded checkpoint needs no judging
        if len(styles) > 1:
            raise FastNSTError("init_style=nearest: picks a start for one new style; name the style for several")
        start = nearest_style(resolve_style_image(styles[0]["image"]), base_styles)
    net, all_styles, trained = extend_base(base, base_styles, styles, hparams["init"], start)
    shape = _base_shape(base_hparams, hparams)
    return net.train(), {**hparams, **shape, "styles": all_styles, "init_style": start}, trained


def _base_shape(base_hparams: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The network shape of ``init``'s base, which the run takes whatever its ``model`` says (logged if it differs)."""
    keys = ("architecture", "width", "num_residual_blocks", "dilation", "strength", "output")
    # Bases saved before dilation existed have none: theirs is 1.
    shape = {"dilation": 1} | {k: base_hparams[k] for k in keys if k in base_hparams}
    changed = {k: v for k, v in shape.items() if hparams.get(k) != v}
    if changed:
        log.info("init=%s: the base's network shape is used (%s)", hparams["init"], changed)
    return shape


def _fine_tuned(
    base: StyleNetwork, base_hparams: dict[str, Any], hparams: dict[str, Any]
) -> tuple[StyleNetwork, dict[str, Any], list[int]]:
    """``init`` names a one-style network: this run trains every one of its weights, for one style."""
    init = hparams["init"]
    if hparams["styles"] or hparams.get("strength"):
        raise FastNSTError(
            f"init={init}: a network of one style, fine-tuned by a run of one style without model.strength; "
            "for several styles or a trained strength, start from a conditional base (fastnst styles lists them)"
        )
    if hparams.get("init_style"):
        raise FastNSTError(f"init_style={hparams['init_style']}: for a conditional base; init={init} has one style")
    # The loss settings an export or checkpoint recorded, told when this run's differ: a fine-tune on
    # another loss moves the network towards it, which may be the point (and may not).
    differ = {k: v for k, v in base_hparams.items() if k in _LOSS_KEYS and hparams.get(k) != v}
    if differ:
        log.info("init=%s was trained with %s; this run's loss differs there", init, differ)
    return base.train(), {**hparams, **_base_shape(base_hparams, hparams)}, []


# The loss settings a one-style init's file records (an export's metadata, a checkpoint's hyperparameters).
_LOSS_KEYS = (
    "style_image",
    "style_size",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layers",
    "content_layers",
)
