"""Tests of fastnst.nn.losses: known values of the pure functions, and the PerceptualLoss module
against the same functions applied by hand (with the real VGG19 Caffe weights)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import asset

from fastnst.nn.images import load_image
from fastnst.nn.losses import PerceptualLoss, content_loss, gram_matrix, style_loss, teacher_loss, total_variation
from fastnst.nn.vgg import VGG19, vgg19


def small_image(relative: str, size: int = 32) -> torch.Tensor:
    image = load_image(asset(relative), size=size)
    return image[:, :, :size, :size].contiguous()


# ---------------------------------------------------------------------------
# gram_matrix
# ---------------------------------------------------------------------------


def test_gram_matrix_known_value() -> None:
    features = torch.arange(12, dtype=torch.float32).view(1, 2, 2, 3)
    # F = [[0..5], [6..11]]: F F^T = [[55, 145], [145, 451]], divided by C*H*W = 12.
    expected = torch.tensor([[[55.0, 145.0], [145.0, 451.0]]]) / 12
    torch.testing.assert_close(gram_matrix(features), expected)


def test_gram_matrix_matches_manual_per_sample() -> None:
    features = (torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5) - 50) / 10
    gram = gram_matrix(features)
    assert gram.shape == (2, 3, 3)
    for i in range(2):
        f = features[i].reshape(3, 20)
        torch.testing.assert_close(gram[i], f @ f.T / (3 * 4 * 5))
    torch.testing.assert_close(gram, gram.transpose(1, 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_gram_matrix_is_float32(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    features = torch.rand(2, 4, 5, 5).to(dtype)
    gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, gram_matrix(features.float()))


def test_gram_matrix_float32_under_autocast() -> None:
    torch.manual_seed(0)
    features = torch.rand(2, 16, 8, 8) * 100
    reference = gram_matrix(features.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    # bf16 matmul would be off by ~1e-2 relative; float32 is far closer.
    torch.testing.assert_close(gram, reference.float(), rtol=1e-5, atol=1e-3)


def test_gram_matrix_no_fp16_overflow() -> None:
    features = torch.full((1, 64, 32, 32), 300.0, dtype=torch.float16)
    gram = gram_matrix(features)
    assert torch.isfinite(gram).all()
    # Each entry: 1024 * 300^2 / (64 * 1024) = 1406.25 (the raw sum, 9.2e7, overflows fp16).
    torch.testing.assert_close(gram, torch.full((1, 64, 64), 1406.25))


@pytest.mark.parametrize("shape", [(4, 5, 6), (2, 3, 4, 5, 6), (5,)])
def test_gram_matrix_wrong_ndim(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        gram_matrix(torch.zeros(shape))


# ---------------------------------------------------------------------------
# content_loss
# ---------------------------------------------------------------------------


def test_content_loss_is_mse() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(content_loss(a, b), F.mse_loss(a, b))
    # Known value: a constant difference of 2 -> 4.
    assert content_loss(torch.full((1, 2, 3, 3), 3.0), torch.ones(1, 2, 3, 3)).item() == pytest.approx(4.0)


def test_content_loss_normalize() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6) * 3
    torch.testing.assert_close(content_loss(a, b, normalize=True), F.mse_loss(a, b) / b.square().mean())
    # Relative: scaling both by k leaves it unchanged (the raw loss scales by k^2).
    torch.testing.assert_close(content_loss(10 * a, 10 * b, normalize=True), content_loss(a, b, normalize=True))
    torch.testing.assert_close(content_loss(10 * a, 10 * b), 100 * content_loss(a, b))


def test_content_loss_zero_when_equal() -> None:
    torch.manual_seed(0)
    a = torch.randn(1, 3, 4, 4)
    assert content_loss(a, a.clone()).item() == 0.0
    assert content_loss(a, a.clone(), normalize=True).item() == 0.0


def test_content_loss_float32_for_half_inputs() -> None:
    a = torch.full((1, 2, 4, 4), 300.0, dtype=torch.float16)
    b = torch.zeros_like(a)
    loss = content_loss(a, b)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(90000.0)  # > fp16 max


def test_content_loss_gradient_only_to_features() -> None:
    torch.manual_seed(0)
    a = torch.randn(1, 2, 3, 3, requires_grad=True)
    b = torch.randn(1, 2, 3, 3, requires_grad=True)
    content_loss(a, b, normalize=True).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    # The normaliser is detached; the target still gets the (negated) MSE gradient only.
    expected_b_grad = -2 * (a - b).detach() / a.numel() / b.detach().square().mean()
    torch.testing.assert_close(b.grad, expected_b_grad)


# ---------------------------------------------------------------------------
# style_loss
# ---------------------------------------------------------------------------


def test_style_loss_zero_for_own_gram() -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 5, 6, 7)
    assert style_loss(f, gram_matrix(f)).item() == 0.0
    assert style_loss(f, gram_matrix(f), normalize=True).item() == 0.0


def test_style_loss_known_value() -> None:
    features = torch.arange(12, dtype=torch.float32).view(1, 2, 2, 3)
    gram = torch.tensor([[55.0, 145.0], [145.0, 451.0]]) / 12
    # Every Gram entry off by 1 -> MSE 1.
    assert style_loss(features, gram + 1).item() == pytest.approx(1.0)
    # Relative: divided by the mean square of the target.
    target = gram + 1
    assert style_loss(features, target, normalize=True).item() == pytest.approx(1.0 / target.square().mean().item())


@pytest.mark.parametrize("target_shape", [(6, 6), (1, 6, 6), (3, 6, 6)])
def test_style_loss_broadcasts_target(target_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    features = torch.randn(3, 6, 4, 5)
    target = torch.rand(6, 6)
    grams = gram_matrix(features)
    expected = ((grams - target) ** 2).mean()
    got = style_loss(features, target.expand(target_shape).clone())
    torch.testing.assert_close(got, expected)
    # Equal to the mean of the per-image losses.
    per_image = torch.stack([style_loss(features[i : i + 1], target) for i in range(3)])
    torch.testing.assert_close(got, per_image.mean())


def test_style_loss_per_sample_target() -> None:
    torch.manual_seed(0)
    features = torch.randn(3, 4, 5, 5)
    targets = torch.rand(3, 4, 4)
    expected = ((gram_matrix(features) - targets) ** 2).mean()
    torch.testing.assert_close(style_loss(features, targets), expected)


def test_style_loss_normalize() -> None:
    torch.manual_seed(0)
    features = torch.randn(2, 4, 5, 5)
    target = torch.rand(4, 4) * 7
    raw = style_loss(features, target)
    torch.testing.assert_close(style_loss(features, target, normalize=True), raw / target.square().mean())
    # Scale invariance: features x k scale the Gram by k^2.
    torch.testing.assert_close(
        style_loss(3 * features, 9 * target, normalize=True), style_loss(features, target, normalize=True)
    )


def test_style_loss_float32_for_half_inputs() -> None:
    features = torch.full((1, 64, 32, 32), 300.0, dtype=torch.float16)
    target = torch.zeros(64, 64, dtype=torch.float16)
    loss = style_loss(features, target)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(1406.25**2)


# ---------------------------------------------------------------------------
# total_variation
# ---------------------------------------------------------------------------


def test_total_variation_vertical_step_edge() -> None:
    image = torch.zeros(1, 1, 4, 4)
    image[..., 2:] = 1.0  # a vertical edge of height 1 between columns 1 and 2
    # dh: all 12 vertical differences are 0; dw: 4 of the 12 horizontal ones are 1.
    assert total_variation(image).item() == pytest.approx(0.0 + 4 / 12)
    # The horizontal edge gives the same value; a double-height edge twice as much.
    assert total_variation(image.transpose(2, 3)).item() == pytest.approx(1 / 3)
    assert total_variation(2 * image).item() == pytest.approx(2 / 3)


def test_total_variation_single_spike() -> None:
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 1, 1] = 2.0
    # dh: 2 of the 6 vertical differences are 2 -> 2/3; dw likewise -> 2/3.
    assert total_variation(image).item() == pytest.approx(4 / 3)


def test_total_variation_averages_over_batch_and_channels() -> None:
    edge = torch.zeros(1, 1, 4, 4)
    edge[..., 2:] = 1.0
    batch = torch.cat([edge, torch.zeros_like(edge)])  # the second image is constant
    assert total_variation(batch).item() == pytest.approx(1 / 6)
    rgb = edge.expand(1, 3, 4, 4)
    assert total_variation(rgb).item() == pytest.approx(1 / 3)


def test_total_variation_constant_is_zero() -> None:
    assert total_variation(torch.full((2, 3, 5, 7), 0.37)).item() == 0.0


def test_total_variation_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        total_variation(torch.zeros(3, 4, 4))


def test_total_variation_float32_for_half() -> None:
    image = torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16)
    image[..., 2:] = 1.0
    tv = total_variation(image)
    assert tv.dtype == torch.float32
    assert tv.item() == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------
# PerceptualLoss with the real VGG19 (Caffe weights)
# ---------------------------------------------------------------------------

STYLE_LAYERS = {"relu1_2": 0.3, "relu2_2": 2.0}
CONTENT_LAYERS = {"relu2_2": 1.5}
WEIGHTS = {"content_weight": 1.7, "style_weight": 7.0, "tv_weight": 0.05}


@pytest.fixture(scope="module")
def real_vgg() -> VGG19:
    path = asset("weights/vgg19_features_caffe-d2188631.pth")
    return vgg19(["relu1_2", "relu2_2"], weights=str(path))


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    content = small_image("content/tubingen.jpg")
    return {
        "content": content,
        "output": (content + 0.1 * torch.randn_like(content)).clamp(0, 1),
        "style": small_image("styles/starry_night.jpg"),
        "style2": small_image("styles/the_scream.jpg", size=48),  # sizes may differ
    }


def make_loss(vgg: VGG19, **kwargs: float) -> PerceptualLoss:
    return PerceptualLoss(vgg, CONTENT_LAYERS, STYLE_LAYERS, **{**WEIGHTS, **kwargs})


def test_perceptual_loss_terms(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(images["style"])
    output, content = images["output"], images["content"]
    terms = loss_fn(output, content)
    assert set(terms) == {"loss", "content", "style", "tv", "style/relu1_2", "style/relu2_2"}
    assert all(torch.isfinite(t) and t.ndim == 0 for t in terms.values())
    assert all(terms[k] > 0 for k in ("content", "style", "tv", "style/relu1_2", "style/relu2_2"))

    expected_loss = 1.7 * terms["content"] + 7.0 * terms["style"] + 0.05 * terms["tv"]
    torch.testing.assert_close(terms["loss"], expected_loss)
    torch.testing.assert_close(terms["style"], terms["style/relu1_2"] + terms["style/relu2_2"])

    # The same terms from the pure functions (function and module agree).
    with torch.no_grad():
        out_f, content_f, style_f = real_vgg(output), real_vgg(content), real_vgg(images["style"])
    for layer, weight in STYLE_LAYERS.items():
        target = gram_matrix(style_f[layer]).mean(0)
        expected = weight * style_loss(out_f[layer], target, normalize=True)
        torch.testing.assert_close(terms[f"style/{layer}"], expected)
    expected_content = 1.5 * content_loss(out_f["relu2_2"], content_f["relu2_2"], normalize=True)
    torch.testing.assert_close(terms["content"], expected_content)
    torch.testing.assert_close(terms["tv"], total_variation(output))


def test_perceptual_loss_unnormalized_matches_functions(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg, tv_weight=0.0)
    loss_fn.normalize = False
    loss_fn.set_style(images["style"])
    terms = loss_fn(images["output"], images["content"])
    with torch.no_grad():
        out_f, style_f = real_vgg(images["output"]), real_vgg(images["style"])
    expected = 0.3 * style_loss(out_f["relu1_2"], gram_matrix(style_f["relu1_2"])[0])
    torch.testing.assert_close(terms["style/relu1_2"], expected)
    torch.testing.assert_close(terms["loss"], 1.7 * terms["content"] + 7.0 * terms["style"])


def test_perceptual_loss_content_zero_for_content(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(images["style"])
    content = images["content"]
    terms = loss_fn(content.clone(), content)
    assert terms["content"].item() == 0.0
    assert terms["style"].item() > 0


def test_perceptual_loss_style_zero_for_style_image(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(images["style"])
    terms = loss_fn(images["style"].clone(), images["content"])
    assert terms["style"].item() == pytest.approx(0.0, abs=1e-10)
    assert terms["content"].item() > 0


def test_perceptual_loss_requires_set_style(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    with pytest.raises(RuntimeError, match="set_style"):
        loss_fn(images["output"], images["content"])


def test_perceptual_loss_unknown_layer_raises(real_vgg: VGG19) -> None:
    with pytest.raises(ValueError, match="relu3_1"):
        PerceptualLoss(real_vgg, {"relu2_2": 1.0}, {"relu3_1": 1.0})


def test_perceptual_loss_blend_weights(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    a, b = images["style"], images["style2"]
    assert a.shape != b.shape
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(a)  # set again below: the buffers are replaced
    loss_fn.set_style([a, b], weights=[1, 3])
    with torch.no_grad():
        fa, fb = real_vgg(a), real_vgg(b)
    for layer in STYLE_LAYERS:
        expected = 0.25 * gram_matrix(fa[layer])[0] + 0.75 * gram_matrix(fb[layer])[0]
        torch.testing.assert_close(loss_fn.target_gram(layer), expected)
    # Without weights: an even blend.
    loss_fn.set_style([a, b])
    expected = 0.5 * gram_matrix(fa["relu2_2"])[0] + 0.5 * gram_matrix(fb["relu2_2"])[0]
    torch.testing.assert_close(loss_fn.target_gram("relu2_2"), expected)


@pytest.mark.parametrize("weights", [[1.0], [0.0, 0.0], [1.0, -1.0]])
def test_perceptual_loss_bad_blend_weights(real_vgg: VGG19, images: dict[str, torch.Tensor], weights) -> None:
    loss_fn = make_loss(real_vgg)
    with pytest.raises(ValueError, match="blend weight"):
        loss_fn.set_style([images["style"], images["style2"]], weights=weights)


def test_perceptual_loss_buffers_not_in_state_dict(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(images["style"])
    buffers = {name for name, _ in loss_fn.named_buffers()}
    assert {"gram_relu1_2", "gram_relu2_2"} <= buffers
    state = loss_fn.state_dict()
    assert not any("gram" in key for key in state)
    assert set(state) == {f"vgg.{k}" for k in real_vgg.state_dict()}


def test_perceptual_loss_gradient_to_output_only(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    loss_fn = make_loss(real_vgg)
    loss_fn.set_style(images["style"])
    output = images["output"].clone().requires_grad_(True)
    content = images["content"].clone().requires_grad_(True)
    loss_fn(output, content)["loss"].backward()
    assert output.grad is not None
    assert torch.isfinite(output.grad).all()
    assert output.grad.abs().sum() > 0
    assert content.grad is None  # the content features are a fixed target
    assert all(p.grad is None and not p.requires_grad for p in real_vgg.parameters())
    assert all(not g.requires_grad for g in (loss_fn.target_gram(layer) for layer in STYLE_LAYERS))


def test_teacher_loss_known_values() -> None:
    ones = {"a": torch.ones(1, 2, 2, 2), "b": torch.full((1, 1, 2, 2), 2.0)}
    teacher = {"a": torch.zeros(1, 2, 2, 2), "b": torch.full((1, 1, 2, 2), 4.0)}
    # a: MSE 1 (the teacher's features are zero, so it has no relative form); b: MSE 4, relative 4 / 16.
    torch.testing.assert_close(teacher_loss(ones, teacher, {"a": 0.5, "b": 2.0}), torch.tensor(0.5 + 8.0))
    torch.testing.assert_close(teacher_loss(ones, teacher, {"b": 2.0}, normalize=True), torch.tensor(0.5))
    assert teacher_loss(ones, ones, {"a": 1.0, "b": 1.0}) == 0


def test_perceptual_loss_teacher_term(real_vgg: VGG19, images: dict[str, torch.Tensor]) -> None:
    """The teacher term over the style layers, times teacher_weight, on top of the other terms; the
    module and the pure function agree."""
    loss_fn = make_loss(real_vgg, teacher_weight=0.7)
    loss_fn.set_style(images["style"])
    output, content = images["output"], images["content"]
    teacher = (content * 0.8 + 0.1).clamp(0, 1)
    without = loss_fn(output, content)
    terms = loss_fn(output, content, teacher=teacher)
    assert "teacher" not in without and terms["teacher"] > 0
    torch.testing.assert_close(terms["loss"], without["loss"] + 0.7 * terms["teacher"])
    with torch.no_grad():
        expected = teacher_loss(real_vgg(output), real_vgg(teacher), STYLE_LAYERS, normalize=True)
    torch.testing.assert_close(terms["teacher"], expected)
    assert loss_fn(output, content, teacher=output)["teacher"] == 0
