"""Shared fixtures: the real assets in ../shared/assets (or $FASTNST_ASSETS) and Hydra configs."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# Under pytest-xdist (-n N) the workers share the cores: each one, and the processes it starts, gets its
# share of threads (set before torch is imported, which reads it once).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))


def assets_dir() -> Path | None:
    """The development assets folder, or None when it is not there."""
    path = Path(os.environ.get("FASTNST_ASSETS", REPO.parent / "shared" / "assets"))
    return path if path.is_dir() else None


def asset(relative: str) -> Path:
    """Path of one asset file; skips the calling test when it is absent."""
    base = assets_dir()
    path = base / relative if base is not None else Path(relative)
    if not path.is_file():
        pytest.skip(f"asset {relative} not found: set FASTNST_ASSETS or put the assets in ../shared/assets")
    return path


@pytest.fixture(scope="session")
def assets() -> Path:
    path = assets_dir()
    if path is None:
        pytest.skip("development assets not found: set FASTNST_ASSETS or put them in ../shared/assets")
    return path


@pytest.fixture(scope="session")
def vgg_weights_file(assets: Path) -> Path:
    path = assets / "weights" / "vgg19_features_caffe-d2188631.pth"
    if not path.is_file():
        pytest.skip(f"VGG19 weights not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _vgg_weights_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point FASTNST_VGG_WEIGHTS at the real weights (offline), unless the caller set it."""
    if "FASTNST_VGG_WEIGHTS" not in os.environ and (a := assets_dir()) is not None:
        monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(a / "weights"))


# Tiny but real training settings: a few seconds a run on a 2-core CPU.
TINY = [
    "data=sample",
    "data.image_size=32",
    "data.batch_size=2",
    "model.width=0.25",
    "model.num_residual_blocks=1",
    "loss=perceptual",  # shallow layers for the mechanics; the default recipe (loss=fastnst) is tested apart
    "loss.style_layers.relu3_4=0",
    "loss.style_layers.relu4_4=0",
    "style.size=64",
    "trainer=cpu",
    # A constant rate: the resume tests compare runs stopped at other max_steps, and the preset's decay is a
    # function of max_steps (tested apart, in test_config_schema.py).
    "trainer.lr_final=null",
    "trainer.max_steps=4",
    "trainer.val_every_n_steps=2",
    "trainer.checkpoint_every_n_steps=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "export.onnx=false",
]


def load_train_script():
    """Import the root train.py as a module."""
    sys.path.insert(0, str(REPO))
    try:
        import train
    finally:
        sys.path.remove(str(REPO))
    return train


@pytest.fixture
def compose():
    """compose(overrides) -> the train config, as Hydra builds it for `python train.py ...`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def _compose(overrides: list[str], config_name: str = "train"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return hydra_compose(config_name, overrides=overrides)

    return _compose


@pytest.fixture
def run_training(compose, vgg_weights_file):
    """run_training(run_dir, overrides) trains in-process with the TINY settings plus overrides."""
    train = load_train_script()

    def _run(run_dir: Path, overrides: list[str] = ()) -> Path:
        train.train(compose([*TINY, *overrides]), Path(run_dir))
        return Path(run_dir)

    return _run


def _train_tiny(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: list[str]) -> Path:
    """Train TINY with ``overrides`` (``style=[...]`` lists expanded as train.py does); its last.ckpt."""
    base = assets_dir()
    if base is None or not (base / "weights").is_dir():
        pytest.skip("VGG19 weights not found: set FASTNST_ASSETS or put the assets in ../shared/assets")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from fastnst.training.style_set import expand_styles

    os.environ.setdefault("FASTNST_VGG_WEIGHTS", str(base / "weights"))
    run_dir = tmp_path_factory.mktemp(name)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*TINY, *overrides])
    load_train_script().train(expand_styles(cfg, [*TINY, *overrides]), run_dir)
    return run_dir / "last.ckpt"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint: the TINY config trained for 2 steps (shared by the whole session)."""
    return _train_tiny(tmp_path_factory, "tiny_run", ["trainer.max_steps=2"])


@pytest.fixture(scope="session")
def tiny_conditional_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real three-style checkpoint with a trained strength: TINY, style=[starry_night,wave,udnie], 2 steps."""
    overrides = ["style=[starry_night,wave,udnie]", "model.strength=true", "trainer.max_steps=2"]
    return _train_tiny(tmp_path_factory, "tiny_conditional_run", overrides)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path) -> Path:
    """The tiny checkpoint exported to ONNX (fp32, verified)."""
    from fastnst.nn.export import export_onnx

    return export_onnx(tiny_checkpoint, tiny_checkpoint.parent / "starry_night.onnx").path


def cli(*argv: object) -> tuple[int, str, str]:
    """Run ``fastnst`` in-process; returns (exit status, stdout, stderr)."""
    from fastnst.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def models_with_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> Path:
    """A shipped-models folder whose wave has a network in ``folder`` (``video``: stability-trained,
    ``quality``: the quality tier); it is udnie's file, so that the two are told apart by their pictures."""
    import shutil

    import fastnst.styles as styles

    shipped = styles.shipped_models()
    models = tmp_path / "models"
    (models / folder).mkdir(parents=True)
    shutil.copy(shipped["wave"], models / "wave.onnx")
    shutil.copy(shipped["udnie"], models / folder / "wave.onnx")
    monkeypatch.setattr(styles, "models_dir", lambda: models)
    return models


def remux(src: Path, dst: Path, **options: str) -> Path:
    """Copy the video packets of ``src`` into ``dst`` (container from the extension), without re-encoding."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                out.mux(packet)
    return dst
