"""Train a fast style-transfer network from a checkout: ``python train.py style=starry_night``.

A thin wrapper: the entry is :func:`fastnst.training.train.main`, which is also ``fastnst train`` in any
install (same configs, same overrides, same run). See that module for the options.
"""

import sys

try:
    from fastnst.training.train import main, train
except ModuleNotFoundError as e:  # a base install (pip install -e .): no torch, Lightning or Hydra
    from fastnst.cli import missing_extra_hint

    hint = missing_extra_hint(e, "python train.py")
    if hint is None or __name__ != "__main__":
        raise
    print(f"error: {hint}", file=sys.stderr)
    sys.exit(2)

__all__ = ["main", "train"]

if __name__ == "__main__":
    main()
