#!/usr/bin/env python3
"""Download COCO images for training: ``python scripts/download_coco.py data/coco [--split train2017]``.

Writes ``<dest>/<split>/*.jpg`` (train2017: 118k images, 18 GB zip; train2014: 83k, 13 GB;
val2017: 5k, 0.8 GB for a quick try). Interrupted downloads resume where they stopped;
the zip is extracted (CRC-checked) and then deleted. ``--base-url`` takes a mirror that holds
the same ``<split>.zip`` files. Train with::

    python train.py data.root=<dest>/<split>
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from fastnst.progress import Progress

BASE_URL = "http://images.cocodataset.org/zips/"
SPLITS = ("train2017", "train2014", "val2017", "val2014")
_MB = 1 << 20


class DownloadError(Exception):
    """A download that did not complete; the partial file is kept for the next run to resume."""


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``; atomic rename at the end."""
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and e.headers.get("Content-Range") == f"bytes */{have}":  # stopped after the last byte
            os.replace(part, dest)
            return dest
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        total = have + int(response.headers.get("Content-Length", 0))
        with open(part, "ab" if have else "wb") as f, Progress(_mb(total) or None, dest.name, unit="MB") as bar:
            if have:
                bar.update(_mb(have), note="resumed")
            done = have
            while chunk := response.read(_MB):
                f.write(chunk)
                if _mb(done + len(chunk)) > _mb(done):
                    bar.update(_mb(done + len(chunk)) - _mb(done))
                done += len(chunk)
    if total and part.stat().st_size != total:
        raise DownloadError(f"got {part.stat().st_size} bytes, expected {total}")
    os.replace(part, dest)
    return dest


def _mb(n_bytes: int) -> int:
    return -(-n_bytes // _MB)  # a started megabyte counts: the last one ends the bar


def extract(archive: Path, dest: Path) -> None:
    """Extract into ``dest`` (zipfile checks every member's CRC); skip when already extracted."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        top = members[0].filename.split("/")[0]
        if (dest / top).is_dir() and sum(1 for _ in (dest / top).iterdir()) >= len(members) - 1:
            return
        tmp = dest / f".{top}.extracting"
        shutil.rmtree(tmp, ignore_errors=True)
        with Progress(len(members), f"extracting {archive.name}", unit="file") as bar:
            for member in members:
                zf.extract(member, tmp)
                bar.update()
        shutil.rmtree(dest / top, ignore_errors=True)
        os.replace(tmp / top, dest / top)
        shutil.rmtree(tmp, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    """The command line (the README's download line is checked against it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="destination folder, e.g. data/coco")
    parser.add_argument("--split", choices=SPLITS, default="train2017")
    parser.add_argument("--keep-zip", action="store_true", help="keep the zip after extraction")
    parser.add_argument("--base-url", default=BASE_URL, help=f"where <split>.zip is (default {BASE_URL})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    url = args.base_url.rstrip("/") + f"/{args.split}.zip"
    try:
        archive = download(url, args.dest / f"{args.split}.zip")
    except urllib.error.HTTPError as e:
        print(f"error: {url}: HTTP {e.code} {e.reason}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, DownloadError) as e:  # the partial file stays for the next run
        print(f"error: {url}: {getattr(e, 'reason', e)}; run again to resume", file=sys.stderr)
        return 1
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
