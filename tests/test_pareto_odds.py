"""scripts/pareto_odds.py: the bootstrap share of photo sets on which a method beats a reference on every figure."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

SCRIPT = REPO / "scripts" / "pareto_odds.py"


@pytest.fixture(scope="module")
def odds():
    spec = importlib.util.spec_from_file_location("pareto_odds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pareto_odds


def test_known_values(odds):
    reference = np.ones((4, 3))
    assert odds(reference * 0.9, reference, photos=5)[0] == 1.0  # better on every photo
    assert odds(reference, reference, photos=5)[0] == 0.0  # level is not better
    # Better on three photos of four, worse on one: a one-photo set is better with odds 3/4
    candidate = np.array([[0.9] * 3, [0.9] * 3, [0.9] * 3, [1.5] * 3])
    p_all, p_each = odds(candidate, reference, photos=1, draws=40000)
    assert p_all == pytest.approx(0.75, abs=0.01) and p_each == pytest.approx([0.75] * 3, abs=0.01)
    # One figure always worse: never better on all three, whatever the other two do
    worse_gram = reference * [0.5, 1.01, 0.5]
    p_all, p_each = odds(worse_gram, reference, photos=3)
    assert p_all == 0.0 and list(p_each) == [1.0, 0.0, 1.0]


def test_odds_grow_with_the_set_for_a_better_mean(odds):
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.5, 1.5, size=(16, 3))
    candidate = reference * rng.uniform(0.7, 1.1, size=(16, 3))  # a mean ratio below 1, noisy per photo
    assert (candidate.mean(0) < reference.mean(0)).all()
    small, large = odds(candidate, reference, photos=3)[0], odds(candidate, reference, photos=100)[0]
    assert 0.0 < small < large


def _scores(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "photo", "content", "style_gram", "style_stats"])
        writer.writerows(rows)


def test_script_pools_files_and_prints_odds(tmp_path):
    _scores(tmp_path / "a.csv", [["ours", "x.jpg", 0.5, 0.1, 0.3], ["peer", "x.jpg", 0.6, 0.2, 0.4]])
    # b.csv: another candidate beside the same reference on x.jpg, and a second photo
    b = [["other", "x.jpg", 0.7, 0.1, 0.3], ["peer", "x.jpg", 0.6, 0.2, 0.4]]
    b += [["ours", "y.jpg", 0.5, 0.1, 0.3], ["other", "y.jpg", 0.7, 0.1, 0.3], ["peer", "y.jpg", 0.6, 0.2, 0.4]]
    _scores(tmp_path / "b.csv", b)
    command = [sys.executable, SCRIPT, tmp_path / "a.csv", tmp_path / "b.csv", "--reference", "peer", "--photos", "2"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert out.startswith("2 photos; against peer")
    assert "ours: pooled 0.833x / 0.500x / 0.750x" in out and "P(better on all three) 1.00" in out
    assert "other: pooled 1.167x" in out and "P(better on all three) 0.00" in out


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        ([["ours", "x.jpg", 0.5, 0.1, 0.3]], ["--reference", "peer"], "--reference peer: no such method in the scores"),
        (
            [["ours", "x.jpg", 0.5, 0.1, 0.3], ["peer", "x.jpg", 0.6, 0.2, 0.4], ["peer", "y.jpg", 0.6, 0.2, 0.4]],
            ["--reference", "peer"],
            "ours: no figures for y.jpg; judge every method on the same photos",
        ),
        (
            [["peer", "x.jpg", 0.6, 0.2, 0.4], ["peer", "x.jpg", 0.7, 0.2, 0.4]],
            ["--reference", "peer"],
            ".*a.csv: peer on x.jpg has other figures than in an earlier file",
        ),
    ],
)
def test_script_one_line_errors(tmp_path, rows, args, message):
    _scores(tmp_path / "a.csv", rows)
    proc = subprocess.run([sys.executable, SCRIPT, tmp_path / "a.csv", *args], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(f"error: {message}", lines[0])


def test_script_names_an_unreadable_file(tmp_path):
    (tmp_path / "a.csv").write_text("not,a,scores\nfile\n")
    proc = subprocess.run(
        [sys.executable, SCRIPT, tmp_path / "a.csv", "--reference", "x"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and proc.stderr.startswith(f"error: {tmp_path / 'a.csv'}: not a readable")
