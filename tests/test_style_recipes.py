"""Each painting's training recipe from its style preset: the loss its quality tier won with.

A style preset may choose the loss group (``override /loss@_global_.loss`` in its defaults); ``loss=`` on the
command line still wins; a several-style list trains with the loss its presets share, or with the default
loss where they differ (:func:`fastnst.training.style_set.list_loss`); a resumed run whose loss or painting
differs from its checkpoint's says so (the module's warning on loading it).
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from conftest import REPO

from fastnst.training.config import presets
from fastnst.training.style_set import list_loss, preset_loss

JOHNSON_CONTENT = {"relu2_2": 1.0}  # loss=perceptual: the light networks' loss
GATYS_CONTENT = {"relu4_2": 1.0}  # loss=fastnst: the default


@pytest.mark.parametrize(
    ("style", "content_layers", "size"),
    [
        ("wave", JOHNSON_CONTENT, 256),
        ("woman_with_hat", JOHNSON_CONTENT, 256),
        ("udnie", GATYS_CONTENT, 512),
        ("starry_night", GATYS_CONTENT, 512),
        ("composition_vii", GATYS_CONTENT, 256),
        ("the_scream", GATYS_CONTENT, 512),
        ("shipwreck", GATYS_CONTENT, 512),
    ],
)
def test_a_style_preset_trains_its_paintings_recipe(compose, style, content_layers, size):
    cfg = compose([f"style={style}", "trainer=cpu"])
    assert (dict(cfg.loss.content_layers), cfg.style.size) == (content_layers, size)


def test_the_light_networks_loss_has_their_tv_weight(compose):
    cfg = compose(["style=wave"])
    assert list(cfg.loss.style_layers) == ["relu1_2", "relu2_2", "relu3_4", "relu4_4"]
    assert (cfg.loss.tv_weight, cfg.loss.content_weight, cfg.loss.style_weight) == (1.0, 1.0, 2.0)


@pytest.mark.parametrize("loss", ["fastnst", "gatys", "johnson"])
def test_loss_on_the_command_line_wins_over_the_preset(compose, loss):
    wave, udnie = (compose([f"style={s}", f"loss={loss}"]).loss for s in ("wave", "udnie"))
    assert (dict(wave.content_layers), dict(wave.style_layers)) == (
        dict(udnie.content_layers),
        dict(udnie.style_layers),
    )
    assert wave.vgg_weights == ("vgg16" if loss == "johnson" else "caffe")


def test_every_preset_chooses_a_loss_that_exists():
    chosen = {style: preset_loss(style) for style in presets("style")}
    assert set(chosen.values()) <= set(presets("loss")), chosen
    assert (chosen["wave"], chosen["udnie"]) == ("perceptual", "fastnst")


def test_a_list_whose_presets_differ_trains_with_the_default_loss():
    loss, note = list_loss(["style=[wave,udnie]", "trainer=cpu"])
    assert loss == "fastnst"
    assert "wave: perceptual" in note and "udnie: fastnst" in note and "loss=fastnst" in note


@pytest.mark.parametrize(
    "overrides",
    [
        ["style=[wave,woman_with_hat]"],  # the same loss: Hydra's merge is right
        ["style=[starry_night,udnie]"],  # both the default
        ["style=[wave,udnie]", "loss=perceptual"],  # chosen on the command line
        ["style=wave"],  # one style: its preset's
        ["style=udnie", "--cfg", "job"],  # Hydra's flags are not overrides
        ["-m", "style=wave,udnie"],  # a sweep: each job is one style
        ["style=[wave,udnie"],  # a syntax error: Hydra names it
    ],
)
def test_no_loss_is_added_where_the_list_agrees_or_loss_is_given(overrides):
    assert list_loss(overrides) is None


@pytest.mark.parametrize("command", [["train.py"], ["-m", "fastnst", "train"]])
def test_train_says_which_loss_a_mixed_list_trains_with(tmp_path, command):
    if command == ["train.py"]:
        command = [str(REPO / "train.py")]
    proc = subprocess.run(
        [sys.executable, *command, "style=[starry_night,wave]", "data=sample", "--cfg", "job"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "note: style=[starry_night,wave]: the presets choose different losses" in proc.stderr
    assert "(starry_night 512, wave 256 px)" in proc.stderr
    assert "relu4_2: 1.0" in proc.stdout and "relu2_2: 1.0" not in proc.stdout.split("style_layers")[0]


def test_a_malformed_list_gets_hydras_message_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "style=[wave,udnie", "data=sample", "--cfg", "job"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "[wave,udnie" in proc.stderr, proc.stderr


def test_a_sweep_of_presets_is_checked_choice_by_choice():
    from fastnst.training.config import ConfigError, check_group_options

    check_group_options(["-m", "style=starry_night,wave", "loss=fastnst,perceptual"])  # README's sweep
    check_group_options(["-m", "style=[wave,udnie],[starry_night,udnie]"])
    with pytest.raises(ConfigError, match=r"^style=nope: no such style preset"):
        check_group_options(["-m", "style=wave,nope"])


def test_resuming_with_another_loss_or_painting_size_says_which(run_training, tmp_path, caplog):
    """A preset whose recipe changed since a run began (or a setting left off the command line) is named."""
    half = run_training(tmp_path / "half", ["trainer.max_steps=2"])
    with caplog.at_level(logging.WARNING, logger="fastnst.training.module"):
        run_training(tmp_path / "same", [f"ckpt_path={half / 'last.ckpt'}"])
    assert not [r for r in caplog.records if "changed settings" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="fastnst.training.module"):
        run_training(tmp_path / "changed", [f"ckpt_path={half / 'last.ckpt'}", "loss.tv_weight=0.5", "style.size=48"])
    (warning,) = [r.getMessage() for r in caplog.records if "changed settings" in r.getMessage()]
    assert "style_size 64 -> 48" in warning and "tv_weight 1.0 -> 0.5" in warning


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train.py", "-m", "style=[a,b]", "x=1"], ["train.py", "-m", "loss=l", "style=[a,b]", "x=1"]),
        (["train.py", "style=[a,b]", "--cfg", "job"], ["train.py", "loss=l", "style=[a,b]", "--cfg", "job"]),
        (["train.py"], ["train.py", "loss=l"]),
    ],
)
def test_an_added_override_joins_the_others(argv, expected):
    from fastnst.training.train import with_override

    before = list(argv)
    assert with_override(argv, "loss=l") == expected
    assert argv == before  # a new list: the caller's is unchanged
