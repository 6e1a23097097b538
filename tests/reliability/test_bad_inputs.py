"""Bad input: a folder of corrupt, odd and huge images, for training and for `fastnst infer`.

Unusable files are skipped and reported (training: skipped_images.txt; inference: one line per
file, exit 1); usable but unusual ones (grayscale, CMYK, palette, RGBA, 16-bit, EXIF-rotated,
tiny) are used. A decompression bomb is refused before decoding, with a way to allow it.
Inputs are never modified.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli
from PIL import Image

from fastnst.photos import find_images, sample_photos_dir
from fastnst.runtime import imageio
from fastnst.runtime.imageio import ImageError, open_rgb
from fastnst.runtime.stylizer import Stylizer

GOOD = ("coffee.jpg", "rocket.jpg", "chelsea.jpg")
UNUSABLE = ("zero.jpg", "truncated.jpg", "random.png", "text.jpg", "bomb.png")
ODD = ("gray.png", "cmyk.jpg", "palette.png", "rgba.png", "gray16.png", "exif6.jpg", "tiny.png")
EXIF_STORED = (64, 40)  # (width, height) of the stored pixels; orientation 6 shows them as 40x64
BOMB_SIDE = 30_000


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A well-formed PNG header that claims ``width x height`` RGB pixels, with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def gradient16() -> np.ndarray:
    """A 16-bit horizontal-and-vertical gradient over the whole 0..65535 range."""
    return np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)


def make_zoo(folder: Path) -> Path:
    """Write the zoo of good, odd and unusable images into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in GOOD:
        (folder / name).write_bytes((sample_photos_dir() / name).read_bytes())
    # Unusable.
    (folder / "zero.jpg").write_bytes(b"")
    good = (sample_photos_dir() / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "random.png").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    (folder / "text.jpg").write_text("this is a text file, not a JPEG\n" * 20)
    (folder / "bomb.png").write_bytes(bomb_png(BOMB_SIDE, BOMB_SIDE))
    # Usable, though unusual.
    rng = np.random.default_rng(1)
    photo = Image.open(sample_photos_dir() / "astronaut.jpg").convert("RGB").resize((60, 44))
    photo.convert("L").save(folder / "gray.png")
    photo.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (44, 60), np.uint8), "L"))
    rgba.save(folder / "rgba.png")
    Image.fromarray(gradient16()).save(folder / "gray16.png")  # mode I;16
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo.resize(EXIF_STORED).save(folder / "exif6.jpg", exif=exif, quality=95)
    Image.fromarray(rng.integers(0, 256, (7, 5, 3), np.uint8), "RGB").save(folder / "tiny.png")
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def cli_subprocess(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastnst", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def states_limit(message: str, limit: int) -> bool:
    """Whether ``message`` says what the pixel limit is (exactly, with thousands separators, or in megapixels)."""
    return "limit" in message and any(
        form in message for form in (str(limit), f"{limit:,}", f"{limit / 1e6:.0f}-megapixel", f"{limit / 1e6:g} mega")
    )


def error_lines(text: str) -> list[str]:
    """The ``error: ...`` lines of stderr: one per failed input (a count of failures may follow)."""
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture(autouse=True)
def _restore_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--max-image-pixels` sets a process-wide limit: each test starts from, and restores, the default."""
    monkeypatch.setattr(imageio, "_max_pixels", None)
    monkeypatch.setattr(imageio, "_configured", False)
    monkeypatch.delenv(imageio.MAX_PIXELS_ENV, raising=False)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_zoo(tmp_path_factory.mktemp("zoo") / "photos")


@pytest.fixture(scope="module")
def zoo_infer(zoo: Path, tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`fastnst infer <zoo> -o <out> -q --json`, run once for the tests below."""
    out = tmp_path_factory.mktemp("zoo_out")
    before = digest(zoo)
    rc, stdout, stderr = cli("infer", zoo, "--model", tiny_onnx, "-o", out, "-q", "--json")
    return {"rc": rc, "report": json.loads(stdout), "stderr": stderr, "out": out, "before": before}


# -- the zoo itself ---------------------------------------------------------------


def test_zoo_is_what_it_claims(zoo, monkeypatch):
    """Guard the test data: each file really is the kind of image (or non-image) it stands for."""
    assert {p.name for p in find_images(zoo)} == {*GOOD, *UNUSABLE, *ODD}
    modes = {name: Image.open(zoo / name).mode for name in ("gray.png", "cmyk.jpg", "palette.png", "rgba.png")}
    assert modes == {"gray.png": "L", "cmyk.jpg": "CMYK", "palette.png": "P", "rgba.png": "RGBA"}
    with Image.open(zoo / "gray16.png") as im:
        assert im.mode == "I;16"
        assert np.asarray(im).max() > 60000
    with Image.open(zoo / "exif6.jpg") as im:
        assert im.size == EXIF_STORED and im.getexif()[0x0112] == 6
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own guard would refuse to open it
    with Image.open(zoo / "bomb.png") as im:  # opens (header only); never decoded here
        assert im.size == (BOMB_SIDE, BOMB_SIDE)
    assert (zoo / "zero.jpg").stat().st_size == 0


def test_open_rgb_converts_every_usable_kind_and_names_each_unusable_file(zoo):
    for name in (*GOOD, *ODD):
        img = open_rgb(zoo / name)
        assert img.mode == "RGB", name
    assert open_rgb(zoo / "exif6.jpg").size == EXIF_STORED[::-1]  # orientation honoured
    assert open_rgb(zoo / "tiny.png").size == (5, 7)
    # 16-bit values are scaled to 8 bits, not clipped: the gradient spans black to white through grays.
    gray16 = np.asarray(open_rgb(zoo / "gray16.png")).astype(float)
    expected = gradient16() / 257.0
    assert np.abs(gray16[..., 0] - expected).max() <= 1.0
    assert 100 < gray16.mean() < 155 and (gray16 == 255).mean() < 0.01
    for name in UNUSABLE:
        with pytest.raises(ImageError) as e:
            open_rgb(zoo / name)
        message = str(e.value)
        assert message.startswith(str(zoo / name)) and "\n" not in message, message


# -- training ---------------------------------------------------------------------


def test_training_skips_counts_and_reports_exactly_the_unusable_files(run_training, zoo, tmp_path):
    before = digest(zoo)
    files = len(find_images(zoo))
    steps = math.ceil(files / 4)  # batch size 4: a full pass over the shuffled files (a permutation)
    run = run_training(
        tmp_path / "run",
        [
            f"data.root={zoo}",
            "data.num_workers=0",
            "data.batch_size=4",
            f"trainer.max_steps={steps}",
            "trainer.val_every_n_steps=1000",
            f"trainer.checkpoint_every_n_steps={steps}",
        ],
    )
    assert torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == steps
    lines = (run / "skipped_images.txt").read_text().splitlines()
    by_name: dict[str, list[str]] = {}
    for line in lines:
        path, _, reason = line.partition(": ")
        assert reason.strip(), f"no reason given: {line}"
        by_name.setdefault(Path(path).name, []).append(line)
    assert sorted(by_name) == sorted(UNUSABLE), lines
    assert all(len(v) == 1 for v in by_name.values()), lines  # each file reported once
    bomb = by_name["bomb.png"][0]
    assert f"{BOMB_SIDE}x{BOMB_SIDE}" in bomb and states_limit(bomb, imageio.DEFAULT_MAX_PIXELS), bomb
    assert f"{imageio.MAX_PIXELS_ENV}=0" in bomb  # how to allow it (train.py reads the environment)
    assert digest(zoo) == before


# -- inference on the zoo ---------------------------------------------------------


def test_infer_goes_on_past_bad_files_reports_each_once_and_exits_1(zoo_infer, zoo):
    assert zoo_infer["rc"] == 1
    report = zoo_infer["report"]
    errors = report["errors"]
    assert sorted(Path(e["input"]).name for e in errors) == sorted(UNUSABLE)
    for e in errors:
        assert "\n" not in e["error"] and Path(e["input"]).name in e["error"], e
    bomb = next(e["error"] for e in errors if e["input"].endswith("bomb.png"))
    assert states_limit(bomb, imageio.DEFAULT_MAX_PIXELS) and "--max-image-pixels 0" in bomb, bomb
    # Every usable file was stylized, whatever its mode.
    outputs = {Path(r["input"]).name: r for r in report["outputs"]}
    assert sorted(outputs) == sorted((*GOOD, *ODD))
    for name, record in outputs.items():
        out = Path(record["output"])
        assert out.is_file() and out.parent == zoo_infer["out"], name
        with Image.open(out) as im:
            assert im.mode == "RGB" and im.size == (record["width"], record["height"]), name
    # ... and on stderr, one line per failed file.
    stderr = zoo_infer["stderr"]
    assert "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == len(UNUSABLE), stderr
    for name in UNUSABLE:
        assert sum(str(zoo / name) in line for line in lines) == 1, (name, stderr)


def test_infer_honours_exif_orientation_and_keeps_tiny_images(zoo_infer):
    outputs = {Path(r["input"]).name: Path(r["output"]) for r in zoo_infer["report"]["outputs"]}
    with Image.open(outputs["exif6.jpg"]) as im:
        assert im.size == EXIF_STORED[::-1]  # 40x64: width and height swapped relative to the stored pixels
    with Image.open(outputs["tiny.png"]) as im:
        assert im.size == (5, 7)
    with Image.open(outputs["cmyk.jpg"]) as im, Image.open(outputs["gray.png"]) as g:
        assert im.size == g.size == (60, 44)


def test_infer_scales_16_bit_images_rather_than_clipping_them(zoo_infer, tiny_onnx):
    outputs = {Path(r["input"]).name: Path(r["output"]) for r in zoo_infer["report"]["outputs"]}
    stylized = np.asarray(Image.open(outputs["gray16.png"]).convert("RGB")).astype(float)
    stylizer = Stylizer(tiny_onnx, device="cpu")
    white = np.asarray(stylizer(np.full((48, 64, 3), 255, np.uint8))).astype(float)
    clipped = np.asarray(stylizer(np.asarray(Image.fromarray(gradient16()).convert("RGB")))).astype(float)
    assert np.abs(stylized - white).mean() > 5  # not the output of a blown-out white image
    assert np.abs(stylized - clipped).mean() > 5  # nor of Pillow's clipping conversion


def test_infer_leaves_the_zoo_untouched(zoo_infer, zoo):
    assert digest(zoo) == zoo_infer["before"]


# -- the decompression-bomb guard -------------------------------------------------


@pytest.fixture
def moderate(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "moderate.jpg"
    path.parent.mkdir()
    Image.open(sample_photos_dir() / "coffee.jpg").convert("RGB").resize((300, 200)).save(path)
    return path


def test_pixel_limit_refuses_with_the_way_to_allow_it_and_zero_allows(moderate, tiny_onnx, tmp_path):
    rc, _, err = cli(
        "infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "a.jpg", "-q", "--max-image-pixels", 10000
    )
    assert rc == 1
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert str(moderate) in lines[0] and "300x200" in lines[0] and "limit" in lines[0]
    assert "--max-image-pixels 0" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "a.jpg").exists()

    rc, _, err = cli("infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "b.jpg", "-q", "--max-image-pixels", 0)
    assert rc == 0, err
    with Image.open(tmp_path / "b.jpg") as im:
        assert im.size == (300, 200)


def test_pixel_limit_message_states_the_limit_that_applied(moderate, tiny_onnx, tmp_path):
    # A limit under a megapixel must not read as "the 0-megapixel limit" (0 means no limit).
    rc, _, err = cli(
        "infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "a.jpg", "-q", "--max-image-pixels", 10000
    )
    assert rc == 1
    assert states_limit(err, 10000) and "0-megapixel" not in err, err


def test_pixel_limit_from_the_environment(moderate, tiny_onnx, tmp_path):
    result = cli_subprocess(
        "infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "a.jpg", "-q", env={imageio.MAX_PIXELS_ENV: "10000"}
    )
    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(moderate) in lines[0] and "limit" in lines[0] and f"{imageio.MAX_PIXELS_ENV}=0" in lines[0]
    assert not (tmp_path / "a.jpg").exists()


def test_invalid_pixel_limit_in_the_environment_is_a_one_line_error(moderate, tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "lots")
    rc, _, err = cli("infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "a.jpg", "-q")
    assert rc != 0
    lines = error_lines(err)
    assert len(lines) == 1 and f"{imageio.MAX_PIXELS_ENV}=lots" in lines[0] and "whole number" in lines[0], err
    assert "Traceback" not in err and not (tmp_path / "a.jpg").exists()


def test_invalid_pixel_limit_in_the_environment_is_a_settings_error(tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "lots")
    photos = [sample_photos_dir() / name for name in GOOD]
    rc, _, err = cli("infer", *photos, "--model", tiny_onnx, "-o", tmp_path, "-q")
    assert rc == 2
    assert err.count(f"{imageio.MAX_PIXELS_ENV}=lots") == 1, err


def test_negative_pixel_limit_is_not_a_limit_that_refuses_everything(moderate, tiny_onnx, tmp_path):
    rc, _, err = cli("infer", moderate, "--model", tiny_onnx, "-o", tmp_path / "a.jpg", "-q", "--max-image-pixels", -1)
    refused_as_setting = rc == 2 and "--max-image-pixels" in err and len(error_lines(err)) == 1
    assert refused_as_setting or (rc == 0 and (tmp_path / "a.jpg").is_file()), err


# -- inputs are never overwritten -------------------------------------------------


def test_output_equal_to_the_input_is_refused(tiny_onnx, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes((sample_photos_dir() / "coffee.jpg").read_bytes())
    before = digest(tmp_path)
    rc, _, err = cli("infer", photo, "--model", tiny_onnx, "-o", photo, "-q")
    assert rc == 2  # refused before any work, as a settings error
    lines = error_lines(err)
    assert len(lines) == 1 and str(photo) in lines[0] and "overwrite" in lines[0], err
    assert digest(tmp_path) == before  # no new file, input bytes unchanged


def test_output_equal_to_one_of_several_inputs_is_refused(tiny_onnx, tmp_path):
    # With several inputs -o is a folder; a file of that name cannot be one, so nothing is written.
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes((sample_photos_dir() / "coffee.jpg").read_bytes())
    before = digest(tmp_path)
    rc, _, err = cli(
        "infer", tmp_path / "a.jpg", tmp_path / "b.jpg", "--model", tiny_onnx, "-o", tmp_path / "b.jpg", "-q"
    )
    assert rc in (1, 2)
    lines = error_lines(err)
    assert lines and all(str(tmp_path / "b.jpg") in line for line in lines), err
    assert digest(tmp_path) == before  # no file written, b.jpg unchanged


def test_without_o_outputs_go_next_to_the_inputs_under_new_names(tiny_onnx, tmp_path):
    photos = make_zoo(tmp_path / "zoo")
    before = digest(photos)
    rc, stdout, _ = cli("infer", photos, "--model", tiny_onnx, "-q", "--json")
    assert rc == 1
    style = json.loads(stdout)["style"]
    after = digest(photos)
    assert {k: after[k] for k in before} == before  # every input byte-identical
    new = set(after) - set(before)
    assert new == {f"{Path(n).stem}_{style}{Path(n).suffix}" for n in (*GOOD, *ODD)}


def test_an_output_never_overwrites_another_input(tiny_onnx, tmp_path):
    style = Stylizer(tiny_onnx, device="cpu").style
    (tmp_path / "photo.jpg").write_bytes((sample_photos_dir() / "coffee.jpg").read_bytes())
    (tmp_path / f"photo_{style}.jpg").write_bytes((sample_photos_dir() / "rocket.jpg").read_bytes())
    before = digest(tmp_path)
    cli("infer", tmp_path, "--model", tiny_onnx, "-q")
    after = digest(tmp_path)
    assert {k: after[k] for k in before} == before
