"""Tests of fastnst.nn.vgg: layer naming, truncation, input conventions and weights loading.

The weights tests use the real files of the shared assets folder (``$FASTNST_ASSETS``,
else ``../shared/assets`` next to the repository) and the real download code, served
through ``file://`` URLs; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from conftest import asset
from torch import nn

from fastnst.nn.images import load_image
from fastnst.nn.vgg import (
    CAFFE_PTH_NAME,
    LAYER_NAMES,
    SOURCES,
    VGG,
    VGG16_PTH_NAME,
    VGG19,
    WEIGHTS_ENV,
    VGGWeightsError,
    check_weights_serve,
    conv_indices,
    download_caffe_weights,
    download_torchvision_weights,
    guess_convention,
    hub_checkpoint_dir,
    layer_names,
    load_vgg19_state_dict,
    load_vgg_state_dict,
    pretrained_vgg,
    save_caffe_weights_fp16,
    state_architecture,
    vgg19,
)

VGG19_WEIGHTS = "vgg19_features_caffe-d2188631.pth"
VGG16_WEIGHTS = "vgg16_features_to_relu4_3_caffe_fp16-16d60095.pth"
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG16_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


@pytest.fixture(scope="module")
def weights_path() -> Path:
    return asset(f"weights/{VGG19_WEIGHTS}")


@pytest.fixture(scope="module")
def real_state(weights_path: Path) -> dict[str, torch.Tensor]:
    return torch.load(weights_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real photo, 64x64 (short side resized to 64, then cropped)."""
    image = load_image(asset("content/tubingen.jpg"), size=64)
    return image[:, :, :64, :64].contiguous()


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache and no $FASTNST_VGG_WEIGHTS."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    # Guard: torch.hub.set_dir() elsewhere would make TORCH_HOME ineffective.
    assert hub_checkpoint_dir() == home / "hub" / "checkpoints"
    return home


def assert_state_equal(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        assert torch.equal(got[key], value), key


# ---------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------


def test_layer_names() -> None:
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert LAYER_NAMES[-2:] == ["relu5_4", "pool5"]
    assert len(set(LAYER_NAMES)) == 37
    assert [LAYER_NAMES.index(f"conv{n}") for n in ("3_1", "4_1", "5_1")] == [10, 19, 28]


def test_truncated_after_deepest_layer() -> None:
    model = VGG19(["relu2_2"])
    assert len(model.features) == LAYER_NAMES.index("relu2_2") + 1 == 9
    # Order of the requested names does not matter: the deepest one decides.
    assert len(VGG19(["relu3_1", "relu1_1"]).features) == LAYER_NAMES.index("relu3_1") + 1
    assert len(VGG19(["pool5"]).features) == 37


def test_forward_returns_requested_layers() -> None:
    torch.manual_seed(0)
    model = VGG19(["relu1_1", "conv2_1", "pool2"])
    out = model(torch.rand(2, 3, 16, 16))
    assert list(out) == ["relu1_1", "conv2_1", "pool2"]
    assert out["relu1_1"].shape == (2, 64, 16, 16)
    assert out["conv2_1"].shape == (2, 128, 8, 8)
    assert out["pool2"].shape == (2, 128, 4, 4)
    # A conv activation is returned before its ReLU (the ReLU is not in place).
    assert (out["conv2_1"] < 0).any()
    assert (out["relu1_1"] >= 0).all()


def test_unknown_layer_raises_naming_valid_names() -> None:
    with pytest.raises(ValueError, match="relu9_9") as info:
        VGG19(["relu1_1", "relu9_9"])
    message = str(info.value)
    for name in ("conv1_1", "relu4_2", "pool5"):
        assert name in message
    with pytest.raises(ValueError):
        VGG19([])


def test_bad_convention_and_pooling_raise() -> None:
    with pytest.raises(ValueError, match="convention"):
        VGG19(["relu1_1"], convention="tf")
    with pytest.raises(ValueError, match="pooling"):
        VGG19(["relu1_1"], pooling="min")


def test_pooling_avg_builds_avgpool() -> None:
    avg = VGG19(["pool3"], pooling="avg")
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.features) == 3
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.features)
    mx = VGG19(["pool3"])
    assert sum(isinstance(m, nn.MaxPool2d) for m in mx.features) == 3
    assert not any(isinstance(m, nn.AvgPool2d) for m in mx.features)
    # The pools sit where LAYER_NAMES says.
    for index, name in enumerate(LAYER_NAMES[: len(avg.features)]):
        assert isinstance(avg.features[index], nn.AvgPool2d) == name.startswith("pool")


def test_frozen_and_stays_in_eval_mode() -> None:
    model = VGG19(["relu2_1"])
    assert all(not p.requires_grad for p in model.parameters())
    assert not model.training
    model.train()
    assert not model.training
    assert not any(m.training for m in model.modules())
    # Also when a parent module switches to training mode.
    parent = nn.Sequential(nn.Conv2d(3, 3, 1), model)
    parent.train()
    assert parent.training and parent[0].training
    assert not any(m.training for m in model.modules())


def test_gradient_flows_to_input() -> None:
    torch.manual_seed(0)
    model = VGG19(["relu2_1"])
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(image)["relu2_1"].square().mean().backward()
    assert image.grad is not None
    assert torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_forward_rejects_non_rgb() -> None:
    model = VGG19(["relu1_1"])
    with pytest.raises(ValueError, match="RGB"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        model(torch.rand(3, 8, 8))


def test_state_dict_keys_match_torchvision_layout() -> None:
    keys = set(VGG19(["relu5_4"]).state_dict())
    expected = {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    assert keys == expected
    assert len(keys) == 32


def test_convention_buffers_not_in_state_dict() -> None:
    model = VGG19(["relu1_1"])
    assert set(model.state_dict()) == {"features.0.weight", "features.0.bias"}


# ---------------------------------------------------------------------------
# Input conventions
# ---------------------------------------------------------------------------


def test_normalize_caffe() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 6)
    before = x.clone()
    got = VGG19(["relu1_1"], convention="caffe").normalize(x)
    expected = x[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(got, expected)
    assert torch.equal(x, before)
    # A known pixel: pure red (RGB 1, 0, 0) -> BGR (0, 0, 255) minus the mean.
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0
    out = VGG19(["relu1_1"]).normalize(red).flatten()
    torch.testing.assert_close(out, torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_normalize_torchvision() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 6)
    before = x.clone()
    got = VGG19(["relu1_1"], convention="torchvision").normalize(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(got, (x - mean) / std)
    assert torch.equal(x, before)


def test_forward_applies_convention() -> None:
    torch.manual_seed(0)
    model = VGG19(["conv1_1"], convention="caffe")
    x = torch.rand(1, 3, 8, 8)
    expected = nn.functional.conv2d(model.normalize(x), model.features[0].weight, model.features[0].bias, padding=1)
    torch.testing.assert_close(model(x)["conv1_1"], expected)


# ---------------------------------------------------------------------------
# Real weights
# ---------------------------------------------------------------------------


def test_real_weights_file_layout(real_state: dict[str, torch.Tensor]) -> None:
    assert set(real_state) == {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    assert real_state["features.0.weight"].shape == (64, 3, 3, 3)
    assert real_state["features.34.weight"].shape == (512, 512, 3, 3)


def test_vgg19_loads_real_weights(weights_path: Path, real_state: dict[str, torch.Tensor], photo: torch.Tensor) -> None:
    model = vgg19(["relu4_2"], weights=str(weights_path))
    assert model.convention == "caffe"
    assert len(model.features) == LAYER_NAMES.index("relu4_2") + 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, real_state[key]), key
    assert all(not p.requires_grad for p in model.parameters())

    with torch.no_grad():
        act = model(photo)["relu4_2"]
    assert act.shape == (1, 512, 8, 8)
    assert torch.isfinite(act).all()
    # Non-trivial: many channels respond, on the Caffe 0-255 feature scale.
    assert (act > 0).float().mean() > 0.05
    assert act.amax() > 10
    assert act.std() > 1

    # Different photos give different features; a constant image gives different ones again.
    with torch.no_grad():
        flipped = model(photo.flip(-1))["relu4_2"]
        grey = model(torch.full_like(photo, 0.5))["relu4_2"]
    assert not torch.allclose(act, flipped, rtol=0.1, atol=1.0)
    assert not torch.allclose(act, grey, rtol=0.1, atol=1.0)


def test_real_weights_caffe_convention_matches_folded_first_conv(
    real_state: dict[str, torch.Tensor], photo: torch.Tensor
) -> None:
    """SOURCES.md: flipping the input channels of conv1_1, scaling by 255 and folding the mean into
    the bias gives a conv on RGB [0, 1] input equal to the Caffe-convention conv (except at the border)."""
    model = VGG19(["conv1_1"], convention="caffe")
    model.load_state_dict({k: real_state[k] for k in model.state_dict()})
    weight, bias = real_state["features.0.weight"], real_state["features.0.bias"]
    mean_bgr = torch.tensor([103.939, 116.779, 123.68])
    folded_weight = weight.flip(1) * 255.0
    folded_bias = bias - (weight * mean_bgr.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    with torch.no_grad():
        got = model(photo)["conv1_1"]
        expected = nn.functional.conv2d(photo, folded_weight, folded_bias, padding=1)
    torch.testing.assert_close(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------
# Weights loading: environment variable, torch hub, Keras h5 conversion
# ---------------------------------------------------------------------------


def test_env_var_folder(
    weights_path: Path, real_state: dict[str, torch.Tensor], torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_path.parent))
    assert_state_equal(load_vgg19_state_dict("caffe", download=False), real_state)


def test_env_var_file(
    weights_path: Path, real_state: dict[str, torch.Tensor], torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_path))
    assert_state_equal(load_vgg19_state_dict("caffe", download=False), real_state)


def test_env_var_missing_path_raises(tmp_path: Path, torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere" / "vgg.pth"))
    with pytest.raises(VGGWeightsError, match=WEIGHTS_ENV):
        load_vgg19_state_dict("caffe", download=False)


def test_hub_cache_file_is_found(weights_path: Path, real_state: dict[str, torch.Tensor], torch_home: Path) -> None:
    cache = hub_checkpoint_dir()
    cache.mkdir(parents=True)
    shutil.copyfile(weights_path, cache / weights_path.name)
    assert_state_equal(load_vgg19_state_dict("caffe", download=False), real_state)


def test_no_weights_offline_raises_naming_hub_and_env(torch_home: Path) -> None:
    with pytest.raises(VGGWeightsError) as info:
        load_vgg19_state_dict("caffe", download=False)
    message = str(info.value)
    assert str(torch_home / "hub" / "checkpoints") in message
    assert WEIGHTS_ENV in message
    assert CAFFE_PTH_NAME in message


def test_missing_weights_file_raises(tmp_path: Path) -> None:
    with pytest.raises(VGGWeightsError, match="no such file"):
        load_vgg19_state_dict(str(tmp_path / "vgg19_caffe.pth"))


def test_unreadable_weights_file_raises(tmp_path: Path) -> None:
    bad = tmp_path / "vgg19_caffe.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(VGGWeightsError, match="cannot be read"):
        load_vgg19_state_dict(str(bad))
    other = tmp_path / "other_caffe.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(VGGWeightsError, match=r"features\.0\.weight"):
        load_vgg19_state_dict(str(other))


def test_download_torchvision_weights_via_hub(
    weights_path: Path, real_state: dict[str, torch.Tensor], torch_home: Path
) -> None:
    # The file name carries the sha256 prefix (d2188631), so torch.hub checks the hash for real.
    state = download_torchvision_weights(url=weights_path.resolve().as_uri(), progress=False)
    assert_state_equal(state, real_state)
    cached = torch_home / "hub" / "checkpoints" / VGG19_WEIGHTS
    assert cached.is_file()
    assert cached.stat().st_size == weights_path.stat().st_size


def test_download_torchvision_weights_bad_hash_raises(weights_path: Path, tmp_path: Path, torch_home: Path) -> None:
    src = tmp_path / "served" / VGG19_WEIGHTS
    src.parent.mkdir()
    data = bytearray(weights_path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    src.write_bytes(bytes(data))
    del data
    with pytest.raises(VGGWeightsError, match="hash"):
        download_torchvision_weights(url=src.resolve().as_uri(), progress=False)
    assert not (torch_home / "hub" / "checkpoints" / VGG19_WEIGHTS).exists()


def test_download_torchvision_weights_unreachable_raises(tmp_path: Path, torch_home: Path) -> None:
    missing = tmp_path / "absent" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(VGGWeightsError, match=WEIGHTS_ENV):
        download_torchvision_weights(url=missing.as_uri(), progress=False)


@pytest.fixture(scope="module")
def keras_h5(real_state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A Keras-layout VGG19 ``notop`` h5 file built from the real weights, and its md5."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path_factory.mktemp("keras") / "vgg19_notop.h5"
    with h5py.File(path, "w") as f:
        for index, name in enumerate(LAYER_NAMES):
            if not name.startswith("conv"):
                continue
            block, conv = name[4:].split("_")
            group_name = f"block{block}_conv{conv}"
            group = f.create_group(group_name)
            kernel_name, bias_name = f"{group_name}/kernel:0", f"{group_name}/bias:0"
            group.attrs["weight_names"] = [kernel_name.encode(), bias_name.encode()]
            weight = real_state[f"features.{index}.weight"]
            group.create_dataset(kernel_name, data=weight.permute(2, 3, 1, 0).contiguous().numpy())
            group.create_dataset(bias_name, data=real_state[f"features.{index}.bias"].numpy())
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_caffe_weights_converts_and_caches(
    keras_h5: tuple[Path, str], real_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    h5_src, md5 = keras_h5
    served = tmp_path / "served.h5"
    shutil.copyfile(h5_src, served)
    cache = tmp_path / "hub"

    target = download_caffe_weights(url=served.as_uri(), md5=md5, cache_dir=cache, progress=False)
    assert target == cache / CAFFE_PTH_NAME == cache / "vgg19_features_caffe.pth"
    assert target.is_file()
    converted = torch.load(target, map_location="cpu", weights_only=True)
    assert_state_equal(converted, real_state)
    # Only the converted file stays in the cache (no h5, no temporary files).
    assert sorted(p.name for p in cache.iterdir()) == [CAFFE_PTH_NAME]

    # A second call finds the converted file and downloads nothing.
    served.unlink()
    mtime = target.stat().st_mtime_ns
    again = download_caffe_weights(url=served.as_uri(), md5=md5, cache_dir=cache, progress=False)
    assert again == target
    assert target.stat().st_mtime_ns == mtime


def test_download_caffe_weights_wrong_md5(keras_h5: tuple[Path, str], tmp_path: Path) -> None:
    h5_src, md5 = keras_h5
    wrong = "0" * 32
    assert wrong != md5
    cache = tmp_path / "hub"
    with pytest.raises(VGGWeightsError, match="md5") as info:
        download_caffe_weights(url=h5_src.as_uri(), md5=wrong, cache_dir=cache, progress=False)
    assert md5 in str(info.value)
    assert not (cache / CAFFE_PTH_NAME).exists()
    assert list(cache.rglob("*.pth")) == []
    assert list(cache.iterdir()) == []  # the temporary download folder is gone too


def test_download_caffe_weights_unreachable_raises(tmp_path: Path, torch_home: Path) -> None:
    with pytest.raises(VGGWeightsError, match=WEIGHTS_ENV):
        download_caffe_weights(url=(tmp_path / "absent.h5").as_uri(), cache_dir=tmp_path / "hub", progress=False)
    assert not (tmp_path / "hub" / CAFFE_PTH_NAME).exists()


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ("caffe", "caffe"),
        ("torchvision", "torchvision"),
        ("x/vgg19-dcbb9e9d.pth", "torchvision"),
        ("foo_caffe.pth", "caffe"),
        ("/some/dir/VGG19_Features_CAFFE.pth", "caffe"),
        ("vgg16", "caffe"),
        ("x/vgg16_features_to_relu4_3_caffe_fp16-16d60095.pth", "caffe"),
        ("x/vgg16-397923af.pth", "torchvision"),
    ],
)
def test_guess_convention(weights: str, expected: str) -> None:
    assert guess_convention(weights) == expected


@pytest.mark.parametrize("weights", ["weights.pth", "x/vgg19.pth", "vgg19-dcbb9e9d.pt"])
def test_guess_convention_unknown_raises(weights: str) -> None:
    with pytest.raises(VGGWeightsError, match="convention"):
        guess_convention(weights)


def test_save_caffe_weights_fp16(weights_path: Path, photo: torch.Tensor, tmp_path: Path) -> None:
    out = save_caffe_weights_fp16(tmp_path / "w.pth", up_to="relu5_1", weights=str(weights_path))
    assert out == tmp_path / "w.pth"
    saved = torch.load(out, map_location="cpu", weights_only=True)
    expected_indices = [i for i in CONV_INDICES if i <= 28]
    assert sorted(saved) == sorted(f"features.{i}.{p}" for i in expected_indices for p in ("weight", "bias"))
    assert "features.30.weight" not in saved
    assert all(v.dtype == torch.float16 for v in saved.values())
    assert out.stat().st_size < 0.5 * weights_path.stat().st_size

    half = vgg19(["relu5_1"], weights=str(out), convention="caffe")
    full = vgg19(["relu5_1"], weights=str(weights_path))
    assert all(p.dtype == torch.float32 for p in half.parameters())
    with torch.no_grad():
        a = half(photo)["relu5_1"]
        b = full(photo)["relu5_1"]
    assert torch.isfinite(a).all()
    assert b.norm() > 0
    relative = ((a - b).norm() / b.norm()).item()
    assert relative < 1e-2
    assert not torch.equal(a, b)  # the copy really is fp16

    # The truncated copy cannot serve a deeper layer.
    with pytest.raises(VGGWeightsError, match="missing"):
        vgg19(["relu5_2"], weights=str(out), convention="caffe")


def test_env_file_of_the_wrong_convention_is_refused(monkeypatch, vgg_weights_file):
    from fastnst.nn.vgg import VGGWeightsError, load_vgg19_state_dict

    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(vgg_weights_file))
    with pytest.raises(VGGWeightsError, match="holds caffe weights"):
        load_vgg19_state_dict("torchvision", download=False)


# ---------------------------------------------------------------------------
# VGG16 (configuration D): the original network of Johnson et al. and pytorch/examples
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg16_path() -> Path:
    """The real VGG16 file (SOURCES.md): conv1_1..conv4_3, fp16, Caffe convention."""
    return asset(f"weights/{VGG16_WEIGHTS}")


@pytest.fixture(scope="module")
def vgg16_state(vgg16_path: Path) -> dict[str, torch.Tensor]:
    return torch.load(vgg16_path, map_location="cpu", weights_only=True)


def test_vgg16_layer_names() -> None:
    names = layer_names("vgg16")
    assert len(names) == 31 and len(set(names)) == 31
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-2:] == ["relu5_3", "pool5"]
    assert [names.index(n) for n in ("conv3_1", "conv3_3", "conv4_1", "relu4_3", "conv5_1")] == [10, 14, 17, 22, 24]
    assert conv_indices("vgg16") == VGG16_CONV_INDICES
    assert "relu3_4" not in names and "relu5_4" not in names
    # VGG19 is unchanged, and its names are those of LAYER_NAMES.
    assert layer_names("vgg19") == layer_names() == LAYER_NAMES
    assert conv_indices("vgg19") == CONV_INDICES
    with pytest.raises(ValueError, match="vgg16, vgg19"):
        layer_names("vgg11")


def test_vgg16_network_layout_and_names() -> None:
    model = VGG(["relu5_3"], architecture="vgg16")
    assert model.architecture == "vgg16" and model.layer_names == layer_names("vgg16")
    assert set(model.state_dict()) == {f"features.{i}.{p}" for i in VGG16_CONV_INDICES for p in ("weight", "bias")}
    assert len(VGG(["relu4_3", "relu1_2"], architecture="vgg16").features) == 23
    for index, name in enumerate(model.layer_names[: len(model.features)]):
        assert isinstance(model.features[index], nn.MaxPool2d) == name.startswith("pool")
        assert isinstance(model.features[index], nn.Conv2d) == name.startswith("conv")
    # VGG19 stays the default, and the VGG19 class builds nothing else.
    assert VGG(["relu1_1"]).architecture == VGG19(["relu1_1"]).architecture == "vgg19"
    with pytest.raises(TypeError):
        VGG19(["relu1_1"], architecture="vgg16")


def test_vgg16_unknown_layer_lists_its_own_names() -> None:
    with pytest.raises(ValueError, match=r"unknown VGG16 layer\(s\) \['relu3_4'\]") as info:
        VGG(["relu2_2", "relu3_4"], architecture="vgg16")
    message = str(info.value)
    assert "\n" not in message
    assert "relu4_3" in message and "relu5_3" in message and "relu5_4" not in message


def test_vgg16_real_file_layout_and_known_values(vgg16_state: dict[str, torch.Tensor]) -> None:
    """SOURCES.md's probes of the Keras VGG16 weights; Keras w[h, w, in, out] is torch weight[out, in, h, w]."""
    kept = [i for i in VGG16_CONV_INDICES if i <= 21]
    assert set(vgg16_state) == {f"features.{i}.{p}" for i in kept for p in ("weight", "bias")}
    assert all(v.dtype == torch.float16 for v in vgg16_state.values())
    assert vgg16_state["features.17.weight"].shape == (512, 256, 3, 3)
    probes = [
        ("features.0.weight", (0, 0, 0, 0), 0.42947057),  # block1_conv1 w[0,0,0,0]
        ("features.0.bias", (25,), 0.7446502),  # block1_conv1 b[25]
        ("features.2.weight", (63, 63, 2, 2), 0.016082443),  # block1_conv2 w[2,2,63,63]
        ("features.5.bias", (1,), 0.06440781),  # block2_conv1 b[1]
    ]
    for key, index, expected in probes:
        got = vgg16_state[key][index].float().item()
        assert got == pytest.approx(expected, rel=1e-3), key


def test_vgg16_loads_real_weights(vgg16_path: Path, vgg16_state: dict[str, torch.Tensor], photo: torch.Tensor) -> None:
    # The named source (found through $FASTNST_VGG_WEIGHTS) and the file path give the same network.
    named = pretrained_vgg(["relu4_3", "relu2_2"], weights="vgg16", download=False)
    by_path = pretrained_vgg(["relu4_3", "relu2_2"], weights=str(vgg16_path))
    for model in (named, by_path):
        assert (model.architecture, model.convention) == ("vgg16", "caffe")
        assert len(model.features) == layer_names("vgg16").index("relu4_3") + 1
        assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
        for key, value in model.state_dict().items():
            assert torch.equal(value, vgg16_state[key].float()), key

    with torch.no_grad():
        out = named(photo)
        other = by_path(photo)
    assert set(out) == {"relu4_3", "relu2_2"}
    assert out["relu4_3"].shape == (1, 512, 8, 8)  # 512 channels, 1/8 of 64 px
    assert out["relu2_2"].shape == (1, 128, 32, 32)
    assert torch.isfinite(out["relu4_3"]).all()
    assert (out["relu4_3"] > 0).float().mean() > 0.05 and out["relu4_3"].amax() > 10  # Caffe 0-255 scale
    assert torch.equal(out["relu4_3"], other["relu4_3"])


def test_vgg16_state_dict_is_float32_and_its_architecture_is_told_by_its_keys(
    vgg16_path: Path, weights_path: Path, vgg16_state: dict[str, torch.Tensor]
) -> None:
    state = load_vgg_state_dict(str(vgg16_path))
    assert all(v.dtype == torch.float32 for v in state.values())
    assert state_architecture(state) == "vgg16"
    assert state_architecture(torch.load(weights_path, map_location="cpu", weights_only=True)) == "vgg19"
    # Up to conv3_3 (features.14) the two are the same network: the default decides.
    common = {k: v for k, v in vgg16_state.items() if int(k.split(".")[1]) <= 14}
    assert state_architecture(common) == "vgg19" and state_architecture(common, default="vgg16") == "vgg16"
    with pytest.raises(VGGWeightsError, match="neither VGG16's nor VGG19's"):
        state_architecture({"features.0.weight": 0, "features.3.weight": 0}, "odd.pth")


@pytest.mark.parametrize("layer", ["relu3_4", "relu5_1"])
def test_vgg16_truncated_file_refuses_missing_layers_in_one_line(vgg16_path: Path, layer: str) -> None:
    """relu3_4 is VGG19's only; relu5_1 is VGG16's but lies beyond the file's relu4_3."""
    with pytest.raises((ValueError, VGGWeightsError)) as info:
        pretrained_vgg(["relu2_2", layer], weights=str(vgg16_path))
    message = str(info.value)
    assert "\n" not in message
    assert str(vgg16_path) in message and layer in message
    if layer == "relu5_1":
        assert isinstance(info.value, VGGWeightsError)
        assert "deepest layer is pool4" in message  # the file reaches pool4, the layer after relu4_3
    # The start-up check says the same from the keys alone.
    with pytest.raises((ValueError, VGGWeightsError), match=layer):
        check_weights_serve(str(vgg16_path), ["relu2_2", layer])
    check_weights_serve(str(vgg16_path), ["relu4_3", "pool4"])  # what the file holds passes
    assert pretrained_vgg(["pool4"], weights=str(vgg16_path)).layers == ["pool4"]


def test_vgg19_builders_refuse_vgg16_weights(vgg16_path: Path) -> None:
    """The judge and fastnst optimize stay on VGG19."""
    for weights in (str(vgg16_path), "vgg16"):
        with pytest.raises(VGGWeightsError, match="are VGG16, but this needs VGG19"):
            vgg19(["relu2_2"], weights=weights)
    with pytest.raises(VGGWeightsError, match="are VGG16"):
        load_vgg19_state_dict(str(vgg16_path))


def test_vgg16_found_in_env_folder_hub_cache_and_refused_under_another_name(
    vgg16_path: Path, vgg16_state: dict[str, torch.Tensor], torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {k: v.float() for k, v in vgg16_state.items()}
    with pytest.raises(VGGWeightsError) as info:  # nothing local, no download
        load_vgg_state_dict("vgg16", download=False)
    assert VGG16_PTH_NAME in str(info.value) and "VGG16" in str(info.value)

    cache = hub_checkpoint_dir()
    cache.mkdir(parents=True)
    shutil.copyfile(vgg16_path, cache / vgg16_path.name)
    assert_state_equal(load_vgg_state_dict("vgg16", download=False), expected)

    monkeypatch.setenv(WEIGHTS_ENV, str(vgg16_path.parent))  # the folder holds both networks' files
    assert_state_equal(load_vgg_state_dict("vgg16", download=False), expected)
    assert "features.16.weight" in load_vgg_state_dict("caffe", download=False)

    monkeypatch.setenv(WEIGHTS_ENV, str(vgg16_path))
    assert_state_equal(load_vgg_state_dict("vgg16", download=False), expected)
    with pytest.raises(VGGWeightsError, match=r"holds vgg16 weights, but loss\.vgg_weights=caffe"):
        load_vgg_state_dict("caffe", download=False)


def test_download_vgg16_converts_the_keras_h5_into_the_hub_cache(
    vgg16_state: dict[str, torch.Tensor], tmp_path: Path, torch_home: Path
) -> None:
    """The Keras VGG16 notop layout (block{b}_conv{c}) through the same download, md5 and conversion as
    VGG19's: blocks 1-4 are the real weights, block 5 (not in the file) is seeded random."""
    h5py = pytest.importorskip("h5py")
    assert SOURCES["vgg16"].url.endswith("/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert SOURCES["vgg16"].md5 == "6d6bbae143d832006294945121d1f1fc"
    generator = torch.Generator().manual_seed(0)
    expected: dict[str, torch.Tensor] = {}
    for index in VGG16_CONV_INDICES:
        out_channels = 64 if index < 5 else 128 if index < 10 else 256 if index < 17 else 512
        in_channels = 3 if index == 0 else out_channels // 2 if index in (5, 10, 17) else out_channels
        for p, shape in (("weight", (out_channels, in_channels, 3, 3)), ("bias", (out_channels,))):
            key = f"features.{index}.{p}"
            expected[key] = vgg16_state[key].float() if key in vgg16_state else torch.randn(shape, generator=generator)
    h5_path = tmp_path / "vgg16_notop.h5"
    with h5py.File(h5_path, "w") as f:
        for index, name in enumerate(layer_names("vgg16")):
            if name.startswith("conv"):
                group_name = f"block{name[4]}_conv{name[6]}"
                group = f.create_group(group_name)
                group.attrs["weight_names"] = [f"{group_name}/kernel:0".encode(), f"{group_name}/bias:0".encode()]
                kernel = expected[f"features.{index}.weight"].permute(2, 3, 1, 0).contiguous()
                group.create_dataset(f"{group_name}/kernel:0", data=kernel.numpy())
                group.create_dataset(f"{group_name}/bias:0", data=expected[f"features.{index}.bias"].numpy())
    md5 = hashlib.md5(h5_path.read_bytes()).hexdigest()

    with pytest.raises(VGGWeightsError, match=r"VGG16 weights from .*md5"):
        download_caffe_weights(url=h5_path.as_uri(), md5="0" * 32, progress=False, source="vgg16")
    target = download_caffe_weights(url=h5_path.as_uri(), md5=md5, progress=False, source="vgg16")
    assert target == hub_checkpoint_dir() / VGG16_PTH_NAME
    assert sorted(p.name for p in target.parent.iterdir()) == [VGG16_PTH_NAME]
    # The converted file is what loss.vgg_weights=vgg16 then finds, offline, with block 5 too.
    assert_state_equal(load_vgg_state_dict("vgg16", download=False), expected)
    assert pretrained_vgg(["relu5_3"], weights="vgg16", download=False).architecture == "vgg16"
