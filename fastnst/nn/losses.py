"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016).

Pure functions for each term (``gram_matrix``, ``content_loss``, ``style_loss``,
``teacher_loss``, ``total_variation``) and one thin module, :class:`PerceptualLoss`, that runs the
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

from fastnst.nn.vgg import VGG


def _float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype != torch.float32 else x


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrix of a feature batch, normalised by the number of elements.

    Args:
        features: ``(N, C, H, W)`` activations.
        mask: optional ``(N or 1, 1, H, W)`` weights in [0, 1] (a region of the image).

    Returns:
        ``(N, C, C)`` float32 tensor ``F F^T / (C H W)`` with ``F`` the ``(C, H*W)`` features.
        With a mask, ``F`` is weighted by it and the count is the mask's (squared) area, so
        the result is the Gram matrix of the masked region alone (Gatys et al. 2017).
    """
    if features.ndim != 4:
        raise ValueError(f"gram_matrix expects (N, C, H, W) features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        f = _float32(features)
        if mask is None:
            count = torch.tensor(float(h * w), device=f.device)
        else:
            m = _float32(mask)
            f = f * m
            count = m.square().sum(dim=(1, 2, 3)).clamp_min(1e-8).reshape(-1, 1, 1)
        f = f.reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * count)


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


def style_loss(
    features: torch.Tensor, target_gram: torch.Tensor, normalize: bool = False, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error between the Gram matrix of ``features`` and ``target_gram``.

    ``target_gram`` is ``(C, C)``, ``(1, C, C)`` or ``(N, C, C)``; it broadcasts over the batch.
    With ``normalize``, the error is relative to the mean square of ``target_gram``. With a
    ``mask`` (see :func:`gram_matrix`), only the masked region of ``features`` is compared.
    """
    gram = gram_matrix(features, mask)
    target = _float32(target_gram)
    if target.ndim == 2:
        target = target.unsqueeze(0)
    return _mse(gram, target.expand_as(gram), normalize)


def style_loss_per_sample(features: torch.Tensor, target_grams: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``(N,)`` Gram losses of each sample of ``features`` against its own ``(N, C, C)`` target.

    With ``normalize``, each sample's error is relative to the mean square of its own target, so
    styles whose Gram matrices differ in scale weigh alike.
    """
    gram = gram_matrix(features)
    with torch.autocast(device_type=features.device.type, enabled=False):
        target = _float32(target_grams).expand_as(gram)
        loss = (gram - target).square().mean(dim=(1, 2))
        if normalize:
            loss = loss / target.detach().square().mean(dim=(1, 2)).clamp_min(1e-12)
        return loss


def teacher_loss(
    features: Mapping[str, torch.Tensor],
    teacher_features: Mapping[str, torch.Tensor],
    layers: Mapping[str, float],
    normalize: bool = False,
) -> torch.Tensor:
    """Distillation (Hinton et al. 2015, here on images): the ``{layer: weight}`` sum of the mean squared
    feature errors between a result and another network's result for the same photo, each relative to
    the other result's features if ``normalize``. Every layer of the style term, so that the result
    follows the other network's strokes at every scale, not only its content."""
    first = features[next(iter(layers))]
    total = first.new_zeros((), dtype=torch.float32)
    for name, w in layers.items():
        total = total + w * _mse(features[name], teacher_features[name], normalize)
    return total


def identity_loss(output: torch.Tensor, photo: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``weights`` ``(N,)`` times each sample's mean squared pixel error to the photo."""
    with torch.autocast(device_type=output.device.type, enabled=False):
        per_sample = (_float32(output) - _float32(photo)).square().mean(dim=(1, 2, 3))
        return (_float32(weights) * per_sample).mean()


# The second view of the stability term (Wang et al., AAAI 2020): a small random camera motion
# and sensor noise, as between two consecutive video frames.
MAX_SHIFT = 0.02  # of the image size, each axis
MAX_ANGLE = 1.0  # degrees
MAX_ZOOM = 0.02  # relative
NOISE = 0.01  # standard deviation, pixel values in [0, 1]
# Layered motion (loss.stability_motion=layered): an object moves over the moving background, as the
# bikes and riders of camera footage do, so that texture at moving edges is trained to stay put.
MAX_OBJECT_SHIFT = 0.04  # the object's own motion on top of the background's, of the image size, each axis
OBJECT_RADII = (0.15, 0.35)  # the object's half-axes, of the image size


def random_warps(n: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 2, 3)`` affine matrices (``F.affine_grid``'s convention, normalised coordinates) of small
    random shifts, rotations and zooms, each uniform within the limits above."""
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = torch.deg2rad(u[:, 0] * MAX_ANGLE)
    scale = 1 + u[:, 1] * MAX_ZOOM
    shift = u[:, 2:] * MAX_SHIFT * 2  # normalised coordinates span 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` ``(N, C, H, W)`` resampled through ``theta`` (bilinear), and the ``(N, 1, H, W)``
    mask of the pixels that came from inside the image (1) rather than from beyond its border (0)."""
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(images[:, :1])
    inside = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped, (inside > 0.999).to(images.dtype)


def object_masks(n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 1, height, width)`` masks of one random ellipse each (1 inside): the moving objects of
    :func:`layered_warp`, centred anywhere in the middle half, half-axes within ``OBJECT_RADII``."""
    u = torch.rand(n, 4, 1, 1, generator=generator)
    centre_y, centre_x = 0.25 + 0.5 * u[:, 0], 0.25 + 0.5 * u[:, 1]
    low, high = OBJECT_RADII
    radius_y, radius_x = low + (high - low) * u[:, 2], low + (high - low) * u[:, 3]
    y = (torch.arange(height) + 0.5)[:, None] / height
    x = (torch.arange(width) + 0.5)[None, :] / width
    inside = ((y - centre_y) / radius_y).square() + ((x - centre_x) / radius_x).square() <= 1
    return inside.float()[:, None]


def object_warps(background: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The objects' motions: each background warp ``(n, 2, 3)`` plus its own shift within ``MAX_OBJECT_SHIFT``."""
    shift = (torch.rand(background.shape[0], 2, generator=generator) * 2 - 1) * MAX_OBJECT_SHIFT * 2
    return background + F.pad(shift[:, :, None], (2, 0))


def layered_warp(
    images: torch.Tensor, background: torch.Tensor, objects: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` moved in two layers: the object inside ``masks`` ``(N, 1, H, W)`` through ``objects``,
    the rest through ``background`` (``(N, 2, 3)`` warps each), the object drawn over the background.
    Returns the moved images and the mask of the pixels that came from inside the image, as :func:`warp`.

    The background layer keeps the object's own pixels where the object moved away (there is no
    photo of what was behind it): the same pixels, moved the same way, in the view and in the target.
    """
    back, back_inside = warp(images, background)
    front, front_inside = warp(images, objects)
    over, _ = warp(masks.to(images.dtype), objects)
    return back * (1 - over) + front * over, back_inside * (1 - over) + front_inside * over


def stability_loss(second: torch.Tensor, first_warped: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the stylized second view and the warped stylized first view,
    over the valid pixels (float32)."""
    with torch.autocast(device_type=second.device.type, enabled=False):
        diff = (_float32(second) - _float32(first_warped)).square() * _float32(valid)
        return diff.sum() / (_float32(valid).sum() * second.shape[1]).clamp_min(1.0)


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
    """Content + style + total-variation loss over a frozen VGG (VGG19, or VGG16).

    Args:
        vgg: the loss network; it must return every content and style layer.
        content_layers: ``{layer: weight}`` for the content term.
        style_layers: ``{layer: weight}`` for the style term.
        content_weight, style_weight, tv_weight: weights of the three terms.
        normalize: use relative content and style losses (see the module docstring).
        teacher_weight: weight of the distance to another network's results (:func:`teacher_loss`),
            added where :meth:`forward` is given them.

    Call :meth:`set_style` once with the style image(s); their Gram matrices are kept
    as buffers (not saved in state dicts) and reused for every batch.
    """

    def __init__(
        self,
        vgg: VGG,
        content_layers: Mapping[str, float],
        style_layers: Mapping[str, float],
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        normalize: bool = True,
        teacher_weight: float = 0.0,
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
        self.teacher_weight = float(teacher_weight)
        self.normalize = normalize
        self.blend: list[float] = [1.0]
        self.masks: list[torch.Tensor] | None = None
        self.num_styles = 0  # styles of a conditional network (set_style_bank)

    @torch.no_grad()
    def set_style(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        weights: Sequence[float] | None = None,
        masks: Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Compute and keep the target Gram matrices.

        Args:
            images: one ``(1, 3, H, W)`` RGB [0, 1] image, or several (sizes may differ).
            weights: blend weights for several style images (normalised to sum to 1).
            masks: optional ``(1, 1, H, W)`` masks, one per style image, at the size of the
                images to be scored: each style then applies to its own region only.
        """
        images = [images] if isinstance(images, torch.Tensor) else list(images)
        weights = [1.0] * len(images) if weights is None else [float(w) for w in weights]
        if len(weights) != len(images) or sum(weights) <= 0 or min(weights) < 0:
            raise ValueError(f"need one non-negative blend weight per style image, got {weights} for {len(images)}")
        if masks is not None and len(masks) != len(images):
            raise ValueError(f"need one mask per style image, got {len(masks)} masks for {len(images)} images")
        total = sum(weights)
        self.blend = [w / total for w in weights]
        grams = {name: [] for name in self.style_layers}
        for img in images:
            features = self.vgg(img.to(self._device()))
            for name in self.style_layers:
                grams[name].append(gram_matrix(features[name]).mean(0))
        for name, per_image in grams.items():
            if masks is None:  # one blended target
                self.register_buffer(
                    f"gram_{name}", sum(w * g for w, g in zip(self.blend, per_image, strict=True)), False
                )
            else:
                for k, g in enumerate(per_image):
                    self.register_buffer(f"gram_{name}_{k}", g, persistent=False)
        self.masks = None if masks is None else [m.to(self._device()).float() for m in masks]

    @torch.no_grad()
    def set_style_bank(self, images: Sequence[torch.Tensor]) -> None:
        """Keep one Gram target per style of a conditional network, stacked ``(S, C, C)`` per layer;
        :meth:`forward` then takes each sample's ``style_index``."""
        grams: dict[str, list[torch.Tensor]] = {name: [] for name in self.style_layers}
        for img in images:
            features = self.vgg(img.to(self._device()))
            for name in self.style_layers:
                grams[name].append(gram_matrix(features[name]).mean(0))
        for name, per_style in grams.items():
            self.register_buffer(f"bank_{name}", torch.stack(per_style), persistent=False)
        self.num_styles = len(images)

    @torch.no_grad()
    def set_content(self, image: torch.Tensor) -> None:
        """Keep the content features of ``image``; :meth:`forward` then needs no ``content``."""
        features = self.vgg(image.to(self._device()))
        for name in self.content_layers:
            self.register_buffer(f"content_{name}", features[name], persistent=False)

    def _device(self) -> torch.device:
        return next(self.vgg.parameters()).device

    def target_gram(self, layer: str, index: int | None = None) -> torch.Tensor:
        """The target Gram matrix of a style layer (of style ``index`` when masks are used)."""
        gram = getattr(self, f"gram_{layer}" if index is None else f"gram_{layer}_{index}", None)
        if gram is None:
            raise RuntimeError("PerceptualLoss.set_style() must be called before computing the loss")
        return gram

    def _style_term(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        if self.masks is None:
            return style_loss(features, self.target_gram(layer), self.normalize)
        total = features.new_zeros((), dtype=torch.float32)
        for k, (mask, w) in enumerate(zip(self.masks, self.blend, strict=True)):
            m = F.interpolate(mask, size=features.shape[-2:], mode="area")  # region at this layer's resolution
            total = total + w * style_loss(features, self.target_gram(layer, k), self.normalize, m)
        return total

    def _bank_terms(
        self, features: dict[str, torch.Tensor], style_index: torch.Tensor, style_scale: torch.Tensor | None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Each sample against its own style: the terms (``style/<layer>``, ``style``, ``style_per_sample``)
        and the style term of the loss, the mean of the per-sample losses times ``style_scale``."""
        terms: dict[str, torch.Tensor] = {}
        per_sample = 0
        for name, w in self.style_layers.items():
            targets = getattr(self, f"bank_{name}")[style_index]
            layer = w * style_loss_per_sample(features[name], targets, self.normalize)
            terms[f"style/{name}"] = layer.mean()
            per_sample = per_sample + layer
        terms["style"] = per_sample.mean()
        terms["style_per_sample"] = per_sample.detach()
        scaled = per_sample if style_scale is None else per_sample * style_scale.float()
        return terms, scaled.mean()

    def _style_terms(self, features: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The style terms against the one target (or masked targets); the style term of the loss."""
        terms = {f"style/{name}": w * self._style_term(features[name], name) for name, w in self.style_layers.items()}
        terms["style"] = sum(terms.values(), features[next(iter(self.style_layers))].new_zeros((), dtype=torch.float32))
        return terms, terms["style"]

    def _content_features(self, content: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if content is not None:
            with torch.no_grad():
                return self.vgg(content)
        features = {name: getattr(self, f"content_{name}", None) for name in self.content_layers}
        if any(v is None for v in features.values()):
            raise RuntimeError("pass `content`, or call PerceptualLoss.set_content() first")
        return features

    def forward(
        self,
        output: torch.Tensor,
        content: torch.Tensor | None = None,
        style_index: torch.Tensor | None = None,
        style_scale: torch.Tensor | None = None,
        teacher: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses of a stylized batch ``output`` against the photos ``content`` it came from.

        ``content`` may be left out after :meth:`set_content`. Returns a dict with the weighted
        ``loss`` and the unweighted terms ``content``, ``style``, ``tv`` and ``style/<layer>``
        (each style layer, layer weight applied).

        After :meth:`set_style_bank`, ``style_index`` ``(N,)`` gives each sample's style and
        ``style_scale`` ``(N,)`` multiplies its style loss in ``loss`` (a per-style weight times
        the sample's strength; 0: content only). ``style_per_sample`` ``(N,)`` is then returned too.

        ``teacher``: another network's results for the same photos; adds the ``teacher`` term
        (:func:`teacher_loss` over the style layers) times ``teacher_weight``.
        """
        content_features = self._content_features(content)
        output_features = self.vgg(output)
        terms: dict[str, torch.Tensor] = {}
        content_total = output.new_zeros((), dtype=torch.float32)
        for name, w in self.content_layers.items():
            content_total = content_total + w * content_loss(
                output_features[name], content_features[name], self.normalize
            )
        terms["content"] = content_total
        if style_index is not None:
            style_terms, style_in_loss = self._bank_terms(output_features, style_index, style_scale)
        else:
            style_terms, style_in_loss = self._style_terms(output_features)
        terms.update(style_terms)
        terms["tv"] = total_variation(output)
        terms["loss"] = (
            self.content_weight * terms["content"] + self.style_weight * style_in_loss + self.tv_weight * terms["tv"]
        )
        if teacher is not None:
            with torch.no_grad():
                teacher_features = self.vgg(teacher)
            terms["teacher"] = teacher_loss(output_features, teacher_features, self.style_layers, self.normalize)
            terms["loss"] = terms["loss"] + self.teacher_weight * terms["teacher"]
        return terms
