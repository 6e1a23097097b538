#!/usr/bin/env python3
"""How likely is a network better than a reference on every figure of the judge, on photos not judged yet?

    fastnst eval --style udnie --content ten/ --model ours.onnx --images peer/ --label ours --label peer -o ev_ten
    fastnst eval --style udnie --content other/ --model ours.onnx --images peer/ --label ours --label peer -o ev_six
    python scripts/pareto_odds.py ev_ten/scores.csv ev_six/scores.csv --reference peer --photos 10

The judge's figure of a photo set is a mean over its photos, and the ratio of two networks' figures
varies a lot from photo to photo (0.78x to 1.23x for two udnie networks whose means are level), so a
lead of a few percent on one set says little about another. This pools the photos of the given
``scores.csv`` files and draws sets of ``--photos`` of them with replacement (a bootstrap): for each
method, the share of drawn sets on which its mean figures are all below the reference's (Pareto-better),
and the share for each figure alone.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

FIGURES = ("content", "style_gram", "style_stats")


def pareto_odds(
    candidate: np.ndarray, reference: np.ndarray, photos: int, draws: int = 20000, seed: int = 0
) -> tuple[float, np.ndarray]:
    """Share of ``draws`` sets of ``photos`` rows (drawn with replacement) on which the mean of ``candidate``
    is below that of ``reference`` in every column, and the share per column. Rows are photos, columns figures."""
    if candidate.shape != reference.shape or candidate.ndim != 2:
        raise ValueError(f"candidate {candidate.shape} and reference {reference.shape}: two (photos, figures) arrays")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(candidate), size=(draws, photos))
    better = candidate[idx].mean(axis=1) < reference[idx].mean(axis=1)
    return float(better.all(axis=1).mean()), better.mean(axis=0)


def read_scores(paths: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {photo: figures}}`` from `fastnst eval` scores.csv files, by photo name: a method judged on
    one photo in two files (a reference judged beside two candidates) must have the same figures in both."""
    scores: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        try:
            with path.open(newline="") as f:
                rows = [(r["method"], r["photo"], np.array([float(r[k]) for k in FIGURES])) for r in csv.DictReader(f)]
        except (OSError, KeyError, ValueError) as e:
            what = f"{e.__class__.__name__}: {e}"
            raise SystemExit(f"error: {path}: not a readable `fastnst eval` scores.csv ({what})") from None
        for method, photo, figures in rows:
            seen = scores.setdefault(method, {}).setdefault(photo, figures)
            if not np.allclose(seen, figures, rtol=1e-4):
                raise SystemExit(
                    f"error: {path}: {method} on {photo} has other figures than in an earlier file; "
                    "two photos of one name? Rename one"
                )
    return scores


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", type=Path, nargs="+", help="scores.csv files of `fastnst eval`, pooled")
    p.add_argument("--reference", required=True, help="the method (eval label) to beat")
    p.add_argument("--photos", type=int, nargs="+", default=[6, 10, 20], help="photos per drawn set")
    p.add_argument("--draws", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if min(args.photos) < 1 or args.draws < 1:
        sys.exit("error: --photos and --draws: positive numbers")
    scores = read_scores(args.scores)
    if args.reference not in scores:
        sys.exit(f"error: --reference {args.reference}: no such method in the scores ({', '.join(sorted(scores))})")
    photos = sorted(scores[args.reference])
    reference = np.stack([scores[args.reference][ph] for ph in photos])
    print(f"{len(photos)} photos; against {args.reference}; P = share of {args.draws} drawn sets better on the figure")
    for method in sorted(scores.keys() - {args.reference}):
        missing = [ph for ph in photos if ph not in scores[method]]
        if missing:
            sys.exit(f"error: {method}: no figures for {missing[0]}; judge every method on the same photos")
        candidate = np.stack([scores[method][ph] for ph in photos])
        ratio = " / ".join(f"{r:.3f}x" for r in candidate.mean(axis=0) / reference.mean(axis=0))
        print(f"{method}: pooled {ratio} ({' / '.join(FIGURES)})")
        for n in args.photos:
            p_all, p_each = pareto_odds(candidate, reference, n, args.draws, args.seed)
            each = ", ".join(f"{k} {v:.2f}" for k, v in zip(FIGURES, p_each, strict=True))
            print(f"  sets of {n:>3} photos: P(better on all three) {p_all:.2f}; {each}")


if __name__ == "__main__":
    main()
