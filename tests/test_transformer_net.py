"""Tests of fastnst.nn.transformer_net: size, shapes, architecture and gradients of TransformerNet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastnst.nn.transformer_net import LightTransformerNet, TransformerNet, build_network

# Published parameter count of the pytorch/examples fast_neural_style TransformerNet
# (32/64/128 channels, 5 residual blocks, affine instance norm).
JOHNSON_PARAMETERS = 1_679_235


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet()


def test_parameter_count(net: TransformerNet) -> None:
    assert count_parameters(net) == JOHNSON_PARAMETERS


def test_width_scales_parameters(net: TransformerNet) -> None:
    half = TransformerNet(width=0.5)
    assert count_parameters(half) < count_parameters(net)
    # Channels halve (16/32/64): the residual convs, the bulk of the net, shrink about 4x.
    assert count_parameters(half) < 0.3 * JOHNSON_PARAMETERS
    convs = [m for m in half.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == 16
    assert max(c.out_channels for c in convs) == 64
    assert count_parameters(TransformerNet(num_residual_blocks=3)) < JOHNSON_PARAMETERS


@pytest.mark.parametrize(("width", "blocks"), [(0, 5), (-1.0, 5), (1.0, -1)])
def test_invalid_arguments_raise(width: float, blocks: int) -> None:
    with pytest.raises(ValueError):
        TransformerNet(width=width, num_residual_blocks=blocks)


@pytest.mark.parametrize("shape", [(2, 3, 33, 47), (1, 3, 17, 18), (1, 3, 5, 7), (1, 3, 32, 32)])
def test_output_shape_and_range(net: TransformerNet, shape: tuple[int, ...]) -> None:
    torch.manual_seed(1)
    image = torch.rand(shape)
    with torch.no_grad():
        out = net(image)
    assert out.shape == image.shape
    assert out.dtype == image.dtype
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert out.std() > 0  # not a constant image


def test_batch_independence(net: TransformerNet) -> None:
    torch.manual_seed(2)
    batch = torch.rand(2, 3, 24, 20)
    batch[1] = batch[1] * 0.3 + 0.5  # different statistics per image
    with torch.no_grad():
        together = net(batch)
        alone = torch.cat([net(batch[:1]), net(batch[1:])])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-3)


def test_train_and_eval_mode_agree() -> None:
    """Instance norm without running statistics: the mode does not change the output."""
    torch.manual_seed(3)
    model = TransformerNet(width=0.5, num_residual_blocks=1)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        train_out = model.train()(image)
        eval_out = model.eval()(image)
    torch.testing.assert_close(train_out, eval_out)


def test_architecture(net: TransformerNet) -> None:
    modules = list(net.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in modules)
    upsamples = [m for m in modules if isinstance(m, nn.Upsample)]
    assert len(upsamples) == 2
    assert all(m.mode == "nearest" and m.scale_factor == 2 for m in upsamples)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in modules)
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    pads = [m for m in modules if isinstance(m, nn.ReflectionPad2d)]
    norms = [m for m in modules if isinstance(m, nn.InstanceNorm2d)]
    assert len(convs) == 3 + 2 * 5 + 3
    # Every conv pads by reflection, none by zeros.
    assert len(pads) == len(convs)
    assert all(c.padding == (0, 0) and c.padding_mode == "zeros" for c in convs)
    # Instance norm after every conv except the output one; learnable affine parameters.
    assert len(norms) == len(convs) - 1
    assert all(n.affine for n in norms)
    assert [c.kernel_size for c in (convs[0], convs[-1])] == [(9, 9), (9, 9)]
    assert [c.stride for c in convs[:3]] == [(1, 1), (2, 2), (2, 2)]


def test_input_not_modified(net: TransformerNet) -> None:
    torch.manual_seed(4)
    for shape in [(1, 3, 16, 16), (1, 3, 13, 10)]:
        image = torch.rand(shape)
        before = image.clone()
        with torch.no_grad():
            net(image)
        assert torch.equal(image, before)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(5)
    model = TransformerNet()
    image = torch.rand(2, 3, 20, 20, requires_grad=True)
    target = torch.rand(2, 3, 20, 20)
    (model(image) - target).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.endswith("weight")), [
        n for n, p in model.named_parameters() if n.endswith("weight") and p.grad.abs().sum() == 0
    ]
    assert image.grad is not None and image.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 1, 16, 16), (1, 4, 16, 16), (3, 16, 16), (1, 1, 3, 16, 16)])
def test_non_rgb_input_raises(net: TransformerNet, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="RGB"):
        net(torch.rand(shape))


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (1, 3, 3, 16), (1, 3, 1, 1)])
def test_tiny_images(net: TransformerNet, shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape


# -- the light network ---------------------------------------------------------------------------


def test_light_network_size_and_cost() -> None:
    light = build_network("light")
    assert isinstance(light, LightTransformerNet)
    assert count_parameters(light) < 0.05 * JOHNSON_PARAMETERS
    # No convolution runs at full resolution: the input is pixel-unshuffled first.
    seen: list[tuple[int, int]] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append(o.shape[-2:]))
        for m in light.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        light(torch.rand(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert seen and max(h for h, _ in seen) == 32


@pytest.mark.parametrize("shape", [(2, 3, 33, 47), (1, 3, 5, 7), (1, 3, 64, 48)])
def test_light_network_shapes_and_range(shape: tuple[int, ...]) -> None:
    torch.manual_seed(6)
    light = build_network("light")
    image = torch.rand(shape)
    before = image.clone()
    with torch.no_grad():
        out = light(image)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0
    assert torch.equal(image, before)


def test_light_network_starts_without_checkerboard() -> None:
    """ICNR initialisation: at step 0 the four sub-pixels of each 2x2 output block are equal."""
    torch.manual_seed(7)
    light = build_network("light")
    with torch.no_grad():
        out = light(torch.rand(1, 3, 32, 32))
    blocks = out.reshape(1, 3, 16, 2, 16, 2)
    torch.testing.assert_close(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))
    # Training then moves the sub-pixels apart: the constraint is an initialisation, not a structure.
    (light(torch.rand(1, 3, 32, 32)) - torch.rand(1, 3, 32, 32)).square().mean().backward()
    grad = light.decoder[1][1].weight.grad
    assert not torch.allclose(grad[0], grad[1])


def test_build_network_names() -> None:
    assert isinstance(build_network("johnson", 1.0, 5), TransformerNet)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("resnet")


def test_binomial_blur_known_values() -> None:
    from fastnst.nn.transformer_net import Blur

    flat = torch.full((1, 2, 5, 6), 0.3)
    torch.testing.assert_close(Blur(2)(flat), flat)  # a low-pass keeps a constant
    nyquist = torch.tensor([1.0, -1.0]).repeat(3).expand(1, 1, 6, 6)  # +1 -1 +1 ... along x
    assert Blur(1)(nyquist)[..., 1:-1].abs().max() < 1e-6  # zero response at the Nyquist frequency
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[..., 2, 2] = 16
    expected = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    torch.testing.assert_close(Blur(1)(impulse)[0, 0, 1:4, 1:4], expected)


def test_antialiased_light_network_has_the_light_weights_and_follows_a_pan_better() -> None:
    torch.manual_seed(8)
    light, smooth = build_network("light"), build_network("light_aa")
    assert isinstance(smooth, LightTransformerNet) and smooth.state_dict().keys() == light.state_dict().keys()
    smooth.load_state_dict(light.state_dict())  # the same weights: only the fixed filters differ
    image = torch.rand(1, 3, 64, 96).cumsum(-1).cumsum(-2)  # a smooth photo-like ramp with texture
    image = (image - image.min()) / (image.max() - image.min())

    def shift_error(net: nn.Module) -> float:  # stylize the image moved right by 1 px against moving the result
        with torch.no_grad():
            still, moved = net(image[..., 8:-8]), net(image[..., 7:-9])
        return float((moved[..., 8:-8, 9:-8] - still[..., 8:-8, 8:-9]).square().mean())

    assert shift_error(smooth) < 0.5 * shift_error(light)
    out = smooth(torch.rand(2, 3, 33, 47))
    assert out.shape == (2, 3, 33, 47) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_residual_conv_dilation_reaches_dilation_pixels(dilation: int) -> None:
    """Known values: a 3x3 kernel with only its top-left tap moves the image down and right by the dilation,
    with the reflected rows and columns at the border."""
    from fastnst.nn.transformer_net import ResidualBlock

    block = ResidualBlock(1, dilation=dilation)
    pad, conv = block.block[0], block.block[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        conv.bias.zero_()
        image = torch.arange(48.0).reshape(1, 1, 6, 8)
        moved = conv(pad(image))
    assert moved.shape == image.shape
    torch.testing.assert_close(moved[..., dilation:, dilation:], image[..., :-dilation, :-dilation])
    torch.testing.assert_close(moved[..., 0, dilation:], image[..., dilation, :-dilation])  # row -d reflects to row d


@pytest.mark.parametrize("architecture", ["johnson", "light", "light_aa"])
def test_dilation_changes_the_reach_not_the_weights_or_sizes(architecture: str) -> None:
    torch.manual_seed(9)
    plain = build_network(architecture, 0.5, 2)
    dilated = build_network(architecture, 0.5, 2, dilation=2)
    assert {k: v.shape for k, v in dilated.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    dilated.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for shape in [(1, 3, 5, 7), (1, 3, 11, 9), (2, 3, 33, 47)]:  # tiny ones: the reflection pads still fit
            image = torch.rand(shape)
            out = dilated(image)
            assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
        assert not torch.allclose(out, plain(image), atol=1e-4)  # the same weights, another network
    with pytest.raises(ValueError, match="dilation >= 1"):
        build_network(architecture, dilation=0)
