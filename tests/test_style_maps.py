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


# -- masks: style maps built from images (no torch), the Stylizer and fastnst infer --mask ----------


def test_style_map_known_values():
    from fastnst.runtime.masks import style_map

    mask = np.array([[0.0, 1.0], [0.5, 1.0]], np.float32)
    got = style_map({"a": 1.0}, [(mask, {"b": 0.5, "c": 0.5})], ["a", "b", "c"], (2, 2))
    expected = np.array([[[1.0, 0.0], [0.5, 0.0]], [[0.0, 0.5], [0.25, 0.5]], [[0.0, 0.5], [0.25, 0.5]]])
    np.testing.assert_allclose(got[0], expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)  # a mixture at every pixel
    later = style_map(
        {"a": 1.0}, [(mask, {"b": 1.0}), (np.ones((2, 2), np.float32), {"c": 1.0})], ["a", "b", "c"], (2, 2)
    )
    np.testing.assert_allclose(later[0, 2], 1.0)  # masks are laid in order: the last one covers all


@pytest.mark.parametrize("spec", ["sky.png", "sky.png:", ":wave"])
def test_a_mask_needs_file_and_style(spec: str):
    from fastnst.runtime.masks import parse_mask_spec

    with pytest.raises(ValueError, match="expected FILE:STYLE"):
        parse_mask_spec(spec)
    assert parse_mask_spec("C:/photos/sky.png:wave=0.5,udnie=0.5") == ("C:/photos/sky.png", "wave=0.5,udnie=0.5")


def _left_half(h: int = 40, w: int = 56) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    return mask


def test_stylizer_masks_give_the_map_the_network_gets(exported_maps):
    from fastnst.runtime.masks import map_size, style_map
    from fastnst.runtime.stylizer import Stylizer

    net, path = exported_maps
    photo = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    stylizer = Stylizer(path, style="a", masks=[(_left_half(), "b")], margin=0)
    got = stylizer(photo)
    weights = style_map({"a": 1.0}, [(_left_half(), {"b": 1.0})], STYLES, map_size(40, 56))
    with torch.no_grad():
        expected = net(torch.from_numpy(photo).permute(2, 0, 1)[None], torch.from_numpy(weights)).numpy()
    assert np.abs(got - expected[0].transpose(1, 2, 0)).max() < 1e-4
    assert stylizer.style == "a_b"


def test_stylizer_masks_in_tiles_keep_each_style_on_its_side(exported_maps):
    from fastnst.runtime.stylizer import Stylizer

    _, path = exported_maps
    photo = np.random.default_rng(1).random((96, 600, 3)).astype(np.float32)
    tiled = Stylizer(path, style="a", masks=[(_left_half(96, 600), "b")], tile_size=512, overlap=128)
    both = tiled.stylize_arrays([photo])[0]
    assert both.tiles == 2
    only_a, only_b = (Stylizer(path, style=s, tile_size=512, overlap=128).stylize_arrays([photo])[0] for s in "ab")
    left, right = (slice(None), slice(0, 200)), (slice(None), slice(400, 600))
    assert (
        np.abs(both.image[left] - only_b.image[left]).mean()
        < 0.6 * np.abs(both.image[left] - only_a.image[left]).mean()
    )
    assert (
        np.abs(both.image[right] - only_a.image[right]).mean()
        < 0.6 * np.abs(both.image[right] - only_b.image[right]).mean()
    )


def test_masks_need_a_style_maps_model(tmp_path):
    from fastnst.runtime.stylizer import ModelError, Stylizer

    with pytest.raises(ModelError, match=r"takes no style maps.*--style-maps"):
        Stylizer("wave", masks=[(_left_half(), "wave")])


def test_cli_infer_mask(exported_maps, tmp_path):
    from conftest import cli
    from PIL import Image

    _, path = exported_maps
    Image.fromarray((np.random.default_rng(2).random((40, 56, 3)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    Image.fromarray((_left_half() * 255).astype(np.uint8)).save(tmp_path / "left.png")
    code, _, err = cli(
        "infer", tmp_path / "p.png", "--model", path, "--style", "a", "--mask", f"{tmp_path / 'left.png'}:b"
    )
    assert code == 0, err
    assert (tmp_path / "p_a_b.png").is_file()
    for mask, message in [
        (f"{tmp_path / 'nope.png'}:b", "no such file"),
        (f"{tmp_path / 'left.png'}:z", "'z' is not a style"),
    ]:
        code, _, err = cli("infer", tmp_path / "p.png", "--model", path, "--mask", mask, "-o", tmp_path / "x.png")
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.png").exists()


def test_load_mask_luminance_alpha_and_shapes(tmp_path):
    from PIL import Image

    from fastnst.runtime.imageio import ImageError
    from fastnst.runtime.masks import load_mask

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[0, :, 3] = 255  # top row opaque white, bottom row transparent white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    np.testing.assert_allclose(load_mask(tmp_path / "cut.png"), [[1.0, 1.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(load_mask(rgba), [[1.0, 1.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(load_mask(np.array([[0, 255]], np.uint8)), [[0.0, 1.0]])
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 1.0
    np.testing.assert_allclose(load_mask(red), [[0.299]], atol=1e-6)
    with pytest.raises(ImageError, match=r"mask of shape \(2, 2, 2\)"):
        load_mask(np.zeros((2, 2, 2)))
    with pytest.raises(ImageError, match=r"nope\.png"):
        load_mask(tmp_path / "nope.png")


@pytest.mark.slow  # 12 to 25 s each; the fp32 style-maps export is verified in the default run
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_style_maps_export_in_other_precisions_verifies(precision, tmp_path):
    from fastnst.nn.export import export_network

    net = light(num_styles=len(STYLES))
    report = export_network(
        net, {**_hparams(STYLES), "style_name": "abc"}, tmp_path / "m.onnx", precision, style_maps=True
    )
    assert report.path.is_file() and report.max_abs_error > 0  # verified against PyTorch, maps included
