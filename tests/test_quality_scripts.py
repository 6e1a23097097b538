"""scripts/make_gallery.py and scripts/compare_optimize.py run end to end at toy sizes on the shipped models.

The figures they produce for the docs come from full-size runs (docs/quality.md).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from fastnst.photos import sample_photos_dir
from fastnst.styles import shipped_models

MODELS = sorted(shipped_models().values())


def run_script(name: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_gallery_of_the_shipped_styles_uses_the_networks_infer_uses_for_photos():
    import importlib.util

    from fastnst.styles import quality_model

    spec = importlib.util.spec_from_file_location("make_gallery", REPO / "scripts" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    networks = module.photo_networks()
    assert len(networks) == len(shipped_models())
    for name, path in shipped_models().items():
        quality = quality_model(name)
        assert (networks[f"{name}_hq"] == quality) if quality else (networks[name] == path), name
    assert any(k.endswith("_hq") for k in networks)  # starry_night and udnie have a quality tier


def test_gallery_grid_of_photos_and_styles(tmp_path):
    models, photos = MODELS[:2], sorted(sample_photos_dir().glob("*.jpg"))[:2]
    out = tmp_path / "gallery.jpg"
    stdout = run_script(
        "make_gallery.py", "--models", *map(str, models), "--photos", *map(str, photos),
        "--size", "96", "--cell", "64", "-o", str(out),
    )  # fmt: skip
    assert f"wrote {out}" in stdout
    grid = np.asarray(Image.open(out).convert("RGB"), np.float32)
    # A header row (paintings) and one row per photo; a photo column and one column per model.
    cell_w, cell_h, pad, label = 64, 48, 4, 16
    assert grid.shape[1] == (len(models) + 1) * (cell_w + pad) + pad
    assert grid.shape[0] == (len(photos) + 1) * (cell_h + pad + label) + pad
    for row in range(1, len(photos) + 1):
        y = pad + row * (cell_h + pad + label) + label
        photo = grid[y : y + cell_h, pad : pad + cell_w]
        for col in range(1, len(models) + 1):
            x = pad + col * (cell_w + pad)
            cell = grid[y : y + cell_h, x : x + cell_w]
            assert np.abs(cell - photo).mean() > 10, f"cell ({row}, {col}) is not stylized"


@pytest.mark.slow  # two script runs, each judging at 512 px: about 50 s
def test_compare_optimize_judges_model_and_optimization(tmp_path, vgg_weights_file):
    model, photo = MODELS[0], sample_photos_dir() / "chelsea.jpg"
    out = tmp_path / "quality"
    stdout = run_script(
        "compare_optimize.py", "--models", str(model), "--content", str(photo), "--steps", "4", "2",
        "--size", "64", "-o", str(out),
    )  # fmt: skip
    style = model.stem
    assert (out / style / "optimize_2" / "chelsea.png").is_file()
    assert (out / style / "optimize_4" / "chelsea.png").is_file()
    with open(out / style / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["model", "optimize_2", "optimize_4"]
    summary = json.loads((out / style / "summary.json").read_text())["summary"]
    ratio = summary["model"]["style_gram"] / summary["optimize_4"]["style_gram"]  # to the longest run
    table = [line for line in stdout.splitlines() if line.startswith(f"| {style} | model |")]
    assert len(table) == 1 and f"{ratio:.2f} /" in table[0]
    # A second run reuses the optimization results instead of recomputing them.
    again = run_script(
        "compare_optimize.py", "--models", str(model), "--content", str(photo), "--steps", "4", "--size", "64",
        "-o", str(out),
    )  # fmt: skip
    assert "optimize_4/chelsea.png: exists, reused" in again


@pytest.mark.slow
def test_learning_curve_judges_each_checkpoint_and_each_style(tmp_path, vgg_weights_file):
    photo = sample_photos_dir() / "coffee.jpg"
    tiny = ["data=sample", "style.size=64", "data.image_size=32", "model=light", "trainer=cpu"]
    out = run_script("learning_curve.py", "--name", "two", "--steps", "3", "--every", "2", "--content", str(photo),
                     "-o", str(tmp_path), "--", "style=[wave,udnie]", *tiny)  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    assert {(r["name"], r["step"]) for r in rows} == {(f"two@{s}", str(n)) for s in ("wave", "udnie") for n in (2, 3)}
    assert all(float(r["style_gram"]) > 0 for r in rows) and "two@udnie" in out
    # --judge-style: one style of the run only, with the same figures; a style the run lacks is named
    (tmp_path / "curves.csv").unlink()
    judge_udnie = ["--name", "two", "--steps", "3", "--every", "2", "--content", str(photo), "--judge-only"]
    judge_udnie += ["-o", str(tmp_path)]
    run_script("learning_curve.py", *judge_udnie, "--judge-style", "udnie", "--", "style=[wave,udnie]", *tiny)
    again = {(r["name"], r["step"]): r["style_gram"] for r in csv.DictReader((tmp_path / "curves.csv").open())}
    assert again == {(r["name"], r["step"]): r["style_gram"] for r in rows if r["name"] == "two@udnie"}
    script = str(REPO / "scripts" / "learning_curve.py")
    proc = subprocess.run([sys.executable, script, *judge_udnie, "--judge-style", "candy"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "--judge-style candy: not a style of" in proc.stderr


@pytest.mark.parametrize("output", ["photo.jpg", "gallery.png", "photo.jpg/gallery.jpg"])
def test_gallery_refuses_a_bad_output_before_any_work(tmp_path, output):
    photo = tmp_path / "photo.jpg"
    shutil.copy(sample_photos_dir() / "coffee.jpg", photo)
    before = photo.read_bytes()
    script = str(REPO / "scripts" / "make_gallery.py")
    args = ["--models", str(REPO / "fastnst" / "assets" / "models" / "wave.onnx"), "--photos", str(photo)]
    proc = subprocess.run([sys.executable, script, *args, "-o", str(tmp_path / output)], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: -o {tmp_path / output}: ")
    assert len(proc.stderr.splitlines()) == 1 and photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]


def test_learning_curve_checks_the_photos_before_training(tmp_path):
    script = str(REPO / "scripts" / "learning_curve.py")
    args = ["--name", "x", "--steps", "3", "--every", "2", "--content", str(tmp_path / "nope.jpg"), "-o", str(tmp_path)]
    proc = subprocess.run([sys.executable, script, *args, "--", "style=wave"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr == f"error: --content {tmp_path / 'nope.jpg'}: no such file or folder\n"
    assert list(tmp_path.iterdir()) == []  # no run folder, no training


@pytest.mark.slow
def test_learning_curve_judges_the_average_and_the_trained_weights(tmp_path, vgg_weights_file):
    photo = sample_photos_dir() / "coffee.jpg"
    tiny = ["data=sample", "style.size=64", "data.image_size=32", "model=light", "trainer=cpu"]
    run_script("learning_curve.py", "--name", "ema", "--steps", "3", "--every", "2", "--content", str(photo),
               "--judge-at-end", "-o", str(tmp_path), "--", "style=wave", "trainer.ema_decay=0.5", *tiny)  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    assert {(r["name"], r["step"]) for r in rows} == {(n, s) for n in ("ema", "ema~raw") for s in ("2", "3")}
    by = {(r["name"], r["step"]): r for r in rows}
    assert by[("ema", "3")]["style_gram"] != by[("ema~raw", "3")]["style_gram"]  # two different networks
    # --judge-only judges what the run kept, trains nothing, and the judge gives the same figures again
    (tmp_path / "curves.csv").unlink()
    run_script("learning_curve.py", "--name", "ema", "--content", str(photo), "--judge-only", "-o", str(tmp_path),
               "--", "style=wave", "trainer.ema_decay=0.5", *tiny)  # fmt: skip
    again = {(r["name"], r["step"]): r for r in csv.DictReader((tmp_path / "curves.csv").open())}
    assert again.keys() == by.keys()
    assert all(again[k]["style_gram"] == by[k]["style_gram"] for k in by)
    assert not list(tmp_path.glob("ema/run_*"))  # no second training run


def test_learning_curve_will_not_take_an_earlier_run_s_rows_for_a_new_one(tmp_path):
    """Rows of a run whose folder is gone would stand for the new run's checkpoints (never judged): refused."""
    header = "name,step,minutes,content,style_gram,style_stats,overrides\n"
    (tmp_path / "curves.csv").write_text(header + "x@wave,2,1.0,0.9,0.2,0.4,style=[wave,udnie]\n")
    script = str(REPO / "scripts" / "learning_curve.py")
    args = ["--name", "x", "--steps", "3", "--every", "2", "--content", str(sample_photos_dir() / "coffee.jpg")]
    args += ["-o", str(tmp_path), "--", "style=wave"]
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"error: {tmp_path / 'curves.csv'}: has rows of an earlier run named x whose folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.csv"]  # nothing trained


def test_learning_curve_judge_only_needs_a_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "learning_curve.py"), "--name", "none",
         "--content", str(sample_photos_dir() / "coffee.jpg"), "--judge-only", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == f"{tmp_path / 'none'}: no run of that name to judge"


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--every", "2"], "--steps is required unless --judge-only is given"),
     (["--steps", "0", "--every", "2"], "--steps 0: must be at least 1")],
)  # fmt: skip
def test_learning_curve_training_needs_steps_and_every(tmp_path, flags, message):
    script = str(REPO / "scripts" / "learning_curve.py")
    args = ["--name", "x", *flags, "--content", str(sample_photos_dir() / "coffee.jpg"), "-o", str(tmp_path)]
    proc = subprocess.run([sys.executable, script, *args, "--", "style=wave"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []  # nothing trained


@pytest.fixture(scope="module")
def tiny_conditional_onnx(tiny_conditional_checkpoint, tmp_path_factory):
    from fastnst.nn.export import export_onnx

    return export_onnx(tiny_conditional_checkpoint, tmp_path_factory.mktemp("cond") / "three.onnx").path


@pytest.mark.slow  # 10 judged pictures at 512 px: about a minute
def test_strength_series_judges_trained_strength_and_blend(tmp_path, tiny_conditional_onnx):
    photo = sample_photos_dir() / "coffee.jpg"
    out = run_script("strength_series.py", "--model", str(tiny_conditional_onnx), "--style", "wave",
                     "--content", str(photo), "-o", str(tmp_path))  # fmt: skip
    report = json.loads((tmp_path / "series.json").read_text())
    assert set(report) == {"wave"} and set(report["wave"]) == {"trained", "blend"}
    # strength 0 is the photo by construction (strength_output), in both series
    assert report["wave"]["trained"]["0"]["content"] < 1e-3 and report["wave"]["blend"]["0"]["content"] < 1e-3
    assert report["wave"]["trained"]["1"] == report["wave"]["blend"]["1"]  # strength 1: the same picture
    with Image.open(tmp_path / "wave.png") as sheet:
        assert sheet.width > 9 * sheet.height / 2  # one row of ten pictures
    assert "wave: strength" in out


@pytest.mark.slow  # 10 judged pictures at 512 px: about a minute
def test_mixture_series_moves_from_one_painting_to_the_other(tmp_path, tiny_conditional_onnx):
    photo = sample_photos_dir() / "coffee.jpg"
    out = run_script("mixture_series.py", "--model", str(tiny_conditional_onnx), "--styles", "wave", "udnie",
                     "--content", str(photo), "-o", str(tmp_path))  # fmt: skip
    report = json.loads((tmp_path / "mixture.json").read_text())
    assert list(report) == ["0", "0.25", "0.5", "0.75", "1"]
    assert all(set(r) == {"content", "style_gram_wave", "style_gram_udnie"} for r in report.values())
    with Image.open(tmp_path / "wave+udnie.png") as sheet:
        assert sheet.width > 5 * sheet.height  # the photo and five pictures in one row
    assert "wave -> udnie" in out


@pytest.mark.slow  # three verified exports: about 20 s
def test_reexport_rebuilds_an_fp16_export_in_fp32(tmp_path):
    from fastnst.nn.export import export_network
    from fastnst.runtime.stylizer import Stylizer

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    hparams = {"architecture": "light", "width": 1.0, "num_residual_blocks": 1, "style_name": "wave"}
    net = build_like(hparams, torch)
    old = export_network(net, hparams, tmp_path / "old.onnx", "fp16").path
    out = run_script("reexport_onnx.py", str(old), "-o", str(tmp_path / "new.onnx"))
    new = Stylizer(tmp_path / "new.onnx")
    assert new.metadata["fastnst.precision"] == "fp32" and new.style == "wave" and "mean |new - old|" in out
    # The same network (its weights rounded to fp16, as stored), now computed in fp32: PyTorch's output
    net = net.half().float()
    photo = np.asarray(Image.open(sample_photos_dir() / "coffee.jpg").convert("RGB").resize((96, 64)), np.float32) / 255
    with torch.no_grad():
        reference = net(torch.from_numpy(photo.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
    new_error = np.abs(Stylizer(tmp_path / "new.onnx", margin=0)(photo) - reference).max()
    old_error = np.abs(Stylizer(old, margin=0)(photo) - reference).max()
    assert new_error < 1e-5 and new_error < old_error / 10
    # In place, from an fp32 export of today's exporter: the same pictures
    again = run_script("reexport_onnx.py", str(tmp_path / "new.onnx"), "-o", str(tmp_path / "new.onnx"))
    assert float(again.split("mean |new - old| on chelsea.jpg ")[1].split()[0]) < 1e-5
    # --margin is recorded, and kept by a later rebuild that names none
    run_script("reexport_onnx.py", str(tmp_path / "new.onnx"), "-o", str(tmp_path / "m8.onnx"), "--margin", "8")
    run_script("reexport_onnx.py", str(tmp_path / "m8.onnx"), "-o", str(tmp_path / "m8b.onnx"))
    assert Stylizer(tmp_path / "m8.onnx").margin == Stylizer(tmp_path / "m8b.onnx").margin == 8
    assert Stylizer(tmp_path / "new.onnx").margin == 16  # none recorded


def test_reexport_refuses_a_bad_margin_in_one_line(tmp_path):
    model = REPO / "fastnst" / "assets" / "models" / "udnie.onnx"
    command = [sys.executable, REPO / "scripts" / "reexport_onnx.py", model, "-o", tmp_path / "x.onnx", "--margin", "6"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        "error: margin=6: expected a multiple of 4 (0 for none)"
    ]
    assert not (tmp_path / "x.onnx").exists()


def test_reexport_refuses_a_conditional_model_in_one_line(tmp_path, tiny_conditional_onnx):
    command = [sys.executable, REPO / "scripts" / "reexport_onnx.py", tiny_conditional_onnx, "-o", tmp_path / "x.onnx"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        f"error: {tiny_conditional_onnx}: a network of several styles; only one-style exports are rebuilt "
        "(its .ckpt holds the network)"
    ]


def test_seed_checkpoint_puts_an_exports_weights_into_a_recipe_checkpoint_that_trains_on(
    tmp_path, tmp_path_factory, tiny_checkpoint
):
    """A network of the tiny recipe with other weights, exported, then seeded into the tiny checkpoint:
    the checkpoint holds exactly those weights and a fresh optimizer, and training goes on from it."""
    torch = pytest.importorskip("torch")
    from conftest import _train_tiny

    from fastnst.nn.export import export_network, load_network

    _, hparams = load_network(tiny_checkpoint, averaged=True)
    torch.manual_seed(1)
    other = build_like(hparams, torch)
    model = export_network(other, hparams, tmp_path / "other.onnx", check=False).path
    out = run_script("seed_checkpoint.py", str(tiny_checkpoint), str(model), "-o", str(tmp_path / "seed.ckpt"))
    assert "a fresh optimizer" in out
    seeded = torch.load(tmp_path / "seed.ckpt", weights_only=True)
    original = torch.load(tiny_checkpoint, weights_only=True)
    for name, value in other.state_dict().items():
        assert torch.allclose(seeded["state_dict"][f"net.{name}"], value, atol=1e-6), name
    first = f"net.{next(iter(other.state_dict()))}"
    assert not torch.equal(seeded["state_dict"][first], original["state_dict"][first])
    assert seeded["global_step"] == original["global_step"] and original["optimizer_states"][0]["state"]
    assert seeded["optimizer_states"][0]["state"] == {}
    resumed = _train_tiny(tmp_path_factory, "resumed", ["trainer.max_steps=3", f"ckpt_path={tmp_path / 'seed.ckpt'}"])
    after = torch.load(resumed, weights_only=True)
    assert after["global_step"] == 3
    moved = [after["state_dict"][f"net.{n}"] - v for n, v in other.state_dict().items() if v.dtype.is_floating_point]
    assert 0 < max(float(d.abs().max()) for d in moved) < 0.05  # one small step away from the seeded weights


def test_seed_checkpoint_refuses_another_network_in_one_line(tmp_path, tiny_checkpoint):
    model = REPO / "fastnst" / "assets" / "models" / "the_scream.onnx"  # the light network at full width
    command = [
        sys.executable,
        REPO / "scripts" / "seed_checkpoint.py",
        tiny_checkpoint,
        model,
        "-o",
        tmp_path / "s.ckpt",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(model) in proc.stderr and not (tmp_path / "s.ckpt").exists()


@pytest.mark.parametrize("output", ["notes.txt", "folder"])
def test_seed_checkpoint_writes_only_a_ckpt(tmp_path, tiny_checkpoint, output):
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "folder").mkdir()
    model = REPO / "fastnst" / "assets" / "models" / "wave.onnx"
    command = [sys.executable, REPO / "scripts" / "seed_checkpoint.py", tiny_checkpoint, model, "-o", tmp_path / output]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr == f"error: -o {tmp_path / output}: give a .ckpt file to write\n"
    assert (tmp_path / "notes.txt").read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == [
        "folder",
        "notes.txt",
    ]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--count", "1"], "--start 0 --count 1: expected a start >= 0 and at least 2 frames"),
        (["--label", "a", "--label", "b"], "--label given 2 times for 1 --model"),
    ],
)
def test_flicker_strip_settings_in_one_line(tmp_path, flags, words):
    command = [sys.executable, REPO / "scripts" / "flicker_strip.py", "--video", tmp_path / "clip.mp4"]
    proc = subprocess.run(
        [*command, "--model", "wave", *flags, "-o", tmp_path / "s.jpg"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stderr == f"error: {words}\n"


def build_like(hparams: dict, torch):
    """A network of the checkpoint's architecture with random instance-norm scales and shifts (not the identity)."""
    from fastnst.nn.transformer_net import build_network

    net = build_network(hparams["architecture"], hparams["width"], hparams["num_residual_blocks"]).eval()
    for norm in (m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)):
        torch.nn.init.uniform_(norm.weight, 0.5, 1.5), torch.nn.init.uniform_(norm.bias, -0.5, 0.5)
    return net


def test_learning_curve_says_why_the_training_stopped(tmp_path):
    script = str(REPO / "scripts" / "learning_curve.py")
    photo = str(sample_photos_dir() / "coffee.jpg")
    args = ["--name", "x", "--steps", "3", "--every", "2", "--content", photo, "-o", str(tmp_path)]
    bad = tmp_path / "no_painting.jpg"
    overrides = ["style.image=" + str(bad), "data=sample", "trainer=cpu", "model=light"]
    proc = subprocess.run([sys.executable, script, *args, "--", *overrides], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("training stopped with exit status 2: ")
    assert str(bad) in proc.stderr and proc.stderr.endswith("rerun the same command to resume\n")
