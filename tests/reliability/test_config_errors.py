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
        ("++hydra.run.dir=runs/lr=2e-3", "++hydra.run.dir='runs/lr=2e-3'"),
        ("data.val_images=photos/a=b", "data.val_images='photos/a=b'"),
        ("ckpt_path=runs/bob's/step=1.ckpt", 'ckpt_path="runs/bob\'s/step=1.ckpt"'),
        ("ckpt_path=a/step=1.ckpt,a/step=2.ckpt", "ckpt_path='a/step=1.ckpt','a/step=2.ckpt'"),  # a -m sweep
        ("ckpt_path='run/step=1.ckpt'", "ckpt_path='run/step=1.ckpt'"),  # quoted already
        ("ckpt_path=run/step\\=1.ckpt", "ckpt_path=run/step\\=1.ckpt"),  # escaped already
        ("ckpt_path=run/last.ckpt", "ckpt_path=run/last.ckpt"),
        ("init_style=sort(b,a,reverse=true)", "init_style=sort(b,a,reverse=true)"),  # Hydra's own syntax
    ],
)
def test_values_holding_an_equals_sign_are_quoted_for_hydra(word, expected):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fastnst.training.config import quote_equals

    assert quote_equals(["train.py", "-m", word]) == ["train.py", "-m", expected]
    OverridesParser.create().parse_overrides([expected])  # Hydra takes it


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("ckpt_path=run/step=0000500.ckpt", "run/step=0000500.ckpt"),
        ("ckpt_path=runs/bob's/step=1.ckpt", "runs/bob's/step=1.ckpt"),
    ],
)
def test_a_quoted_value_composes_to_the_value_as_given(compose, word, value):
    from fastnst.training.config import quote_equals

    (quoted,) = quote_equals(["train.py", word])[1:]
    assert compose([quoted]).ckpt_path == value


def test_an_interpolation_inside_the_quotes_still_resolves():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fastnst.training.config import quote_equals

    (quoted,) = quote_equals(["train.py", "hydra.run.dir=runs/lr=${trainer.lr}"])[1:]
    (override,) = OverridesParser.create().parse_overrides([quoted])
    assert override.value() == "runs/lr=${trainer.lr}"


def test_a_number_holding_an_equals_sign_is_a_one_line_error(compose, tmp_path):
    from fastnst.training.config import quote_equals

    (quoted,) = quote_equals(["train.py", "trainer.lr=a=b"])[1:]
    with pytest.raises(FastNSTError, match=r"^trainer\.lr=a=b: expected a number$"):
        load_train_script().train(compose(["data=sample", quoted]), tmp_path / "run")
