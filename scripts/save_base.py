#!/usr/bin/env python3
"""Write a conditional training checkpoint as a base network: its weights and settings alone.

    python scripts/save_base.py checkpoints/<styles>/<run>/last.ckpt -o fastnst/assets/bases/six_styles.ckpt

A base in ``fastnst/assets/bases/`` ships with fastnst and is taken by name:
``python train.py style.image=my_painting.jpg init=six_styles`` (checkpoints/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastnst.nn.conditioning import save_base


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a training checkpoint of a conditional network")
    p.add_argument("-o", "--output", type=Path, required=True, help="the base file to write (.ckpt)")
    args = p.parse_args(argv)
    out = save_base(args.checkpoint, args.output)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
