"""End-to-end training through train.py: outputs, checkpoints, exact resume, bad data, CLI errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY
from PIL import Image

from fastnst.photos import sample_photos_dir
from fastnst.styles import builtin_styles
from fastnst.training.module import StyleTransferModule


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_every_config_option_composes(compose):
    groups = {
        g: sorted(p.stem for p in (REPO / "conf" / g).glob("*.yaml"))
        for g in ("style", "model", "loss", "data", "trainer")
    }
    assert len(groups["style"]) >= 6 and "starry_night" in groups["style"]
    for group, options in groups.items():
        for option in options:
            cfg = compose([f"{group}={option}"])
            assert cfg[group] is not None
    # Every style preset ships its painting inside the package.
    for style in groups["style"]:
        cfg = compose([f"style={style}"])
        assert Path(cfg.style.image).stem in builtin_styles(), style
        assert cfg.loss.style_weight == cfg.style.style_weight


def test_documented_overrides_apply(compose, tmp_path):
    cfg = compose(
        [
            "style=the_scream",
            f"style.image={tmp_path / 'x.jpg'}",
            "loss.content_weight=2",
            "loss.style_weight=7",
            "loss.tv_weight=0.1",
            f"data.root={tmp_path}",
            "data.image_size=128",
            "data.batch_size=8",
            "trainer.max_steps=10",
        ]
    )
    assert cfg.style.name == "the_scream" and cfg.style.image == str(tmp_path / "x.jpg")
    assert (cfg.loss.content_weight, cfg.loss.style_weight, cfg.loss.tv_weight) == (2, 7, 0.1)
    assert (cfg.data.root, cfg.data.image_size, cfg.data.batch_size) == (str(tmp_path), 128, 8)
    assert cfg.trainer.max_steps == 10


def test_profiler_writes_where_the_step_time_goes(run_training, tmp_path):
    run = run_training(tmp_path / "run", ["trainer.max_steps=2", "trainer.profiler=simple"])
    report = (run / "fit-profile.txt").read_text()
    assert "run_training_batch" in report and "train_dataloader_next" in report


def test_a_run_ending_between_validations_previews_its_last_step(run_training, tmp_path):
    # Once the finished network had no preview: max_steps=3 with validation every 2 steps showed step 2 only.
    run = run_training(tmp_path / "run", ["trainer.max_steps=3"])
    previews = sorted(p.name for p in (run / "previews").glob("step_*.png"))
    assert previews == ["step_0000002.png", "step_0000003.png"]
    assert load_ckpt(run / "last.ckpt")["global_step"] == 3


def test_training_run_writes_checkpoints_logs_previews_config(run_training, tmp_path):
    run = run_training(tmp_path / "run")
    assert {"last.ckpt", "step=0000002.ckpt", "step=0000004.ckpt", "config.yaml"} <= {p.name for p in run.iterdir()}
    assert "${" not in (run / "config.yaml").read_text()  # resolved
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    previews = sorted((run / "previews").glob("step_*.png"))
    assert [p.name for p in previews] == ["step_0000002.png", "step_0000004.png"]
    grid = Image.open(previews[-1])
    assert grid.mode == "RGB" and grid.size[0] > grid.size[1]  # 4 photos wide, 2 rows

    ckpt = load_ckpt(run / "last.ckpt")
    assert ckpt["global_step"] == 4
    assert not [k for k in ckpt["state_dict"] if k.startswith("perceptual.")], "VGG must not be saved"
    assert ckpt["optimizer_states"], "optimizer state is needed to resume"
    # Plain hyperparameters: the module loads without Hydra and stylizes.
    module = StyleTransferModule.load_from_checkpoint(run / "last.ckpt", map_location="cpu")
    assert module.hparams.style_name == "starry_night" and module.hparams.image_size == 32
    out = module(torch.rand(1, 3, 37, 41))
    assert out.shape == (1, 3, 37, 41) and out.min() >= 0 and out.max() <= 1


def test_resume_restores_weights_optimizer_and_data_position_exactly(run_training, tmp_path):
    full = run_training(tmp_path / "full", ["trainer.max_steps=4"])
    half = run_training(tmp_path / "half", ["trainer.max_steps=2"])
    # The training time so far is in the checkpoint (learning curves plot it); a resumed run counts on
    # from it. Set to 1000 s here so that a run counting from zero cannot pass.
    state = load_ckpt(half / "last.ckpt")
    assert state["callbacks"]["Timer"]["time_elapsed"]["train"] > 0
    state["callbacks"]["Timer"]["time_elapsed"]["train"] = 1000.0
    torch.save(state, half / "timed.ckpt")
    resumed = run_training(tmp_path / "resumed", ["trainer.max_steps=4", f"ckpt_path={half / 'timed.ckpt'}"])
    a, b = load_ckpt(full / "last.ckpt"), load_ckpt(resumed / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 4
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    for key, value in a["optimizer_states"][0]["state"][0].items():
        torch.testing.assert_close(b["optimizer_states"][0]["state"][0][key], value, rtol=0, atol=1e-6)
    assert 1000 < b["callbacks"]["Timer"]["time_elapsed"]["train"] < 1600
    # A run that resumed at step 2 and one that did not differ if the data order was not restored:
    # check that the test can tell them apart.
    other_seed = run_training(tmp_path / "seed1", ["trainer.max_steps=4", "seed=1"])
    c = load_ckpt(other_seed / "last.ckpt")
    assert any(not torch.equal(c["state_dict"][k], v) for k, v in a["state_dict"].items())


def test_ckpt_path_last_resumes_newest_run_of_the_style(run_training, tmp_path):
    style_dir = tmp_path / "checkpoints" / "starry_night"
    run_training(style_dir / "2026-01-01_00-00-00", ["trainer.max_steps=2"])
    resumed = run_training(style_dir / "2026-01-01_00-10-00", ["ckpt_path=last"])
    names = {p.name for p in resumed.glob("*.ckpt")}
    assert "step=0000004.ckpt" in names and "step=0000002.ckpt" not in names  # started at step 2
    assert load_ckpt(resumed / "last.ckpt")["global_step"] == 4


def test_unreadable_images_are_skipped_and_reported(run_training, tmp_path):
    photos = tmp_path / "photos" / "nested"
    photos.mkdir(parents=True)
    for p in sample_photos_dir().glob("*.jpg"):
        (photos / p.name).write_bytes(p.read_bytes())
    (photos / "garbage.jpg").write_bytes(os.urandom(5000))
    good = (sample_photos_dir() / "coffee.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (photos / "notes.txt").write_text("not an image, not scanned")
    run = run_training(tmp_path / "run", [f"data.root={tmp_path / 'photos'}", "trainer.max_steps=6"])
    assert load_ckpt(run / "last.ckpt")["global_step"] == 6
    report = (run / "skipped_images.txt").read_text()
    assert "garbage.jpg" in report and "truncated.jpg" in report and "notes.txt" not in report


def test_coco_annotations_json(run_training, tmp_path):
    ann = tmp_path / "instances.json"
    ann.write_text('{"images": [{"id": 1, "file_name": "coffee.jpg"}, {"id": 2, "file_name": "rocket.jpg"}]}')
    run = run_training(tmp_path / "run", [f"data.root={sample_photos_dir()}", f"data.annotations={ann}"])
    assert load_ckpt(run / "last.ckpt")["global_step"] == 4


def _train_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["python train.py", "fastnst train"])
def test_cli_without_dataset_says_how_to_get_one(tmp_path, command):
    args = ["style=starry_night", "data.root=no/such/folder", f"hydra.run.dir={tmp_path}"]
    if command == "python train.py":
        result = _train_cli(*args, cwd=tmp_path)
    else:  # the hint repeats the command the user ran
        fastnst = [sys.executable, "-m", "fastnst", "train", *args]
        result = subprocess.run(fastnst, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    lines = [line for line in out.splitlines() if "error:" in line]
    assert len(lines) == 1, out
    assert "data.root=no/such/folder" in lines[0]
    assert "scripts/download_coco.py" in lines[0] and f"`{command} data=sample model=small trainer=cpu`" in lines[0]
    assert "Traceback" not in out


def test_cli_help_says_how_to_train_and_lists_the_groups(tmp_path):
    result = _train_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("python train.py (or fastnst train)")
    for words in ("style=NAME", "trainer=cpu", "init=six_styles", "ckpt_path=last", "model.strength=true"):
        assert words in out, words
    for group in ("data", "loss", "model", "style", "trainer"):
        options = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in out
    assert "preset is for fastnst optimize" in out and "content_weight: 3.0" in out
    assert list(tmp_path.iterdir()) == []  # help trains nothing and writes nothing


def test_a_failed_run_leaves_no_empty_style_folder(tmp_path):
    # The default layout, checkpoints/<style>/<time>: once an empty checkpoints/shipwreck/ stayed behind.
    (tmp_path / "checkpoints" / "wave").mkdir(parents=True)  # another style's folder is left alone
    result = _train_cli("style=shipwreck", "data.root=no/such/folder", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["wave"]


def test_cli_bad_style_image_is_one_line_error(tmp_path):
    result = _train_cli("data=sample", "style.image=missing.jpg", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "style.image=missing.jpg" in out and "starry_night" in out and "Traceback" not in out


@pytest.mark.parametrize("kind", ["over the pixel limit", "not an image"])
def test_cli_unreadable_or_huge_painting_is_one_line_error_before_the_run(tmp_path, kind):
    from PIL import Image

    painting = tmp_path / "painting.png"
    if kind == "not an image":
        painting.write_text("my notes")
    else:
        Image.new("RGB", (400, 300)).save(painting)
    env = {**os.environ, "FASTNST_MAX_IMAGE_PIXELS": "100000"}  # 400 x 300 = 120,000 pixels
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "data=sample", f"style.image={painting}", f"hydra.run.dir={run}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = [line for line in (result.stdout + result.stderr).splitlines() if "error:" in line]
    expected = "over the limit of 100,000" if kind == "over the pixel limit" else "not a readable image"
    assert f"style.image={painting}: {painting}" in line and expected in line
    assert not run.exists()  # no run folder left behind


def test_multirun_sweep_writes_one_run_per_job(tmp_path, vgg_weights_file):
    result = _train_cli(
        "-m", *TINY, "trainer.max_steps=1", "loss.style_weight=1,3", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted(p.parent for p in tmp_path.glob("starry_night/*/last.ckpt"))
    assert len(runs) == 2
    weights = sorted(load_ckpt(r / "last.ckpt")["hyper_parameters"]["style_weight"] for r in runs)
    assert weights == [1.0, 3.0]
    out = result.stdout + result.stderr  # each line once (Lightning's own handler printed them twice)
    assert out.count("Seed set to 0") == 2 and "litlogger" not in out and "LeafSpec" not in out
    assert out.count("(previews/, and TensorBoard: tensorboard --logdir ") == 2  # each run's folder, at its start


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, vgg_weights_file):
    result = _train_cli(
        *TINY,
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ckpt = load_ckpt(tmp_path / "run" / "last.ckpt")
    assert ckpt["global_step"] == 4


def test_bf16_mixed_precision_keeps_losses_finite(run_training, tmp_path):
    # bf16 autocast runs on the CPU too: the same code path as a GPU run, Gram in float32.
    run = run_training(tmp_path / "run", ["trainer.precision=bf16-mixed", "trainer.max_steps=2"])
    ckpt = load_ckpt(run / "last.ckpt")
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses and all(map(lambda v: v == v and abs(v) < 1e6, losses))
    assert {"train/content", "train/style", "train/tv", "train/style/relu1_2", "val/loss"} <= set(
        events.Tags()["scalars"]
    )
    assert "val/preview" in events.Tags()["images"]


def test_failed_start_leaves_no_run_folder(tmp_path):
    run_dir = tmp_path / "checkpoints" / "starry_night" / "now"
    result = _train_cli("data.root=missing", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    assert not run_dir.exists()


def test_resuming_from_a_step_checkpoint_needs_no_hydra_quoting(run_training, tmp_path, vgg_weights_file):
    # The checkpoints are named step=N.ckpt; Hydra's grammar refuses an unquoted "=" in a value.
    first = run_training(tmp_path / "first", ["trainer.max_steps=2"])
    resumed = tmp_path / "run=2"  # Hydra's own folder setting, too
    step2 = first / "step=0000002.ckpt"
    every = "trainer.checkpoint_every_n_steps=1"  # another interval than the checkpoint's
    result = _train_cli(
        *TINY, "trainer.max_steps=4", every, f"ckpt_path={step2}", f"hydra.run.dir={resumed}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_ckpt(resumed / "last.ckpt")["global_step"] == 4
    assert {p.name for p in resumed.glob("step=*.ckpt")} == {"step=0000003.ckpt", "step=0000004.ckpt"}
    # Lightning's advice to pass the same ModelCheckpoint settings: a new interval is a setting, not a mistake.
    assert "callbacks used to create the checkpoint" not in result.stdout + result.stderr


def test_last_checkpoint_is_the_end_state_whatever_the_interval(run_training, tmp_path):
    run = run_training(tmp_path / "run", ["trainer.max_steps=5", "trainer.checkpoint_every_n_steps=2"])
    assert load_ckpt(run / "last.ckpt")["global_step"] == 5


def test_eta_is_not_wrapped_at_a_day():
    from fastnst.training.trainer import format_duration

    assert format_duration(0) == "0:00:00"
    assert format_duration(3599.6) == "1:00:00"
    assert format_duration(57 * 3600 + 3 * 60 + 12) == "57:03:12"  # time.strftime of gmtime gave 09:03:12


@pytest.mark.parametrize("resumed_bar", [False, True])
def test_a_resumed_epochs_bar_counts_its_rate_from_where_it_resumed(resumed_bar):
    """Resumed at step 940 of 1,600, at batch 648 of a 660-batch epoch, one batch in 50 s: 649/660 at
    0.02 it/s, 11 x 50 s left in the epoch; Lightning's own bar shows 13 it/s."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import TQDMProgressBar

    from fastnst.training.trainer import ResumedProgressBar

    trainer = SimpleNamespace(
        current_epoch=6, num_training_batches=660, max_epochs=-1, max_steps=1600, global_step=940, is_global_zero=True
    )
    callback = ResumedProgressBar() if resumed_bar else TQDMProgressBar()
    callback.setup(trainer, None, "fit")  # type: ignore[arg-type]
    callback.train_progress_bar = bar = callback.init_train_tqdm()
    callback.on_train_epoch_start(trainer)  # type: ignore[arg-type]
    callback.on_train_batch_start(trainer, None, {}, 648)  # type: ignore[arg-type]
    callback.on_train_batch_start(trainer, None, {}, 649)  # type: ignore[arg-type]  (later batches: no change)
    bar.n = 649  # one batch done, 50 s after the epoch's start
    shown = bar.format_meter(**{**bar.format_dict, "elapsed": 50.0})
    bar.close()
    assert "649/660" in shown
    assert ("<09:10,  0.02it/s" in shown) == resumed_bar, shown


def test_moving_average_warms_up_known_values():
    """trainer.ema_decay's average: min(decay, (1 + n) / (10 + n)) after n updates, so that it does not keep
    the untrained network for thousands of steps (a fixed 0.999 keeps 37% of it after 1,000)."""
    from torch.optim.swa_utils import AveragedModel

    from fastnst.training.trainer import ema_decay_at, ema_update

    assert [round(ema_decay_at(0.999, n).item(), 6) for n in (0, 1, 90, 990)] == [0.1, round(2 / 11, 6), 0.91, 0.991]
    assert ema_decay_at(0.999, 20000).item() == pytest.approx(0.999)
    assert ema_decay_at(0.5, 90).item() == 0.5  # the cap
    # A weight that takes the values 0, 1, 2, 3: AveragedModel copies the first, then updates with n = 1, 2, 3.
    net = torch.nn.Linear(1, 1, bias=False)
    average = AveragedModel(net, avg_fn=ema_update(0.999))
    seen = []
    for value in (0.0, 1.0, 2.0, 3.0):
        net.weight.data.fill_(value)
        average.update_parameters(net)
        seen.append(average.module.weight.item())
    # 0; 0 + 9/11 (1 - 0); then 3/4 of the way to 2; then 9/13 of the way to 3
    assert seen == pytest.approx([0.0, 0.818182, 1.704545, 2.601399], abs=1e-6)
    assert net.weight.item() == 3.0  # the trained weight is left as it is


def test_ema_weights_are_exported_and_a_resumed_run_matches(run_training, tmp_path):
    """trainer.ema_decay: checkpoints hold the moving average as the weights and the trained ones under
    current_model_state; export takes the average (--no-ema the trained); a resumed run matches."""
    from fastnst.nn.export import load_network

    ema = ["trainer.max_steps=4", "trainer.ema_decay=0.5"]
    full = run_training(tmp_path / "full", ema)
    half = run_training(tmp_path / "half", [*ema, "trainer.max_steps=2"])
    resumed = run_training(tmp_path / "resumed", [*ema, f"ckpt_path={half / 'last.ckpt'}"])
    a, b = load_ckpt(full / "last.ckpt"), load_ckpt(resumed / "last.ckpt")
    for part in ("state_dict", "current_model_state"):
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, rtol=0, atol=1e-6, msg=f"{part} {key}")
    plain = load_ckpt(run_training(tmp_path / "plain", ["trainer.max_steps=4"]) / "last.ckpt")
    for key, value in plain["state_dict"].items():  # the trained weights are those of a run without EMA
        torch.testing.assert_close(a["current_model_state"][key], value, rtol=0, atol=1e-6, msg=key)
    # Resumed without trainer.ema_decay, the trained weights go on (not their average): as the plain run.
    off = run_training(tmp_path / "off", ["trainer.max_steps=4", f"ckpt_path={half / 'last.ckpt'}"])
    for key, value in plain["state_dict"].items():
        torch.testing.assert_close(load_ckpt(off / "last.ckpt")["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    averaged, trained = load_network(full / "last.ckpt")[0], load_network(full / "last.ckpt", averaged=False)[0]
    nets = [dict(n.state_dict()) for n in (averaged, trained)]
    assert any(not torch.equal(nets[0][k], nets[1][k]) for k in nets[0])
    for key, value in nets[1].items():
        torch.testing.assert_close(value, a["current_model_state"][f"net.{key}"], rtol=0, atol=0)
