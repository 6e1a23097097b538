"""Per-pixel style weights (style maps, masks): one style here, another there, in one pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_conditional import STYLES, _hparams, _session, light

from fastnst.nn.transformer_net import style_affine, style_mixing


def test_style_mixing_maps_known_values():
    weights = torch.tensor([[[[1.0, 1.0]], [[0.0, 3.0]]]])  # (1, 2, 1, 2): pixel 0 all style 0, pixel 1 1:3
    got = style_mixing(weights, torch.tensor(0.5))
    expected = torch.tensor([[[[0.5, 0.125]], [[0.0, 0.375]], [[0.5, 0.5]]]])
    torch.testing.assert_close(got, expected)
    assert got.shape == (1, 3, 1, 2)


def test_style_affine_of_a_constant_map_is_the_global_one():
    gen = torch.Generator().manual_seed(0)
    mixing = torch.rand(2, 4, generator=gen)
    weight, bias = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    scale, shift = style_affine(mixing, weight, bias, (6, 7))
    assert scale.shape == (2, 5, 1, 1)
    map_scale, map_shift = style_affine(mixing[:, :, None, None].expand(2, 4, 3, 3), weight, bias, (6, 7))
    assert map_scale.shape == (2, 5, 6, 7)
    torch.testing.assert_close(map_scale, scale.expand(2, 5, 6, 7))
    torch.testing.assert_close(map_shift, shift.expand(2, 5, 6, 7))
    torch.testing.assert_close(scale[:, :, 0, 0], mixing @ weight)  # known value: the mixing of the rows


@pytest.mark.parametrize("size", [(1, 1), (7, 9)])
def test_a_uniform_map_stylizes_as_the_same_global_weights(size: tuple[int, int]):
    net = light(num_styles=3)
    image = torch.rand(1, 3, 37, 53)
    weights = torch.tensor([[0.2, 0.0, 0.8]])
    with torch.no_grad():
        expected = net(image, weights, 0.7)
        got = net(image, weights[:, :, None, None].expand(1, 3, *size), 0.7)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_a_half_and_half_map_takes_each_style_on_its_side():
    net = light(num_styles=2)
    image = torch.rand(1, 3, 48, 64)
    halves = torch.zeros(1, 2, 1, 8)
    halves[:, 0, :, :4], halves[:, 1, :, 4:] = 1.0, 1.0  # style 0 on the left half, style 1 on the right
    with torch.no_grad():
        first, second = net(image, torch.tensor([[1.0, 0.0]])), net(image, torch.tensor([[0.0, 1.0]]))
        both = net(image, halves)
    left, right = (..., slice(0, 16)), (..., slice(48, 64))
    # Each side is much nearer its own style than the other's; not equal to it, since the instance-norm
    # statistics are the whole image's (measured: 0.044 against 0.087 on the left, 0.024 against 0.081).
    assert (both[left] - first[left]).abs().mean() < 0.6 * (both[left] - second[left]).abs().mean()
    assert (both[right] - second[right]).abs().mean() < 0.6 * (both[right] - first[right]).abs().mean()


def test_a_map_with_the_wrong_style_count_is_refused():
    with pytest.raises(ValueError, match="style_weights has 2 weights, the network 3 styles"):
        light(num_styles=3)(torch.rand(1, 3, 16, 16), torch.ones(1, 2, 4, 4))


@pytest.fixture(scope="module")
def exported_maps(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    from fastnst.nn.export import export_network

    net = light(num_styles=len(STYLES))
    path = tmp_path_factory.mktemp("maps") / "abc_maps.onnx"
    export_network(net, {**_hparams(STYLES), "style_name": "abc"}, path, style_maps=True)  # verified inside
    return net, path


def test_style_maps_export_matches_pytorch(exported_maps):
    net, path = exported_maps
    session = _session(path)
    assert session.get_modelmeta().custom_metadata_map["fastnst.style_maps"] == "true"
    image = torch.rand(1, 3, 41, 29)
    style_map = torch.rand(1, 3, 6, 5) + 0.05
    feed = {"image": image.numpy(), "style_weights": style_map.numpy(), "strength": np.array([0.6], np.float32)}
    got = session.run(["stylized"], feed)[0]
    with torch.no_grad():
        expected = net(image, style_map, 0.6).numpy()
    assert np.abs(got - expected).max() < 1e-4
    default = session.run(["stylized"], {"image": image.numpy()})[0]  # the first style everywhere
    with torch.no_grad():
        first = net(image, torch.tensor([[1.0, 0.0, 0.0]])).numpy()
    assert np.abs(default - first).max() < 1e-4


def test_style_maps_need_a_several_style_network(tmp_path):
    from fastnst.nn.export import ExportError, export_network

    with pytest.raises(ExportError, match="style maps need a conditional network"):
        export_network(light(), {"style_name": "one"}, tmp_path / "x.onnx", style_maps=True)
    assert not (tmp_path / "x.onnx").exists()
