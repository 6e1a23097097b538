"""Training a conditional network: which style and strength each sample gets, and extending a base.

A conditional network (:mod:`fastnst.nn.transformer_net`, ``num_styles >= 1``) is trained with one
style per sample, drawn uniformly from the styles being trained, and, with a trained strength, a
strength per sample: 1 for half the samples by default (the full style must stay as good as without the
input), uniform in [0, 1] for the others. The style loss of a sample is multiplied by its strength,
so strength 0 is trained on the content loss alone: the identity style. The draws depend only on
the step, so a resumed run draws exactly what the uninterrupted one would have.

A new style is added to a trained base (:func:`extend_base`) by appending one row to every
conditional norm; :func:`trainable_rows` then limits training to the new rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.errors import FastNSTError
from fastnst.nn.transformer_net import StyleNetwork, add_styles, conditional_norms

log = logging.getLogger(__name__)

FULL_STRENGTH_SHARE = 0.5  # default share of the samples of a run with a trained strength drawn at strength 1
_SALT = 0x5EED  # separates these draws from any other generator seeded with the step


@dataclass
class Condition:
    """The conditional inputs of a batch, and how each sample's style loss is weighed."""

    style_weights: torch.Tensor  # (N, S) one-hot rows of the network's styles
    strength: torch.Tensor  # (N,)
    bank_index: torch.Tensor  # (N,) index into the trained styles (the loss's Gram targets)
    style_scale: torch.Tensor  # (N,) strength x the style's weight relative to loss.style_weight


class StyleSampler:
    """Draws each sample's style (among ``trained``, network indices) and strength.

    Args:
        num_styles: styles of the network.
        trained: the network indices of the styles being trained, in the order of the loss's targets.
        weights: each trained style's style weight divided by loss.style_weight.
        strength: draw strengths (else every sample is at strength 1).
        full_share: with ``strength``, the share of samples drawn at strength 1 (the others uniform).
    """

    def __init__(
        self,
        num_styles: int,
        trained: Sequence[int],
        weights: Sequence[float],
        strength: bool,
        full_share: float = FULL_STRENGTH_SHARE,
    ) -> None:
        if len(trained) != len(weights) or not trained:
            raise ValueError(f"need one weight per trained style, got {len(weights)} for {len(trained)}")
        self.num_styles, self.strength, self.full_share = num_styles, strength, full_share
        self.trained = torch.tensor(list(trained))
        self.weights = torch.tensor([float(w) for w in weights])

    def sample(self, batch: int, step: int, device: torch.device) -> Condition:
        """The draws of training step ``step`` (the same on every run and resume)."""
        gen = torch.Generator().manual_seed(_SALT * 1_000_003 + step)
        bank = torch.randint(len(self.trained), (batch,), generator=gen)
        strength = torch.ones(batch)
        if self.strength:
            full = torch.rand(batch, generator=gen) < self.full_share
            strength = torch.where(full, strength, torch.rand(batch, generator=gen))
        return self._condition(bank, strength, device)

    def every_style(self, batch: int, device: torch.device) -> Condition:
        """Each trained style in turn for a batch repeated once per style (validation: ``batch`` x styles)."""
        bank = torch.arange(len(self.trained)).repeat_interleave(batch)
        return self._condition(bank, torch.ones(len(bank)), device)

    def fixed(self, bank_index: int, batch: int, device: torch.device, strength: float = 1.0) -> Condition:
        """Every sample with trained style ``bank_index`` at ``strength`` (validation and previews)."""
        return self._condition(torch.full((batch,), bank_index), torch.full((batch,), float(strength)), device)

    def _condition(self, bank: torch.Tensor, strength: torch.Tensor, device: torch.device) -> Condition:
        weights = F.one_hot(self.trained[bank], self.num_styles).float()
        scale = strength * self.weights[bank]
        return Condition(weights.to(device), strength.to(device), bank.to(device), scale.to(device))


def extend_base(
    base: StyleNetwork,
    base_styles: Sequence[dict[str, Any]],
    new: Sequence[dict[str, Any]],
    source: str,
    start_from: str | None = None,
) -> tuple[StyleNetwork, list[dict[str, Any]], list[int]]:
    """The base network with the ``new`` styles appended; ``(network, all styles, new styles' indices)``.

    The new styles start at the scales and shifts of the base's style named ``start_from``, or at the
    mean of the base's styles when None.

    Raises:
        FastNSTError: naming ``source`` if the base is not conditional or already has a style of that name,
        or naming ``init_style`` if ``start_from`` is not one of its styles.
    """
    if base.num_styles == 0 or not base_styles:
        raise FastNSTError(
            f"init={source}: not a conditional checkpoint (train it with style=[...] or model.strength=true)"
        )
    taken = {s["name"] for s in base_styles}
    clash = [s["name"] for s in new if s["name"] in taken]
    if clash:
        raise FastNSTError(
            f"init={source}: already has style {clash[0]!r}; "
            + (
                f"it paints it already (fastnst infer --model <its export> --style {clash[0]}); for another painting "
                "of that name, give the new style another name (style.name=...)"
                if len(new) == 1
                else f"list only styles it lacks (it has {', '.join(sorted(taken))})"
            )
        )
    names = [s["name"] for s in base_styles]
    if start_from is not None and start_from not in names:
        raise FastNSTError(f"init_style={start_from}: not a style of init={source} (its styles: {', '.join(names)})")
    net = add_styles(base, len(new), None if start_from is None else names.index(start_from))
    first = len(base_styles)
    return net, [*base_styles, *new], list(range(first, first + len(new)))


def nearest_style(painting: Path, base_styles: Sequence[dict[str, Any]]) -> str:
    """The name of the base style whose painting is closest to ``painting`` by the judge's Gram distance
    (:class:`fastnst.nn.evaluate.Judge`, ``style_gram``): the row a new style starts from with
    ``init_style=nearest``.

    Raises:
        FastNSTError: naming ``init_style=nearest`` when the base lists no styles, or when a base
            style's painting cannot be read (then the style to start from is to be named).
    """
    from fastnst.nn.evaluate import Judge
    from fastnst.runtime.imageio import open_rgb
    from fastnst.styles import resolve_style_image

    if not base_styles:
        raise FastNSTError("init_style=nearest: the base lists no styles to compare the painting with")
    judge = Judge(painting)  # the fixed judge (its own VGG19 weights), whatever the run's loss network
    distances = {}
    for style in base_styles:
        try:
            image = open_rgb(resolve_style_image(style["image"]))
        except FastNSTError:  # a missing or unreadable painting
            raise FastNSTError(
                f"init_style=nearest: cannot read {style['image']}, the painting of base style {style['name']!r}; "
                "name the style to start from instead (init_style=NAME)"
            ) from None
        distances[style["name"]] = judge.score(image, image).style_gram
    nearest = min(distances, key=distances.get)
    rounded = {k: round(v, 3) for k, v in distances.items()}
    log.info("init_style=nearest: %s (judge Gram distances %s)", nearest, rounded)
    return nearest


def trainable_rows(net: StyleNetwork, rows: Sequence[int] | None) -> None:
    """Train only the given rows of the conditional norms (``None``: every weight).

    Other weights stop taking gradients; :func:`mask_gradients` zeroes the other rows' gradients.
    """
    for p in net.parameters():
        p.requires_grad_(rows is None)
    if rows is not None:
        for norm in conditional_norms(net):
            norm.weight.requires_grad_(True)
            norm.bias.requires_grad_(True)


def mask_gradients(net: nn.Module, rows: Sequence[int]) -> None:
    """Zero the gradients of every conditional-norm row but ``rows`` (in place, on the gradients)."""
    for norm in conditional_norms(net):
        keep = torch.zeros(norm.weight.shape[0], 1, device=norm.weight.device)
        keep[list(rows)] = 1.0
        for p in (norm.weight, norm.bias):
            if p.grad is not None:
                p.grad.mul_(keep)


def load_base(init: str | Path) -> tuple[StyleNetwork, dict[str, Any]]:
    """The network and settings that training starts from (``init=``): a checkpoint or ONNX export, or a
    shipped base's or style network's name. A conditional one is a base that new styles are added to; a
    one-style one (no ``styles`` in its settings) is fine-tuned."""
    from fastnst.nn.export import load_network
    from fastnst.nn.onnx_import import network_from_onnx
    from fastnst.styles import resolve_base

    try:
        path = resolve_base(init)
        return network_from_onnx(path) if path.suffix.lower() == ".onnx" else load_network(path)
    except FastNSTError as e:
        raise FastNSTError(f"init={init}: {e}") from None


def save_base(checkpoint: str | Path, output: str | Path) -> Path:
    """Write a training checkpoint's network and settings alone (no optimizer, loss network or
    trainer state) to ``output``: a base to ship or to share, loaded by ``init=<file or name>``."""
    from fastnst.atomic import atomic_write
    from fastnst.nn.export import load_network

    output = Path(output)
    if output.resolve() == Path(checkpoint).resolve():
        raise FastNSTError(f"-o {output}: is the checkpoint being read; choose another file")
    net, hparams = load_network(checkpoint)
    if not net.num_styles:
        raise FastNSTError(f"{checkpoint}: a one-style network; a base is a conditional one (style=[a,b,...])")
    state = {"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "hyper_parameters": hparams}
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(output) as f:
        torch.save(state, f)
    return output
