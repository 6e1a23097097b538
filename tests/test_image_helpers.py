"""The one image module's conversions, resize rules and savers (fastnst.runtime.imageio), with known values."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from fastnst.nn.images import to_pil, to_tensor
from fastnst.nn.optimize import save_image as save_tensor
from fastnst.runtime.imageio import (
    ImageError,
    encode_image,
    fit_long_side,
    fit_size,
    long_side_size,
    open_rgb,
    output_metadata,
    resize_short_side,
    resize_to,
    save_image,
    short_side_size,
    thumbnail,
    to_8bit_image,
    to_float,
    to_uint8,
    to_uint16,
)

COFFEE = REPO / "fastnst" / "assets" / "sample_photos" / "coffee.jpg"


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return open_rgb(COFFEE)


# -- size rules ------------------------------------------------------------------------------------


def test_short_side_size_goes_up_or_down_and_keeps_aspect() -> None:
    assert short_side_size(1024, 768, 256) == (341, 256)
    assert short_side_size(300, 600, 128) == (128, 256)
    assert short_side_size(50, 40, 100) == (125, 100)  # training enlarges small photos: the crop needs it
    assert short_side_size(256, 256, 256) == (256, 256)


def test_long_side_size_goes_up_or_down_and_keeps_aspect() -> None:
    assert long_side_size(1024, 768, 512) == (512, 384)
    assert long_side_size(300, 600, 512) == (256, 512)
    assert long_side_size(100, 50, 512) == (512, 256)  # the judge enlarges too: every image at its size
    assert long_side_size(1, 1000, 512) == (1, 512)  # never a zero side


def test_fit_size_never_enlarges() -> None:
    assert fit_size(100, 50, 512) == (100, 50)
    assert fit_size(1920, 1080, None) == (1920, 1080)
    assert fit_size(1920, 1080, 0) == (1920, 1080)
    assert fit_size(1920, 1080, 1000) == (1000, 562)
    assert fit_size(600, 300, 100) == (100, 50)


def test_fit_size_with_even_sides_for_video() -> None:
    assert fit_size(1920, 1080, 1000, multiple=2) == (1000, 562)
    assert fit_size(1001, 333, 500, multiple=2) == (500, 166)
    assert fit_size(640, 480, 640, multiple=2) == (640, 480)  # already fits: untouched
    rng = np.random.default_rng(0)
    for w, h, m in rng.integers(8, 4000, size=(500, 3)):
        fw, fh = fit_size(int(w), int(h), int(m), multiple=2)
        if max(w, h) > m:
            assert fw % 2 == 0 and fh % 2 == 0 and max(fw, fh) <= m
            assert abs(fw / fh - w / h) <= 2 * (1 / fh + w / h / fh) + 1e-9  # aspect within the rounding


# -- resizes ---------------------------------------------------------------------------------------


def test_resize_short_side_is_bicubic_with_reducing_gap(coffee: Image.Image) -> None:
    out = resize_short_side(coffee, 96)
    assert out.size == (144, 96)  # coffee.jpg is 600x400
    expected = coffee.resize((144, 96), Image.Resampling.BICUBIC, reducing_gap=3.0)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert resize_short_side(out, 96) is out


def test_judge_resize_is_lanczos_to_the_exact_size(coffee: Image.Image) -> None:
    """The judge's figures depend on this resampler: changing it must fail here."""
    out = resize_to(coffee, long_side_size(*coffee.size, 100))
    assert out.size == (100, 67)
    assert np.array_equal(np.asarray(out), np.asarray(coffee.resize((100, 67), Image.Resampling.LANCZOS)))
    assert long_side_size(50, 20, 100) == (100, 40)  # enlarges
    assert resize_to(out, (100, 67)) is out
    assert thumbnail(coffee, 30).size == (45, 30)


def test_fit_long_side_shrinks_float_images_only() -> None:
    image = np.full((300, 200, 3), 0.25, np.float32)
    out = fit_long_side(image, 100)
    assert out.shape == (100, 67, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.25, atol=1e-6)
    assert fit_long_side(image, 300) is image
    assert fit_long_side(image, None) is image


def test_fit_long_side_clips_lanczos_overshoot() -> None:
    image = np.zeros((64, 64, 3), np.float32)
    image[:, 32:] = 1.0  # a hard edge: Lanczos rings past 0 and 1
    out = fit_long_side(image, 20)
    assert out.min() == 0.0 and out.max() == 1.0
    assert image[:, 32:].min() == 1.0  # the caller's array is untouched


# -- conversions -----------------------------------------------------------------------------------


def test_uint8_float_round_trip_is_exact() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    as_float = to_float(levels)
    assert as_float.dtype == np.float32
    assert as_float[0, 1, 0] == np.float32(1 / 255) and as_float[15, 15, 0] == 1.0
    assert np.array_equal(to_uint8(as_float), levels)


def test_to_uint8_clips_and_rounds_half_up() -> None:
    assert to_uint8(np.array([[[0.0, 0.5, 1.0]]])).tolist() == [[[0, 128, 255]]]
    assert to_uint8(np.array([[[-0.2, 1.7, 0.4 / 255]]])).tolist() == [[[0, 255, 0]]]


def test_to_uint16_clips_and_rounds() -> None:
    assert to_uint16(np.array([[[0.0, 0.5, 1.0]]])).tolist() == [[[0, 32768, 65535]]]
    assert to_uint16(np.array([[[-1.0, 2.0, 1 / 65535]]])).tolist() == [[[0, 65535, 1]]]


def test_to_float_checks_and_clips() -> None:
    assert to_float(np.array([[[-0.5, 0.5, 1.5]]])).tolist() == [[[0.0, 0.5, 1.0]]]
    with pytest.raises(ValueError, match="NaN"):
        to_float(np.array([[[np.nan, 0.0, 0.0]]]))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_float(np.zeros((4, 4)))
    assert to_float(Image.new("L", (3, 2), 255)).shape == (2, 3, 3)


def test_to_8bit_image(coffee: Image.Image) -> None:
    values = np.array([[[0.0, 0.5, 1.0]]])
    assert np.asarray(to_8bit_image(values)).tolist() == [[[0, 128, 255]]]
    assert values.tolist() == [[[0.0, 0.5, 1.0]]]
    assert np.array_equal(np.asarray(to_8bit_image(np.asarray(coffee))), np.asarray(coffee))
    assert to_8bit_image(Image.new("L", (2, 2))).mode == "RGB"


def test_tensor_conversions_share_the_8_bit_rule(coffee: Image.Image) -> None:
    assert np.array_equal(np.asarray(to_pil(to_tensor(coffee))), np.asarray(coffee))
    ties = torch.tensor([0.5, 2.5, 4.5]) / 255  # exactly k + 0.5 once times 255, in float32
    assert np.asarray(to_pil(ties.view(1, 3, 1).expand(3, 3, 1))).tolist() == [[[1, 1, 1]], [[3, 3, 3]], [[5, 5, 5]]]


# -- saving ----------------------------------------------------------------------------------------


def test_save_8_bit_keeps_metadata(tmp_path, coffee: Image.Image) -> None:
    pixels = np.asarray(coffee.resize((32, 24)))
    save_image(pixels, tmp_path / "a.png", output_metadata(coffee, "wave"))
    with Image.open(tmp_path / "a.png") as img:
        assert np.array_equal(np.asarray(img.convert("RGB")), pixels)
        assert img.getexif()[0x0131] == "fastnst (style wave)"
    save_image(pixels, tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.format == "JPEG" and img.size == (32, 24)


def test_save_16_bit_png_exact(tmp_path) -> None:
    import png

    pixels = (np.arange(2 * 3 * 3, dtype=np.uint16) * 3000).reshape(2, 3, 3)
    save_image(pixels, tmp_path / "x.png")
    w, h, rows, info = png.Reader(filename=str(tmp_path / "x.png")).read()
    assert (w, h, info["bitdepth"]) == (3, 2, 16)
    assert np.array_equal(np.array(list(rows)).reshape(2, 3, 3), pixels)
    with pytest.raises(ImageError, match=r"x\.jpg: 16-bit output needs a \.png"):
        save_image(pixels, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="PNG only"):
        encode_image(pixels, io.BytesIO(), "JPEG")


def test_16_bit_without_pypng_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "png", None)  # as in a base install
    with pytest.raises(ImageError, match="needs pypng") as info:
        save_image(np.zeros((2, 2, 3), np.uint16), tmp_path / "x.png")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_base_install_modules_do_not_load_pypng() -> None:
    code = "import sys, fastnst.runtime.imageio, fastnst.runtime.infer_cli; assert 'png' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_optimize_output_format_follows_the_extension(tmp_path) -> None:
    image = torch.rand(1, 3, 8, 8)
    save_tensor(image, tmp_path / "r.webp")
    with Image.open(tmp_path / "r.webp") as img:
        assert img.format == "WEBP"
    save_tensor(image, tmp_path / "r.png")
    with Image.open(tmp_path / "r.png") as img:
        assert np.array_equal(np.asarray(img), to_uint8(image[0].permute(1, 2, 0).numpy()))
