"""scripts/bench.py runs end to end at toy sizes (the figures themselves come from real runs: docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

BENCH = REPO / "scripts" / "bench.py"


def run_bench(*args: str, tmp_path) -> tuple[str, dict]:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args, "--json", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.slow  # about 17 s; keeps the default run under 10 minutes
def test_bench_train_toy(tmp_path, assets, vgg_weights_file):
    stdout, result = run_bench(
        "train", "--quick", "--image-size", "32", "--style-size", "64", "--steps", "1", "--warmup", "1",
        "--workers", "0", "--model", "small", tmp_path=tmp_path,
    )  # fmt: skip
    lines = stdout.strip().splitlines()
    assert "fp32 loss: fastnst" in stdout  # the same-objective check ran
    assert lines[-1].startswith("train: fastnst / reference images/s: small")
    methods = [r["method"] for r in result["rows"]]
    assert len(methods) == 3 and all(r["images_per_s"] > 0 for r in result["rows"])
    assert result["ratio"]["small"] > 0 and result["data_images_per_s"]


@pytest.mark.slow  # about 17 s; keeps the default run under 10 minutes
def test_bench_infer_toy(tmp_path):
    stdout, result = run_bench(
        "infer", "--network", "light", "--sizes", "256", "--precisions", "fp32", "--repeats", "1",
        tmp_path=tmp_path,
    )  # fmt: skip
    # int8: tests/test_export.py
    assert set(result["ms"]) >= {"light torch eager fp32", "light onnxruntime fp32", "light Stylizer fp32"}
    assert result["networks"]["light"]["macs_per_pixel"] == pytest.approx(5562)
    last = stdout.strip().splitlines()[-1]
    if "ratio_light_to_peer" in result:  # the peer model is in the development assets
        assert last.startswith("infer: light model") and "the peer's latency" in last


def test_bench_video_toy(tmp_path, assets):
    stdout, result = run_bench(
        "video", "--model", "wave", "--model", "udnie", "--frames", "3", "--max-size", "96", tmp_path=tmp_path
    )
    assert list(result["ms"]) == ["wave per frame", "wave smoothed statistics (0.9)", "udnie per frame"]
    assert result["ratios"]["wave per frame"] == 1.0 and all(v > 0 for v in result["ms"].values())
    assert stdout.strip().splitlines()[-1].startswith("video: wave smoothed statistics (0.9)")


def test_bench_train_reference_computes_the_schema_objective(assets, vgg_weights_file, monkeypatch):
    """The same-objective check of `bench.py train` (slow above) on one toy batch: the reference loss,
    written the pytorch/examples way, equals fastnst's with every term of the default recipe (TV too)."""
    import argparse
    import importlib.util

    import torch

    monkeypatch.syspath_prepend(str(REPO / "scripts"))  # its benchlib
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "scripts" / "bench_train.py")
    bench_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_train)
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    s = parser.parse_args(["--image-size", "32", "--style-size", "64", "--batch-size", "2", "--model", "light"])
    s.model = "light"
    for key, value in bench_train.module_defaults().items():
        if key in bench_train.OBJECTIVE_KEYS:
            setattr(s, key, value)
    assert s.tv_weight > 0  # the default recipe has the term this check once missed
    files = bench_train.find_images(assets / "photos")[:2]
    torch.manual_seed(0)
    ours, theirs = bench_train.same_losses(s, files, torch.device("cpu"))
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_the_readme_bench_lines_are_its_command_lines(monkeypatch):
    """Each `python scripts/bench.py ...` line of the README parses, and every part has one."""
    monkeypatch.syspath_prepend(str(BENCH.parent))  # bench.py imports its parts as the script does
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    readme = (REPO / "README.md").read_text().splitlines()
    lines = [shlex.split(x.split("#")[0]) for x in readme if x.strip().startswith("python scripts/bench.py")]
    parsed = [bench.build_parser().parse_args(args[2:]) for args in lines]
    assert sorted(args.part for args in parsed) == ["infer", "optimize", "train", "video"]
