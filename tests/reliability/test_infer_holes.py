"""Holes in `fastnst infer` found by an adversarial pass, each closed and tested with real files and processes.

The models are real ONNX files made from a shipped model with the ``onnx`` package: a style name that is a
path, a newer format, NaN weights, a graph that onnxruntime fails on for some input shapes. The runs are
real ``python -m fastnst infer`` processes (and real signals, FIFOs and symbolic-link loops).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO, cli
from onnx import helper, numpy_helper
from PIL import Image

from fastnst.photos import sample_photos_dir
from fastnst.runtime.stylizer import ModelError, Stylizer

SHIPPED = REPO / "fastnst" / "assets" / "models" / "starry_night.onnx"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# -- helpers ----------------------------------------------------------------------------------


def with_metadata(path: Path, **values: str) -> Path:
    """A copy of the shipped model with ``fastnst.<key>`` metadata set to ``values``."""
    model = onnx.load(str(SHIPPED))
    props = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        name = f"fastnst.{key}"
        if name in props:
            props[name].value = value
        else:
            model.metadata_props.append(onnx.StringStringEntryProto(key=name, value=value))
    onnx.save(model, str(path))
    return path


def nan_model(path: Path) -> Path:
    """The shipped model with one weight of its first convolution set to NaN."""
    model = onnx.load(str(SHIPPED))
    weight = next(i for i in model.graph.initializer if i.name.endswith(".weight") and len(i.dims) == 4)
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(path))
    return path


def square_only_model(path: Path) -> Path:
    """The shipped model plus ``stylized + (T(stylized) - T(stylized))``, T swapping H and W.

    The output is unchanged for square inputs; for any other shape onnxruntime fails at run time
    (the Add cannot broadcast H against W).
    """
    model = onnx.load(str(SHIPPED))
    node = next(n for n in model.graph.node if "stylized" in n.output)
    node.output[list(node.output).index("stylized")] = "stylized_raw"
    model.graph.node.extend(
        [
            helper.make_node("Transpose", ["stylized_raw"], ["swapped"], perm=[0, 1, 3, 2]),
            helper.make_node("Sub", ["swapped", "swapped"], ["zero"]),
            helper.make_node("Add", ["stylized_raw", "zero"], ["stylized"]),
        ]
    )
    onnx.save(model, str(path))
    return path


def photo(path: Path, width: int = 64, height: int = 48, name: str = "coffee.jpg") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(sample_photos_dir() / name) as img:
        img.convert("RGB").resize((width, height), Image.Resampling.BICUBIC).save(path)
    return path


def infer(*args: object, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None):
    """``python -m fastnst infer ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "fastnst", "infer", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (files, folders, links), relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- 1. a style name from the model is data, not a path -----------------------------------------


@pytest.mark.parametrize("style", ["/../../../../{tmp}/escaped/holiday", "../../../escape", "..", "...", "a/b"])
def test_style_name_cannot_put_outputs_outside_the_output_folder(tmp_path, style):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "escaped").mkdir()  # where the first name points: it exists, so a write there would succeed
    model = with_metadata(work / "evil.onnx", style_name=style.format(tmp=str(tmp_path).lstrip("/")))
    photo(work / "photo.jpg")
    before = tree(tmp_path)
    proc = infer("photo.jpg", "--model", "evil.onnx", "-o", "out/", "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    written = tree(work / "out")
    assert len(written) == 1, written
    name = written[0]
    assert SAFE_NAME.match(name) and name.startswith("photo_") and name.endswith(".jpg"), name
    assert sorted(set(tree(tmp_path)) - set(before)) == ["work/out", f"work/out/{name}"]
    with Image.open(work / "out" / name) as img:
        assert img.size == (64, 48)
    # The API gives the same safe name.
    assert SAFE_NAME.match(Stylizer(model, device="cpu").style)


def test_style_name_without_o_stays_next_to_the_input(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    with_metadata(work / "evil.onnx", style_name="../../../escape")
    photo(work / "pics" / "photo.png")
    proc = infer("pics/photo.png", "--model", "evil.onnx", "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    (name,) = [p.name for p in (work / "pics").iterdir() if p.name != "photo.png"]
    assert SAFE_NAME.match(name) and name.startswith("photo_"), name
    assert tree(tmp_path) == sorted(["work", "work/evil.onnx", "work/pics", "work/pics/photo.png", f"work/pics/{name}"])


def test_empty_style_name_falls_back_to_the_model_file_name(tmp_path):
    model = with_metadata(tmp_path / "my_model.onnx", style_name="///")
    assert Stylizer(model, device="cpu").style == "my_model"


# -- 2. the model format is checked --------------------------------------------------------------


def test_a_newer_model_format_is_refused_naming_both_versions(tmp_path):
    model = with_metadata(tmp_path / "future.onnx", format="3")
    with pytest.raises(ModelError) as info:
        Stylizer(model, device="cpu")
    message = str(info.value)
    assert "\n" not in message and str(model) in message
    assert "format 3" in message and "up to 2" in message and "upgrade" in message
    photo(tmp_path / "photo.png")
    proc = infer("photo.png", "--model", model, "-o", "out.png", cwd=tmp_path)
    assert proc.returncode == 2
    assert len(nonblank(proc.stderr)) == 1 and "format 3" in proc.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("value", ["1.5", "abc", "", "0", "-1"])
def test_a_format_that_is_not_a_known_whole_number_is_refused(tmp_path, value):
    model = with_metadata(tmp_path / "odd.onnx", format=value)
    with pytest.raises(ModelError, match="format") as info:
        Stylizer(model, device="cpu")
    assert "\n" not in str(info.value) and str(model) in str(info.value)


def test_the_shipped_format_is_read(tmp_path):
    assert Stylizer(SHIPPED, device="cpu").metadata["fastnst.format"] == "1"


def test_a_fresh_export_is_read(tiny_onnx):
    """What the exporter writes today is a format the reader accepts."""
    from fastnst.runtime.onnx_contract import FORMAT_KEY, format_problem

    stylizer = Stylizer(tiny_onnx, device="cpu")
    assert format_problem(stylizer.metadata[FORMAT_KEY]) is None


# -- 3. an output's extension says what it holds --------------------------------------------------


def test_an_image_is_never_written_over_a_file_of_another_kind(tmp_path):
    photo(tmp_path / "photo.jpg")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    rc, _, err = cli("infer", tmp_path / "photo.jpg", "--model", SHIPPED, "-o", notes, "-q")
    assert rc == 2 and len(nonblank(err)) == 1, err
    assert "notes.txt" in err and ".png" in err
    assert notes.read_text() == "my notes\n"
    rc, _, err = cli("infer", tmp_path / "photo.jpg", "--model", SHIPPED, "-o", tmp_path / "x.mp4", "-q")
    assert rc == 2 and len(nonblank(err)) == 1 and "x.mp4" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photo.jpg"]


def test_a_video_is_never_written_under_an_image_name(tmp_path):
    av = pytest.importorskip("av")
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=8, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    rc, _, err = cli("infer", clip, "--model", SHIPPED, "-o", tmp_path / "still.png", "-q")
    assert rc == 2 and len(nonblank(err)) == 1 and "still.png" in err and ".mp4" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


# -- 5. interrupted runs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_lists_what_was_written_and_leaves_no_temporary_file(tmp_path, sig, status):
    src, out = tmp_path / "in", tmp_path / "out"
    names = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
    total = 60
    for i in range(total):
        photo(src / f"{i:03d}.jpg", 384, 288, names[i % 4])
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastnst", "infer", src, "--model", SHIPPED, "-o", out, "--batch-size", "1", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.005)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    listed = [line.split(" -> ")[1].split(" (")[0] for line in stdout.splitlines() if " -> " in line]
    files = sorted(str(p) for p in out.iterdir())
    assert sorted(listed) == files  # what is listed is what is there: no more, no less
    assert 1 <= len(listed) < total
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    (line,) = [line for line in nonblank(stderr) if "interrupted" in line]
    assert signal.Signals(sig).name in line
    assert f"{len(listed)} of {total}" in line and f"{total - len(listed)} not written" in line


def test_an_interrupt_that_a_cleanup_error_replaced_still_stops_the_run(tmp_path, monkeypatch):
    # Seen in CI: a SIGINT inside os.fdopen closed the file twice, and the EBADF of the second close
    # replaced the KeyboardInterrupt, so one input "failed" and the run went on to the end.
    from fastnst.runtime import infer_cli

    for i in range(3):
        photo(tmp_path / "in" / f"{i}.png")
    real_open, calls = infer_cli.open_rgb, []

    def open_rgb(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            try:
                raise infer_cli.Interrupted(signal.SIGINT)
            except KeyboardInterrupt:
                raise OSError(9, "Bad file descriptor") from None  # from None still keeps the context
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(infer_cli, "open_rgb", open_rgb)
    rc, _, err = cli("infer", tmp_path / "in", "--model", SHIPPED, "-o", tmp_path / "out", "--batch-size", "1", "-q")
    assert rc == 130, err
    assert not error_lines(err), err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["0_starry_night.png"]
    (line,) = [line for line in nonblank(err) if "interrupted" in line]
    assert "SIGINT" in line and "1 of 3" in line, line


# -- 6. non-finite outputs ----------------------------------------------------------------------


def test_a_model_with_nan_weights_is_an_error_not_a_black_image(tmp_path):
    model = nan_model(tmp_path / "broken.onnx")
    with pytest.raises(ModelError) as info:
        Stylizer(model, device="cpu")(np.zeros((40, 40, 3), np.uint8))
    assert "\n" not in str(info.value) and str(model) in str(info.value) and "NaN" in str(info.value)
    photo(tmp_path / "in" / "a.png", 64, 48)
    photo(tmp_path / "in" / "b.png", 64, 48, "rocket.jpg")
    proc = infer("in", "--model", model, "-o", "out", "-q", cwd=tmp_path)
    assert proc.returncode == 1
    errors = error_lines(proc.stderr)
    assert len(errors) == 2 and all("broken.onnx" in e and "NaN" in e for e in errors), proc.stderr
    assert {"a.png", "b.png"} == {Path(e.split(":")[1].strip()).name for e in errors}
    assert not (tmp_path / "out").exists() or tree(tmp_path / "out") == []


def test_eval_does_not_score_a_model_with_nan_output(tmp_path, vgg_weights_file):
    model = nan_model(tmp_path / "broken.onnx")
    photo(tmp_path / "photos" / "a.png", 64, 48)
    rc, out, err = cli("eval", "--style", "starry_night", "--content", tmp_path / "photos", "--model", model,
                       "-o", tmp_path / "eval", "-q")  # fmt: skip
    assert rc == 2, out + err
    assert len(nonblank(err)) == 1 and "broken.onnx" in err and "NaN" in err, err
    assert not (tmp_path / "eval" / "scores.csv").exists() and not (tmp_path / "eval" / "summary.json").exists()


# -- 7. settings that make no sense ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-size", "-5"), ("--max-size", "0"), ("--tile-size", "0"), ("--tile-size", "-3"),
                        ("--tile-size", "100")],
)  # fmt: skip
def test_nonsense_sizes_are_refused_in_one_line(tmp_path, flag, value):
    photo(tmp_path / "photo.png")
    rc, out, err = cli("infer", tmp_path / "photo.png", "--model", SHIPPED, "-o", tmp_path / "out.png", flag, value)
    assert rc == 2, (out, err)
    (line,) = nonblank(err)
    assert line.startswith("error:") and f"{flag} {value}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


# -- 8. one bad file does not stop the batch -------------------------------------------------------


def test_loops_fifos_and_runtime_failures_are_each_one_failed_input(tmp_path):
    src = tmp_path / "in"
    photo(src / "good1.png", 64, 64)
    photo(src / "good2.png", 48, 48, "rocket.jpg")
    photo(src / "wide.png", 64, 40)  # onnxruntime fails on it with the square-only model
    (src / "loop.jpg").symlink_to("loop.jpg")
    os.mkfifo(src / "pipe.jpg")
    model = square_only_model(tmp_path / "square_only.onnx")
    proc = infer("in", "--model", model, "-o", "out", "-q", "--json", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 3, proc.stderr
    assert all(len(nonblank(e)) == 1 for e in errors)
    failed = {Path(e["input"]).name for e in json.loads(proc.stdout)["errors"]}
    assert failed == {"loop.jpg", "pipe.jpg", "wide.png"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good1_starry_night.png", "good2_starry_night.png"]
    assert "onnxruntime" in next(e for e in errors if "wide.png" in e)
    # Nothing but the error lines and the count on stderr (onnxruntime logs nothing of its own).
    assert len(nonblank(proc.stderr)) == 4, proc.stderr


def test_loops_and_fifos_named_on_the_command_line(tmp_path):
    photo(tmp_path / "good.png")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    os.mkfifo(tmp_path / "pipe.png")
    os.mkfifo(tmp_path / "pipe.mp4")
    proc = infer("good.png", "loop.jpg", "pipe.png", "pipe.mp4", "--model", SHIPPED, "-o", "out", "-q",
                 cwd=tmp_path, timeout=60)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 3 and {"loop.jpg", "pipe.png", "pipe.mp4"} == {e.split(":")[1].strip() for e in errors}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_starry_night.png"]


# -- 9. names that differ only by case ------------------------------------------------------------


def test_names_differing_by_case_get_distinct_outputs(tmp_path):
    src = tmp_path / "in"
    photo(src / "a.jpg", 40, 32, "coffee.jpg")
    photo(src / "a.JPG", 40, 32, "rocket.jpg")
    photo(src / "A.png", 40, 32, "chelsea.jpg")
    photo(src / "a.png", 40, 32, "astronaut.jpg")
    runs = []
    for out in ("out1", "out2"):
        proc = infer("in", "--model", SHIPPED, "-o", out, "-q", "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        runs.append({Path(r["input"]).name: Path(r["output"]).name for r in report["outputs"]})
    assert runs[0] == runs[1]  # deterministic
    names = list(runs[0].values())
    assert len(names) == 4 and len({n.casefold() for n in names}) == 4, names  # distinct on any file system
    assert sorted(p.name for p in (tmp_path / "out1").iterdir()) == sorted(names)
    stylizer = Stylizer(SHIPPED, device="cpu")
    expected = {name: np.asarray(stylizer(Image.open(src / name).convert("RGB")), np.int16) for name in runs[0]}
    for src_name, out_name in runs[0].items():
        # Each output is the stylized version of its own input (up to JPEG), not of a namesake's.
        with Image.open(tmp_path / "out1" / out_name) as img:
            got = np.asarray(img.convert("RGB"), np.int16)
        distance = {name: np.abs(got - e).mean() for name, e in expected.items()}
        assert min(distance, key=distance.get) == src_name, (out_name, distance)


@pytest.mark.parametrize("strength", ["0.5", None, True, [0.5]])
def test_a_strength_that_is_not_a_number_is_named_in_one_line(strength):
    photo = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(TypeError, match=r"^strength=.*expected a number from 0 to 1, not \w+$"):
        Stylizer("wave", device="cpu")(photo, strength=strength)


@pytest.mark.parametrize("strength", [1.5, -0.1, float("nan")])
def test_a_strength_outside_0_to_1_is_refused(strength):
    with pytest.raises(ValueError, match=r"^strength=.*expected a value from 0 to 1$"):
        Stylizer("wave", device="cpu")(np.zeros((8, 8, 3), np.float32), strength=strength)


def test_a_numpy_strength_is_a_number():
    photo = np.full((8, 8, 3), 0.5, np.float32)
    stylizer = Stylizer("wave", device="cpu")
    expected = stylizer(photo, strength=0.5)
    np.testing.assert_array_equal(stylizer(photo, strength=np.float32(0.5)), expected)
    np.testing.assert_array_equal(stylizer(photo, strength=np.array(0.5)), expected)
