"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016).

Pure functions for each term (``gram_matrix``, ``content_loss``, ``style_loss``,
``total_variation``) and one thin module, :class:`PerceptualLoss`, that runs the
VGG once per batch and combines the terms with their weights.

Gram matrices and losses are always computed in float32, also under autocast:
an fp16 Gram of 0-255-scale features overflows (the classic source of NaN).

With ``normalize=True`` a loss is *relative*: the squared error divided by the mean
square of the target. Raw Gram losses of VGG19 layers differ by five orders of
magnitude (relu3_4 vs relu4_4 with the Caffe weights), and by ~1e7 between the Caffe
and torchvision input scales; relative losses make the weights dimensionless, so the
same ``style_weight`` works across layers, styles and VGG weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.vgg import VGG19


def _float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype != torch.float32 else x


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of a feature batch, normalised by the number of elements.

    Args:
        features: ``(N, C, H, W)`` activations.

    Returns:
        ``(N, C, C)`` float32 tensor ``F F^T / (C H W)`` with ``F`` the ``(C, H*W)`` features.
    """
    if features.ndim != 4:
        raise ValueError(f"gram_matrix expects (N, C, H, W) features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        f = _float32(features).reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def _mse(x: torch.Tensor, target: torch.Tensor, normalize: bool) -> torch.Tensor:
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, target = _float32(x), _float32(target)
        loss = F.mse_loss(x, target)
        if normalize:
            loss = loss / target.detach().square().mean().clamp_min(1e-12)
        return loss


def content_loss(features: torch.Tensor, target: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Mean squared error between two feature maps (float32); relative to the target if ``normalize``."""
    return _mse(features, target, normalize)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Mean squared error between the Gram matrix of ``features`` and ``target_gram``.

    ``target_gram`` is ``(C, C)``, ``(1, C, C)`` or ``(N, C, C)``; it broadcasts over the batch.
    With ``normalize``, the error is relative to the mean square of ``target_gram``.
    """
    gram = gram_matrix(features)
    target = _float32(target_gram)
    if target.ndim == 2:
        target = target.unsqueeze(0)
    return _mse(gram, target.expand_as(gram), normalize)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference between neighbouring pixels.

    Averaged over pixels and batch, so its scale does not depend on the image size.
    """
    if image.ndim != 4:
        raise ValueError(f"total_variation expects (N, C, H, W) images, got shape {tuple(image.shape)}")
    with torch.autocast(device_type=image.device.type, enabled=False):
        x = _float32(image)
        dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean()
        dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
        return dh + dw


class PerceptualLoss(nn.Module):
    """Content + style + total-variation loss over a frozen VGG19.

    Args:
        vgg: the loss network; it must return every content and style layer.
        content_layers: ``{layer: weight}`` for the content term.
        style_layers: ``{layer: weight}`` for the style term.
        content_weight, style_weight, tv_weight: weights of the three terms.
        normalize: use relative content and style losses (see the module docstring).

    Call :meth:`set_style` once with the style image(s); their Gram matrices are kept
    as buffers (not saved in state dicts) and reused for every batch.
    """

    def __init__(
        self,
        vgg: VGG19,
        content_layers: Mapping[str, float],
        style_layers: Mapping[str, float],
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        missing = [name for name in [*content_layers, *style_layers] if name not in vgg.layers]
        if missing:
            raise ValueError(f"the VGG does not return layer(s) {missing}; it returns {vgg.layers}")
        self.vgg = vgg
        self.content_layers = dict(content_layers)
        self.style_layers = dict(style_layers)
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.normalize = normalize

    @torch.no_grad()
    def set_style(self, images: torch.Tensor | Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> None:
        """Compute and keep the target Gram matrices.

        Args:
            images: one ``(1, 3, H, W)`` RGB [0, 1] image, or several (sizes may differ).
            weights: blend weights for several style images (normalised to sum to 1).
        """
        images = [images] if isinstance(images, torch.Tensor) else list(images)
        weights = [1.0] * len(images) if weights is None else [float(w) for w in weights]
        if len(weights) != len(images) or sum(weights) <= 0:
            raise ValueError(f"need one positive blend weight per style image, got {weights} for {len(images)}")
        total = sum(weights)
        for name in self.style_layers:
            gram = sum(
                w / total * gram_matrix(self.vgg(img.to(self._device()))[name]).mean(0)
                for img, w in zip(images, weights, strict=True)
            )
            self.register_buffer(f"gram_{name}", gram, persistent=False)

    def _device(self) -> torch.device:
        return next(self.vgg.parameters()).device

    def target_gram(self, layer: str) -> torch.Tensor:
        """The target Gram matrix of a style layer (after :meth:`set_style`)."""
        gram = getattr(self, f"gram_{layer}", None)
        if gram is None:
            raise RuntimeError("PerceptualLoss.set_style() must be called before computing the loss")
        return gram

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of a stylized batch ``output`` against the photos ``content`` it came from.

        Returns a dict with the weighted ``loss`` and the unweighted terms ``content``,
        ``style``, ``tv`` and ``style/<layer>`` (each style layer, layer weight applied).
        """
        with torch.no_grad():
            content_features = self.vgg(content)
        output_features = self.vgg(output)

        terms: dict[str, torch.Tensor] = {}
        content_total = output.new_zeros((), dtype=torch.float32)
        for name, w in self.content_layers.items():
            content_total = content_total + w * content_loss(
                output_features[name], content_features[name], self.normalize
            )
        terms["content"] = content_total
        style_total = output.new_zeros((), dtype=torch.float32)
        for name, w in self.style_layers.items():
            terms[f"style/{name}"] = w * style_loss(output_features[name], self.target_gram(name), self.normalize)
            style_total = style_total + terms[f"style/{name}"]
        terms["style"] = style_total
        terms["tv"] = total_variation(output)
        terms["loss"] = (
            self.content_weight * terms["content"] + self.style_weight * terms["style"] + self.tv_weight * terms["tv"]
        )
        return terms
