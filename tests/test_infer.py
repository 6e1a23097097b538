"""The torch-free inference path: ``fastnst.runtime.stylizer.Stylizer`` and ``fastnst infer``.

The models are real exports: ``tiny_onnx`` (a 2-step trained network, whose output barely
depends on the image) and ``sharp_onnx`` (the same architecture with large random weights,
whose output depends strongly on the image: needed to see tiling errors and seams).
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import REPO, models_with_variant
from PIL import Image

from fastnst import cli
from fastnst.errors import FastNSTError
from fastnst.runtime.stylizer import (
    ModelError,
    Stylizer,
    _feather,
    providers_for,
    rgb_to_ycbcr,
    tile_spans,
    to_float,
    to_uint8,
)

SAMPLES = REPO / "fastnst" / "assets" / "sample_photos"
STYLE = "starry_night"  # the style name recorded in the tiny model's metadata


def photo(width: int, height: int, name: str = "coffee.jpg") -> Image.Image:
    """A real photo resized to ``width`` x ``height``."""
    with Image.open(SAMPLES / name) as img:
        return img.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


def photo_float(width: int, height: int, name: str = "coffee.jpg") -> np.ndarray:
    return to_float(photo(width, height, name))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).astype(np.int16)


def run_cli(*args: str | Path) -> int:
    return cli.main(["infer", *(str(a) for a in args)])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def hidden_files(folder: Path) -> list[str]:
    """Names starting with '.': the temp files of atomic writes."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def load_measure_tiling():
    spec = importlib.util.spec_from_file_location("measure_tiling", REPO / "scripts" / "measure_tiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- models ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stylizer(tiny_onnx: Path) -> Stylizer:
    return Stylizer(tiny_onnx, device="cpu")


@pytest.fixture(scope="module")
def sharp_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with large deterministic random weights, exported to fp32 ONNX."""
    torch = pytest.importorskip("torch")
    from fastnst.nn.export import export_onnx

    checkpoint = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in checkpoint["state_dict"].items():
        if not key.startswith("net."):
            state[key] = value
        elif value.ndim == 4:  # conv weights: He normal
            state[key] = torch.randn(value.shape, generator=gen) * (2.0 / value[0].numel()) ** 0.5
        elif key.endswith(".weight"):  # instance-norm scale
            state[key] = 1.0 + 0.5 * torch.randn(value.shape, generator=gen)
        else:  # biases
            state[key] = 0.3 * torch.randn(value.shape, generator=gen)
    checkpoint["state_dict"] = state
    path = tmp_path_factory.mktemp("sharp") / "sharp.ckpt"
    torch.save(checkpoint, path)
    return export_onnx(path, path.with_suffix(".onnx"), check=False).path


# -- the Stylizer API ------------------------------------------------------------------------


def test_import_from_package(tiny_onnx):
    from fastnst import Stylizer as exported

    assert exported is Stylizer
    assert Stylizer(tiny_onnx).style == STYLE


@pytest.mark.parametrize("size", [(383, 257), (257, 383), (64, 48), (8, 8), (7, 5), (1, 1)])
def test_pil_in_pil_out_keeps_size(stylizer, size):
    out = stylizer(photo(*size))
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB"
    assert out.size == size


def test_uint8_array_in_uint8_out(stylizer):
    image = np.asarray(photo(65, 47))
    out = stylizer(image)
    assert out.dtype == np.uint8
    assert out.shape == image.shape
    np.testing.assert_array_equal(out, np.asarray(stylizer(Image.fromarray(image))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_float32_out(stylizer, dtype):
    image = photo_float(65, 47).astype(dtype)
    out = stylizer(image)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.std() > 0  # an image, not a constant fill


def test_tiny_images_below_the_graph_minimum(stylizer):
    image = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    out = stylizer(image)
    assert out.shape == (5, 7, 3)
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_bad_array_shape_is_a_value_error(stylizer):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        stylizer(np.zeros((16, 16), np.float32))


def test_output_equals_a_direct_onnxruntime_run(tiny_onnx, stylizer):
    image = photo_float(383, 257)  # odd sizes: 257 x 383
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    (expected,) = session.run(["stylized"], {"image": image.transpose(2, 0, 1)[None].copy()})
    out = Stylizer(tiny_onnx, device="cpu", margin=0)(image)
    assert out.shape == (257, 383, 3)
    np.testing.assert_allclose(out, expected[0].transpose(1, 2, 0), atol=1e-5, rtol=0)
    # The default: a replicated 16-px border around the image, cropped off the result.
    padded = np.pad(image, ((16, 16), (16, 16), (0, 0)), mode="edge")
    (expected,) = session.run(["stylized"], {"image": padded.transpose(2, 0, 1)[None].copy()})
    out = stylizer(image)
    assert out.shape == (257, 383, 3)
    np.testing.assert_allclose(out, expected[0, :, 16:-16, 16:-16].transpose(1, 2, 0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("margin", [-4, 6])
def test_margin_must_be_a_multiple_of_4(tiny_onnx, margin):
    with pytest.raises(ValueError, match="multiple of 4"):
        Stylizer(tiny_onnx, device="cpu", margin=margin)


def test_sharp_model_output_depends_on_the_image(sharp_onnx):
    """Sanity check of the fixture the tiling tests rely on."""
    out = Stylizer(sharp_onnx, device="cpu")(photo_float(128, 96))
    assert out.std() > 0.1


# -- strength, preserve_color, max_size ------------------------------------------------------


def test_strength(stylizer):
    image = photo(96, 64)
    original = np.asarray(image).astype(np.int16)
    full = np.asarray(stylizer(image)).astype(np.int16)
    assert np.abs(full - original).mean() > 10  # the model changes the photo
    assert np.abs(np.asarray(stylizer(image, strength=0.0)).astype(np.int16) - original).max() <= 1
    np.testing.assert_array_equal(np.asarray(stylizer(image, strength=1.0)), full)
    half = np.asarray(stylizer(image, strength=0.5)).astype(np.int16)
    assert np.abs(half - (full + original) / 2).max() <= 1.0

    # Exact on the float path.
    x = to_float(image)
    s = stylizer(x)
    np.testing.assert_allclose(stylizer(x, strength=0.5), 0.5 * s + 0.5 * x, atol=1e-6)
    np.testing.assert_allclose(stylizer(x, strength=0.25), 0.25 * s + 0.75 * x, atol=1e-6)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_out_of_range(stylizer, strength):
    with pytest.raises(ValueError, match="strength"):
        stylizer(photo(16, 16), strength=strength)


@pytest.mark.parametrize("model", ["tiny", "sharp"])
def test_preserve_color(request, model):
    path = request.getfixturevalue("tiny_onnx" if model == "tiny" else "sharp_onnx")
    st = Stylizer(path, device="cpu")
    x = photo_float(128, 128, "astronaut.jpg")
    stylized = st(x)
    kept = st(x, preserve_colors=True)
    ycc_photo, ycc_stylized, ycc_kept = rgb_to_ycbcr(x), rgb_to_ycbcr(stylized), rgb_to_ycbcr(kept)
    unclipped = ((kept > 0.002) & (kept < 0.998)).all(axis=-1)
    assert unclipped.mean() > 0.9
    chroma = np.abs(ycc_kept[..., 1:] - ycc_photo[..., 1:])[unclipped].mean()
    luma = np.abs(ycc_kept[..., 0] - ycc_stylized[..., 0])[unclipped].mean()
    assert chroma < 0.02, chroma
    assert luma < 0.02, luma
    # Without the flag the colours are the model's: the test above can fail.
    assert np.abs(ycc_stylized[..., 1:] - ycc_photo[..., 1:]).mean() > 0.05
    assert kept.min() >= 0.0 and kept.max() <= 1.0


@pytest.mark.parametrize(
    ("size", "max_size", "expected"), [((400, 300), 200, (200, 150)), ((301, 499), 100, (60, 100))]
)
def test_max_size_downscales_keeping_the_aspect(tiny_onnx, size, max_size, expected):
    out = Stylizer(tiny_onnx, device="cpu", max_size=max_size)(photo(*size))
    assert out.size == expected
    assert max(out.size) == max_size
    assert abs(out.size[0] / out.size[1] - size[0] / size[1]) < 0.02


def test_max_size_never_upscales(tiny_onnx):
    out = Stylizer(tiny_onnx, device="cpu", max_size=200)(photo(120, 80))
    assert out.size == (120, 80)


# -- devices ---------------------------------------------------------------------------------


def test_providers_for():
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    auto = providers_for("auto")
    assert auto[-1] == "CPUExecutionProvider"
    with pytest.raises(ModelError, match="--device metal"):
        providers_for("metal")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelError, match="CUDAExecutionProvider"):
            providers_for("cuda")


# -- tiling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("tile", "overlap"), [(256, 64), (512, 128), (1024, 128), (2048, 128), (64, 16)])
def test_tile_spans_cover_with_overlap_on_the_stride_grid(tile, overlap):
    for size in [*range(1, 3 * tile + 50), 5 * tile - 1, 4000, 4001, 4003]:
        spans = tile_spans(size, tile, overlap)
        starts = [start for start, _ in spans]
        assert spans[0][0] == 0 and spans[-1][1] == size, (size, spans)  # the whole length is covered
        if size <= tile:
            assert spans == [(0, size)]
            continue
        assert starts == sorted(set(starts)), (size, spans)
        assert all(start % 4 == 0 for start in starts), (size, spans)  # the network's stride-4 grid
        assert all(0 < end - start <= tile + 3 for start, end in spans), (size, spans)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end - start >= overlap, (size, spans)  # neighbours overlap enough


def test_last_tile_is_at_most_3_px_longer():
    spans = tile_spans(560, 100, 25)
    assert spans[-1][1] - spans[-1][0] <= 103, spans


def test_feather_weights():
    spans = tile_spans(700, 256, 64)  # (0, 256), (148, 404), (296, 552), (444, 700)
    total = np.zeros(700, np.float32)
    for i, (start, end) in enumerate(spans):
        w = _feather(spans, i)
        assert w.shape == (end - start,)
        assert (w > 0).all() and (w <= 1).all()
        total[start:end] += w
    first, middle = _feather(spans, 0), _feather(spans, 1)
    np.testing.assert_array_equal(first[:148], 1.0)  # no neighbour before the first tile
    assert (np.diff(first[148:]) < 0).all()  # ramps down over the whole overlap (108 px)
    np.testing.assert_allclose(middle, middle[::-1])
    assert (np.diff(middle[:108]) > 0).all()
    np.testing.assert_array_equal(_feather(spans, 3)[-148:], 1.0)
    assert (total > 0).all()
    np.testing.assert_array_equal(_feather([(0, 300)], 0), 1.0)


@pytest.mark.parametrize("size", [(700, 500), (701, 333)])
def test_tiles_blend_back_to_the_image(tiny_onnx, monkeypatch, size):
    """With an identity model, the feathered tiles (weights normalised) give the image back."""
    st = Stylizer(tiny_onnx, device="cpu", tile_size=256, overlap=64)
    monkeypatch.setattr(
        st,
        "_run",
        lambda batch, stats=None, strength=1.0, weights_map=None: (batch.copy(), np.zeros((len(batch), 2), np.float32)),
    )
    w, h = size
    random = np.random.default_rng(1).random((h, w, 3)).astype(np.float32)
    result = st.stylize_arrays([random])[0]
    assert result.tiles > 1
    np.testing.assert_allclose(result.image, random, atol=1e-6)
    constant = np.full((h, w, 3), 0.3, np.float32)
    np.testing.assert_allclose(st.stylize_arrays([constant])[0].image, 0.3, atol=1e-6)


def test_tiles_get_the_whole_image_statistics(sharp_onnx, monkeypatch):
    st = Stylizer(sharp_onnx, device="cpu", tile_size=256, overlap=64, stats_size=1024)
    image = photo_float(700, 500)
    _, full_stats = st._run(image[None])
    calls = []
    run = st._run

    def spy(batch, stats=None, strength=1.0, weights_map=None):
        calls.append((batch.shape, None if stats is None else stats.copy()))
        return run(batch, stats, strength, weights_map)

    monkeypatch.setattr(st, "_run", spy)
    result = st.stylize_arrays([image])[0]
    tile_calls = [(shape, stats) for shape, stats in calls if stats is not None]
    assert result.tiles == len(tile_calls) == 12
    for shape, stats in tile_calls:
        assert shape[1] < 500 and shape[2] < 700
        np.testing.assert_allclose(stats, full_stats, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def tiling(sharp_onnx):
    """tiling(width, height) -> untiled, fastnst-tiled and naively tiled (per-tile stats) results."""
    cache: dict[tuple[int, int], dict] = {}

    def run(width: int, height: int) -> dict:
        if (width, height) not in cache:
            image = photo_float(width, height)
            untiled = Stylizer(sharp_onnx, device="cpu", tile_size=1024).stylize_arrays([image])[0]
            st = Stylizer(sharp_onnx, device="cpu", tile_size=256, overlap=64, stats_size=1024)
            tiled = st.stylize_arrays([image])[0]
            run_with_stats = st._run
            # each tile normalised with its own statistics
            st._run = lambda batch, stats=None, strength=1.0, weights_map=None: run_with_stats(batch)
            naive = st.stylize_arrays([image])[0]
            st._run = run_with_stats
            cache[width, height] = {
                "image": image,
                "stylizer": st,
                "untiled": untiled,
                "tiled": tiled,
                "naive": naive,
                "diff": float(np.abs(tiled.image - untiled.image).mean()),
                "naive_diff": float(np.abs(naive.image - untiled.image).mean()),
            }
        return cache[width, height]

    return run


@pytest.mark.parametrize("size", [(700, 500), (701, 503)])
def test_tiling_matches_untiled(tiling, size):
    """Tiles normalised with the whole image's statistics give the untiled result; per-tile statistics do not."""
    r = tiling(*size)
    print(f"{size}: tiled vs untiled {r['diff']:.5f}, naive vs untiled {r['naive_diff']:.5f}")
    assert r["untiled"].tiles == 1
    assert r["tiled"].tiles == 12
    assert r["diff"] < 0.01, r["diff"]  # measured 0.0010 (0.034 when tiles started off the stride-4 grid)
    assert r["naive_diff"] > 5 * r["diff"], (r["naive_diff"], r["diff"])  # measured 0.088 (88x)


def test_tiling_seam_scores(tiling):
    mt = load_measure_tiling()
    r = tiling(700, 500)
    h, w = 500, 700
    rows = mt.tile_borders(tile_spans(h, 256, 64))
    cols = mt.tile_borders(tile_spans(w, 256, 64))
    ours = mt.seam_score(r["tiled"].image, rows, cols)
    naive = mt.naive_tiles(r["stylizer"], r["image"])
    naive_score = mt.seam_score(naive, list(range(256, h, 256)), list(range(256, w, 256)))
    untiled_score = mt.seam_score(r["untiled"].image, list(range(256, h, 256)), list(range(256, w, 256)))
    print(f"seam scores: fastnst {ours:.3f}, naive {naive_score:.3f}, untiled {untiled_score:.3f}")
    assert ours < 1.3, ours  # measured 1.04
    assert untiled_score < 1.3, untiled_score  # the image has no edges there of its own
    assert naive_score > 1.5 and naive_score > ours + 0.4, (naive_score, ours)  # measured 2.0


# -- torch-free ------------------------------------------------------------------------------

BLOCK_TORCH = """
import sys
sys.modules["torch"] = None
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch is not blocked")
from PIL import Image
from fastnst import Stylizer
model, src, out_api, out_cli = sys.argv[1:5]
image = Image.open(src)
stylized = Stylizer(model)(image)
assert stylized.size == image.size, stylized.size
stylized.save(out_api)
from fastnst.cli import main
sys.exit(main(["infer", "--model", model, src, "-o", out_cli, "-q"]))
"""

TORCH_NOT_LOADED = """
import sys
from PIL import Image
from fastnst import Stylizer
from fastnst.cli import main
model, src, out = sys.argv[1:4]
Stylizer(model)(Image.open(src))
rc = main(["infer", "--model", model, src, "-o", out, "-q"])
print("TORCH", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
sys.exit(rc)
"""


def _python(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, *(str(a) for a in args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_stylizer_and_cli_work_with_torch_blocked(tiny_onnx, tmp_path):
    src = tmp_path / "photo.jpg"
    photo(90, 60).save(src)
    proc = _python("-c", BLOCK_TORCH, tiny_onnx, src, tmp_path / "api.png", tmp_path / "cli.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("api.png", "cli.png"):
        with Image.open(tmp_path / name) as img:
            assert img.size == (90, 60)
    np.testing.assert_array_equal(pixels(tmp_path / "api.png"), pixels(tmp_path / "cli.png"))


def test_torch_is_not_imported(tiny_onnx, tmp_path):
    src = tmp_path / "photo.png"
    photo(40, 30).save(src)
    proc = _python("-c", TORCH_NOT_LOADED, tiny_onnx, src, tmp_path / "out.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "TORCH []"
    assert (tmp_path / "out.png").is_file()


def test_python_m_fastnst_infer(tiny_onnx, tmp_path):
    src = tmp_path / "photo.jpg"
    photo(50, 40).save(src)
    proc = _python(
        "-m", "fastnst", "infer", "--model", tiny_onnx, src, "-o", tmp_path / "out.png", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["outputs"][0]["output"] == str(tmp_path / "out.png")
    assert (tmp_path / "out.png").is_file()


# -- fastnst infer ---------------------------------------------------------------------------


def test_cli_single_file(tiny_onnx, stylizer, tmp_path, capsys):
    src = tmp_path / "photo.jpg"
    photo(97, 61).save(src, quality=95)
    out = tmp_path / "result.png"
    assert run_cli("--model", tiny_onnx, src, "-o", out) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (97, 61)
    with Image.open(src) as img:
        expected = np.asarray(stylizer(img)).astype(np.int16)
    np.testing.assert_array_equal(pixels(out), expected)
    assert f"{src} -> {out} (97x61" in capsys.readouterr().out
    assert hidden_files(tmp_path) == []


def test_cli_folder_keeps_the_tree(tiny_onnx, tmp_path):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    photo(40, 30).save(src / "a.png")
    photo(41, 31).save(src / "sub" / "b.jpg")
    photo(42, 32).save(src / "sub" / "c.bmp")
    photo(43, 33).save(src / "sub" / "deeper" / "d.tiff")
    photo(44, 34).save(src / "sub" / "deeper" / "e.jpeg")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert run_cli("--model", tiny_onnx, src, "-o", out, "-q") == 0
    expected = {
        f"a_{STYLE}.png": ("PNG", (40, 30)),
        f"sub/b_{STYLE}.jpg": ("JPEG", (41, 31)),
        f"sub/c_{STYLE}.png": ("PNG", (42, 32)),
        f"sub/deeper/d_{STYLE}.png": ("PNG", (43, 33)),
        f"sub/deeper/e_{STYLE}.jpeg": ("JPEG", (44, 34)),
    }
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(expected)
    for name, (fmt, size) in expected.items():
        with Image.open(out / name) as img:
            assert (img.format, img.size) == (fmt, size), name
    assert hidden_files(out) == []


def test_cli_glob(tiny_onnx, tmp_path):
    for name in ("x1.png", "x2.png", "y.png"):
        photo(32, 24).save(tmp_path / name)
    out = tmp_path / "out"
    assert run_cli("--model", tiny_onnx, str(tmp_path / "x*.png"), "-o", out, "-q") == 0
    assert sorted(p.name for p in out.iterdir()) == [f"x1_{STYLE}.png", f"x2_{STYLE}.png"]


def test_cli_default_output_next_to_the_input(tiny_onnx, tmp_path):
    src = tmp_path / "pics" / "cat.jpg"
    src.parent.mkdir()
    photo(48, 36, "chelsea.jpg").save(src)
    assert run_cli("--model", tiny_onnx, src, "-q") == 0
    out = src.parent / f"cat_{STYLE}.jpg"
    with Image.open(out) as img:
        assert (img.format, img.size) == ("JPEG", (48, 36))
    assert sorted(p.name for p in src.parent.iterdir()) == sorted(["cat.jpg", out.name])


def test_cli_corrupt_image_among_good_ones(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    photo(32, 24).save(src / "a.png")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    photo(32, 24).save(src / "c.png")
    out = tmp_path / "out"
    assert run_cli("--model", tiny_onnx, src, "-o", out, "--json") == 1
    assert sorted(p.name for p in out.iterdir()) == [f"a_{STYLE}.png", f"c_{STYLE}.png"]
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [e["input"] for e in report["errors"]] == [str(src / "b.png")]
    assert "not a readable image" in report["errors"][0]["error"]
    assert [Path(o["input"]).name for o in report["outputs"]] == ["a.png", "c.png"]
    assert str(src / "b.png") in captured.err


def test_cli_json_report(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "photo.png"
    photo(60, 40).save(src)
    out = tmp_path / "out.png"
    assert run_cli("--model", tiny_onnx, src, "-o", out, "--json", "--device", "cpu") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["providers"] == ["CPUExecutionProvider"]
    assert report["style"] == STYLE
    assert report["errors"] == []
    (record,) = report["outputs"]
    assert {"input", "output", "width", "height", "seconds", "tiles"} <= set(record)
    assert (record["input"], record["output"]) == (str(src), str(out))
    assert (record["width"], record["height"], record["tiles"]) == (60, 40, 1)
    assert record["seconds"] >= 0
    assert out.is_file()


def test_cli_max_size_and_tiling_in_the_report(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "big.png"
    photo(1300, 700).save(src)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "small.png", "--max-size", "300", "--json", "-q") == 0
    (record,) = json.loads(capsys.readouterr().out)["outputs"]
    assert (record["width"], record["height"], record["tiles"]) == (300, 162, 1)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "tiled.png", "--tile-size", "512", "--json", "-q") == 0
    (record,) = json.loads(capsys.readouterr().out)["outputs"]
    assert (record["width"], record["height"]) == (1300, 700)
    assert record["tiles"] == 8
    with Image.open(tmp_path / "tiled.png") as img:
        assert img.size == (1300, 700)


def test_cli_batch_size(tiny_onnx, tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("astronaut.jpg", "chelsea.jpg", "coffee.jpg")):
        photo(48, 40, name).save(src / f"{i}.png")
    batches: list[int] = []
    run = Stylizer._run

    def spy(self, batch, stats=None, strength=1.0, weights_map=None):
        batches.append(len(batch))
        return run(self, batch, stats, strength, weights_map)

    monkeypatch.setattr(Stylizer, "_run", spy)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "b2", "--batch-size", "2", "-q") == 0
    assert batches == [2, 1]
    batches.clear()
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "b1", "--batch-size", "1", "-q") == 0
    assert batches == [1, 1, 1]
    for i in range(3):
        name = f"{i}_{STYLE}.png"
        np.testing.assert_array_equal(pixels(tmp_path / "b2" / name), pixels(tmp_path / "b1" / name))


def test_cli_refuses_to_overwrite_the_input(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    before = src.read_bytes()
    assert run_cli("--model", tiny_onnx, src, "-o", src) != 0
    assert src.read_bytes() == before
    assert "overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here")
def test_cli_device_cuda_without_cuda(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    out = tmp_path / "out"
    assert run_cli("--model", tiny_onnx, src, "-o", out, "--device", "cuda") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error:") and "CUDAExecutionProvider" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_cli_model_that_is_not_onnx(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    photo(16, 16).save(model, format="JPEG")
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    assert run_cli("--model", model, src, "-o", tmp_path / "out.png") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error:") and str(model) in line
    assert not (tmp_path / "out.png").exists()


def test_cli_onnx_model_that_is_not_fastnst(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, None, None])],
    )
    model = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(model))
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    assert run_cli("--model", model, src, "-o", tmp_path / "out.png") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error:") and str(model) in line and "not a fastnst model" in line
    assert not (tmp_path / "out.png").exists()


def test_cli_missing_model_and_missing_input(tiny_onnx, tmp_path, capsys):
    missing = tmp_path / "nope.png"
    assert run_cli("--model", tiny_onnx, missing, "-o", tmp_path / "out") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error:") and str(missing) in line
    assert run_cli("--model", tmp_path / "nope.onnx", missing) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(tmp_path / "nope.onnx") in line
    assert sorted(tmp_path.iterdir()) == []


def test_cli_strength_out_of_range(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "out.png", "--strength", "1.5", "-q") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error:") and "strength" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_cli_strength_and_preserve_color(tiny_onnx, stylizer, tmp_path):
    src = tmp_path / "photo.png"
    image = photo(64, 48, "astronaut.jpg")
    image.save(src)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "s.png", "--strength", "0.5", "-q") == 0
    expected = np.asarray(stylizer(image, strength=0.5)).astype(np.int16)
    np.testing.assert_array_equal(pixels(tmp_path / "s.png"), expected)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "p.png", "--preserve-color", "-q") == 0
    expected = np.asarray(stylizer(image, preserve_colors=True)).astype(np.int16)
    np.testing.assert_array_equal(pixels(tmp_path / "p.png"), expected)


def test_cli_progress_and_quiet(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "a.png") == 0
    assert "stylize: 1/1 done" in capsys.readouterr().err
    assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "b.png", "--quiet") == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "b.png").is_file()


# -- atomic writes ---------------------------------------------------------------------------


def test_cli_output_permissions_follow_the_umask(tiny_onnx, tmp_path):
    src = tmp_path / "photo.png"
    photo(32, 24).save(src)
    old = os.umask(0o022)
    try:
        assert run_cli("--model", tiny_onnx, src, "-o", tmp_path / "out.png", "-q") == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    from fastnst.runtime.infer_cli import save_image

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(FastNSTError, match=r"out\.png: cannot write \(No space") as info:
        save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "out.png")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_outputs_of_different_inputs_do_not_collide(tiny_onnx, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    photo(32, 24, "chelsea.jpg").save(src / "a.png")
    photo(32, 24, "coffee.jpg").save(src / "a.bmp")
    rc = run_cli("--model", tiny_onnx, src, "-o", tmp_path / "out", "--json", "-q")
    report = json.loads(capsys.readouterr().out)
    outputs = [r["output"] for r in report["outputs"]]
    # Either both are written under distinct names, or the clash is reported as an error.
    assert len(set(outputs)) == len(outputs)
    assert len(outputs) == 2 or (rc != 0 and report["errors"])


def test_to_uint8_rounds():
    np.testing.assert_array_equal(to_uint8(np.array([[[0.0, 0.5, 1.0]]])), [[[0, 128, 255]]])
    np.testing.assert_array_equal(to_uint8(np.array([[[-0.2, 1 / 255, 1.7]]])), [[[0, 1, 255]]])


def test_cli_output_matches_pytorch(sharp_onnx, tmp_path):
    """`fastnst infer` writes what the PyTorch network computes (up to 8-bit rounding)."""
    import torch

    from fastnst.cli import main
    from fastnst.nn.images import load_image
    from fastnst.training.module import StyleTransferModule

    src = tmp_path / "photo.png"
    photo(257, 191, "coffee.jpg").save(src)  # odd size, not a multiple of 4
    assert main(["infer", "--model", str(sharp_onnx), str(src), "-o", str(tmp_path / "out.png"), "-q"]) == 0
    got = np.asarray(Image.open(tmp_path / "out.png")).astype(np.int16)
    module = StyleTransferModule.load_from_checkpoint(sharp_onnx.with_suffix(".ckpt"), map_location="cpu")
    with torch.no_grad():  # the Stylizer's default 16-px replicated border, cropped off
        padded = torch.nn.functional.pad(load_image(src), (16, 16, 16, 16), mode="replicate")
        expected = module(padded)[0, :, 16:-16, 16:-16].permute(1, 2, 0).numpy()
    expected = (np.clip(expected, 0, 1) * 255 + 0.5).astype(np.int16)
    assert got.shape == expected.shape == (191, 257, 3)
    assert np.abs(got - expected).max() <= 1
    assert expected.std() > 10  # a sharp model: the comparison is not between two flat images


@pytest.fixture
def quality_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder whose wave has a quality-tier network (udnie's file)."""
    return models_with_variant(tmp_path, monkeypatch, "quality")


def test_a_shipped_style_uses_its_quality_network_for_photos(
    tmp_path: Path, quality_variant: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import cli as run_cli

    from fastnst.styles import quality_model, resolve_model

    hq, fast = quality_variant / "quality" / "wave.onnx", quality_variant / "wave.onnx"
    assert quality_model("wave") == hq and resolve_model("wave_hq") == hq
    assert quality_model("udnie") is None and quality_model(fast) is None  # other names, and files as given
    photo = SAMPLES / "chelsea.jpg"
    code, out, err = run_cli("infer", photo, "--model", "wave", "-o", tmp_path / "hq.png", "--json")
    assert code == 0 and "photos: wave_hq" in err, err
    (record,) = json.loads(out)["outputs"]
    assert record["model"] == str(hq) and json.loads(out)["style"] == "wave"
    code, out, err = run_cli("infer", photo, "--model", "wave", "--fast", "-o", tmp_path / "fast.png", "--json")
    assert code == 0 and "wave_hq" not in err and "model" not in json.loads(out)["outputs"][0]
    written = {k: np.asarray(Image.open(tmp_path / f"{k}.png"), np.float32) for k in ("hq", "fast")}
    expected = {
        k: np.asarray(Stylizer(m)(Image.open(photo).convert("RGB")), np.float32)
        for k, m in [("hq", hq), ("fast", fast)]
    }
    assert np.abs(written["hq"] - expected["hq"]).mean() < 1 < np.abs(written["hq"] - expected["fast"]).mean()
    assert np.abs(written["fast"] - expected["fast"]).mean() < 1 < np.abs(written["fast"] - expected["hq"]).mean()
    # One image from standard input takes the quality network too.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(photo.read_bytes())))
    code, _, err = run_cli("infer", "-", "--model", "wave", "-o", tmp_path / "stream.png")
    assert code == 0 and "photos: wave_hq" in err
    streamed = np.asarray(Image.open(tmp_path / "stream.png"), np.float32)
    assert np.abs(streamed - expected["hq"]).mean() < 1
