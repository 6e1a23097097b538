"""The fixed judge (fastnst.nn.evaluate) and `fastnst eval`: known values, stability, 8-bit reload, CLI."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst.cli import main
from fastnst.nn.evaluate import Judge, Row, gram, judged_size, mean_cov, relative, summarize
from fastnst.photos import sample_photos_dir
from fastnst.runtime.imageio import to_8bit_image
from fastnst.styles import resolve_style_image

PHOTOS = sorted(sample_photos_dir().glob("*.jpg"))


@pytest.fixture(scope="module")
def judge(vgg_weights_file) -> Judge:
    return Judge(resolve_style_image("starry_night"), vgg_weights=str(vgg_weights_file))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(sample_photos_dir() / "chelsea.jpg").convert("RGB")


def test_gram_is_normalised_by_positions() -> None:
    f = torch.full((1, 2, 3, 4), 2.0)  # every position holds (2, 2): F F^T / HW = 4 everywhere
    torch.testing.assert_close(gram(f), torch.full((2, 2), 4.0, dtype=torch.float64))
    big = torch.full((1, 2, 30, 40), 2.0)  # more positions, same statistics: same Gram
    torch.testing.assert_close(gram(big), gram(f))


def test_mean_and_covariance_known_values() -> None:
    f = torch.tensor([[1.0, 3.0], [2.0, 2.0]]).reshape(1, 2, 1, 2)  # channel 0: 1, 3; channel 1: 2, 2
    mu, cov = mean_cov(f)
    torch.testing.assert_close(mu, torch.tensor([2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(cov, torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    assert relative(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])) == pytest.approx(0.5)


def test_judged_size_keeps_aspect() -> None:
    assert judged_size(1024, 768) == (512, 384)
    assert judged_size(300, 600) == (256, 512)


def test_photo_against_itself_has_no_content_loss(judge, photo) -> None:
    scores = judge.score(photo, photo)
    assert scores.content == 0.0
    assert scores.style_gram > 0.1 and scores.style_stats > 0.1  # a cat photo is not Starry Night


def test_style_gram_is_the_mean_of_its_layers(judge, photo) -> None:
    scores = judge.score(photo, photo)
    assert list(scores.style_gram_layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert scores.style_gram == pytest.approx(sum(scores.style_gram_layers.values()) / 5, rel=1e-12)
    assert len(set(scores.style_gram_layers.values())) == 5  # each layer measured on its own


def test_summary_averages_each_layer_over_the_photos() -> None:
    rows = [
        Row("net", "a.jpg", 1.0, 2.0, 3.0, {"relu1_1": 1.0, "relu5_1": 3.0}),
        Row("net", "b.jpg", 3.0, 4.0, 5.0, {"relu1_1": 2.0, "relu5_1": 6.0}),
        Row("images", "a.jpg", 1.0, 1.0, 1.0),  # rows without layers (older code): no per-layer entry
    ]
    summary = summarize(rows)
    assert summary["net"] == {
        "content": 2.0, "style_gram": 3.0, "style_stats": 4.0, "photos": 2,
        "style_gram_layers": {"relu1_1": 1.5, "relu5_1": 4.5},
    }  # fmt: skip
    assert "style_gram_layers" not in summary["images"]


def test_style_image_has_no_style_loss(judge) -> None:
    style = judge.style_image
    scores = judge.score(style, style)
    assert scores.style_gram < 1e-9 and scores.style_stats < 1e-9 and scores.content == 0.0


def test_figures_move_the_right_way(judge, photo) -> None:
    """The painting itself, resized onto the photo, is far in content and near in style."""
    as_photo = judge.score(photo, photo)
    painting = judge.score(judge.style_image.resize(photo.size), photo)
    assert painting.content > as_photo.content + 0.5
    assert painting.style_gram < as_photo.style_gram / 3
    assert painting.style_stats < as_photo.style_stats / 3


@pytest.mark.slow  # about 15 s; keeps the default run under 10 minutes
def test_stable_from_run_to_run_and_8bit_reload(judge, photo, vgg_weights_file, tmp_path) -> None:
    rng = np.random.default_rng(0)
    result = np.clip(np.asarray(photo, np.float32) / 255 + rng.normal(0, 0.1, (*photo.size[::-1], 3)), 0, 1)
    first = judge.score(result, photo)
    again = Judge(resolve_style_image("starry_night")).score(result, photo)
    assert first == again  # a fixed judge: bit-identical figures
    to_8bit_image(result).save(tmp_path / "r.png")
    reloaded = judge.score(Image.open(tmp_path / "r.png"), photo)
    assert reloaded == first  # float results are judged as their 8-bit file would be


def _write(folder, photos, transform) -> None:
    folder.mkdir()
    for p in photos:
        transform(Image.open(p).convert("RGB")).save(folder / f"{p.stem}.png")


@pytest.mark.slow  # about 25 s; keeps the default run under 10 minutes
def test_cli_compares_two_folders(tmp_path, capsys, vgg_weights_file) -> None:
    photos = PHOTOS[:2]
    _write(tmp_path / "same", photos, lambda im: im)
    _write(tmp_path / "gray", photos, lambda im: im.convert("L").convert("RGB"))
    out = tmp_path / "eval"
    args = ["eval", "--style", "starry_night", "--content", *map(str, photos), "-o", str(out)]
    assert main([*args, "--images", str(tmp_path / "same"), "--images", str(tmp_path / "gray"), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "gray / same:" in printed
    assert re.search(r"^gray: style_gram by layer: relu1_1 [\d.e-]+ .* relu5_1 [\d.e-]+$", printed, re.MULTILINE)
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["photo"]) for r in rows] == [
        ("same", photos[0].name),
        ("gray", photos[0].name),
        ("same", photos[1].name),
        ("gray", photos[1].name),
    ]
    assert all(float(r["content"]) == 0 for r in rows if r["method"] == "same")
    assert all(float(r["content"]) > 0 for r in rows if r["method"] == "gray")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["same"]["photos"] == 2 and summary["judge"]["size"] == 512
    gray = summary["summary"]["gray"]
    assert sum(gray["style_gram_layers"].values()) / 5 == pytest.approx(gray["style_gram"], rel=1e-9)
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.height > 2 * 192 and sheet.width > 4 * 100  # two rows; photo, style and two results


def test_cli_judges_a_model(tiny_onnx, tmp_path, capsys) -> None:
    out = tmp_path / "eval"
    code = main(["eval", "-s", "starry_night", "-c", str(PHOTOS[0]), "-m", str(tiny_onnx), "-o", str(out), "-q"])
    assert code == 0
    result = Image.open(out / tiny_onnx.stem / f"{PHOTOS[0].stem}.png")
    assert max(result.size) == 512  # stylized at the judge's size, kept for looking at
    summary = json.loads((out / "summary.json").read_text())["summary"][tiny_onnx.stem]
    assert summary["content"] > 0 and summary["style_gram"] > 0


def test_cli_takes_a_shipped_model_by_name(tmp_path) -> None:
    out = tmp_path / "eval"
    assert main(["eval", "-s", "udnie", "-c", str(PHOTOS[0]), "-m", "udnie", "-o", str(out), "-q"]) == 0
    assert "udnie" in json.loads((out / "summary.json").read_text())["summary"]


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], "nothing to judge"),
        (["--model", "no_such_style"], "not a shipped style"),
        (["--images", "{tmp}/missing"], "no such folder"),
        (["--images", "{tmp}/empty"], "no result for"),
        (["--images", "{tmp}/empty", "--label", "a", "--label", "b"], "--label given 2 times"),
        (["--images", "{tmp}/empty", "--limit", "0"], "--limit 0: expected at least 1 photo"),
        (["--images", "{tmp}/empty", "-o", "{tmp}/notes.txt"], "notes.txt is a file; eval writes its results into"),
        (["--images", "{tmp}/empty", "-o", "{tmp}/notes.txt/x"], "notes.txt is a file; eval writes its results into"),
        (["--images", "{tmp}/empty", "--limit", "-2"], "--limit -2: expected at least 1 photo"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, extra, words) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("my notes")
    extra = [e.format(tmp=tmp_path) for e in extra]
    code = main(["eval", "-s", "starry_night", "-c", str(PHOTOS[0]), "-o", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert (tmp_path / "notes.txt").read_text() == "my notes"
