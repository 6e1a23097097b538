#!/usr/bin/env python3
"""Download COCO images for training: ``python scripts/download_coco.py data/coco [--split train2017]``.

Writes ``<dest>/<split>/*.jpg`` (train2017: 118k images, 18 GB zip; train2014: 83k, 13 GB;
val2017: 5k, 0.8 GB for a quick try). Interrupted downloads resume where they stopped;
the zip is extracted (CRC-checked) and then deleted. Train with::

    python train.py data.root=<dest>/<split>
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

BASE_URL = "http://images.cocodataset.org/zips/"
SPLITS = ("train2017", "train2014", "val2017", "val2014")


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``; atomic rename at the end."""
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        total = have + int(response.headers.get("Content-Length", 0))
        with open(part, "ab" if have else "wb") as f:
            done, start = have, time.monotonic()
            while chunk := response.read(1 << 20):
                f.write(chunk)
                done += len(chunk)
                rate = (done - have) / max(time.monotonic() - start, 1e-6) / 1e6
                print(f"\r{dest.name}: {done / 1e9:.2f} / {total / 1e9:.2f} GB  {rate:.1f} MB/s", end="", flush=True)
    print()
    if total and part.stat().st_size != total:
        raise SystemExit(f"error: {url}: got {part.stat().st_size} bytes, expected {total}; run again to resume")
    os.replace(part, dest)
    return dest


def extract(archive: Path, dest: Path) -> None:
    """Extract into ``dest`` (zipfile checks every member's CRC); skip when already extracted."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        top = members[0].filename.split("/")[0]
        if (dest / top).is_dir() and sum(1 for _ in (dest / top).iterdir()) >= len(members) - 1:
            return
        tmp = dest / f".{top}.extracting"
        shutil.rmtree(tmp, ignore_errors=True)
        for i, member in enumerate(members, 1):
            zf.extract(member, tmp)
            if i % 1000 == 0 or i == len(members):
                print(f"\rextracting {archive.name}: {i}/{len(members)}", end="", flush=True)
        print()
        shutil.rmtree(dest / top, ignore_errors=True)
        os.replace(tmp / top, dest / top)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="destination folder, e.g. data/coco")
    parser.add_argument("--split", choices=SPLITS, default="train2017")
    parser.add_argument("--keep-zip", action="store_true", help="keep the zip after extraction")
    args = parser.parse_args(argv)

    args.dest.mkdir(parents=True, exist_ok=True)
    archive = download(BASE_URL + f"{args.split}.zip", args.dest / f"{args.split}.zip")
    try:
        extract(archive, args.dest)
    except zipfile.BadZipFile as e:
        print(f"error: {archive}: corrupt zip ({e}); delete it and run again", file=sys.stderr)
        return 1
    if not args.keep_zip:
        archive.unlink()
    print(f"done: python train.py data.root={args.dest / args.split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
