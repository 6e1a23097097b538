"""Bad settings: one line naming the setting, before any heavy work (no data scan, no VGG load)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, load_train_script

from fastnst.errors import FastNSTError


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("loss.style_weight=-1", "loss.style_weight=-1: must be a number >= 0"),
        ("loss.content_weight=-0.5", "loss.content_weight=-0.5: must be a number >= 0"),
        ("+loss.style_layers.relu9_9=1", "loss.style_layers.relu9_9: no such VGG19 layer"),
        ("loss.style_layers.relu2_1=-1", "loss.style_layers.relu2_1=-1: layer weights must be >= 0"),
        ("data.image_size=8", "data.image_size=8: must be a whole number of pixels >= 16"),
        ("data.batch_size=0", "data.batch_size=0: must be a whole number >= 1"),
        ("style.size=4", "style.size=4: must be a whole number of pixels >= 16"),
        ("trainer.max_steps=0", "trainer.max_steps=0: must be a whole number >= 1"),
        ("trainer.lr=0", "trainer.lr=0: must be > 0"),
        ("style.image=missing.jpg", "style.image=missing.jpg: no such file, and not a built-in style (composition_vii"),
        ("loss.vgg_weights=weights.pth", "cannot tell the input convention"),
    ],
)
def test_bad_setting_is_one_line_before_heavy_work(compose, tmp_path, monkeypatch, override, expected):
    # Imported before patching: a module imported while vgg19 is patched would keep the fake for good.
    import fastnst.nn.vgg
    import fastnst.training.data
    import fastnst.training.module

    def heavy(*args, **kwargs):
        raise AssertionError("heavy work started before the settings were checked")

    monkeypatch.setattr(fastnst.nn.vgg, "vgg19", heavy)
    monkeypatch.setattr(fastnst.nn.vgg, "pretrained_vgg", heavy)
    monkeypatch.setattr(fastnst.training.module, "pretrained_vgg", heavy)
    monkeypatch.setattr(fastnst.training.data, "find_images", heavy)
    with pytest.raises(FastNSTError) as info:
        load_train_script().train(compose(["data=sample", override]), tmp_path / "run")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()


def test_unknown_style_lists_the_available_ones(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "style=picasso", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # once Hydra's several lines, printed twice
    assert line.startswith("error: style=picasso: no such style preset; choose from composition_vii, ")
    for name in ("starry_night", "the_scream", "wave", "udnie"):
        assert name in line


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("ckpt_path=run/step=0000500.ckpt", "ckpt_path='run/step=0000500.ckpt'"),
        ("init=bases/a=b.ckpt", "init='bases/a=b.ckpt'"),
        ("style.image=paintings/x=y.jpg", "style.image='paintings/x=y.jpg'"),
        ("hydra.run.dir=runs/lr=2e-3", "hydra.run.dir='runs/lr=2e-3'"),
        ("ckpt_path='run/step=1.ckpt'", "ckpt_path='run/step=1.ckpt'"),  # quoted already
        ("ckpt_path=run/step\\=1.ckpt", "ckpt_path=run/step\\=1.ckpt"),  # escaped already
        ("ckpt_path=run/last.ckpt", "ckpt_path=run/last.ckpt"),
        ("trainer.lr=a=b", "trainer.lr=a=b"),  # not a string setting: Hydra's own message
    ],
)
def test_string_settings_holding_an_equals_sign_are_quoted_for_hydra(word, expected):
    from fastnst.training.config import quote_equals

    assert quote_equals(["train.py", "-m", word]) == ["train.py", "-m", expected]


def test_a_quoted_checkpoint_path_composes_to_the_path_as_given(compose):
    from fastnst.training.config import quote_equals

    (word,) = quote_equals(["train.py", "ckpt_path=run/step=0000500.ckpt"])[1:]
    assert compose([word]).ckpt_path == "run/step=0000500.ckpt"
