"""scripts/gpu_session.py's bookkeeping: the rate it reads off a run's log and the parts it packs.

The training it drives is train.py's own (tested in test_train.py); what it adds is read here on
files of the shapes that train.py writes. Its runs on a GPU are in docs/benchmarks.md ("GPU").
"""

from __future__ import annotations

import importlib.util
import tarfile

from conftest import REPO

spec = importlib.util.spec_from_file_location("gpu_session", REPO / "scripts" / "gpu_session.py")
gpu_session = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_session)

# Lines as fastnst.training.trainer.ProgressLog and train.py's stop message write them (timestamps cut).
LOG = "".join(
    f"[16:31][{logger}] - {message}\n"
    for logger, message in (
        ("fastnst.training.trainer][INFO", "step 100/9000 | loss 5.1 (content 0.8) | 2.31 steps/s | ETA 9:00"),
        ("fastnst.training.trainer][INFO", "step 2500/9000 | loss 3.4 (content 0.6) | 9.46 steps/s | ETA 2:00"),
        ("fastnst.training.interrupt][WARNING", "SIGINT received: finishing this step and saving a checkpoint"),
        ("fastnst.train][WARNING", "stopped by SIGINT at step 2529, the state is saved; resume with: python train.py"),
    )
)


def test_the_rate_is_the_newest_progress_line_and_the_step_is_the_saved_one(tmp_path):
    run = tmp_path / "udnie_small"
    run.with_suffix(".out").write_text(LOG)
    assert gpu_session.last_rate(run) == (2529, 9.46)
    run.with_suffix(".out").write_text("".join(LOG.splitlines(keepends=True)[:2]))  # still running: no stop message yet
    assert gpu_session.last_rate(run) == (2500, 9.46)
    assert gpu_session.last_rate(tmp_path / "not_started") == (0, 0.0)


def test_packing_puts_checkpoints_before_previews_and_the_parts_rejoin(tmp_path):
    runs, out = tmp_path / "gpu", tmp_path / "out"
    out.mkdir()
    files = {
        "a.out": 1000,
        "a/config.yaml": 100,
        "a/fit-profile.txt": 100,
        "a/last.ckpt": 6 << 20,
        "a_decay/last.ckpt": 6 << 20,
        "a/previews/step_0001000.png": 5 << 20,
        "a/previews/step_0002000.png": 5 << 20,
        "a/step=0001000.ckpt": 6 << 20,
    }
    for name, size in files.items():
        (runs / name).parent.mkdir(parents=True, exist_ok=True)
        (runs / name).write_bytes(bytes([len(name)]) * size)
    gpu_session.pack(runs, out, limit=16 << 20)
    parts = sorted(out.glob("runs.tar.*"))
    assert [p.name for p in parts] == ["runs.tar.00"]  # 12 MiB under the 16-MiB limit: one part
    with tarfile.open(parts[0]) as tar:
        names = set(tar.getnames())
    # logs first, then both legs' last.ckpt; the newest preview did not fit; periodic checkpoints never go
    assert names == {
        "gpu/a.out",
        "gpu/a/config.yaml",
        "gpu/a/fit-profile.txt",  # trainer.profiler's report goes with the logs
        "gpu/a/last.ckpt",
        "gpu/a_decay/last.ckpt",
    }


def test_parts_are_at_most_15_mib_and_concatenate_to_the_tar(tmp_path):
    runs, out = tmp_path / "gpu", tmp_path / "out"
    (runs / "a").mkdir(parents=True)
    out.mkdir()
    (runs / "a" / "last.ckpt").write_bytes(b"\x01" * (20 << 20))
    gpu_session.pack(runs, out)
    parts = sorted(out.glob("runs.tar.*"))
    assert [p.stat().st_size <= 15 << 20 for p in parts] == [True, True]
    (tmp_path / "whole.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "whole.tar") as tar:
        assert tar.extractfile("gpu/a/last.ckpt").read() == b"\x01" * (20 << 20)
