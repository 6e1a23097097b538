"""The image transformation networks: Johnson et al. (2016) and a light variant for real time.

:class:`TransformerNet` (``architecture="johnson"``): encoder (9x9 conv, two stride-2 convs),
residual blocks, decoder (nearest upsampling + conv, which avoids the checkerboard artifacts of
transposed convolutions), instance norm and reflection padding throughout.

:class:`LightTransformerNet` (``architecture="light"``): the same encoder / residual / decoder
shape with no layer at full resolution (pixel unshuffle in, pixel shuffle out), depthwise-separable
residual blocks and fewer channels: 5.6k multiply-adds per pixel, 28x fewer than Johnson's network.
``architecture="light_aa"`` is the same network anti-aliased: a fixed low-pass (:class:`Blur`) before each
subsampling and after the pixel shuffle, and bilinear upsampling, so that a photo moved by a pixel is painted
with the same texture (less flicker in video; ``scripts/shift_error.py`` measures it).

Input and output are RGB in [0, 1]. Any height and width are accepted: the image
is padded to a multiple of 4 and the result cropped back.

Conditional networks (``num_styles >= 1``; Dumoulin et al., ICLR 2017) share one set of
convolution weights between several styles: every instance norm has one scale and shift per
style (:class:`ConditionalInstanceNorm2d`) plus one more row, the *identity style*, trained to
give the photo back. The network takes ``style_weights`` (one weight per style; any mixture
blends the styles' scales and shifts) and ``strength`` in [0, 1], which moves the scales and
shifts from the identity row (0) to the styles' (1): a trained-in strength, not a pixel blend
(:func:`style_mixing`).
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn


def style_mixing(style_weights: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """The rows mixed into each conditional norm: ``strength`` times the style weights (normalised to
    sum to 1), then ``1 - strength`` for the identity row.

    Args:
        style_weights: ``(S,)`` or ``(N, S)`` non-negative weights, not all zero; or ``(N, S, H, W)``
            per-pixel weights (style maps: one style here, another there), normalised at every pixel.
        strength: a scalar, ``(1,)`` or ``(N,)`` strength in [0, 1].

    Returns:
        ``(N, S + 1)``, or ``(N, S + 1, H, W)`` for style maps.
    """
    weights = style_weights if style_weights.ndim != 1 else style_weights.unsqueeze(0)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-8)
    s = strength.reshape(-1, *([1] * (weights.ndim - 1))).to(weights.dtype)
    n = max(weights.shape[0], s.shape[0])  # one strength for all samples, or one style mix for all
    scaled = (s * weights).expand(n, *weights.shape[1:])
    return torch.cat([scaled, (1 - s).expand(n, 1, *weights.shape[2:])], dim=1)


def style_affine(
    mixing: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, size: tuple[int, int] | torch.Size
) -> tuple[torch.Tensor, torch.Tensor]:
    """The scale ``mixing @ weight`` and shift ``mixing @ bias`` of a conditional norm, float32.

    ``weight`` and ``bias`` are ``(K, C)``, one row per style. ``mixing`` ``(N, K)`` gives ``(N, C, 1, 1)``;
    a per-pixel ``(N, K, h, w)`` mixing is resized (bilinear) to the layer's ``size`` first and gives
    ``(N, C, H, W)``.
    """
    weight, bias = weight.float(), bias.float()
    if mixing.ndim == 2:
        c = weight.shape[1]
        return (mixing.float() @ weight).reshape(-1, c, 1, 1), (mixing.float() @ bias).reshape(-1, c, 1, 1)
    maps = F.interpolate(mixing.float(), size=tuple(size), mode="bilinear", align_corners=False)
    # A 1x1 convolution mixes the rows at every pixel (faster in onnxruntime than the same einsum).
    k, c = weight.shape
    return F.conv2d(maps, weight.t().reshape(c, k, 1, 1)), F.conv2d(maps, bias.t().reshape(c, k, 1, 1))


def conditional_instance_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mixing: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Instance norm of ``x`` ``(N, C, H, W)``, then the scale and shift of :func:`style_affine`."""
    normalised = F.instance_norm(x, eps=eps)
    scale, shift = style_affine(mixing, weight, bias, x.shape[-2:])
    return normalised * scale.to(x.dtype) + shift.to(x.dtype)


class Conditioned(nn.Module):
    """A layer whose forward takes the style mixing: ``forward(x, mixing)`` (None: unconditional)."""


class ConditionalInstanceNorm2d(Conditioned):
    """Instance norm with one learned scale and shift per row of the mixing (Dumoulin et al. 2017).

    Args:
        num_features: channels.
        num_rows: styles + 1 (the last row is the identity style, see :func:`style_mixing`).
    """

    def __init__(self, num_features: int, num_rows: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_rows, num_features))
        self.bias = nn.Parameter(torch.zeros(num_rows, num_features))

    def forward(self, x: torch.Tensor, mixing: torch.Tensor | None) -> torch.Tensor:
        if mixing is None:
            raise ValueError("a conditional network needs style weights and a strength")
        return conditional_instance_norm(x, self.weight, self.bias, mixing, self.eps)


class CondSequential(nn.Sequential, Conditioned):
    """``nn.Sequential`` that hands the style mixing to the layers that take it."""

    def forward(self, x: torch.Tensor, mixing: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, mixing) if isinstance(layer, Conditioned) else layer(x)
        return x


def instance_norm(channels: int, num_styles: int = 0) -> nn.Module:
    """The norm of every layer: plain affine instance norm, or conditional with ``num_styles`` + 1 rows."""
    if num_styles == 0:
        return nn.InstanceNorm2d(channels, affine=True)
    return ConditionalInstanceNorm2d(channels, num_styles + 1)


class ConvLayer(CondSequential):
    """Reflection padding + convolution (+ instance norm + ReLU)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        norm_relu: bool = True,
        num_styles: int = 0,
    ):
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel_size // 2),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride),
        ]
        if norm_relu:
            layers += [instance_norm(out_channels, num_styles), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(Conditioned):
    """Two 3x3 conv layers with instance norm and an identity skip (He et al. 2016); ``dilation`` spaces
    the taps (Yu and Koltun 2016): each conv then reaches ``dilation`` times as far with the same multiply-adds."""

    def __init__(self, channels: int, num_styles: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.block = CondSequential(
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(channels, channels, 3, dilation=dilation),
            instance_norm(channels, num_styles),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(channels, channels, 3, dilation=dilation),
            instance_norm(channels, num_styles),
        )

    def forward(self, x: torch.Tensor, mixing: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.block(x, mixing)


class UpsampleConvLayer(CondSequential):
    """Nearest-neighbour (or bilinear) 2x upsampling followed by a conv layer (Odena et al. 2016)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, num_styles: int = 0, mode: str = "nearest"
    ) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode=mode),
            ConvLayer(in_channels, out_channels, kernel_size, num_styles=num_styles),
        )


def binomial_kernel(channels: int) -> torch.Tensor:
    """The 3x3 binomial low-pass ``[1, 2, 1]^T [1, 2, 1] / 16`` for each of ``channels`` (depthwise weights):
    zero response at the Nyquist frequency, the filter of Zhang (ICML 2019) that keeps a subsampling network
    from aliasing."""
    taps = torch.tensor([1.0, 2.0, 1.0])
    return (taps[:, None] * taps[None, :] / 16).expand(channels, 1, 3, 3).clone()


class Blur(nn.Module):
    """Each channel filtered by :func:`binomial_kernel`, reflection padded (a fixed filter, no weights)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("kernel", binomial_kernel(channels), persistent=False)  # not in checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.kernel.to(x.dtype), groups=self.kernel.shape[0])


class StyleNetwork(nn.Module):
    """Shared by the networks: pad to a multiple of 4, encoder -> residuals -> decoder, crop, sigmoid."""

    encoder: CondSequential
    residuals: CondSequential
    decoder: CondSequential
    num_styles: int = 0
    dilation: int = 1  # of the residual blocks' convs (1/4 resolution)
    # A trained strength (model.strength=true): the output moves from the photo (strength 0, exactly)
    # to the network's own output (strength 1) in logit space; see strength_output.
    gated_strength: bool = False

    @property
    def min_side(self) -> int:
        """The smallest height and width that every reflection pad fits without the tiny-image path: the
        residual blocks pad by ``dilation`` at 1/4 resolution (8 px for Johnson's network, 12 with dilation 2)."""
        return 4 * (self.dilation + 1)

    def mixing(self, style_weights: torch.Tensor | None, strength: torch.Tensor | float | None) -> torch.Tensor | None:
        """The conditional norms' mixing for these inputs (defaults: the first style, strength 1)."""
        if self.num_styles == 0:
            if style_weights is not None or strength is not None:
                raise ValueError("this network has no styles to choose and no trained strength (num_styles=0)")
            return None
        device = next(self.parameters()).device
        if style_weights is None:
            style_weights = F.one_hot(torch.tensor(0, device=device), self.num_styles).float()
        count = style_weights.shape[1] if style_weights.ndim == 4 else style_weights.shape[-1]
        if count != self.num_styles:
            raise ValueError(f"style_weights has {count} weights, the network {self.num_styles} styles")
        strength = torch.as_tensor(1.0 if strength is None else strength, dtype=torch.float32, device=device)
        return style_mixing(style_weights.float(), strength)

    def forward(
        self,
        image: torch.Tensor,
        style_weights: torch.Tensor | None = None,
        strength: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Stylize an RGB [0, 1] batch ``(N, 3, H, W)``; returns the same shape, in [0, 1].

        Conditional networks also take ``style_weights`` (``(S,)`` or ``(N, S)``, or per-pixel style
        maps ``(N, S, h, w)`` of any size, stretched over the image) and ``strength`` (a number or
        ``(N,)``); see :func:`style_mixing`.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB batch of shape (N, 3, H, W), got {tuple(image.shape)}")
        return self.stylize(image, self.mixing(style_weights, strength))

    def stylize(self, image: torch.Tensor, mixing: torch.Tensor | None) -> torch.Tensor:
        """The network on an RGB batch with a given mixing (``None`` for an unconditional network)."""
        h, w = image.shape[-2:]
        # Two stride-2 steps: pad to a multiple of 4 so the decoder gives the size back exactly.
        # No branch on the pad amounts: they stay symbolic when exported with dynamic H and W.
        pad_h, pad_w = (-h) % 4, (-w) % 4
        side = self.min_side
        if h < side or w < side:
            # Tiny images: grow so that every reflection pad fits (replicate allows any pad).
            pad_h, pad_w = max(side, h + pad_h) - h, max(side, w + pad_w) - w
            x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        else:
            x = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")
        # Style maps are stretched over each layer's features as they are (the pad to 4 moves them < 4 px).
        y = self.decoder(self.residuals(self.encoder(x, mixing), mixing), mixing)[:, :, :h, :w]
        if not self.gated_strength or mixing is None:
            return torch.sigmoid(y)
        return strength_output(image, y, 1 - mixing[:, -1:])


# The ``output`` setting saved by runs with a trained strength. Runs of 2026-11/12 saved "gated" for
# sigmoid(logit(photo) + strength * change), retired for the pixel checker it trained (strength_output).
STRENGTH_OUTPUT = "logit_blend"


def strength_output(image: torch.Tensor, y: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """``sigmoid((1 - strength) * logit(image) + strength * y)``: the photo at strength 0 (within 1/510,
    where the photo is clamped off 0 and 1 for its logit), the network's own output ``sigmoid(y)`` at 1.

    The network is conditioned on the strength too, so in between it draws lighter strokes rather
    than fading: ``y`` can be anything. At strength 1 nothing of the photo is added, so the network
    is as free as one without a strength (adding the photo's logit there, ``sigmoid(logit + change)``,
    left a pixel checker: the cheapest texture the pixel-shuffle decoder could lay over the photo).
    ``strength`` is ``(N, 1)`` or a per-pixel ``(N, 1, h, w)`` map, stretched over the image.
    """
    h, w = image.shape[-2:]
    if strength.ndim == 2:
        strength = strength[..., None, None]
    else:
        strength = F.interpolate(strength.float(), size=(h, w), mode="bilinear", align_corners=False)
    photo = image.float().clamp(1 / 510, 1 - 1 / 510)
    logit = torch.log(photo) - torch.log1p(-photo)
    s = strength.float()
    return torch.sigmoid((1 - s) * logit + s * y.float()).to(y.dtype)


class TransformerNet(StyleNetwork):
    """Feed-forward style network of Johnson et al. (2016).

    Args:
        width: channel multiplier (1.0 = 32/64/128 channels as in the paper; 0.5 halves them).
        num_residual_blocks: residual blocks between encoder and decoder (paper: 5).
        num_styles: 0 for one fixed style; otherwise a conditional network of this many styles.
        dilation: of the residual blocks' convs (1 as in the paper; 2 doubles their reach with the same multiply-adds).
    """

    def __init__(
        self, width: float = 1.0, num_residual_blocks: int = 5, num_styles: int = 0, dilation: int = 1
    ) -> None:
        super().__init__()
        _check_shape(width, num_residual_blocks, num_styles, dilation)
        self.num_styles, self.dilation = num_styles, dilation
        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
        k = {"num_styles": num_styles}
        self.encoder = CondSequential(
            ConvLayer(3, c1, kernel_size=9, **k),
            ConvLayer(c1, c2, kernel_size=3, stride=2, **k),
            ConvLayer(c2, c3, kernel_size=3, stride=2, **k),
        )
        blocks = (ResidualBlock(c3, **k, dilation=dilation) for _ in range(num_residual_blocks))
        self.residuals = CondSequential(*blocks)
        self.decoder = CondSequential(
            UpsampleConvLayer(c3, c2, **k),
            UpsampleConvLayer(c2, c1, **k),
            ConvLayer(c1, 3, kernel_size=9, norm_relu=False),
        )


def _check_shape(width: float, num_residual_blocks: int, num_styles: int, dilation: int) -> None:
    if width <= 0 or num_residual_blocks < 0 or num_styles < 0 or dilation < 1:
        raise ValueError(
            f"width must be > 0, num_residual_blocks and num_styles >= 0, dilation >= 1: got {width}, "
            f"{num_residual_blocks}, {num_styles}, {dilation}"
        )


class SeparableResidualBlock(Conditioned):
    """A residual block whose 3x3 convs are depthwise + pointwise (MobileNet): ~8x fewer multiply-adds."""

    def __init__(self, channels: int, num_styles: int = 0, dilation: int = 1) -> None:
        super().__init__()

        def separable() -> list[nn.Module]:
            return [
                nn.ReflectionPad2d(dilation),
                nn.Conv2d(channels, channels, 3, groups=channels, dilation=dilation),
                nn.Conv2d(channels, channels, 1),
                instance_norm(channels, num_styles),
            ]

        self.block = CondSequential(*separable(), nn.ReLU(inplace=True), *separable())

    def forward(self, x: torch.Tensor, mixing: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.block(x, mixing)


class LightTransformerNet(StyleNetwork):
    """A light network for real-time use on CPUs and phones.

    Full-resolution layers cost Johnson's network most of its memory traffic, so none are left:
    the image is pixel-unshuffled (2x2 blocks to 12 channels) on the way in and pixel-shuffled on
    the way out, everything else runs at 1/2 and 1/4 resolution. The last conv is initialised
    so that the four sub-pixels of a block start equal (ICNR, Aitken et al. 2017): no checkerboard
    at the start of training.

    Args:
        width: channel multiplier (1.0 = 24/48 channels).
        num_residual_blocks: depthwise-separable residual blocks at 1/4 resolution.
        num_styles: 0 for one fixed style; otherwise a conditional network of this many styles.
        dilation: of the residual blocks' depthwise convs.
    """

    def __init__(
        self,
        width: float = 1.0,
        num_residual_blocks: int = 3,
        num_styles: int = 0,
        antialias: bool = False,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        _check_shape(width, num_residual_blocks, num_styles, dilation)
        self.num_styles, self.dilation = num_styles, dilation
        c1, c2 = (max(1, round(c * width)) for c in (24, 48))
        k = {"num_styles": num_styles}
        down = ConvLayer(c1, c2, kernel_size=3, stride=2, **k)
        unshuffle, shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        if antialias:  # a low-pass before each subsampling and after the shuffle: ~2% more multiply-adds
            # Put inside the weightless layers, so that light and light_aa checkpoints have the same keys.
            unshuffle, shuffle = nn.Sequential(Blur(3), unshuffle), nn.Sequential(shuffle, Blur(3))
            down[0] = nn.Sequential(Blur(c1), down[0])
        self.encoder = CondSequential(unshuffle, ConvLayer(12, c1, kernel_size=3, **k), down)
        blocks = (SeparableResidualBlock(c2, **k, dilation=dilation) for _ in range(num_residual_blocks))
        self.residuals = CondSequential(*blocks)
        last = ConvLayer(c1, 12, kernel_size=3, norm_relu=False)
        up = UpsampleConvLayer(c2, c1, **k, mode="bilinear" if antialias else "nearest")
        self.decoder = CondSequential(up, last, shuffle)
        conv = last[1]
        with torch.no_grad():  # ICNR: one kernel per colour, repeated for its 2x2 sub-pixels
            conv.weight.copy_(conv.weight[::4].repeat_interleave(4, dim=0))
            conv.bias.copy_(conv.bias[::4].repeat_interleave(4))


ARCHITECTURES = {
    "johnson": TransformerNet,
    "light": LightTransformerNet,
    "light_aa": functools.partial(LightTransformerNet, antialias=True),
}


def build_network(
    architecture: str = "johnson",
    width: float = 1.0,
    num_residual_blocks: int = 5,
    num_styles: int = 0,
    gated_strength: bool = False,
    dilation: int = 1,
) -> StyleNetwork:
    """The style network named ``architecture`` (``johnson``, ``light`` or ``light_aa``); conditional if ``num_styles``;
    with ``gated_strength`` (a trained strength) its output is :func:`strength_output`; ``dilation`` of the residual
    blocks' convs."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    if gated_strength and not num_styles:
        raise ValueError("gated_strength needs a conditional network (num_styles >= 1)")
    net = ARCHITECTURES[architecture](
        width=width, num_residual_blocks=num_residual_blocks, num_styles=num_styles, dilation=dilation
    )
    net.gated_strength = gated_strength
    return net


def conditional_norms(net: nn.Module) -> list[ConditionalInstanceNorm2d]:
    """The conditional norms of a network, in forward order."""
    return [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]


def add_styles(net: StyleNetwork, count: int, start_from: int | None = None) -> StyleNetwork:
    """A copy of a conditional network with ``count`` more styles, each starting at the scales and
    shifts of existing style ``start_from``, or at the mean of the existing styles' when None (the
    identity row stays last)."""
    if net.num_styles == 0:
        raise ValueError("only a conditional network (num_styles >= 1) can take more styles")
    if start_from is not None and not 0 <= start_from < net.num_styles:
        raise ValueError(f"start_from={start_from}: the network has styles 0..{net.num_styles - 1}")
    grown = copy.deepcopy(net)
    grown.num_styles = net.num_styles + count
    with torch.no_grad():
        for norm in conditional_norms(grown):
            for name in ("weight", "bias"):
                rows = getattr(norm, name)
                start = rows[:-1].mean(dim=0, keepdim=True) if start_from is None else rows[start_from : start_from + 1]
                new = start.repeat(count, 1)
                setattr(norm, name, nn.Parameter(torch.cat([rows[:-1], new, rows[-1:]])))
    return grown
