"""fastnst works wherever pip puts it: what the wheel holds, shipped styles by name, `fastnst train`, the extras.

The fresh-venv installs of the wheel (base without torch, then ``[train]``) run in ``.ci/run``: they
take minutes. Here: the wheel's contents and metadata, and the same commands from this checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, TINY
from PIL import Image

from fastnst.photos import sample_photos_dir
from fastnst.runtime.stylizer import Stylizer
from fastnst.styles import (
    StyleError,
    builtin_styles,
    models_dir,
    resolve_model,
    shipped_model_figures,
    shipped_models,
    shipped_variant_models,
)

TRAIN_EXTRA = ["torch", "lightning", "hydra", "omegaconf", "tensorboard", "onnx", "onnxscript", "h5py"]

# Runs the fastnst command line in a process where the [train] extra's packages are not installed.
WITHOUT_TRAIN_EXTRA = """
import sys

blocked = sys.argv[1].split(",")

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
if sys.argv[2].endswith("train.py"):  # python train.py ARGS
    import runpy

    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    from fastnst.cli import main

    sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this checkout's sources (setuptools' build/ would hold stale files)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("fastnst", "conf"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("fastnst-*.whl")
    return path


def test_wheel_holds_the_code_configs_and_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(REPO)) for p in (REPO / "fastnst").rglob("*.py")}
    assert sources <= names, sorted(sources - names)  # every module: a new subpackage must be listed
    configs = {"fastnst/" + str(p.relative_to(REPO)) for p in (REPO / "conf").rglob("*.yaml")}
    assert configs <= names and "fastnst/conf/optimize.yaml" in names and "fastnst/conf/style/wave.yaml" in names
    models = {f"fastnst/assets/models/{name}.onnx" for name in shipped_models()}
    assert len(models) == 6 and models <= names and "fastnst/assets/models/models.json" in names
    variants = {f"fastnst/assets/models/{_file(name)}" for name in shipped_variant_models()}
    assert variants <= names
    assert not any(n.startswith(("checkpoints/", "conf/", "tests/")) for n in names)


def test_base_install_is_numpy_pillow_onnxruntime_tqdm(wheel):
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)(.*)$", metadata, flags=re.M)
    base = {name.lower() for name, rest in requires if "extra ==" not in rest}
    assert base == {"numpy", "pillow", "onnxruntime", "tqdm"}
    extras = {}
    for name, rest in requires:
        if m := re.search(r"extra == \"(\w+)\"", rest):
            extras.setdefault(m[1], set()).add(name.lower())
    assert set(TRAIN_EXTRA) - {"hydra", "omegaconf"} | {"hydra-core"} <= extras["train"]
    assert extras["video"] == {"av", "opencv-python-headless"}
    # onnxruntime-gpu never comes next to the base's onnxruntime (they share the `onnxruntime` module)
    assert not any("onnxruntime-gpu" in names for names in extras.values())


@pytest.mark.parametrize(
    "args",
    [
        ["export", "run/last.ckpt"],
        ["optimize", "--content", "photo.jpg", "--style", "wave"],
        ["train", "style=wave", "data=sample"],
        ["train.py", "style=wave", "data=sample"],
        ["vgg"],
    ],
    ids=lambda a: a[0],
)
def test_training_commands_without_the_train_extra_say_what_to_install(args, tmp_path):
    if args[0] == "train.py":
        args = [str(REPO / "train.py"), *args[1:]]
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAIN_EXTRA, ",".join(TRAIN_EXTRA), *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().count("\n") == 0, proc.stderr  # one line, no traceback
    command = "python train.py" if args[0].endswith("train.py") else f"fastnst {args[0]}"
    assert f"{command} needs the training extra" in proc.stderr
    assert "pip install 'fastnst[train]'" in proc.stderr


def test_infer_and_styles_need_no_train_extra(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.open(sample_photos_dir() / "coffee.jpg").resize((96, 64)).save(photo)
    for args in (["styles"], ["infer", "--model", "wave", str(photo), "-o", str(tmp_path / "out.jpg"), "-q"]):
        proc = subprocess.run(
            [sys.executable, "-c", WITHOUT_TRAIN_EXTRA, ",".join(TRAIN_EXTRA), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / "out.jpg").size == (96, 64)


def test_stylizer_takes_a_shipped_style_by_name():
    stylizer = Stylizer("udnie", device="cpu")
    assert stylizer.path == shipped_models()["udnie"] and stylizer.style == "udnie"


def test_a_file_that_exists_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("wave").write_bytes(shipped_models()["udnie"].read_bytes())  # a file called like a shipped style
    assert resolve_model("wave") == Path("wave")
    stylizer = Stylizer("wave", device="cpu")
    assert stylizer.path == Path("wave") and stylizer.style == "udnie"  # the file's model, not the shipped wave
    assert resolve_model("udnie") == shipped_models()["udnie"]


def test_an_unknown_model_name_lists_the_shipped_ones(tmp_path):
    with pytest.raises(StyleError, match="not a shipped style") as error:
        Stylizer("starry_nite")
    assert "starry_nite" in str(error.value) and all(name in str(error.value) for name in shipped_models())
    proc = subprocess.run(
        [sys.executable, "-m", "fastnst", "infer", "--model", "starry_nite", str(sample_photos_dir() / "coffee.jpg")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "starry_nite" in proc.stderr and "wave" in proc.stderr
    (tmp_path / "models").mkdir()  # a folder is named as one, not as a missing file
    with pytest.raises(StyleError, match=r"models: a folder, not a model file$"):
        Stylizer(tmp_path / "models")


def _file(name: str) -> str:
    """A shipped model's file under fastnst/assets/models/: ``wave.onnx``, ``video/wave.onnx`` for wave_stable."""
    return {**shipped_models(), **shipped_variant_models()}[name].relative_to(models_dir()).as_posix()


def test_models_json_agrees_with_the_checkpoints_readme():
    """The judge figures of `fastnst styles` are the README's table, for every shipped model and no other."""
    figures = shipped_model_figures()
    assert set(figures) == set(shipped_models()) | set(shipped_variant_models())
    table = (REPO / "checkpoints" / "README.md").read_text()
    for name, f in figures.items():
        # a network of several styles has one row per style: | `multi/six_styles.onnx`, wave | ... |
        rows = {f"`{_file(name)}`, {style}": s for style, s in f["styles"].items()} if "styles" in f else None
        for label, g in (rows or {f"`{_file(name)}`": f}).items():
            (row,) = [line for line in table.splitlines() if line.startswith(f"| {label} |")]
            numbers = [float(x) for x in re.findall(r"\| ([\d.]+) ", row + " ")[-3:]]
            assert numbers == [g["content"], g["style_gram"], g["style_stats"]], label


def test_fastnst_styles_lists_models_with_figures_and_sizes_and_the_paintings():
    proc = subprocess.run([sys.executable, "-m", "fastnst", "styles"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name, f in shipped_model_figures().items():
        (line,) = [x for x in lines if x.split()[:1] == [name] and "kB" in x]
        kb = {**shipped_models(), **shipped_variant_models()}[name].stat().st_size / 1e3
        assert f"{kb:.0f} kB" in line
        if "styles" in f:  # several styles: the network's line, then a line of figures per style below it
            below = lines[lines.index(line) + 1 : lines.index(line) + 1 + len(f["styles"])]
            assert [x.split()[0] for x in below] == list(f["styles"]), below
            for x, g in zip(below, f["styles"].values(), strict=True):
                assert f"{g['content']:.3f}" in x and f"{g['style_stats']:.3f}" in x
        else:
            assert f"{f['content']:.3f}" in line and f"{f['style_stats']:.3f}" in line
    for name, path in builtin_styles().items():
        assert any(x.split() == [name, str(path)] for x in lines), name


def _composed(command: list[str], tmp_path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, *command, "--cfg", "job", "style=wave", "data=sample", "loss.style_weight=3"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_fastnst_train_and_train_py_compose_the_same_run(tmp_path):
    from_cli = _composed(["-m", "fastnst", "train"], tmp_path)
    assert "style_weight: 3" in from_cli and "name: wave" in from_cli
    assert from_cli == _composed([str(REPO / "train.py")], tmp_path)


def test_fastnst_train_runs_from_any_folder(tmp_path, vgg_weights_file):
    """`fastnst train` in a folder that is not the checkout: packaged configs, run folder under the cwd."""
    tiny = [o for o in TINY if not o.startswith("trainer.max_steps")]
    proc = subprocess.run(
        [sys.executable, "-m", "fastnst", "train", "style=wave", *tiny, "trainer.max_steps=2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "checkpoints" / "wave").iterdir()
    assert (run / "last.ckpt").is_file() and "step 2/2" in (run / "train.log").read_text()
    assert "name: wave" in (run / "config.yaml").read_text()


def test_a_stopped_fastnst_train_run_says_how_to_resume_with_fastnst_train(tmp_path):
    import signal

    from fastnst.training.interrupt import Stopped
    from fastnst.training.train import CLI_NAME, _resume_message

    stopped = Stopped(signal.SIGINT, 7, tmp_path / "last.ckpt")
    message = _resume_message(stopped, CLI_NAME, ["style=wave", "ckpt_path=old.ckpt"])
    assert message.endswith(f"resume with: fastnst train style=wave ckpt_path={tmp_path / 'last.ckpt'}")
    assert "resume with: python train.py style=wave" in _resume_message(stopped, "train.py", ["style=wave"])
