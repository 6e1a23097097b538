"""The image transformation networks: Johnson et al. (2016) and a light variant for real time.

:class:`TransformerNet` (``architecture="johnson"``): encoder (9x9 conv, two stride-2 convs),
residual blocks, decoder (nearest upsampling + conv, which avoids the checkerboard artifacts of
transposed convolutions), instance norm and reflection padding throughout.

:class:`LightTransformerNet` (``architecture="light"``): the same encoder / residual / decoder
shape with no layer at full resolution (pixel unshuffle in, pixel shuffle out), depthwise-separable
residual blocks and fewer channels: 5.6k multiply-adds per pixel, 28x fewer than Johnson's network.

Input and output are RGB in [0, 1]. Any height and width are accepted: the image
is padded to a multiple of 4 and the result cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ instance norm + ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, norm_relu: bool = True):
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel_size // 2),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride),
        ]
        if norm_relu:
            layers += [nn.InstanceNorm2d(out_channels, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv layers with instance norm and an identity skip (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class UpsampleConvLayer(nn.Sequential):
    """Nearest-neighbour 2x upsampling followed by a conv layer (Odena et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(in_channels, out_channels, kernel_size))


class StyleNetwork(nn.Module):
    """Shared by the networks: pad to a multiple of 4, encoder -> residuals -> decoder, crop, sigmoid."""

    encoder: nn.Module
    residuals: nn.Module
    decoder: nn.Module

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Stylize an RGB [0, 1] batch ``(N, 3, H, W)``; returns the same shape, in [0, 1]."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB batch of shape (N, 3, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        # Two stride-2 steps: pad to a multiple of 4 so the decoder gives the size back exactly.
        # No branch on the pad amounts: they stay symbolic when exported with dynamic H and W.
        pad_h, pad_w = (-h) % 4, (-w) % 4
        if h < 8 or w < 8:
            # Tiny images: grow to 8 px so that every reflection pad fits (replicate allows any pad).
            pad_h, pad_w = max(8, h + pad_h) - h, max(8, w + pad_w) - w
            x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        else:
            x = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return torch.sigmoid(y[:, :, :h, :w])


class TransformerNet(StyleNetwork):
    """Feed-forward style network of Johnson et al. (2016).

    Args:
        width: channel multiplier (1.0 = 32/64/128 channels as in the paper; 0.5 halves them).
        num_residual_blocks: residual blocks between encoder and decoder (paper: 5).
    """

    def __init__(self, width: float = 1.0, num_residual_blocks: int = 5) -> None:
        super().__init__()
        if width <= 0 or num_residual_blocks < 0:
            raise ValueError(f"width must be > 0 and num_residual_blocks >= 0, got {width}, {num_residual_blocks}")
        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
        self.encoder = nn.Sequential(
            ConvLayer(3, c1, kernel_size=9),
            ConvLayer(c1, c2, kernel_size=3, stride=2),
            ConvLayer(c2, c3, kernel_size=3, stride=2),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(c3) for _ in range(num_residual_blocks)))
        self.decoder = nn.Sequential(
            UpsampleConvLayer(c3, c2),
            UpsampleConvLayer(c2, c1),
            ConvLayer(c1, 3, kernel_size=9, norm_relu=False),
        )


class SeparableResidualBlock(nn.Module):
    """A residual block whose 3x3 convs are depthwise + pointwise (MobileNet): ~8x fewer multiply-adds."""

    def __init__(self, channels: int) -> None:
        super().__init__()

        def separable() -> list[nn.Module]:
            return [
                nn.ReflectionPad2d(1),
                nn.Conv2d(channels, channels, 3, groups=channels),
                nn.Conv2d(channels, channels, 1),
                nn.InstanceNorm2d(channels, affine=True),
            ]

        self.block = nn.Sequential(*separable(), nn.ReLU(inplace=True), *separable())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


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
    """

    def __init__(self, width: float = 1.0, num_residual_blocks: int = 3) -> None:
        super().__init__()
        if width <= 0 or num_residual_blocks < 0:
            raise ValueError(f"width must be > 0 and num_residual_blocks >= 0, got {width}, {num_residual_blocks}")
        c1, c2 = (max(1, round(c * width)) for c in (24, 48))
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(2),
            ConvLayer(12, c1, kernel_size=3),
            ConvLayer(c1, c2, kernel_size=3, stride=2),
        )
        self.residuals = nn.Sequential(*(SeparableResidualBlock(c2) for _ in range(num_residual_blocks)))
        last = ConvLayer(c1, 12, kernel_size=3, norm_relu=False)
        self.decoder = nn.Sequential(UpsampleConvLayer(c2, c1), last, nn.PixelShuffle(2))
        conv = last[1]
        with torch.no_grad():  # ICNR: one kernel per colour, repeated for its 2x2 sub-pixels
            conv.weight.copy_(conv.weight[::4].repeat_interleave(4, dim=0))
            conv.bias.copy_(conv.bias[::4].repeat_interleave(4))


ARCHITECTURES = {"johnson": TransformerNet, "light": LightTransformerNet}


def build_network(architecture: str = "johnson", width: float = 1.0, num_residual_blocks: int = 5) -> StyleNetwork:
    """The style network named ``architecture`` (``johnson`` or ``light``)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](width=width, num_residual_blocks=num_residual_blocks)
