"""The fixed judge (fastnst.nn.evaluate) and `fastnst eval`: known values, stability, 8-bit reload, CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

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


def test_cli_says_which_network_a_style_name_is(tmp_path, capsys, vgg_weights_file) -> None:
    # fastnst infer uses udnie_hq for photos, so eval says that --model udnie is the real-time network.
    out = tmp_path / "eval"
    args = ["eval", "-s", "udnie", "-c", str(PHOTOS[0]), "-m", "udnie", "-m", "udnie_hq", "-o", str(out), "--no-sheet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    note = "note: --model udnie is the real-time network; fastnst infer stylizes photos with udnie_hq"
    assert note in err
    assert "--model udnie_hq is" not in err  # named in full: used as it is, no note
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["udnie"]["style_gram"] != summary["udnie_hq"]["style_gram"]  # two networks were judged


def test_cli_no_sheet_leaves_no_earlier_sheet_beside_new_scores(tmp_path) -> None:
    """Also: a shipped model is taken by its name (``-m udnie``)."""
    out = tmp_path / "eval"
    out.mkdir()  # an earlier judgement's files (test_cli_judges_a_model shows eval writes them)
    Image.new("RGB", (64, 32)).save(out / "contact_sheet.png")
    (out / "summary.json").write_text(json.dumps({"summary": {"earlier": {}}}))
    args = ["eval", "-s", "starry_night", "-c", str(PHOTOS[0]), "-o", str(out), "-q"]
    assert main([*args, "-m", "udnie", "--no-sheet"]) == 0
    assert not (out / "contact_sheet.png").exists()  # it showed the earlier results, not these
    assert list(json.loads((out / "summary.json").read_text())["summary"]) == ["udnie"]


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


def test_result_in_folder_matches_the_stem_exactly(tmp_path) -> None:
    from fastnst.nn.eval_cli import EvalError, result_in_folder

    for name in ["amber.old.png", "amber.png", "shot[1].png", "sub.png"]:
        if name == "sub.png":
            (tmp_path / name).mkdir()  # a folder with an image's name is not a result
        else:
            Image.new("RGB", (4, 4)).save(tmp_path / name)
    assert result_in_folder(tmp_path, Path("photos/amber.jpg")) == tmp_path / "amber.png"
    assert result_in_folder(tmp_path, Path("photos/shot[1].jpg")) == tmp_path / "shot[1].png"  # no glob
    with pytest.raises(EvalError, match=r"no result for sub\.jpg"):
        result_in_folder(tmp_path, Path("photos/sub.jpg"))
    Image.new("RGB", (4, 4)).save(tmp_path / "amber.jpg")
    with pytest.raises(EvalError, match=r"2 results for amber\.jpg \(amber\.jpg, amber\.png\)"):
        result_in_folder(tmp_path, Path("photos/amber.jpg"))


@pytest.mark.parametrize("case", ["label is a path", "over the photo", "over the --images results", "file in the way"])
def test_cli_never_writes_over_its_inputs(tmp_path, capsys, tiny_onnx, case) -> None:
    photos = tmp_path / "pp"
    _write(photos, PHOTOS[:1], lambda im: im.resize((64, 48)))
    before = tmp_path / "o" / "before"
    before.parent.mkdir()
    _write(before, PHOTOS[:1], lambda im: im.resize((64, 48)))
    out, extra, words = tmp_path / "o", ["--model", str(tiny_onnx)], ""
    if case == "label is a path":
        extra += ["--label", "../escaped"]
        words = "--label '../escaped': a name, without / or a leading dot"
    elif case == "over the photo":
        out, extra = tmp_path, [*extra, "--label", "pp"]
        words = f"-o {tmp_path}: pp's results would be written over the input {photos / (PHOTOS[0].stem + '.png')}"
    elif case == "over the --images results":
        extra = ["--images", str(before), *extra, "--label", "old", "--label", "before"]
        words = f"-o {out}: before's results would be written over the input {before}"
    else:
        (out / "tiny").write_text("my notes")
        extra += ["--label", "tiny"]
        words = f"-o {out}: {out / 'tiny'} is a file; tiny's results go into the folder {out / 'tiny'}"
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = main(["eval", "-s", "starry_night", "-c", str(photos), "-o", str(out), "-q", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: {words}") and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files  # nothing written or changed


def test_cli_checks_every_images_result_before_any_work(tmp_path, capsys, tiny_onnx) -> None:
    photos = PHOTOS[:2]
    _write(tmp_path / "res", photos[:1], lambda im: im)  # the second photo's result is missing
    out = tmp_path / "o"
    args = ["eval", "-s", "starry_night", "-c", *map(str, photos), "-o", str(out), "-m", str(tiny_onnx)]
    assert main([*args, "--images", str(tmp_path / "res")]) == 2
    assert f"no result for {photos[1].name}" in capsys.readouterr().err
    assert not out.exists()  # the model ran on nothing
