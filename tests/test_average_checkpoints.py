"""Weight averages of checkpoints: `average_state_dicts` on known values, and scripts/average_checkpoints.py."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

torch = pytest.importorskip("torch")

from fastnst.nn.checkpoint import average_state_dicts  # noqa: E402
from fastnst.nn.export import load_network  # noqa: E402
from fastnst.nn.transformer_net import build_network  # noqa: E402

HPARAMS = {"style_name": "udnie", "architecture": "light", "width": 1.0, "num_residual_blocks": 2, "dilation": 1}


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("average_checkpoints", REPO / "scripts" / "average_checkpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_known_values_and_inputs_unchanged():
    a = {"w": torch.tensor([0.0, 4.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([8.0, 0.0]), "n": torch.tensor(3)}
    out = average_state_dicts([a, b], [1.0, 3.0])  # normalised: 0.25, 0.75
    assert torch.equal(out["w"], torch.tensor([6.0, 1.0]))
    assert out["w"].dtype == torch.float32
    assert torch.equal(out["n"], torch.tensor(3))
    assert torch.equal(a["w"], torch.tensor([0.0, 4.0])) and torch.equal(b["w"], torch.tensor([8.0, 0.0]))
    out["n"] += 1  # the kept counter is a copy
    assert a["n"].item() == 3


def test_order_of_inputs_does_not_matter():
    g = torch.Generator().manual_seed(0)
    a, b = {"w": torch.randn(100, generator=g)}, {"w": torch.randn(100, generator=g)}
    assert torch.equal(average_state_dicts([a, b], [0.4, 0.6])["w"], average_state_dicts([b, a], [0.6, 0.4])["w"])


@pytest.mark.parametrize(
    ("dicts", "weights", "message"),
    [
        ([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}], [1, 1], "differ in their keys"),
        ([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], [1, 1], "shapes"),
        ([{"n": torch.tensor(1)}, {"n": torch.tensor(2)}], [1, 1], "cannot be averaged"),
        ([{"w": torch.zeros(2)}, {"w": torch.zeros(2)}], [1], "one weight per state dict"),
        ([{"w": torch.zeros(2)}, {"w": torch.zeros(2)}], [1, -1], "non-negative"),
        ([{"w": torch.zeros(2)}, {"w": torch.zeros(2)}], [1, float("inf")], "non-negative numbers"),
    ],
)
def test_refuses_what_cannot_be_averaged(dicts, weights, message):
    with pytest.raises(ValueError, match=message):
        average_state_dicts(dicts, weights)


def _checkpoint(path, seed, **settings):
    torch.manual_seed(seed)
    hparams = {**HPARAMS, **settings}
    net = build_network(hparams["architecture"], hparams["width"], hparams["num_residual_blocks"])
    state_dict = {f"net.{k}": v for k, v in net.state_dict().items()}
    checkpoint = {"state_dict": state_dict, "hyper_parameters": hparams, "global_step": seed, "optimizer_states": []}
    torch.save(checkpoint, path)
    return net.state_dict()


def test_script_writes_a_checkpoint_export_loads(script, tmp_path, capsys):
    a = _checkpoint(tmp_path / "a.ckpt", 1)
    b = _checkpoint(tmp_path / "b.ckpt", 2, style_weight=3.3)
    out = tmp_path / "soup.ckpt"
    script.main([str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), "--weights", "2", "3", "-o", str(out)])
    assert "0.4 x" in capsys.readouterr().out
    net, hparams = load_network(out)
    assert hparams["style_weight"] == 3.3  # the last checkpoint's settings
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.4 * a[key] + 0.6 * b[key])
    soup = torch.load(out, weights_only=True)
    assert [s["weight"] for s in soup["averaged_from"]] == [0.4, 0.6]
    assert "optimizer_states" not in soup  # not a training state to resume: ckpt_path= refuses it in one line
    from fastnst.errors import FastNSTError
    from fastnst.training.checks import check_checkpoint

    with pytest.raises(FastNSTError, match="holds the weights only"):
        check_checkpoint(str(out), HPARAMS, None, None)


@pytest.mark.parametrize(
    ("settings", "args", "message"),
    [
        ({"architecture": "johnson"}, [], "b.ckpt: architecture='johnson', but .*a.ckpt has architecture='light'"),
        ({"style_name": "wave"}, [], "b.ckpt: style_name='wave'"),
        ({}, ["--weights", "1"], "--weights: 1 values for 2 checkpoints"),
        ({}, ["--weights", "0", "0"], "--weights 0.0 0.0: non-negative, and not all zero"),
        ({}, ["--weights", "nan", "1"], "--weights nan 1.0: non-negative, and not all zero"),
    ],
)
def test_script_one_line_errors(script, tmp_path, settings, args, message):
    _checkpoint(tmp_path / "a.ckpt", 1)
    _checkpoint(tmp_path / "b.ckpt", 2, **settings)
    with pytest.raises(SystemExit, match=f"^error: .*{message}") as e:
        script.main([str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), *args, "-o", str(tmp_path / "soup.ckpt")])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "soup.ckpt").exists()


def test_script_never_overwrites(script, tmp_path):
    a = tmp_path / "a.ckpt"
    _checkpoint(a, 1)
    _checkpoint(tmp_path / "b.ckpt", 2)
    before = a.read_bytes()
    with pytest.raises(SystemExit, match="inputs are never overwritten"):
        script.main([str(a), str(tmp_path / "b.ckpt"), "-o", str(a)])
    assert a.read_bytes() == before
    (tmp_path / "soup.ckpt").write_bytes(b"work")
    with pytest.raises(SystemExit, match="the file exists"):
        script.main([str(a), str(tmp_path / "b.ckpt"), "-o", str(tmp_path / "soup.ckpt")])
    assert (tmp_path / "soup.ckpt").read_bytes() == b"work"
