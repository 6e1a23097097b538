"""Conditional networks (issue 14): several styles and a trained-in strength in one network.

Known values for the conditional layers and the per-sample style loss, the network against its
unconditional twin, the style sampler, an exported model against PyTorch at odd sizes, the
style-mix parsing, the Stylizer and ``fastnst infer --style/--sheet``, the style lists of the
training config, and real training runs (several styles, exact resume, a style added to a base).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY, assets_dir, cli, load_train_script
from PIL import Image
from torch import nn

from fastnst.errors import FastNSTError
from fastnst.nn.conditioning import StyleSampler
from fastnst.nn.losses import PerceptualLoss, gram_matrix, style_loss_per_sample, total_variation
from fastnst.nn.transformer_net import (
    ConditionalInstanceNorm2d,
    add_styles,
    build_network,
    conditional_instance_norm,
    conditional_norms,
    style_mixing,
)
from fastnst.nn.vgg import VGG19
from fastnst.runtime.onnx_contract import STYLE_NAMES_KEY, parse_style_mix, style_names

STYLES = ["a", "b", "c"]


def light(num_styles: int = 0, seed: int = 0) -> nn.Module:
    """A tiny light network; conditional rows randomised so that the styles differ."""
    torch.manual_seed(seed)
    net = build_network("light", width=0.25, num_residual_blocks=1, num_styles=num_styles).eval()
    with torch.no_grad():
        for norm in conditional_norms(net):
            norm.weight.copy_(1 + 0.5 * torch.randn_like(norm.weight))
            norm.bias.copy_(0.5 * torch.randn_like(norm.bias))
    return net


# -- 1. the conditional layers: known values ------------------------------------------------


def test_style_mixing_known_values():
    got = style_mixing(torch.tensor([1.0, 3.0]), torch.tensor(0.5))
    torch.testing.assert_close(got, torch.tensor([[0.125, 0.375, 0.5]]))
    got = style_mixing(torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 4.0]]), torch.tensor([1.0, 0.0, 0.25]))
    torch.testing.assert_close(got, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.25, 0.75]]))


def test_style_mixing_scalar_strength_with_per_sample_weights():
    # A scalar strength applies to every row of (N, S) weights; each row sums to 1.
    got = style_mixing(torch.tensor([[1.0, 1.0], [3.0, 1.0]]), torch.tensor(0.8))
    torch.testing.assert_close(got, torch.tensor([[0.4, 0.4, 0.2], [0.6, 0.2, 0.2]]))
    torch.testing.assert_close(got.sum(dim=1), torch.ones(2))
    # The same through the network: per-sample styles at the default strength.
    net, x = light(3), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x, torch.eye(3)[[2, 0]]), net(x, torch.eye(3)[[2, 0]], torch.ones(2)))


def test_conditional_instance_norm_known_values():
    x = torch.tensor([0.0, 2.0]).reshape(1, 1, 1, 2)  # mean 1, variance 1: normalised to -1, 1
    weight, bias = torch.tensor([[2.0], [10.0]]), torch.tensor([[1.0], [0.0]])
    eps = 1e-5
    got = conditional_instance_norm(x, weight, bias, torch.tensor([[1.0, 0.0]]), eps)
    torch.testing.assert_close(got.flatten(), torch.tensor([-2.0, 2.0]) / math.sqrt(1 + eps) + 1)
    got = conditional_instance_norm(x, weight, bias, torch.tensor([[0.5, 0.5]]), eps)  # scale 6, shift 0.5
    torch.testing.assert_close(got.flatten(), torch.tensor([-6.0, 6.0]) / math.sqrt(1 + eps) + 0.5)


def test_conditional_norm_module_function_and_instance_norm_agree():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 6)
    cond = ConditionalInstanceNorm2d(5, 4)
    with torch.no_grad():
        cond.weight.normal_()
        cond.bias.normal_()
    mixing = torch.softmax(torch.randn(3, 4), dim=1)
    torch.testing.assert_close(cond(x, mixing), conditional_instance_norm(x, cond.weight, cond.bias, mixing))
    for k in range(4):
        plain = nn.InstanceNorm2d(5, affine=True)
        with torch.no_grad():
            plain.weight.copy_(cond.weight[k])
            plain.bias.copy_(cond.bias[k])
        one_hot = torch.eye(4)[k : k + 1]
        torch.testing.assert_close(cond(x, one_hot), plain(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cond(x, one_hot.expand(3, 4)), plain(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="style weights"):
        cond(x, None)


# -- 2. the networks ------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["light", "johnson"])
def test_unconditional_network_keeps_its_state_dict(architecture):
    plain = build_network(architecture, width=0.25, num_residual_blocks=1)
    default = build_network(architecture, width=0.25, num_residual_blocks=1, num_styles=0)
    cond = build_network(architecture, width=0.25, num_residual_blocks=1, num_styles=3)
    shapes = {k: tuple(v.shape) for k, v in plain.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in default.state_dict().items()}
    assert not any(isinstance(m, ConditionalInstanceNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in plain.modules()) == len(conditional_norms(cond))
    # Same keys; only the norms' scales and shifts grow a row per style plus the identity row.
    cond_shapes = {k: tuple(v.shape) for k, v in cond.state_dict().items()}
    assert cond_shapes.keys() == shapes.keys()
    for key, shape in shapes.items():
        assert cond_shapes[key] == (shape if cond_shapes[key] == shape else (4, *shape)), key
    assert sum(cond_shapes[k] != s for k, s in shapes.items()) == 2 * len(conditional_norms(cond))
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="num_styles=0"):
        plain(x, style_weights=torch.ones(1))
    with pytest.raises(ValueError, match="num_styles=0"):
        plain(x, strength=0.5)


def test_one_hot_style_selects_its_row_and_matches_an_unconditional_twin():
    net = light(3)
    x = torch.rand(2, 3, 21, 19)
    with torch.no_grad():
        outputs = []
        for k in range(3):
            one_hot = torch.eye(3)[k]
            out = net(x, one_hot, 1.0)
            torch.testing.assert_close(out, net.stylize(x, torch.eye(4)[k : k + 1]))
            # An unconditional network with row k as its affine norms gives the same picture.
            twin = build_network("light", width=0.25, num_residual_blocks=1).eval()
            # The norms' (S + 1, C) rows are the only 2-D tensors (convs are 4-D and 1-D).
            state = {key: v[k] if v.ndim == 2 else v for key, v in net.state_dict().items()}
            twin.load_state_dict(state)
            torch.testing.assert_close(twin(x), out, rtol=1e-5, atol=1e-5)
            outputs.append(out)
        assert (outputs[0] - outputs[1]).abs().max() > 1e-3  # the randomised styles differ
        # (N, S) weights: each sample its own style, as in training.
        per_sample = net(x, torch.eye(3)[[2, 0]], torch.ones(2))
        torch.testing.assert_close(per_sample[0], outputs[2][0])
        torch.testing.assert_close(per_sample[1], outputs[0][1])
        # Defaults: the first style at strength 1.
        torch.testing.assert_close(net(x), outputs[0])


def test_strength_zero_ignores_the_style_weights():
    net = light(3)
    x = torch.rand(1, 3, 17, 23)
    with torch.no_grad():
        zero = [net(x, w, 0.0) for w in (torch.eye(3)[0], torch.eye(3)[2], torch.tensor([0.2, 0.3, 0.5]))]
        full = [net(x, w, 1.0) for w in (torch.eye(3)[0], torch.eye(3)[2])]
    torch.testing.assert_close(zero[0], zero[1])
    torch.testing.assert_close(zero[0], zero[2])
    assert (full[0] - full[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="2 weights, the network 3"):
        net(x, torch.ones(2))


def test_add_styles_keeps_rows_and_identity_last():
    net = light(2)
    grown = add_styles(net, 2)
    assert grown.num_styles == 4 and net.num_styles == 2
    for old, new in zip(conditional_norms(net), conditional_norms(grown), strict=True):
        assert old.weight.shape[0] == 3 and new.weight.shape[0] == 5  # the caller's network is untouched
        for name in ("weight", "bias"):
            before, after = getattr(old, name), getattr(new, name)
            torch.testing.assert_close(after[:2], before[:2])
            torch.testing.assert_close(after[-1], before[-1])  # identity row last
            for row in (2, 3):
                torch.testing.assert_close(after[row], before[:2].mean(dim=0))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, torch.eye(4)[1]), net(x, torch.eye(2)[1]))
        torch.testing.assert_close(grown(x, torch.eye(4)[3], 0.0), net(x, torch.eye(2)[0], 0.0))
    with pytest.raises(ValueError, match="conditional"):
        add_styles(light(0), 1)


def test_add_styles_start_from_copies_that_styles_rows():
    net = light(3)
    grown = add_styles(net, 2, start_from=1)
    for old, new in zip(conditional_norms(net), conditional_norms(grown), strict=True):
        for name in ("weight", "bias"):
            before, after = getattr(old, name), getattr(new, name)
            torch.testing.assert_close(after[:3], before[:3])
            torch.testing.assert_close(after[3], before[1])
            torch.testing.assert_close(after[4], before[1])
            torch.testing.assert_close(after[-1], before[-1])
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, torch.eye(5)[4]), net(x, torch.eye(3)[1]))
    with pytest.raises(ValueError, match="start_from=3"):
        add_styles(net, 1, start_from=3)


@pytest.mark.slow  # about 40 s: judges four paintings at 512 px (the default run checks nearest through init_style)
def test_nearest_style_picks_the_closest_painting(vgg_weights_file):
    from fastnst.nn.conditioning import nearest_style
    from fastnst.styles import resolve_style_image

    base = [{"name": n, "image": n} for n in ("starry_night", "wave", "udnie")]
    assert nearest_style(resolve_style_image("wave"), base) == "wave"  # itself: distance 0
    # Measured with fastnst eval's Gram distance: udnie 0.90, wave 1.60, starry_night 4.86.
    assert nearest_style(resolve_style_image("the_scream"), base) == "udnie"
    missing = [*base, {"name": "gone", "image": "no_such_painting.jpg"}]
    with pytest.raises(FastNSTError, match=r"cannot read no_such_painting\.jpg, the painting of base style 'gone'"):
        nearest_style(resolve_style_image("wave"), missing)


# -- 3. the per-sample style loss -------------------------------------------------------------


def test_style_loss_per_sample_known_values():
    # One channel, two pixels: Gram = (f1^2 + f2^2) / 2.
    features = torch.tensor([[1.0, 3.0], [2.0, 0.0]]).reshape(2, 1, 1, 2)
    torch.testing.assert_close(gram_matrix(features).flatten(), torch.tensor([5.0, 2.0]))
    targets = torch.tensor([4.0, 6.0]).reshape(2, 1, 1)
    torch.testing.assert_close(style_loss_per_sample(features, targets), torch.tensor([1.0, 16.0]))
    torch.testing.assert_close(
        style_loss_per_sample(features, targets, normalize=True), torch.tensor([1 / 16, 16 / 36])
    )
    # Two channels: the mean over the C x C entries.
    f = torch.tensor([1.0, 0.0, 0.0, 2.0]).reshape(1, 2, 1, 2)  # Gram = [[1, 0], [0, 4]] / 4
    got = style_loss_per_sample(f, torch.zeros(1, 2, 2))
    torch.testing.assert_close(got, torch.tensor([(0.25**2 + 1.0**2) / 4]))


@pytest.fixture(scope="module")
def bank_loss():
    torch.manual_seed(0)
    vgg = VGG19(["relu1_2", "relu2_2"]).eval()
    loss = PerceptualLoss(vgg, {"relu2_2": 1.0}, {"relu1_2": 1.0, "relu2_2": 0.5}, 2.0, 3.0, 0.5)
    styles = [torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    loss.set_style_bank(styles)
    return loss, styles


def test_perceptual_loss_bank_targets_per_sample(bank_loss):
    loss, styles = bank_loss
    torch.manual_seed(1)
    output, content = torch.rand(3, 3, 20, 20), torch.rand(3, 3, 20, 20)
    index = torch.tensor([2, 0, 2])
    terms = loss(output, content, style_index=index, style_scale=torch.ones(3))
    # Each sample's style loss equals the one-style loss against its own style.
    for i, k in enumerate(index.tolist()):
        single = PerceptualLoss(loss.vgg, loss.content_layers, loss.style_layers, 2.0, 3.0, 0.5)
        single.set_style(styles[k])
        expected = single(output[i : i + 1], content[i : i + 1])["style"]
        torch.testing.assert_close(terms["style_per_sample"][i], expected, rtol=1e-4, atol=1e-6)
    assert terms["style_per_sample"][0] != terms["style_per_sample"][1]
    torch.testing.assert_close(terms["style"], terms["style_per_sample"].mean())
    expected_loss = 2.0 * terms["content"] + 3.0 * terms["style_per_sample"].mean() + 0.5 * terms["tv"]
    torch.testing.assert_close(terms["loss"], expected_loss)
    scaled = loss(output, content, style_index=index, style_scale=torch.tensor([0.5, 0.0, 2.0]))
    weighted = (terms["style_per_sample"] * torch.tensor([0.5, 0.0, 2.0])).mean()
    torch.testing.assert_close(scaled["loss"], 2.0 * terms["content"] + 3.0 * weighted + 0.5 * terms["tv"])


def test_perceptual_loss_style_scale_zero_is_content_and_tv(bank_loss):
    loss, _ = bank_loss
    output, content = torch.rand(2, 3, 20, 20), torch.rand(2, 3, 20, 20)
    terms = loss(output, content, style_index=torch.tensor([1, 2]), style_scale=torch.zeros(2))
    assert terms["style"] > 0  # still reported
    torch.testing.assert_close(terms["loss"], 2.0 * terms["content"] + 0.5 * terms["tv"])
    torch.testing.assert_close(terms["tv"], total_variation(output))


# -- 4. the style sampler -------------------------------------------------------------------


def test_style_sampler_draws_depend_on_the_step_only():
    sampler = StyleSampler(5, trained=[3, 4], weights=[1.0, 2.0], strength=True)
    cpu = torch.device("cpu")
    a, b = sampler.sample(64, 7, cpu), sampler.sample(64, 7, cpu)
    for field in ("style_weights", "strength", "bank_index", "style_scale"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    c = sampler.sample(64, 8, cpu)
    assert not torch.equal(a.strength, c.strength) and not torch.equal(a.bank_index, c.bank_index)
    # One-hot rows of the network's styles 3 and 4 (the trained ones), as the bank index says.
    assert a.style_weights.shape == (64, 5)
    assert torch.equal(a.style_weights.sum(dim=1), torch.ones(64))
    assert torch.equal(a.style_weights.argmax(dim=1), torch.tensor([3, 4])[a.bank_index])
    assert set(a.bank_index.tolist()) == {0, 1}
    # Strengths: half at 1, the others in [0, 1]; style_scale = strength x the style's weight.
    assert ((a.strength >= 0) & (a.strength <= 1)).all()
    assert 10 < int((a.strength == 1).sum()) < 54 and (a.strength < 1).any()
    torch.testing.assert_close(a.style_scale, a.strength * torch.tensor([1.0, 2.0])[a.bank_index])


def test_style_sampler_full_share_sets_the_samples_at_strength_one():
    """full_share=1: every sample at strength 1 (a new style on a base that has its strength); 0: none;
    0.75: about three in four. The style drawn is the same whatever the share (same generator order)."""
    cpu = torch.device("cpu")
    share = {s: StyleSampler(4, trained=[1, 2], weights=[1.0, 1.0], strength=True, full_share=s) for s in (0, 0.75, 1)}
    full = share[1].sample(400, 3, cpu)
    assert torch.equal(full.strength, torch.ones(400))
    assert int((share[0].sample(400, 3, cpu).strength == 1).sum()) == 0
    assert 260 < int((share[0.75].sample(400, 3, cpu).strength == 1).sum()) < 340
    assert torch.equal(full.bank_index, share[0].sample(400, 3, cpu).bank_index)


def test_style_sampler_without_strength_and_fixed():
    sampler = StyleSampler(3, trained=[0, 1, 2], weights=[1.0, 1.0, 0.5], strength=False)
    for step in range(5):
        c = sampler.sample(16, step, torch.device("cpu"))
        assert torch.equal(c.strength, torch.ones(16))
        torch.testing.assert_close(c.style_scale, torch.tensor([1.0, 1.0, 0.5])[c.bank_index])
    f = sampler.fixed(2, 4, torch.device("cpu"), strength=0.5)
    assert torch.equal(f.bank_index, torch.full((4,), 2))
    assert torch.equal(f.style_weights, torch.eye(3)[[2, 2, 2, 2]])
    torch.testing.assert_close(f.style_scale, torch.full((4,), 0.25))
    with pytest.raises(ValueError):
        StyleSampler(3, trained=[0, 1], weights=[1.0], strength=False)


# -- 6. the ONNX contract: style names and style mixes ---------------------------------------


def test_style_names_metadata():
    assert style_names({}) == []
    assert style_names({STYLE_NAMES_KEY: '["wave", "udnie"]'}) == ["wave", "udnie"]
    for bad in ('"wave"', '{"a": 1}', '["a", "a"]', '["a", ""]', '["a", 3]', "not json", "[]x"):
        with pytest.raises(ValueError, match=STYLE_NAMES_KEY):
            style_names({STYLE_NAMES_KEY: bad})


def test_parse_style_mix():
    names = ["wave", "udnie", "the_scream"]
    assert parse_style_mix("wave", names) == {"wave": 1.0}
    got = parse_style_mix("wave=0.7, udnie=0.3", names)
    assert got.keys() == {"wave", "udnie"} and math.isclose(got["wave"], 0.7) and math.isclose(got["udnie"], 0.3)
    got = parse_style_mix("wave=3,udnie=1", names)
    assert math.isclose(got["wave"], 0.75) and math.isclose(got["udnie"], 0.25)
    got = parse_style_mix({"the_scream": 2.0, "wave": 2.0}, names)
    assert got == {"the_scream": 0.5, "wave": 0.5}
    with pytest.raises(ValueError, match=r"'zz'.*wave, udnie, the_scream"):
        parse_style_mix("zz", names)
    with pytest.raises(ValueError, match="'zz'"):
        parse_style_mix({"zz": 1.0}, names)
    for bad in ("wave=-1", "wave=nan", "wave=inf", "wave=0,udnie=0", ""):
        with pytest.raises(ValueError):
            parse_style_mix(bad, names)
    with pytest.raises(ValueError, match="not a number"):
        parse_style_mix("wave=lots", names)


def test_parse_style_mix_mapping_with_a_non_number():
    with pytest.raises(ValueError, match="wave"):
        parse_style_mix({"wave": "lots"}, ["wave"])


def test_parse_style_mix_refuses_a_style_given_twice_and_a_list():
    with pytest.raises(ValueError, match=r"style wave given twice in 'wave=0.7,wave=0.3'"):
        parse_style_mix("wave=0.7,wave=0.3", ["wave", "udnie"])
    with pytest.raises(ValueError, match=r"style \['wave', 'udnie'\]: expected a name"):
        parse_style_mix(["wave", "udnie"], ["wave", "udnie"])  # type: ignore[arg-type]


# -- 5. export: the conditional inputs against PyTorch ----------------------------------------


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _hparams(names: list[str], strength: bool = True) -> dict:
    """Training settings as a checkpoint holds them (they become the model's metadata)."""
    styles = [{"name": n} for n in names]
    return {"architecture": "light", "width": 0.25, "num_residual_blocks": 1, "styles": styles, "strength": strength}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[nn.Module, Path]:
    """A 3-style light network with distinct styles, exported (fp32, verified) to abc.onnx."""
    from fastnst.nn.export import export_network

    net = light(3, seed=1)
    path = tmp_path_factory.mktemp("cond") / "abc.onnx"
    export_network(net, {**_hparams(STYLES), "style_name": "abc"}, path)
    return net, path


def _ort(path: Path, image: torch.Tensor, **inputs: np.ndarray) -> np.ndarray:
    return _session(path).run(["stylized"], {"image": image.numpy(), **inputs})[0]


def _torch(net: nn.Module, image: torch.Tensor, weights: list[float], strength: float) -> np.ndarray:
    with torch.no_grad():
        return net(image, torch.tensor(weights), strength).numpy()


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 9, 13)])
def test_export_one_hot_each_style_matches_pytorch_at_odd_sizes(exported, shape):
    net, path = exported
    image = torch.rand(*shape, generator=torch.Generator().manual_seed(3))
    outputs = []
    for k in range(3):
        weights = np.eye(1, 3, k, dtype=np.float32)
        got = _ort(path, image, style_weights=weights, strength=np.ones(1, np.float32))
        expected = _torch(net, image, weights[0].tolist(), 1.0)
        assert got.shape == shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        outputs.append(got)
    assert np.abs(outputs[0] - outputs[2]).max() > 1e-3  # the test can tell the styles apart
    # Defaults: the first style at full strength.
    np.testing.assert_allclose(_ort(path, image), outputs[0], atol=1e-6, rtol=0)


def test_export_mixture_and_strength_match_pytorch(exported):
    net, path = exported
    image = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(4))
    weights = np.array([[0.2, 0.0, 0.6]], np.float32)  # normalised in the graph
    for strength in (0.3, 0.0, 1.0):
        got = _ort(path, image, style_weights=weights, strength=np.array([strength], np.float32))
        np.testing.assert_allclose(got, _torch(net, image, [0.25, 0.0, 0.75], strength), atol=1e-4, rtol=0)
    light_strokes = _ort(path, image, style_weights=weights, strength=np.array([0.3], np.float32))
    full = _ort(path, image, style_weights=weights, strength=np.ones(1, np.float32))
    assert np.abs(light_strokes - full).max() > 1e-3


def test_export_metadata_lists_the_styles_in_order(exported):
    _, path = exported
    meta = _session(path).get_modelmeta().custom_metadata_map
    assert json.loads(meta[STYLE_NAMES_KEY]) == STYLES
    assert style_names(meta) == STYLES


@pytest.mark.slow  # fp16 export is covered for one-style networks in the default run
def test_export_fp16_conditional(tmp_path, exported):
    from fastnst.nn.export import export_network

    net, _ = exported
    path = export_network(net, {**_hparams(STYLES), "style_name": "abc"}, tmp_path / "abc16.onnx", "fp16").path
    image = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(5))
    for k in range(3):
        weights = np.eye(1, 3, k, dtype=np.float32)
        got = _ort(path, image, style_weights=weights, strength=np.array([0.5], np.float32))
        np.testing.assert_allclose(got, _torch(net, image, weights[0].tolist(), 0.5), atol=2e-2, rtol=0)
    assert style_names(_session(path).get_modelmeta().custom_metadata_map) == STYLES


# -- 7. Stylizer and fastnst infer ------------------------------------------------------------


def test_stylizer_style_picks_the_style(exported):
    from fastnst.runtime.stylizer import Stylizer

    _, path = exported
    photo = np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)
    image = torch.from_numpy(photo.transpose(2, 0, 1)[None].copy())
    first = Stylizer(path, device="cpu", margin=0)
    assert first.conditional and first.style_names == STYLES and first.style == "a"
    b = Stylizer(path, style="b", device="cpu", margin=0)
    assert b.style == "b"
    expected = _ort(path, image, style_weights=np.eye(1, 3, 1, dtype=np.float32))[0].transpose(1, 2, 0)
    np.testing.assert_allclose(b(photo), expected, atol=1e-6, rtol=0)
    assert np.abs(first(photo) - expected).max() > 1e-3
    mix = Stylizer(path, style="a=1,c=1", device="cpu", margin=0)
    assert mix.style == "a50_c50"
    assert Stylizer(path, style="c=0.7,a=0.3", device="cpu").style == "a30_c70"  # in name order, by weight
    expected = _ort(path, image, style_weights=np.array([[0.5, 0, 0.5]], np.float32))[0].transpose(1, 2, 0)
    np.testing.assert_allclose(mix(photo), expected, atol=1e-6, rtol=0)


def test_stylizer_strength_goes_into_the_graph(exported):
    from fastnst.runtime.stylizer import Stylizer

    _, path = exported
    photo = np.random.default_rng(1).random((37, 53, 3), dtype=np.float32)
    image = torch.from_numpy(photo.transpose(2, 0, 1)[None].copy())
    stylizer = Stylizer(path, style="c", device="cpu", margin=0)
    got = stylizer(photo, strength=0.3)
    weights = np.eye(1, 3, 2, dtype=np.float32)
    expected = _ort(path, image, style_weights=weights, strength=np.array([0.3], np.float32))[0].transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert stylizer.trained_strength
    pixel_blend = 0.3 * stylizer(photo) + 0.7 * photo
    assert np.abs(got - pixel_blend).max() > 1e-2


def test_stylizer_without_a_trained_strength_blends_pixels(exported, tmp_path):
    from fastnst.nn.export import export_network
    from fastnst.runtime.stylizer import Stylizer

    net, _ = exported
    hparams = {**_hparams(STYLES, strength=False), "style_name": "abc"}
    path = export_network(net, hparams, tmp_path / "m.onnx", check=False).path  # the graph is tested above
    stylizer = Stylizer(path, style="c", device="cpu", margin=0)
    assert stylizer.conditional and not stylizer.trained_strength
    photo = np.random.default_rng(2).random((37, 53, 3), dtype=np.float32)
    np.testing.assert_allclose(stylizer(photo, strength=0.3), 0.3 * stylizer(photo) + 0.7 * photo, atol=1e-6)


def test_stylizer_one_style_model_refuses_another_style(tmp_path):
    from fastnst.nn.export import export_network
    from fastnst.runtime.stylizer import ModelError, Stylizer

    hparams = {"architecture": "light", "width": 0.25, "num_residual_blocks": 1, "style_name": "one"}
    path = export_network(light(0), hparams, tmp_path / "one.onnx", check=False).path
    plain = Stylizer(path, device="cpu")
    assert not plain.conditional and plain.style == "one" and plain.style_names == []
    assert Stylizer(path, style="one", device="cpu").style == "one"
    with pytest.raises(ModelError, match="'other'") as err:
        Stylizer(path, style="other", device="cpu")
    assert "\n" not in str(err.value)


@pytest.fixture
def small_photo(tmp_path) -> Path:
    from fastnst.photos import sample_photos_dir

    src = sorted(sample_photos_dir().glob("*.jpg"))[0]
    path = tmp_path / "photo.jpg"
    Image.open(src).convert("RGB").resize((48, 36)).save(path)
    return path


def test_cli_infer_style(exported, small_photo, tmp_path):
    from fastnst.runtime.stylizer import Stylizer

    _, path = exported
    out = tmp_path / "out"
    rc, stdout, stderr = cli("infer", "--model", path, "--style", "b", small_photo, "-o", f"{out}/", "-q")
    assert rc == 0, stdout + stderr
    assert [p.name for p in out.iterdir()] == ["photo_b.jpg"]
    written = np.asarray(Image.open(out / "photo_b.jpg"), np.float32)
    assert written.shape == (36, 48, 3)
    # JPEG-compressed: closer to style b than to the others.
    distance = {
        name: np.abs(written - np.asarray(Stylizer(path, style=name, device="cpu")(Image.open(small_photo)))).mean()
        for name in STYLES
    }
    assert min(distance, key=distance.get) == "b", distance
    rc, stdout, stderr = cli("infer", "--model", path, "--style", "zz", small_photo, "-o", f"{out}/", "-q")
    assert rc != 0
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "'zz'" in lines[0] and "a, b, c" in lines[0], lines
    assert [p.name for p in out.iterdir()] == ["photo_b.jpg"]


def test_cli_infer_sheet(exported, small_photo, tmp_path):
    _, path = exported
    second = small_photo.with_name("second.jpg")
    Image.open(small_photo).resize((40, 30)).save(second)
    out = tmp_path / "sheets"
    rc, stdout, stderr = cli("infer", "--model", path, "--sheet", small_photo, second, "-o", out, "-q")
    assert rc == 0, stdout + stderr
    sheets = sorted(out.iterdir())
    assert [p.name for p in sheets] == ["photo_abc_sheet.jpg", "second_abc_sheet.jpg"]
    for sheet, width in zip(sheets, (48, 40), strict=True):
        assert Image.open(sheet).width == (1 + len(STYLES)) * width
    # One photo: -o may name the sheet file (.png or .jpg); several photos need a folder.
    rc, stdout, stderr = cli("infer", "--model", path, "--sheet", small_photo, "-o", tmp_path / "one.png", "-q")
    assert rc == 0, stdout + stderr
    assert Image.open(tmp_path / "one.png").format == "PNG"
    rc, _, stderr = cli("infer", "--model", path, "--sheet", small_photo, second, "-o", tmp_path / "two.png", "-q")
    assert rc != 0 and "give a folder for several" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "two.png").exists()
    dotted = tmp_path / "sheets.v2"  # an existing folder is a folder, whatever its name
    dotted.mkdir()
    rc, stdout, stderr = cli("infer", "--model", path, "--sheet", small_photo, "-o", dotted, "-q")
    assert rc == 0 and [p.name for p in dotted.iterdir()] == ["photo_abc_sheet.jpg"], stdout + stderr


def test_cli_infer_sheet_guards_inputs_and_takes_folders(exported, small_photo, tmp_path):
    """--sheet goes through infer's checks: never over an input, folders and globs, a bad photo fails alone."""
    _, path = exported
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "p.jpg"
    Image.open(small_photo).save(photo)
    before = photo.read_bytes()
    rc, _, stderr = cli("infer", "--model", path, "--sheet", photo, "-o", photo, "--overwrite", "-q")
    assert rc == 2 and "would overwrite an input" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert photo.read_bytes() == before
    (photos / "bad.jpg").write_text("not an image")
    out = tmp_path / "out"
    rc, stdout, stderr = cli("infer", "--model", path, "--sheet", photos, "-o", out, "-q")
    assert rc == 1 and [p.name for p in out.iterdir()] == ["p_abc_sheet.jpg"], stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.jpg" in errors[0], stderr
    # A rerun on the sheets' own folder makes no sheet of a sheet; --style is refused, in one line.
    rc, stdout, stderr = cli("infer", "--model", path, "--sheet", out, "-q")
    assert rc == 2 and "no photo among" in stderr, stdout + stderr
    rc, _, stderr = cli("infer", "--model", path, "--sheet", photo, "--style", "b", "-o", out, "-q")
    assert rc == 2 and "--style and --sheet" in stderr and len(stderr.strip().splitlines()) == 1, stderr


# -- 8. the style list of the training config -------------------------------------------------


def test_style_list_overrides_and_model_name():
    from fastnst.training.config import ConfigError
    from fastnst.training.style_set import model_name, style_list, style_overrides

    assert style_list(["style=wave", "data=sample"]) is None
    assert style_list(["data=sample", "style=[wave,udnie]"]) == ["wave", "udnie"]
    with pytest.raises(ConfigError, match="distinct"):
        style_list(["style=[wave,wave]"])
    assert style_overrides(["style=[wave,udnie]", "style.size=64", "model=light"]) == {"size": 64}
    assert model_name("wave", ["style=wave"]) == "wave"
    assert model_name("udnie", ["style=[wave,udnie]"]) == "wave+udnie"
    assert model_name("udnie", ["style=[wave,udnie,the_scream,shipwreck]"]) == "4_styles"
    assert model_name("mine", ["style=[wave,udnie]", "style.name=mine"]) == "mine"


def test_a_painting_of_ones_own_is_named_after_its_file(compose):
    """Once ``style.image=my.jpg`` alone trained and exported as starry_night (the default preset's name),
    and ``style=starry_night ckpt_path=last`` then resumed it."""
    from fastnst.training.style_set import expand_styles, model_name

    assert model_name("starry_night", ["style.image='/x/My Painting (2).jpg'"]) == "My_Painting_2"
    assert model_name("starry_night", ["style.image=/x/mine.jpg", "style.name=other"]) == "starry_night"
    assert model_name("wave", ["style=wave", "style.image=/x/wave_hd.png"]) == "wave_hd"
    overrides = ["data=sample", "style.image=/x/my_painting.jpg"]
    assert expand_styles(compose(overrides), overrides).style.name == "my_painting"
    overrides = [*overrides, "model.strength=true"]  # a conditional one-style network: its one style too
    cfg = expand_styles(compose(overrides), overrides)
    assert cfg.style.name == "my_painting" and [s["name"] for s in cfg.styles] == ["my_painting"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["style.name=../escape"], "style.name=../escape: a name, not a path"),
        (["style.name=a/b"], "style.name=a/b: a name, not a path"),
        (["style.name=''"], "style.name=: a name, not a path"),
        (["style=[wave,udnie]", "style.image=mine.jpg"], "style.image=mine.jpg: style=[wave,udnie] takes each"),
    ],
)
def test_style_overrides_that_cannot_work_are_refused_before_hydra(overrides, expected):
    from fastnst.training.config import ConfigError
    from fastnst.training.style_set import check_style_overrides

    with pytest.raises(ConfigError) as info:
        check_style_overrides(overrides)
    assert str(info.value).startswith(expected)
    check_style_overrides(["style.name=my_painting.v2", "style.image=x.jpg"])  # a name may have . _ -


def test_expand_styles_one_entry_per_style(compose):
    from fastnst.training.style_set import expand_styles

    overrides = ["style=[wave,udnie,the_scream]", "style.size=64", "data=sample"]
    cfg = expand_styles(compose(overrides), overrides)
    assert [s["name"] for s in cfg.styles] == ["wave", "udnie", "the_scream"]
    assert [s["size"] for s in cfg.styles] == [64, 64, 64]
    for style in cfg.styles:
        preset = compose([f"style={style['name']}"]).style
        assert Path(style["image"]).name == Path(preset.image).name
        assert style["style_weight"] == pytest.approx(preset.style_weight)
    assert cfg.style.name == "wave+udnie+the_scream"
    one = ["style=wave", "data=sample"]
    assert not expand_styles(compose(one), one).styles  # a plain one-style run stays unconditional
    strength = ["style=wave", "model.strength=true"]
    assert [s["name"] for s in expand_styles(compose(strength), strength).styles] == ["wave"]


def test_expand_styles_unknown_preset_is_named(compose):
    from fastnst.training.config import ConfigError
    from fastnst.training.style_set import expand_styles, load_preset

    with pytest.raises(ConfigError, match=r"style=no_such_painting.*wave"):
        load_preset("no_such_painting")
    overrides = ["style=[wave,no_such_painting]"]
    try:  # Hydra may refuse the unknown option itself; else expand_styles must
        cfg = compose(overrides)
    except Exception as e:
        assert "no_such_painting" in str(e)
        return
    with pytest.raises(ConfigError, match="no_such_painting"):
        expand_styles(cfg, overrides)


# -- 9. training runs ---------------------------------------------------------------------

MULTI = [
    *TINY,
    "style=[wave,udnie]",
    "model=light",
    "model.width=0.25",
    "model.num_residual_blocks=1",
    "model.strength=true",
]


def _train(compose, run_dir: Path, overrides: list[str]) -> Path:
    """A real training run in-process, the way train.py's main does it (expand_styles, then train)."""
    from fastnst.training.style_set import expand_styles

    load_train_script().train(expand_styles(compose(overrides), overrides), run_dir)
    return run_dir


def _train_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # Set here too: module-scoped fixtures run before conftest's autouse one sets it.
    env = {**os.environ}
    if (a := assets_dir()) is not None:
        env.setdefault("FASTNST_VGG_WEIGHTS", str(a / "weights"))
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, vgg_weights_file) -> Path:
    """`python train.py style=[wave,udnie] model=light model.strength=true ...` run as a process."""
    cwd = tmp_path_factory.mktemp("multi")
    result = _train_cli(*[o for o in MULTI if o != "export.onnx=false"], cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = list((cwd / "checkpoints" / "wave+udnie").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_multi_style_run_folder_export_and_logs(base_run):
    assert (base_run / "last.ckpt").is_file()
    model = base_run / "wave+udnie.onnx"
    meta = _session(model).get_modelmeta().custom_metadata_map
    assert style_names(meta) == ["wave", "udnie"]
    ckpt = torch.load(base_run / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    assert [s["name"] for s in ckpt["hyper_parameters"]["styles"]] == ["wave", "udnie"]
    assert ckpt["hyper_parameters"]["strength"] is True
    assert meta["fastnst.strength"] == "true"
    norm = ckpt["state_dict"]["net.encoder.1.2.weight"]
    assert norm.shape[0] == 3  # two styles and the identity row
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set(EventAccumulator(str(base_run / "tensorboard")).Reload().Tags()["scalars"])
    assert {"train/style@wave", "train/style@udnie", "val/style@wave"} <= tags, tags
    # Preview: the photos, one row per style, and the first style at strengths 0 and 0.5.
    preview = Image.open(sorted((base_run / "previews").glob("*.png"))[-1])
    assert preview.height == 5 * (32 + 2) + 2


def test_multi_style_validation_logs_every_style(base_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set(EventAccumulator(str(base_run / "tensorboard")).Reload().Tags()["scalars"])
    assert {"val/style@wave", "val/style@udnie"} <= tags, tags


def test_multi_style_resume_matches_an_uninterrupted_run(compose, tmp_path, vgg_weights_file):
    full = _train(compose, tmp_path / "full", MULTI)
    half = _train(compose, tmp_path / "half", [*MULTI, "trainer.max_steps=2"])
    resumed = _train(compose, tmp_path / "resumed", [*MULTI, f"ckpt_path={half / 'last.ckpt'}"])
    a, b = _state(full / "last.ckpt"), _state(resumed / "last.ckpt")
    assert a.keys() == b.keys()
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)
    # The comparison can fail: the state after 2 steps differs from the state after 4.
    assert any(not torch.allclose(v, a[k], atol=1e-6) for k, v in _state(half / "last.ckpt").items())


def _rows_and_convs(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    norms = {k: v for k, v in state.items() if v.ndim == 2}  # the conditional norms' (S + 1, C) rows
    return norms, {k: v for k, v in state.items() if v.ndim != 2}


def _init_overrides(base_run: Path) -> list[str]:
    return [*TINY, "style=the_scream", f"init={base_run / 'last.ckpt'}"]


def test_init_adds_a_style_and_trains_only_its_rows(compose, tmp_path, base_run):
    base = _state(base_run / "last.ckpt")
    run = _train(compose, tmp_path / "new", _init_overrides(base_run))
    ckpt = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    assert [s["name"] for s in ckpt["hyper_parameters"]["styles"]] == ["wave", "udnie", "the_scream"]
    base_norms, base_convs = _rows_and_convs(base)
    norms, convs = _rows_and_convs(ckpt["state_dict"])
    assert base_convs.keys() == convs.keys() and base_norms.keys() == norms.keys()
    for key, value in base_convs.items():
        assert torch.equal(convs[key], value), key
    for key, rows in base_norms.items():
        assert norms[key].shape[0] == 4
        assert torch.equal(norms[key][:2], rows[:2]), key  # the base's styles
        assert torch.equal(norms[key][3], rows[2]), key  # the identity row, still last
    assert any(not torch.equal(norms[k][2], base_norms[k][:2].mean(0)) for k in norms)  # the new row trained
    # its export stylizes with the painting added, unless another style is asked for
    from fastnst.nn.export import export_onnx
    from fastnst.runtime.stylizer import Stylizer

    stylizer = Stylizer(export_onnx(run / "last.ckpt", tmp_path / "the_scream.onnx").path, device="cpu")
    assert stylizer.style_names == ["wave", "udnie", "the_scream"] and stylizer.style_mix == {"the_scream": 1.0}
    assert stylizer.with_style("udnie").style_mix == {"udnie": 1.0}


def test_init_train_all_from_step_trains_the_convolutions(compose, tmp_path, base_run):
    _, base_convs = _rows_and_convs(_state(base_run / "last.ckpt"))
    run = _train(compose, tmp_path / "all", [*_init_overrides(base_run), "trainer.train_all_from_step=2"])
    _, convs = _rows_and_convs(_state(run / "last.ckpt"))
    assert any(not torch.equal(convs[k], v) for k, v in base_convs.items())


def test_init_run_resumes_exactly_without_model_settings(compose, tmp_path, base_run):
    """An init= run takes its base's network (light) whatever model= says (here the default, Johnson's),
    and its checkpoint resumes to the state of an uninterrupted run."""
    full = _train(compose, tmp_path / "full", _init_overrides(base_run))
    half = _train(compose, tmp_path / "half", [*_init_overrides(base_run), "trainer.max_steps=2"])
    resumed = _train(compose, tmp_path / "resumed", [*_init_overrides(base_run), f"ckpt_path={half / 'last.ckpt'}"])
    a, b = _state(full / "last.ckpt"), _state(resumed / "last.ckpt")
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)
    assert any(not torch.allclose(v, a[k], atol=1e-6) for k, v in _state(half / "last.ckpt").items())
    # Without init= the network differs, and the error names what the run was trained with.
    from fastnst.training.checks import validate_config
    from fastnst.training.style_set import expand_styles

    plain = [*TINY, "style=the_scream", f"ckpt_path={half / 'last.ckpt'}", "trainer.max_steps=6"]
    with pytest.raises(FastNSTError) as err:
        validate_config(expand_styles(compose(plain), plain))
    assert str(err.value).endswith(f"(it was trained with init={base_run / 'last.ckpt'})")


def test_resume_names_a_missing_strength_or_other_styles(compose, base_run):
    """Resuming a conditional checkpoint without its strength or with other styles: one line naming
    both networks, before Lightning's state-dict error."""
    from fastnst.training.checks import validate_config
    from fastnst.training.style_set import expand_styles

    ckpt = base_run / "last.ckpt"
    for change, wanted in (("model.strength=false", "udnie]; resume"), ("style=[wave,the_scream]", "the_scream]")):
        key = change.split("=")[0]
        overrides = [*(o for o in MULTI if not o.startswith(f"{key}=")), change, f"ckpt_path={ckpt}"]
        with pytest.raises(FastNSTError) as err:
            validate_config(expand_styles(compose(overrides), overrides))
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"ckpt_path={ckpt}: the checkpoint's network is ")
        assert "strength=true, styles=[wave,udnie], the config's" in message and wanted in message, message
    resume = [*MULTI, f"ckpt_path={ckpt}", "trainer.max_steps=6"]  # beyond the checkpoint's step: work to do
    validate_config(expand_styles(compose(resume), resume))


def test_init_refuses_styles_added_to_a_plain_checkpoint_or_a_taken_name(compose, tmp_path, base_run, tiny_checkpoint):
    # A process: exit code 2 and one error line naming init= (a one-style network is fine-tuned, for one style).
    result = _train_cli(
        *TINY, "style=[the_scream,wave]", f"init={tiny_checkpoint}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"init={tiny_checkpoint}" in errors[0] and "conditional" in errors[0], out[-3000:]
    assert "Traceback" not in out and not (tmp_path / "run").exists()
    # The same error path in-process: wave is in the base already.
    with pytest.raises(FastNSTError, match="already has style 'wave'") as err:
        _train(compose, tmp_path / "taken", [*TINY, "style=wave", f"init={base_run / 'last.ckpt'}"])
    assert "\n" not in str(err.value) and str(err.value).endswith("another name (style.name=...)")
    assert "it paints it already (fastnst infer --model <its export> --style wave)" in str(err.value)
    # Several new styles: style.name names the run, not a style; the fix is the list (once: style.name=...).
    with pytest.raises(FastNSTError, match="already has style 'wave'; list only styles it lacks") as err:
        _train(compose, tmp_path / "taken2", [*TINY, "style=[wave,the_scream]", f"init={base_run / 'last.ckpt'}"])
    assert "\n" not in str(err.value)


@pytest.mark.slow  # about 15 s: judges three paintings at 512 px
def test_init_style_nearest_is_saved_by_name(compose, tmp_path, base_run):
    """init_style=nearest resolves to the closest base painting (The Scream is nearer udnie than wave),
    saved by name in the checkpoint."""
    run = _train(compose, tmp_path / "near", [*_init_overrides(base_run), "init_style=nearest"])
    ckpt = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["init_style"] == "udnie"


def test_init_style_errors_name_the_setting(compose, tmp_path, base_run):
    """An unknown name is one error line naming the base's styles; init_style needs init."""
    with pytest.raises(FastNSTError, match=r"init_style=monet: not a style of init=.*wave, udnie") as err:
        _train(compose, tmp_path / "unknown", [*_init_overrides(base_run), "init_style=monet"])
    assert "\n" not in str(err.value)
    with pytest.raises(FastNSTError, match="init_style=udnie: needs init="):
        _train(compose, tmp_path / "no_base", [*TINY, "style=the_scream", "init_style=udnie"])


def test_init_style_by_name_starts_the_new_rows_at_that_styles(base_run):
    """Before any step, the new style's scales and shifts are the named base style's; the mean by default."""
    from fastnst.training.module import StyleTransferModule

    new = [{"name": "the_scream", "image": "the_scream.jpg", "size": 64, "style_weight": 2.0}]
    init = str(base_run / "last.ckpt")
    base_norms, _ = _rows_and_convs(_state(base_run / "last.ckpt"))
    for init_style, expected in (("udnie", lambda rows: rows[1]), (None, lambda rows: rows[:2].mean(0))):
        module = StyleTransferModule(
            style_name="the_scream", style_image="the_scream.jpg", styles=new, init=init, init_style=init_style
        )
        norms, _ = _rows_and_convs({f"net.{k}": v for k, v in module.net.state_dict().items()})
        for key, rows in base_norms.items():
            torch.testing.assert_close(norms[key][2], expected(rows), msg=key)
    with pytest.raises(FastNSTError, match="init_style=nearest: picks a start for one new style"):
        StyleTransferModule(style_name="two", style_image="wave.jpg", styles=[*new, {**new[0], "name": "other"}],
                            init=init, init_style="nearest")  # fmt: skip


def test_identity_loss_known_values():
    from fastnst.nn.losses import identity_loss

    photo = torch.zeros(2, 3, 2, 2)
    output = torch.stack([torch.full((3, 2, 2), 0.5), torch.full((3, 2, 2), 1.0)])
    # per-sample mean squared errors 0.25 and 1.0, weighted 1 and 0.5, then the batch mean
    assert identity_loss(output, photo, torch.tensor([1.0, 0.5])).item() == pytest.approx((0.25 + 0.5) / 2)
    assert identity_loss(output, photo, torch.zeros(2)).item() == 0.0


def test_conditional_norm_rows_get_the_scaled_learning_rate():
    from fastnst.training.module import StyleTransferModule

    styles = [{"name": n, "image": f"{n}.jpg", "size": 64, "style_weight": 2.0} for n in ("wave", "udnie")]
    module = StyleTransferModule(
        style_name="two", style_image="wave.jpg", architecture="light", styles=styles, lr=1e-3, norm_lr_scale=10.0
    )
    (plain, rows) = module.configure_optimizers().param_groups
    assert plain["lr"] == 1e-3 and rows["lr"] == pytest.approx(1e-2)
    assert all(p.ndim == 2 and p.shape[0] == 3 for p in rows["params"])  # two styles + the identity row
    single = StyleTransferModule(style_name="wave", style_image="wave.jpg", architecture="light")
    assert len(single.configure_optimizers().param_groups) == 1


@pytest.mark.slow  # about 30 s: judges three styles at 512 px; keeps the default run under 10 minutes
def test_eval_judges_the_chosen_style_of_a_several_style_model(tiny_conditional_checkpoint, tmp_path):
    from fastnst.nn.export import export_onnx

    model = export_onnx(tiny_conditional_checkpoint, tmp_path / "three.onnx").path
    photo = REPO / "fastnst" / "assets" / "sample_photos" / "coffee.jpg"
    figures = {}
    for style in ("wave", "udnie"):
        rc, _, err = cli("eval", "--style", style, "--content", photo, "--model", model, "--model-style", style,
                           "-o", tmp_path / style, "-q", "--no-sheet")  # fmt: skip
        assert rc == 0, err
        figures[style] = json.loads((tmp_path / style / "summary.json").read_text())["summary"]
    assert figures["wave"] != figures["udnie"]
    # without --model-style: the model's style named like the painting judged (--style), else a note says which
    rc, _, err = cli("eval", "--style", "udnie", "--content", photo, "--model", model, "-o", tmp_path / "u", "-q",
                     "--no-sheet")  # fmt: skip
    assert rc == 0 and json.loads((tmp_path / "u" / "summary.json").read_text())["summary"] == figures["udnie"]
    assert "note:" not in err
    rc, _, err = cli("eval", "--style", "the_scream", "--content", photo, "--model", model, "-o", tmp_path / "s",
                     "-q", "--no-sheet")  # fmt: skip
    assert rc == 0 and "note: three has styles starry_night, wave, udnie; judged on starry_night" in err
    rc, _, err = cli("eval", "--style", "wave", "--content", photo, "--model", model, "--model-style", "zz", "-q")
    assert rc != 0 and "'zz' is not a style of this model" in err and len(err.strip().splitlines()) == 1


def test_init_takes_a_shipped_base_by_name(compose, tmp_path, base_run, monkeypatch, tiny_checkpoint):
    """save_base writes the network and settings alone; a base in the package's bases folder is taken by name,
    and trains a new style as its checkpoint would."""
    import fastnst.styles
    from fastnst.nn.conditioning import save_base

    bases = tmp_path / "bases"
    base = save_base(base_run / "last.ckpt", bases / "two_styles.ckpt")
    slim = torch.load(base, map_location="cpu", weights_only=True)
    assert set(slim) == {"state_dict", "hyper_parameters"}
    assert base.stat().st_size < (base_run / "last.ckpt").stat().st_size
    for key, value in slim["state_dict"].items():
        assert torch.equal(value, _state(base_run / "last.ckpt")[key]), key
    monkeypatch.setattr(fastnst.styles, "bases_dir", lambda: bases)
    by_name = _state(_train(compose, tmp_path / "named", [*TINY, "style=the_scream", "init=two_styles"]) / "last.ckpt")
    by_file = _state(_train(compose, tmp_path / "file", _init_overrides(base_run)) / "last.ckpt")
    for key, value in by_file.items():
        torch.testing.assert_close(by_name[key], value, rtol=0, atol=1e-6, msg=key)
    with pytest.raises(FastNSTError, match="a one-style network; a base is a conditional one"):
        save_base(tiny_checkpoint, bases / "one.ckpt")
    with pytest.raises(FastNSTError, match=r"init=nothing: nothing: no such checkpoint or ONNX file.*two_styles\)"):
        _train(compose, tmp_path / "bad", [*TINY, "style=the_scream", "init=nothing"])


def test_strength_output_known_values():
    from fastnst.nn.transformer_net import strength_output

    image = torch.tensor([[[[0.5, 0.0, 1.0]]]]).expand(1, 3, 1, 3)
    y = torch.full((1, 3, 1, 3), 2.0)
    got = strength_output(image, y, torch.tensor([[0.5]]))
    assert got[0, 0, 0, 0].item() == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-6)  # sigmoid(0.5 * 0 + 0.5 * 2)
    torch.testing.assert_close(strength_output(image, y, torch.tensor([[0.0]])), image, rtol=0, atol=1 / 509)
    torch.testing.assert_close(strength_output(image, y, torch.tensor([[1.0]])), torch.sigmoid(y))  # the network's own
    per_pixel = strength_output(image, y, torch.tensor([[[[0.0, 0.5, 1.0]]]]))  # a (1, 1, 1, 3) strength map
    assert per_pixel[0, 0, 0, 0].item() == pytest.approx(0.5, abs=1e-6)
    assert per_pixel[0, 0, 0, 2].item() == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-6)


def test_a_trained_strength_network_gives_the_photo_back_at_strength_zero():
    torch.manual_seed(0)
    net = build_network("light", width=0.25, num_residual_blocks=1, num_styles=2, gated_strength=True).eval()
    image = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        photo = net(image, torch.tensor([[0.3, 0.7]]), 0.0)
        styled = net(image, torch.tensor([[0.3, 0.7]]), 1.0)
    torch.testing.assert_close(photo, image.clamp(1 / 510, 1 - 1 / 510), rtol=0, atol=1e-5)
    assert (styled - image).abs().mean() > 0.01
    with pytest.raises(ValueError, match="gated_strength needs a conditional network"):
        build_network("light", gated_strength=True)


def test_a_strength_checkpoint_records_its_output_and_a_retired_one_is_refused(tiny_conditional_checkpoint, tmp_path):
    from fastnst.nn.export import ExportError, export_onnx
    from fastnst.nn.transformer_net import STRENGTH_OUTPUT

    state = torch.load(tiny_conditional_checkpoint, map_location="cpu", weights_only=True)
    assert state["hyper_parameters"]["output"] == STRENGTH_OUTPUT
    state["hyper_parameters"]["output"] = "gated"  # sigmoid(logit(photo) + strength * change), retired
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    with pytest.raises(ExportError, match=r"old.ckpt: output='gated', a trained-strength network with a retired"):
        export_onnx(old, tmp_path / "old.onnx")
    assert not (tmp_path / "old.onnx").exists()
