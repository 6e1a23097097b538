"""ONNX export of a really trained network: graph, parity with PyTorch, tiling statistics, precisions, errors.

One tiny checkpoint is trained per module and each precision is exported once (a dynamo
export takes seconds on a CPU); the tests share them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import CONF, TINY, assets_dir, load_train_script

import fastnst
from fastnst.nn import export
from fastnst.nn.export import TOLERANCE, ExportError, export_onnx
from fastnst.nn.images import load_image
from fastnst.photos import sample_photos_dir
from fastnst.training.module import StyleTransferModule

ON = np.array([1.0], np.float32)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def input_shapes(sess: ort.InferenceSession) -> dict[str, list]:
    """Every input: onnxruntime lists the initializer-backed (optional) ones separately."""
    return {i.name: i.shape for i in [*sess.get_inputs(), *sess.get_overridable_initializers()]}


def stylize(sess: ort.InferenceSession, image: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
    return sess.run(["stylized"], {"image": np.ascontiguousarray(image, np.float32), **inputs})[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".export-*")) if folder.exists() else []


# -- shared artefacts: one checkpoint, one export per precision ------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a real 2-step TINY training run."""
    from hydra import compose, initialize_config_dir

    with pytest.MonkeyPatch.context() as mp:
        if "FASTNST_VGG_WEIGHTS" not in os.environ:
            base = assets_dir()
            if base is None or not (base / "weights" / "vgg19_features_caffe-d2188631.pth").is_file():
                pytest.skip("VGG19 weights not found: set FASTNST_ASSETS or put the assets in ../shared/assets")
            mp.setenv("FASTNST_VGG_WEIGHTS", str(base / "weights"))
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[*TINY, "trainer.max_steps=2"])
        run_dir = tmp_path_factory.mktemp("run")
        load_train_script().train(cfg, run_dir)
    path = run_dir / "last.ckpt"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def hparams(checkpoint: Path) -> dict:
    return dict(StyleTransferModule.load_from_checkpoint(checkpoint, map_location="cpu").hparams)


@pytest.fixture(scope="module")
def net(checkpoint: Path) -> torch.nn.Module:
    return StyleTransferModule.load_from_checkpoint(checkpoint, map_location="cpu").net.eval()


def _export(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, precision: str):
    folder = tmp_path_factory.mktemp(f"export_{precision}")
    report = export_onnx(checkpoint, folder / f"model_{precision}.onnx", precision=precision)
    assert leftovers(folder) == []
    return report


@pytest.fixture(scope="module")
def fp32(checkpoint, tmp_path_factory) -> export.ExportReport:
    return _export(checkpoint, tmp_path_factory, "fp32")


@pytest.fixture(scope="module")
def fp16(checkpoint, tmp_path_factory) -> export.ExportReport:
    return _export(checkpoint, tmp_path_factory, "fp16")


@pytest.fixture(scope="module")
def int8(checkpoint, tmp_path_factory) -> export.ExportReport:
    return _export(checkpoint, tmp_path_factory, "int8")


@pytest.fixture(scope="module")
def fp32_session(fp32) -> ort.InferenceSession:
    return session(fp32.path)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo, 128 px short side, width cut to 160 (a multiple of 4)."""
    return load_image(sample_photos_dir() / "coffee.jpg", size=128).numpy()[:, :, :, :160].copy()


# -- fp32: the graph ----------------------------------------------------------------------------


def test_fp32_export_is_a_valid_model(fp32):
    assert fp32.path.is_file() and fp32.precision == "fp32"
    assert fp32.size_bytes == fp32.path.stat().st_size > 0
    model = onnx.load(str(fp32.path))
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}
    assert opset.get("", opset.get("ai.onnx", 0)) >= 17
    assert fp32.max_abs_error < 1e-4
    assert fp32.max_abs_error == max(fp32.errors_by_size.values())
    assert {"2x257x383", "1x9x13"} <= set(fp32.errors_by_size)  # odd sizes are verified
    assert 0 <= fp32.mean_abs_error < 1e-4


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_fp32_inputs_and_outputs(fp32, fp32_session):
    graph = onnx.load(str(fp32.path)).graph
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    assert list(inputs) == ["image", "norm_stats", "use_norm_stats"]
    assert list(outputs) == ["stylized", "norm_stats_out"]
    float32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == float32 for v in [*inputs.values(), *outputs.values()])

    batch, channels, height, width = _dims(inputs["image"])
    assert channels == 3
    assert all(isinstance(d, str) and d for d in (batch, height, width))
    assert len({batch, height, width}) == 3  # three independent symbols
    stats_size = _dims(inputs["norm_stats"])
    assert stats_size[0] == 1 and isinstance(stats_size[1], int) and stats_size[1] > 0
    assert _dims(inputs["use_norm_stats"]) == [1]

    out = _dims(outputs["stylized"])
    assert len(out) == 4 and out[0] == batch and out[1] == 3
    assert all(isinstance(d, str) and d for d in out[2:])
    assert _dims(outputs["norm_stats_out"]) == [batch, stats_size[1]]

    # onnxruntime sees the same interface: image required, the other two optional (with defaults).
    assert [i.name for i in fp32_session.get_inputs()] == ["image"]
    assert input_shapes(fp32_session) == {
        "image": [batch, 3, height, width],
        "norm_stats": [1, stats_size[1]],
        "use_norm_stats": [1],
    }
    assert [o.name for o in fp32_session.get_outputs()] == ["stylized", "norm_stats_out"]


def test_plain_run_with_image_only(fp32_session, photo):
    stylized, stats = fp32_session.run(None, {"image": photo})
    assert stylized.shape == photo.shape and stylized.dtype == np.float32
    assert np.isfinite(stylized).all() and stylized.min() >= 0 and stylized.max() <= 1
    assert stats.shape == tuple(input_shapes(fp32_session)["norm_stats"])
    # The defaults mean "compute the statistics over the image".
    explicit = stylize(fp32_session, photo, norm_stats=np.zeros_like(stats), use_norm_stats=np.array([0.0], np.float32))
    np.testing.assert_array_equal(explicit, stylized)


# -- fp32: parity with PyTorch ----------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(257, 383), (9, 13), (31, 33), (100, 8), (64, 64)])
def test_parity_with_pytorch(fp32_session, net, height, width):
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height * 1000 + width))
    with torch.no_grad():
        expected = net(image).numpy()
    got = stylize(fp32_session, image.numpy())
    assert got.shape == (1, 3, height, width)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_dynamic_batch(fp32_session, net):
    images = torch.rand(3, 3, 45, 37, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(images).numpy()
    for n in (1, 2, 3):
        got = stylize(fp32_session, images[:n].numpy())
        assert got.shape == (n, 3, 45, 37)
        np.testing.assert_allclose(got, expected[:n], rtol=0, atol=1e-4)
    # Each image of a batch is stylized on its own (instance norm: no mixing across the batch).
    batch, stats = fp32_session.run(None, {"image": images.numpy()})
    assert stats.shape[0] == 3
    for i in range(3):
        one, one_stats = fp32_session.run(None, {"image": images[i : i + 1].numpy()})
        np.testing.assert_allclose(batch[i : i + 1], one, rtol=0, atol=1e-5)
        np.testing.assert_allclose(stats[i : i + 1], one_stats, rtol=1e-4, atol=1e-6)


# -- metadata --------------------------------------------------------------------------------


def test_metadata(fp32, fp32_session, hparams):
    meta = {p.key: p.value for p in onnx.load(str(fp32.path)).metadata_props}
    assert meta["fastnst.style_name"] == "starry_night"
    assert meta["fastnst.image_size"] == "32"  # TINY: data.image_size=32
    assert meta["fastnst.version"] == fastnst.__version__
    assert meta["fastnst.precision"] == "fp32"
    for key in ("content_weight", "style_weight", "tv_weight"):
        assert float(meta[f"fastnst.{key}"]) == pytest.approx(float(hparams[key])), key
    assert int(meta["fastnst.norm_stats_size"]) == input_shapes(fp32_session)["norm_stats"][1]
    # Also visible through onnxruntime.
    assert fp32_session.get_modelmeta().custom_metadata_map["fastnst.style_name"] == "starry_night"


# -- external instance-norm statistics (seam-free tiling) ---------------------------------------


def test_given_stats_of_the_same_image_change_nothing(fp32_session, photo):
    full, stats = fp32_session.run(["stylized", "norm_stats_out"], {"image": photo})
    assert stats.shape[0] == 1 and np.isfinite(stats).all()
    again = stylize(fp32_session, photo, norm_stats=stats, use_norm_stats=ON)
    np.testing.assert_allclose(again, full, rtol=0, atol=1e-5)


def test_tile_with_full_image_stats_matches_full_image(fp32_session, photo):
    full, stats = fp32_session.run(["stylized", "norm_stats_out"], {"image": photo})
    # A tile aligned to the network's stride (4), as a tiler would cut it.
    top, left, h, w = 32, 48, 64, 80
    tile = photo[:, :, top : top + h, left : left + w]
    alone, tile_stats = fp32_session.run(None, {"image": np.ascontiguousarray(tile)})
    with_stats = stylize(fp32_session, tile, norm_stats=stats, use_norm_stats=ON)
    assert with_stats.shape == alone.shape == tile.shape
    assert not np.allclose(tile_stats, stats, atol=1e-3)  # the tile's own statistics differ...
    assert np.abs(with_stats - alone).max() > 1e-2  # ...and so do the results

    m = 16  # away from the tile border, where the tile lacks the surrounding context
    reference = full[:, :, top + m : top + h - m, left + m : left + w - m]
    err_alone = np.abs(alone[:, :, m:-m, m:-m] - reference).mean()
    err_stats = np.abs(with_stats[:, :, m:-m, m:-m] - reference).mean()
    assert err_stats * 3 <= err_alone, (err_stats, err_alone)
    assert err_stats < 0.01

    # The same statistics apply to every image of a batch of tiles.
    second = photo[:, :, 0:h, 0:w]
    batch = stylize(fp32_session, np.concatenate([tile, second]), norm_stats=stats, use_norm_stats=ON)
    np.testing.assert_allclose(batch[:1], with_stats, rtol=0, atol=1e-5)
    np.testing.assert_allclose(batch[1:], stylize(fp32_session, second, norm_stats=stats, use_norm_stats=ON), atol=1e-5)


# -- fp16 ------------------------------------------------------------------------------------


def _initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(onnx.numpy_helper.to_array(t).tobytes()) for t in model.graph.initializer)


def test_fp16_export(fp16, fp32, net):
    assert fp16.precision == "fp16" and fp16.path.is_file()
    model16, model32 = onnx.load(str(fp16.path)), onnx.load(str(fp32.path))
    onnx.checker.check_model(model16)
    # The weights halve. The whole file does not quite reach 0.6x for this tiny network: its
    # ~35 KB of graph structure (nodes, value_info) does not shrink, against ~140 KB of fp32 weights.
    assert _initializer_bytes(model16) <= 0.55 * _initializer_bytes(model32)
    assert fp16.size_bytes <= 0.7 * fp32.size_bytes
    assert fp16.max_abs_error <= TOLERANCE["fp16"]
    assert fp16.max_abs_error > 0  # really computed in half precision

    inits = {t.name: t for t in model16.graph.initializer}
    conv_weights = [n.input[1] for n in model16.graph.node if n.op_type == "Conv"]
    assert len(conv_weights) == 8  # 3 encoder + 2 residual (1 block) + 3 decoder convs
    assert all(inits[w].data_type == onnx.TensorProto.FLOAT16 for w in conv_weights)
    float32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == float32 for v in [*model16.graph.input, *model16.graph.output])
    meta = {p.key: p.value for p in model16.metadata_props}
    assert meta["fastnst.precision"] == "fp16"

    photo = load_image(sample_photos_dir() / "coffee.jpg", size=256)
    stylized, stats = session(fp16.path).run(None, {"image": photo.numpy()})
    assert stylized.dtype == np.float32 and stats.dtype == np.float32
    assert np.isfinite(stylized).all() and np.isfinite(stats).all()
    with torch.no_grad():
        expected = net(photo).numpy()
    assert np.abs(stylized - expected).max() <= TOLERANCE["fp16"]


# -- int8 ------------------------------------------------------------------------------------


def test_int8_export(int8, fp32):
    assert int8.precision == "int8" and int8.path.is_file()
    assert int8.size_bytes < fp32.size_bytes
    model = onnx.load(str(int8.path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert 0 < int8.mean_abs_error < 0.1
    assert int8.max_abs_error <= TOLERANCE["int8"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["fastnst.precision"] == "int8" and meta["fastnst.style_name"] == "starry_night"
    # The tiling inputs survive quantization.
    sess = session(int8.path)
    assert set(input_shapes(sess)) == {"image", "norm_stats", "use_norm_stats"}
    image = np.random.default_rng(0).random((2, 3, 40, 52), dtype=np.float32)
    stylized, stats = sess.run(None, {"image": image})
    assert stylized.shape == image.shape and np.isfinite(stylized).all()
    assert stats.shape == (2, int(meta["fastnst.norm_stats_size"]))


# -- failures --------------------------------------------------------------------------------


def _assert_failed_cleanly(error: pytest.ExceptionInfo, output: Path, *words: str) -> None:
    message = str(error.value)
    for word in words:
        assert word in message, message
    assert not output.exists()
    assert leftovers(output.parent) == []


def test_missing_checkpoint(tmp_path):
    output = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError) as error:
        export_onnx(tmp_path / "nope.ckpt", output)
    _assert_failed_cleanly(error, output, "nope.ckpt", "no such checkpoint")
    assert "\n" not in str(error.value)


def _not_a_checkpoint(tmp_path: Path, kind: str, checkpoint: Path) -> Path:
    path = tmp_path / "x.ckpt"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "text":
        path.write_text("hi\n")
    elif kind == "truncated":
        path.write_bytes(checkpoint.read_bytes()[:3000])
    elif kind == "other torch file":
        torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, path)
    else:  # a fastnst checkpoint whose settings name another network than its weights
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state["hyper_parameters"] = {**state["hyper_parameters"], "num_residual_blocks": 2}
        torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("random bytes", "not a readable checkpoint (not a torch file)"),
        ("text", "not a readable checkpoint (not a torch file)"),  # once "(KeyError: 105)"
        ("truncated", "not a readable checkpoint (a damaged or truncated torch file)"),
        ("other torch file", "not a fastnst training checkpoint (no state_dict and hyper_parameters)"),
        ("other network", "its weights do not fit the network its settings name"),
    ],
)
def test_not_a_checkpoint_is_one_line_naming_the_file(tmp_path, checkpoint, kind, words):
    output = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError) as error:
        export_onnx(_not_a_checkpoint(tmp_path, kind, checkpoint), output)
    _assert_failed_cleanly(error, output, "x.ckpt", words)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"precision": "fp8"}, ("precision=fp8", "fp32")),
        ({"opset": 13}, ("opset=13", "17")),
        ({"opset": 99}, ("opset=99", "the installed onnx knows opsets up to")),
    ],
)
def test_bad_settings(checkpoint, tmp_path, kwargs, words):
    output = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError) as error:
        export_onnx(checkpoint, output, **kwargs)
    _assert_failed_cleanly(error, output, *words)
    assert "\n" not in str(error.value)


def test_a_model_or_a_folder_given_as_the_checkpoint(fp32, tmp_path):
    # Said before the output is checked: the default output of a model named as the checkpoint is itself.
    for given, words in [
        (fp32.path, "is an exported ONNX model, not a training checkpoint"),
        (tmp_path, "is a folder"),
    ]:
        output = tmp_path / "out" / "model.onnx"
        with pytest.raises(ExportError) as error:
            export_onnx(given, output)
        _assert_failed_cleanly(error, output, str(given), words)
        assert "\n" not in str(error.value)


def test_an_interrupted_export_leaves_no_new_folders(net, hparams, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_network(net, hparams, tmp_path / "new" / "deeper" / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_summary_of_an_unverified_export():
    report = export.ExportReport(Path("m.onnx"), "fp32", 210_000, 0.0, 0.0, {}, verified=False)
    assert report.summary() == "m.onnx (fp32, 0.21 MB): not checked against PyTorch (--no-verify)"
    report = export.ExportReport(Path("m.onnx"), "fp16", 100_000, 1e-3, 2e-4, {"1x64x64": 1e-3})
    assert report.summary() == (
        "m.onnx (fp16, 0.10 MB): |onnxruntime - torch| max 1.00e-03 on random images of sizes 1x64x64, "
        "mean 2.00e-04 on a photo"
    )


def test_verification_failure_writes_nothing(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(export.TOLERANCE, "fp32", 0.0)
    # One export (they take seconds): a file already at the output path is left as it was,
    # so nothing at all was written there.
    output = tmp_path / "model.onnx"
    output.write_bytes(b"previous model")
    with pytest.raises(ExportError) as error:
        export_onnx(checkpoint, output)
    message = str(error.value)
    assert "differs from PyTorch" in message and "model.onnx" in message and "\n" not in message
    assert output.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temp dirs or files


# -- export at the end of training -------------------------------------------------------------


def test_training_exports_onnx(run_training, tmp_path, caplog):
    with caplog.at_level("INFO", logger="fastnst.train"):
        run_dir = run_training(tmp_path / "run", ["trainer.max_steps=1", "export.onnx=true"])
    path = run_dir / "starry_night.onnx"
    assert path.is_file()
    assert f"stylize with it: fastnst infer --model {path} photo.jpg" in caplog.messages  # the next step
    assert leftovers(run_dir) == []
    onnx.checker.check_model(onnx.load(str(path)))
    net = StyleTransferModule.load_from_checkpoint(run_dir / "last.ckpt", map_location="cpu").net.eval()
    image = torch.rand(1, 3, 40, 44, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net(image).numpy()
    np.testing.assert_allclose(stylize(session(path), image.numpy()), expected, rtol=0, atol=1e-4)
    meta = session(path).get_modelmeta().custom_metadata_map
    assert meta["fastnst.precision"] == "fp32" and meta["fastnst.style_name"] == "starry_night"


# -- the light network -------------------------------------------------------------------------


def test_light_network_exports_and_tiles(tmp_path, photo):
    """The light network (pixel shuffle, depthwise convs) exports, verifies and takes whole-image stats."""
    from fastnst.nn.export import export_network
    from fastnst.nn.transformer_net import build_network

    torch.manual_seed(0)
    net = build_network("light").eval()
    hparams = {"architecture": "light", "width": 1.0, "num_residual_blocks": 3, "style_name": "light_test"}
    report = export_network(net, hparams, tmp_path / "light.onnx")  # verifies at odd sizes; raises if off
    assert report.max_abs_error < TOLERANCE["fp32"]
    sess = session(report.path)
    assert sess.get_modelmeta().custom_metadata_map["fastnst.architecture"] == "light"
    full, stats = sess.run(["stylized", "norm_stats_out"], {"image": photo})
    with torch.no_grad():
        expected = net(torch.from_numpy(photo)).numpy()
    np.testing.assert_allclose(full, expected, atol=1e-4)
    tile = np.ascontiguousarray(photo[:, :, 32:96, 48:128])
    with_stats = stylize(sess, tile, norm_stats=stats, use_norm_stats=ON)
    err = np.abs(with_stats[:, :, 16:-16, 16:-16] - full[:, :, 48:80, 64:112]).mean()
    assert err < 0.01


def test_training_settings_are_the_metadata_without_the_export_facts():
    from fastnst.nn.export import _metadata, training_settings

    hparams = {"style_name": "wave", "width": 0.5, "num_residual_blocks": 3, "style_layers": {"relu1_1": 1.0}}
    meta = _metadata(hparams, "fp32", 768)
    assert meta["fastnst.precision"] == "fp32" and meta["fastnst.norm_stats_size"] == "768"
    assert training_settings({**meta, "other.key": "x"}) == {**hparams, "architecture": "johnson"}
    # An export with --style-maps marks the graph, not the training: not a setting either.
    assert training_settings({**meta, "fastnst.style_maps": "true"}) == {**hparams, "architecture": "johnson"}


def test_cli_exports_a_shipped_base_by_name(tmp_path, monkeypatch):
    import onnx

    from fastnst.cli import main

    monkeypatch.chdir(tmp_path)  # no file named six_styles here: the name is the shipped base's
    assert main(["export", "six_styles", "--no-verify"]) == 0
    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "six_styles.onnx")).metadata_props}
    assert "wave" in metadata["fastnst.style_names"] and "udnie" in metadata["fastnst.style_names"]


def test_a_dilated_run_exports_and_resumes_as_the_network_it_trained(tmp_path, run_training, compose):
    """model.dilation is not in the tensors' shapes: the checkpoint's settings carry it to the export, and a
    resume with another dilation is refused in one line."""
    from fastnst.errors import FastNSTError
    from fastnst.training.checks import validate_config

    run = run_training(tmp_path / "run", ["model.dilation=2", "trainer.max_steps=2"])
    module = StyleTransferModule.load_from_checkpoint(run / "last.ckpt", map_location="cpu")
    net, hparams = export.load_network(run / "last.ckpt")
    assert hparams["dilation"] == 2 and net.dilation == 2 and module.net.dilation == 2
    image = torch.rand(1, 3, 40, 36)
    with torch.no_grad():
        torch.testing.assert_close(net(image), module.net.eval()(image))
    result = export_onnx(run / "last.ckpt", tmp_path / "dilated.onnx")  # checks onnxruntime against PyTorch
    assert result.path.is_file()
    overrides = [*TINY, "model.dilation=1", f"ckpt_path={run / 'last.ckpt'}", "trainer.max_steps=6"]
    with pytest.raises(FastNSTError, match=r"num_residual_blocks=1, dilation=2, the config's is .*blocks=1; resume"):
        validate_config(compose(overrides))


@pytest.mark.parametrize("architecture", ["light", "johnson"])
def test_the_largest_dilation_the_schema_allows_stylizes_the_smallest_photo(tmp_path, architecture):
    """Stylizer.MIN_SIDE and model.dilation's range must agree: a reflection pad of the dilation needs a
    feature map wider than it, so a 1x1 photo (without the margin too) has to come back from the widest
    dilation the schema lets a run train."""
    import dataclasses

    from fastnst.nn.transformer_net import build_network
    from fastnst.runtime.stylizer import Stylizer
    from fastnst.training.config import ModelConfig

    widest = next(f for f in dataclasses.fields(ModelConfig) if f.name == "dilation").metadata["max"]
    torch.manual_seed(0)
    net = build_network(architecture, 0.25, 1, dilation=widest)
    hparams = {"architecture": architecture, "width": 0.25, "num_residual_blocks": 1, "dilation": widest}
    model = export.export_network(net, hparams, tmp_path / "widest.onnx").path  # verified against PyTorch
    for margin in (0, 16):
        stylizer = Stylizer(model, margin=margin)
        for h, w in [(1, 1), (2, 7), (15, 16)]:
            out = stylizer(np.full((h, w, 3), 0.5, np.float32))
            assert out.shape == (h, w, 3) and np.isfinite(out).all(), (margin, h, w)
