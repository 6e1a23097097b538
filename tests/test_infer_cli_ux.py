"""What a user of ``fastnst infer`` expects: honest progress, no tiling cliff, reruns, metadata, pipes.

Every test runs the real command (in-process or as a subprocess) on real photos and a real model.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from fastnst.cli import main as cli_main

SAMPLES = REPO / "fastnst" / "assets" / "sample_photos"


def photos(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` real photos resized to ``size`` x ``size``, saved as PNG in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(SAMPLES.glob("*.jpg"))
    paths = []
    for i in range(count):
        with Image.open(names[i % len(names)]) as img:
            path = folder / f"p{i}.png"
            img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths


def run_cli(*args: str | Path) -> int:
    return cli_main(["infer", *(str(a) for a in args)])


def infer_command(model: Path, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fastnst", "infer", "--model", str(model), *(str(a) for a in args)]


# -- 1. progress -----------------------------------------------------------------------------------


def test_progress_in_a_pipe_is_plain_lines_counting_written_outputs(tiny_onnx, tmp_path):
    """Each line counts outputs already on disk (a batch of 4 is counted once written), no carriage return."""
    photos(tmp_path / "in", 6, 384)
    out = tmp_path / "out"
    cmd = infer_command(tiny_onnx, tmp_path / "in", "-o", out, "--batch-size", "4")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = []
    for line in proc.stderr:
        match = re.match(r"stylize: (\d+)/6 done, [\d.]+ s p\d\.png$", line.rstrip("\n"))
        assert match, line
        written = len(list(out.glob("*.png"))) if out.is_dir() else 0
        assert written >= int(match[1]), f"{line!r} printed with {written} outputs written"
        seen.append(int(match[1]))
    assert proc.wait() == 0
    assert seen == [1, 2, 3, 4, 5, 6]


def test_progress_on_a_terminal_is_a_tqdm_bar(tiny_onnx, tmp_path):
    photos(tmp_path / "in", 2, 64)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a terminal has
    cmd = infer_command(tiny_onnx, tmp_path / "in", "-o", tmp_path / "out")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait() == 0
    text = b"".join(chunks).decode()
    assert "\r" in text and re.search(r"stylize: 100%.*2/2", text), text


def test_quiet_writes_nothing_on_stderr(tiny_onnx, tmp_path):
    photos(tmp_path / "in", 2, 64)
    cmd = infer_command(tiny_onnx, tmp_path / "in", "-o", tmp_path / "out", "--quiet")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


@pytest.mark.parametrize("total", [8, 500])
def test_plain_lines_are_few_and_end_with_the_last(tmp_path, total):
    from fastnst.progress import Progress

    log = tmp_path / "log.txt"
    with log.open("w") as stream, Progress(total, "optimize", stream=stream) as bar:
        for _ in range(total):
            bar.update(note="loss 1.0")
    lines = log.read_text().splitlines()
    assert len(lines) == min(total, 20)
    assert lines[-1].startswith(f"optimize: {total}/{total} done, ") and lines[-1].endswith("loss 1.0")


# -- 2. no speed cliff above the tile size ------------------------------------------------------------


def test_an_image_that_fits_the_memory_budget_is_one_pass(tiny_onnx, tmp_path, capsys):
    """1080x1080 was cut into 4 tiles of 1024 px plus a statistics pass (5x the work); now it is one pass."""
    photos(tmp_path / "in", 1, 1080)
    args = ["--model", tiny_onnx, tmp_path / "in" / "p0.png", "-o", tmp_path / "o.png", "--json"]
    assert run_cli(*args) == 0
    record = json.loads(capsys.readouterr().out)["outputs"][0]
    assert (record["width"], record["height"], record["tiles"]) == (1080, 1080, 1)


def test_an_image_over_the_budget_is_tiled_in_passes_that_fit(tiny_onnx):
    from fastnst.runtime.stylizer import Stylizer

    budget = 700 * 700 * Stylizer(tiny_onnx, device="cpu").bytes_per_pixel
    st = Stylizer(tiny_onnx, device="cpu", memory_budget=int(budget))
    assert (st.tile_size + 2 * st.margin) ** 2 * st.bytes_per_pixel <= budget
    assert st.tile_size >= 4 * st.overlap
    image = np.asarray(Image.open(SAMPLES / "coffee.jpg").convert("RGB").resize((1000, 600)))
    assert st.stylize_arrays([image])[0].tiles == 2
    assert st.fits(600, 500) and not st.fits(600, 500, count=2)  # a batch that does not fit goes one by one
    results = st.stylize_arrays([image[:, :500], image[:, 500:]])
    assert [r.tiles for r in results] == [1, 1]


def test_an_explicit_tile_size_still_tiles_by_side(tiny_onnx):
    from fastnst.runtime.stylizer import Stylizer

    st = Stylizer(tiny_onnx, device="cpu", tile_size=512)
    assert st.fits(512, 300) and not st.fits(516, 300)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"fastnst.architecture": "light", "fastnst.width": "1.0"}, 210),
        ({"fastnst.architecture": "johnson", "fastnst.width": "0.5"}, 700),
        ({"fastnst.architecture": "johnson", "fastnst.width": "nan"}, 1400),
        ({"fastnst.architecture": "light", "fastnst.width": "1e300"}, 8 * 210),
        ({"fastnst.architecture": "something new", "fastnst.width": "wide"}, 1400),
        ({}, 1400),
    ],
)
def test_memory_per_pixel_comes_from_the_model_metadata(metadata, expected):
    from fastnst.runtime.stylizer import bytes_per_pixel

    assert bytes_per_pixel(metadata) == expected


# -- 3. reruns -------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (inode, mtime_ns) of every file: a rewrite or a new file shows."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_rerun_on_a_folder_skips_existing_and_its_own_outputs(tiny_onnx, tmp_path, capsys):
    from fastnst.runtime.stylizer import Stylizer

    style = Stylizer(tiny_onnx, device="cpu").style
    photos(tmp_path, 2, 96)
    assert run_cli("--model", tiny_onnx, tmp_path, "-q") == 0
    first = snapshot(tmp_path)
    assert sorted(first) == sorted(["p0.png", "p1.png", f"p0_{style}.png", f"p1_{style}.png"])
    capsys.readouterr()
    assert run_cli("--model", tiny_onnx, tmp_path, "-q", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert snapshot(tmp_path) == first  # no photo_wave_wave, nothing rewritten
    assert report["outputs"] == [] and report["errors"] == []
    reasons = {Path(s["input"]).name: s["reason"] for s in report["skipped"]}
    assert reasons[f"p0_{style}.png"] == f"an output of fastnst with style {style} (--again stylizes it)"
    assert reasons["p0.png"] == f"{tmp_path / f'p0_{style}.png'} exists (--overwrite replaces it)"
    assert len(reasons) == 4

    assert run_cli("--model", tiny_onnx, tmp_path, "-q", "--overwrite") == 0
    again = snapshot(tmp_path)
    assert sorted(again) == sorted(first)
    assert again[f"p0_{style}.png"] != first[f"p0_{style}.png"] and again["p0.png"] == first["p0.png"]

    # --again: a second pass over an output, asked for by name
    assert run_cli("--model", tiny_onnx, tmp_path / f"p0_{style}.png", "-q") == 0
    assert snapshot(tmp_path) == again
    assert run_cli("--model", tiny_onnx, tmp_path / f"p0_{style}.png", "-q", "--again") == 0
    assert sorted(snapshot(tmp_path)) == sorted([*first, f"p0_{style}_{style}.png"])


def test_a_photo_whose_name_ends_like_an_output_is_still_stylized(tiny_onnx, tmp_path):
    """The mark in the file decides, not the name: a user's surf_<style>.png is a photo."""
    from fastnst.runtime.stylizer import Stylizer

    style = Stylizer(tiny_onnx, device="cpu").style
    photos(tmp_path, 1, 64)[0].rename(tmp_path / f"surf_{style}.png")
    assert run_cli("--model", tiny_onnx, tmp_path, "-q") == 0
    assert (tmp_path / f"surf_{style}_{style}.png").is_file()


# -- 4. EXIF and ICC ---------------------------------------------------------------------------------------


def camera_jpeg(path: Path, icc: bytes) -> None:
    """A real photo as a camera writes it: stored sideways with EXIF orientation 6, make, date, a profile."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8769)[0x9003] = "2020:01:02 03:04:05"  # DateTimeOriginal
    with Image.open(SAMPLES / "coffee.jpg") as img:
        img.convert("RGB").resize((120, 80)).save(path, exif=exif.tobytes(), icc_profile=icc)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_outputs_keep_exif_with_orientation_1_and_the_icc_profile(tiny_onnx, tmp_path, ext):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    camera_jpeg(tmp_path / "cam.jpg", srgb)
    out = tmp_path / f"out{ext}"
    assert run_cli("--model", tiny_onnx, tmp_path / "cam.jpg", "-o", out, "-q") == 0
    with Image.open(out) as img:
        exif = img.getexif()
        assert img.size == (80, 120)  # the orientation is applied to the pixels...
        assert exif[0x0112] == 1  # ...so the tag says so
        assert exif[0x010F] == "Canon" and exif.get_ifd(0x8769)[0x9003] == "2020:01:02 03:04:05"
        assert img.info.get("icc_profile") == srgb


def test_a_profile_that_is_not_rgb_is_dropped(tiny_onnx, tmp_path):
    """A CMYK photo becomes RGB pixels: its CMYK profile would misdescribe them."""
    cmyk_header = bytes(16) + b"CMYK" + b"Lab " + bytes(104)
    with Image.open(SAMPLES / "coffee.jpg") as img:
        img.convert("CMYK").resize((64, 48)).save(tmp_path / "print.jpg", icc_profile=cmyk_header)
    assert run_cli("--model", tiny_onnx, tmp_path / "print.jpg", "-o", tmp_path / "out.jpg", "-q") == 0
    with Image.open(tmp_path / "out.jpg") as img:
        assert "icc_profile" not in img.info and img.getexif()[0x0112] == 1


# -- 5. standard input and output -----------------------------------------------------------------------------


def test_stdin_to_stdout_is_the_same_image_as_a_file_run(tiny_onnx, tmp_path):
    src = photos(tmp_path, 1, 96)[0]
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "file.png", "-q") == 0
    cmd = infer_command(tiny_onnx, "-", "-o", "-")
    done = subprocess.run(cmd, input=src.read_bytes(), capture_output=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"\x89PNG")  # the default format; the report went to stderr
    assert b"<stdin> -> <stdout> (96x96" in done.stderr
    (tmp_path / "piped.png").write_bytes(done.stdout)
    with Image.open(tmp_path / "piped.png") as piped, Image.open(tmp_path / "file.png") as file:
        np.testing.assert_array_equal(np.asarray(piped), np.asarray(file))


def test_a_file_to_stdout_in_the_format_asked(tiny_onnx, tmp_path):
    src = photos(tmp_path, 1, 64)[0]
    done = subprocess.run(
        infer_command(tiny_onnx, src, "-o", "-", "--format", "jpeg"), capture_output=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith(b"\xff\xd8"), done.stderr


def test_stdin_to_a_file(tiny_onnx, tmp_path):
    src = photos(tmp_path, 1, 64)[0]
    cmd = infer_command(tiny_onnx, "-", "-o", tmp_path / "out.jpg")
    done = subprocess.run(cmd, input=src.read_bytes(), capture_output=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out.jpg") as img:
        assert img.format == "JPEG" and img.size == (64, 64)


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (["-", "-o", "x.png"], b"not an image", 1, "error: <stdin>: not a readable image"),
        (["-", "{photo}", "-o", "-"], b"", 2, "standard input holds one image"),
        (["{photo}", "{photo2}", "-o", "-"], b"", 2, "standard output takes one image"),
        (["{photo}", "-o", "x.png", "--format", "png"], b"", 2, "--format png: only for -o -"),
    ],
)
def test_stream_misuse_is_one_line(tiny_onnx, tmp_path, args, stdin, status, message):
    first, second = photos(tmp_path, 2, 32)
    args = [a.format(photo=first, photo2=second) for a in args]
    done = subprocess.run(infer_command(tiny_onnx, *args), input=stdin, capture_output=True, cwd=tmp_path, check=False)
    lines = [line for line in done.stderr.decode().splitlines() if "W:onnxruntime" not in line]
    assert done.returncode == status and len(lines) == 1 and message in lines[0], done.stderr
    assert done.stdout == b""


def test_plain_lines_of_an_unknown_total_end_with_the_count(tmp_path):
    from fastnst.progress import Progress

    log = tmp_path / "log.txt"
    with log.open("w") as stream, Progress(None, "stylize clip.mkv", stream=stream) as bar:
        for _ in range(12):
            bar.update()
    assert log.read_text().splitlines()[-1].startswith("stylize clip.mkv: 12 done, ")


def test_an_output_under_a_file_is_refused_before_any_work(tiny_onnx, tmp_path, capsys):
    """-o notes.txt/x.jpg: one line naming the file in the way, before the model runs; notes.txt kept."""
    (photo,) = photos(tmp_path / "in", 1, 64)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert run_cli("--model", tiny_onnx, photo, "-o", notes / "x.jpg", "-q") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: -o {notes / 'x.jpg'}: {notes} is a file, not a folder"
    assert notes.read_text() == "my notes"
    # A folder that does not exist yet is made.
    assert run_cli("--model", tiny_onnx, photo, "-o", tmp_path / "new" / "sub" / "x.jpg", "-q") == 0
    assert (tmp_path / "new" / "sub" / "x.jpg").is_file()
