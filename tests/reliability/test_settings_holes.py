"""Settings and data holes found by an adversarial pass: each one a single line naming the setting.

Every bad value is refused by ``validate_config`` before the data is scanned or VGG19 loads
(the heavy functions are replaced by ones that fail the test if they are reached), and a run
that fails this way leaves no run folder behind. Annotation entries that point outside
``data.root`` are skipped with a warning and never read.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY, load_train_script
from PIL import Image

from fastnst.errors import FastNSTError
from fastnst.photos import DataError, find_images
from fastnst.training.data import PhotoDataModule, PhotoDataset

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")


@pytest.fixture
def refuse_heavy_work(monkeypatch):
    """Fail the test if the data scan or the VGG19 load starts."""
    import fastnst.nn.vgg
    import fastnst.training.data
    import fastnst.training.module

    def heavy(*args, **kwargs):
        raise AssertionError("heavy work started before the settings were checked")

    monkeypatch.setattr(fastnst.nn.vgg, "vgg19", heavy)
    monkeypatch.setattr(fastnst.nn.vgg, "pretrained_vgg", heavy)
    monkeypatch.setattr(fastnst.training.module, "pretrained_vgg", heavy)
    monkeypatch.setattr(fastnst.training.data, "find_images", heavy)


def train_error(compose, run_dir: Path, overrides: list[str]) -> str:
    """The message of the FastNSTError that training stops with; checks it is one line and no folder is left."""
    with pytest.raises(FastNSTError) as info:
        load_train_script().train(compose(["data=sample", *overrides]), run_dir)
    message = str(info.value)
    assert "\n" not in message, message
    assert not run_dir.exists()
    return message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.precision=garbage", "trainer.precision=garbage: expected auto or one of"),
        ("trainer.devices=0", "trainer.devices=0: expected auto or a whole number >= 1"),
        ("trainer.devices=-2", "trainer.devices=-2: expected auto or a whole number >= 1"),
        ("trainer.accelerator=garbage", "trainer.accelerator=garbage: expected one of auto, cpu, cuda, gpu"),
        ("trainer.strategy=garbage", "trainer.strategy=garbage: expected auto or one of Lightning's strategies (ddp,"),
        ("trainer.val_every_n_steps=0", "trainer.val_every_n_steps=0: must be a whole number >= 1"),
        ("loss.tv_weight=-3", "loss.tv_weight=-3: must be a number >= 0"),
        ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0: must be a whole number >= 1"),
        ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0: must be a whole number >= 1"),
        ("trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_n_steps=0: must be a whole number >= 1"),
        ("trainer.max_nonfinite_steps=0", "trainer.max_nonfinite_steps=0: must be a whole number >= 1"),
        ("trainer.num_nodes=0", "trainer.num_nodes=0: must be a whole number >= 1"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1: must be null or a number >= 0"),
        ("trainer.compile=yes", "trainer.compile=yes: expected auto, true or false"),
        ("trainer.enable_progress_bar=off", "trainer.enable_progress_bar=off: expected true or false"),
        ("model.width=0", "model.width=0: must be a number > 0"),
        ("trainer.ema_decay=1.5", "trainer.ema_decay=1.5: must be null or a number > 0 and <= 0.99999"),
        ("model.num_residual_blocks=-1", "model.num_residual_blocks=-1: must be a whole number >= 0"),
        ("model.architecture=garbage", "model.architecture=garbage: expected one of johnson, light"),
        ("data.num_val_images=0", "data.num_val_images=0: must be a whole number >= 1"),
        ("data.num_workers=-1", "data.num_workers=-1: must be a whole number >= 0"),
        ("data.image_size=abc", "data.image_size=abc: expected a whole number"),
        ("seed=abc", "seed=abc: expected a whole number"),
        ("seed=-1", "seed=-1: must be a whole number from 0 to 4294967295"),
        ("trainer.lr=abc", "trainer.lr=abc: expected a number"),
        ("loss.style_layers.relu2_1=abc", "loss.style_layers.relu2_1=abc: expected a number"),
        ("+trainer.foo=1", "trainer.foo: no such setting; trainer has accelerator, accumulate_grad_batches,"),
        ("+trainer.max_step=1", "trainer.max_step: no such setting (did you mean trainer.max_steps?)"),
        (
            "+foo=1",
            "foo: no such setting; the top level has ckpt_path, data, export, init, init_style, loss, model, "
            "seed, style, styles, trainer",
        ),
        ("+loss.style_wieght=3", "loss.style_wieght: no such setting (did you mean loss.style_weight?)"),
        ("~style.image", "style.image: missing; it needs a value"),  # trainer.lr has a default in the schema
        ("export.precision=garbage", "export.precision=garbage: expected one of fp32, fp16, int8"),
        ("trainer.precision=transformer-engine", "trainer.precision=transformer-engine: needs the transformer_engine"),
        ("style.name=1984", "style.name=1984: expected a string (quote it: style.name='1984')"),
    ],
)
def test_bad_setting_is_one_line_before_heavy_work(compose, tmp_path, refuse_heavy_work, override, expected):
    assert expected in train_error(compose, tmp_path / "run", [override])


@NO_GPU
@pytest.mark.parametrize("name", ["cuda", "gpu"])
def test_cuda_accelerator_without_a_gpu(compose, tmp_path, refuse_heavy_work, name):
    message = train_error(compose, tmp_path / "run", [f"trainer.accelerator={name}"])
    assert message == f"trainer.accelerator={name}: no CUDA GPU is visible here; use trainer.accelerator=cpu (or auto)"


@pytest.mark.parametrize(("exists", "expected"), [(False, "no such folder"), (True, "not a folder")])
def test_val_images_folder_is_named(compose, tmp_path, refuse_heavy_work, exists, expected):
    path = tmp_path / "photo.jpg"
    if exists:
        path.write_bytes(b"a file, not a folder")
    message = train_error(compose, tmp_path / "run", [f"data.val_images={path}"])
    assert message.startswith(f"data.val_images={path}: {expected}") and "data.root" not in message


def test_val_images_list_with_a_missing_file(compose, tmp_path, refuse_heavy_work):
    missing = tmp_path / "gone.jpg"
    message = train_error(compose, tmp_path / "run", [f"data.val_images=[{missing}]"])
    assert f"data.val_images: no such file {missing}" in message


def test_missing_annotations_file_is_named_early(compose, tmp_path, refuse_heavy_work):
    ann = tmp_path / "instances.json"
    message = train_error(compose, tmp_path / "run", [f"data.annotations={ann}"])
    assert f"data.annotations={ann}: no such file" in message


# ---------------------------------------------------------------------------
# ckpt_path: checked before anything heavy, with weights_only=True
# ---------------------------------------------------------------------------


def test_missing_checkpoint_says_no_such_file(compose, tmp_path, refuse_heavy_work):
    path = tmp_path / "nonexistent.ckpt"
    assert train_error(compose, tmp_path / "run", [f"ckpt_path={path}"]) == f"ckpt_path={path}: no such file"


def test_checkpoint_that_is_a_folder(compose, tmp_path, refuse_heavy_work):
    message = train_error(compose, tmp_path / "run", [f"ckpt_path={tmp_path}"])
    assert message.startswith(f"ckpt_path={tmp_path}: a folder, not a checkpoint file")


@pytest.mark.parametrize("cut", [0, 0.5], ids=["empty", "truncated"])
def test_empty_or_truncated_checkpoint(compose, tmp_path, refuse_heavy_work, tiny_checkpoint, cut):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: int(len(data) * cut)])
    message = train_error(compose, tmp_path / "run", [*TINY, f"ckpt_path={path}"])
    assert message.startswith(f"ckpt_path={path}: not a readable checkpoint (")


def test_resuming_a_run_already_at_max_steps_is_refused(compose, tmp_path, refuse_heavy_work, tiny_checkpoint):
    # Once: "`Trainer.fit` stopped: `max_steps=5` reached", a new run folder, an export, exit 0.
    step = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)["global_step"]
    overrides = [*TINY, f"ckpt_path={tiny_checkpoint}", f"trainer.max_steps={step}"]
    message = train_error(compose, tmp_path / "run", overrides)
    assert message == (
        f"ckpt_path={tiny_checkpoint}: the checkpoint is at step {step}, trainer.max_steps={step}: "
        "nothing to train; raise trainer.max_steps to go on"
    )


def test_torch_file_that_is_not_a_fastnst_checkpoint(compose, tmp_path, refuse_heavy_work):
    path = tmp_path / "weights.pth"
    torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, path)
    message = train_error(compose, tmp_path / "run", [f"ckpt_path={path}"])
    assert message.startswith(f"ckpt_path={path}: not a fastnst training checkpoint")


def test_weights_only_checkpoint_cannot_resume(compose, tmp_path, refuse_heavy_work, tiny_checkpoint):
    checkpoint = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    path = tmp_path / "weights_only.ckpt"
    torch.save({k: v for k, v in checkpoint.items() if k not in ("optimizer_states", "loops")}, path)
    message = train_error(compose, tmp_path / "run", [*TINY, f"ckpt_path={path}"])
    assert message.startswith(f"ckpt_path={path}: holds the weights only, not the training state")


def test_resume_with_a_different_model_names_both(compose, tmp_path, refuse_heavy_work, tiny_checkpoint):
    message = train_error(compose, tmp_path / "run", [*TINY, "model=light", f"ckpt_path={tiny_checkpoint}"])
    assert message.startswith(f"ckpt_path={tiny_checkpoint}: the checkpoint's network is ")
    assert "architecture=johnson, width=0.25, num_residual_blocks=1" in message
    assert "the config's is architecture=light, width=0.25, num_residual_blocks=1;" in message


def test_resume_with_the_same_model_passes_the_check(compose, tiny_checkpoint):
    from fastnst.training.checks import validate_config

    validate_config(compose([*TINY, f"ckpt_path={tiny_checkpoint}"]))


def test_ckpt_path_last_is_checked_against_the_model(compose, tmp_path, refuse_heavy_work, tiny_checkpoint):
    style_dir = tmp_path / "starry_night"
    (style_dir / "earlier").mkdir(parents=True)
    (style_dir / "earlier" / "last.ckpt").write_bytes(tiny_checkpoint.read_bytes())
    from fastnst.training.checks import validate_config

    with pytest.raises(FastNSTError, match=r"^ckpt_path=last \(.*/earlier/last\.ckpt\): the checkpoint's network is "):
        validate_config(compose([*TINY, "model=light", "ckpt_path=last"]), style_dir / "new")


# ---------------------------------------------------------------------------
# The command line: exit status 2, one error line, no run folder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("loss.tv_weight=-3", "loss.tv_weight=-3: must be a number >= 0"),
        ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0: must be a whole number >= 1"),
        ("+trainer.max_step=5", "trainer.max_step: no such setting (did you mean trainer.max_steps?)"),
        # Without the +: checked before Hydra composes, whose own error is several lines.
        ("loss.style_wieght=3", "loss.style_wieght: no such setting (did you mean loss.style_weight?)"),
        ("ckpt_path={tmp}/nonexistent.ckpt", "ckpt_path={tmp}/nonexistent.ckpt: no such file"),
        ("style.name=../escape", "style.name=../escape: a name, not a path"),  # once a run folder beside checkpoints/
        ("model=huge", "model=huge: no such model preset; choose from light, light_aa, small, transformer_net"),
        ("style=[wave,nonexist]", "style=nonexist: no such style preset; choose from composition_vii, shipwreck,"),
    ],
)
def test_cli_bad_setting_exits_2_with_one_line_and_no_run_folder(tmp_path, override, expected):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "data=sample",
            override.format(tmp=tmp_path),
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    lines = [line for line in out.splitlines() if "error:" in line]
    assert len(lines) == 1 and expected.format(tmp=tmp_path) in lines[0], out
    assert "Traceback" not in out and "Seed set" not in out
    assert not (tmp_path / "run").exists()


def test_cli_reports_a_missing_data_root_before_importing_lightning(tmp_path):
    """The commonest first error is answered in seconds: Lightning (several seconds to import) is not loaded."""
    command = [sys.executable, "-X", "importtime", str(REPO / "train.py"), "data.root=missing", "model=light"]
    result = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    (line,) = [line for line in out.splitlines() if "error:" in line]
    assert "data.root=missing: no such folder" in line and "Traceback" not in out
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "fastnst.training.checks" in imported  # -X importtime lists every import
    assert not [name for name in imported if name.split(".")[0] == "lightning"], "Lightning was imported"


# ---------------------------------------------------------------------------
# Data: messages that name the right setting; annotation entries outside data.root
# ---------------------------------------------------------------------------


def save_solid(path: Path, color: tuple[int, int, int], size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), color, dtype=np.uint8)).save(path)
    return path


def write_annotations(path: Path, names: list[str]) -> Path:
    path.write_text(json.dumps({"images": [{"id": k, "file_name": n} for k, n in enumerate(names)]}))
    return path


def test_a_folder_of_only_broken_images_says_so(tmp_path):
    # Once: "50 unreadable images in a row near .../a.jpg" for a folder of two files.
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_text("not an image")
    dataset = PhotoDataset(sorted(tmp_path.iterdir()), image_size=32)
    with pytest.raises(DataError) as info:
        dataset[0]
    message = str(info.value)
    assert message.startswith("none of the 2 images found is readable (e.g. ") and "a.jpg" in message
    assert message.endswith("; check data.root")


def test_datamodule_names_num_workers():
    with pytest.raises(DataError) as info:
        PhotoDataModule(root=None, num_workers=-1)
    assert str(info.value) == "data.num_workers=-1: must be a whole number >= 0"


def test_datamodule_names_val_images(tmp_path):
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, val_images=str(tmp_path / "nonexistent"))
    with pytest.raises(DataError) as info:
        dm.setup()
    assert str(info.value).startswith(f"data.val_images={tmp_path / 'nonexistent'}: no such folder")


def test_annotations_listing_no_images_names_the_annotations(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError) as info:
        find_images(tmp_path, ann)
    assert str(info.value) == f"data.annotations={ann}: lists no images"


def test_annotated_files_not_found_are_named(tmp_path):
    root = tmp_path / "train2017"
    root.mkdir()
    ann = write_annotations(tmp_path / "ann.json", ["a.jpg", "b.jpg", "c.jpg"])
    with pytest.raises(DataError) as info:
        find_images(root, ann)
    assert str(info.value) == f"data.annotations={ann} lists 3 files not found under data.root={root} (first: a.jpg)"


def test_some_annotated_files_missing_are_skipped_with_a_warning(tmp_path, caplog):
    root = tmp_path / "train2017"
    save_solid(root / "b.jpg", (0, 0, 255))
    ann = write_annotations(tmp_path / "ann.json", ["a.jpg", "b.jpg", "c.jpg"])
    with caplog.at_level(logging.WARNING, logger="fastnst.photos"):
        assert find_images(root, ann) == [root / "b.jpg"]
    assert f"data.annotations={ann} lists 2 files not found under data.root={root} (first: a.jpg)" in caplog.text


def test_annotation_entries_outside_the_root_are_skipped_never_read(tmp_path, caplog):
    root = tmp_path / "dataset" / "images"
    inside = [save_solid(root / f"{k}.jpg", (0, 0, 255)) for k in range(2)]
    outside = save_solid(tmp_path / "private" / "secret.jpg", (255, 0, 0))
    (root / "link.jpg").symlink_to(outside)  # a symlink whose target is outside the root
    names = ["0.jpg", str(outside), "../../private/secret.jpg", "link.jpg", "sub/../1.jpg"]
    ann = write_annotations(tmp_path / "ann.json", names)
    with caplog.at_level(logging.WARNING, logger="fastnst.photos"):
        files = find_images(root, ann)
    assert [p.resolve() for p in files] == [p.resolve() for p in inside]
    assert (
        f"data.annotations={ann}: 3 entries point outside data.root={root}; skipped, never read (first: {outside})"
        in caplog.text
    )
    # Every sample of the dataset built from the list is an inside (blue) image, never the red one.
    dataset = PhotoDataset(files, image_size=32)
    for k in range(len(dataset)):
        sample = dataset[(k, k)]
        assert not sample["skipped"]
        assert sample["image"][2].mean() > 0.9 and sample["image"][0].mean() < 0.1


def test_annotation_entries_all_outside_the_root(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    outside = save_solid(tmp_path / "secret.jpg", (255, 0, 0))
    ann = write_annotations(tmp_path / "ann.json", [str(outside), "../secret.jpg"])
    with pytest.raises(DataError) as info:
        find_images(root, ann)
    assert str(info.value) == (
        f"data.annotations={ann}: all 2 entries point outside data.root={root} (first: {outside}); nothing to train on"
    )


def test_annotation_entry_that_is_not_a_string(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"file_name": 7}]}))
    with pytest.raises(DataError) as info:
        find_images(tmp_path, ann)
    assert str(info.value).startswith(f"data.annotations={ann}: images[0].file_name is not a string")


@pytest.mark.parametrize(
    "overrides", [["model.strength=true", "style.style_weight=abc"], ["style=[wave,udnie]", "loss.style_weight=abc"]]
)
def test_style_weights_of_a_conditional_run_must_be_numbers(compose, overrides):
    """expand_styles scales the weights: a word is a one-line error there, not a TypeError."""
    from fastnst.training.style_set import expand_styles

    with pytest.raises(FastNSTError, match=r"^(style|loss)\.style_weight=abc: expected a number$"):
        expand_styles(compose(overrides), overrides)


def test_override_keys_are_checked_before_hydra():
    """Unknown keys of key=value overrides, with the nearest key; groups, appends, deletions, Hydra's own
    keys, flags and dict entries (layer names are checked later) pass."""
    from fastnst.training.config import OptimizeConfig, check_override_keys

    check_override_keys(
        ["style=wave", "model=light", "loss.style_layers.relu4_4=0", "+trainer.foo=1", "~style.image",
         "hydra.run.dir=x", "hydra/job_logging=disabled", "--cfg", "job", "trainer.lr=1e-3", "seed=3"]
    )  # fmt: skip
    for override, expected in (
        ("trainer.lrr=1", "trainer.lrr: no such setting (did you mean trainer.lr?)"),
        ("model.widht=1", "model.widht: no such setting (did you mean model.width?)"),
        ("sead=1", "sead: no such setting (did you mean seed?)"),
    ):
        with pytest.raises(FastNSTError, match=re.escape(expected)):
            check_override_keys(["style=wave", override])
    check_override_keys(["preset=gatys", "style_weight=3"], OptimizeConfig, groups=("preset",))
    with pytest.raises(FastNSTError, match=re.escape("style_wieght: no such setting (did you mean style_weight?)")):
        check_override_keys(["style_wieght=3"], OptimizeConfig, groups=("preset",))


def test_settings_that_run_but_do_not_do_what_they_say_are_warned_about(compose, tmp_path, caplog):
    from fastnst.training.checks import validate_config

    tiny = save_solid(tmp_path / "tiny.png", (200, 30, 30), size=20)
    overrides = [*TINY, f"style.image={tiny}", "style.size=128", "trainer.lr=0.002", "trainer.lr_final=1",
                 "trainer.decay_steps=5"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="fastnst.training.trainer"):
        validate_config(compose(overrides))
    blurred = f"style.image={tiny} is 20x20 px, scaled up to style.size=128: its strokes will be blurred"
    assert blurred in caplog.messages
    assert "trainer.lr_final=1 is above trainer.lr=0.002: the rate rises over the run" in caplog.messages
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastnst.training.trainer"):
        validate_config(compose([*TINY, "trainer.lr_final=null", "trainer.decay_steps=5"]))
    assert caplog.messages == ["trainer.decay_steps=5 does nothing without trainer.lr_final: the rate stays constant"]
