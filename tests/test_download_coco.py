"""scripts/download_coco.py against a local HTTP server holding a real zip of photos: download, resume, extract."""

from __future__ import annotations

import functools
import importlib.util
import shlex
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("download_coco", REPO / "scripts" / "download_coco.py")
download_coco = importlib.util.module_from_spec(spec)
spec.loader.exec_module(download_coco)


class _ZipServer(BaseHTTPRequestHandler):
    """Serves the files of ``root``, honouring ``Range: bytes=N-`` unless ``ranges`` is False."""

    def __init__(self, *args, root: Path, ranges: bool, seen: list, **kwargs):
        self.root, self.ranges, self.seen = root, ranges, seen
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Range"))
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers["Range"][6:-1]) if self.ranges and self.headers.get("Range") else 0
        if start >= len(data):  # nothing left to send (RFC 9110: 416 with the full length)
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def photos(assets) -> list[Path]:
    found = sorted((assets / "photos").rglob("*.jpg"))[:3]
    if len(found) < 3:
        pytest.skip("needs three training photos in the assets' photos folder")
    return found


def _serve(tmp_path: Path, photos: list[Path], ranges: bool = True):
    """A server with val2017.zip (the photos under val2017/, as COCO's zips are laid out)."""
    root = tmp_path / "server"
    root.mkdir()
    with zipfile.ZipFile(root / "val2017.zip", "w") as zf:
        for photo in photos:
            zf.write(photo, f"val2017/{photo.name}")
    seen: list = []
    handler = functools.partial(_ZipServer, root=root, ranges=ranges, seen=seen)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/", root / "val2017.zip", seen


@pytest.mark.parametrize("ranges", [True, False], ids=["server-resumes", "server-ignores-range"])
def test_an_interrupted_download_resumes_and_extracts_the_photos(tmp_path, photos, capsys, ranges):
    server, url, archive, seen = _serve(tmp_path, photos, ranges)
    dest = tmp_path / "coco"
    dest.mkdir()
    data = archive.read_bytes()
    (dest / "val2017.zip.part").write_bytes(data[: len(data) // 2])  # an earlier run stopped half way
    try:
        assert download_coco.main([str(dest), "--split", "val2017", "--base-url", url]) == 0
    finally:
        server.shutdown()
    assert seen == [f"bytes={len(data) // 2}-"]
    for photo in photos:
        assert (dest / "val2017" / photo.name).read_bytes() == photo.read_bytes()
    assert not (dest / "val2017.zip").exists() and not (dest / "val2017.zip.part").exists()
    assert f"done: python train.py data.root={dest / 'val2017'}" in capsys.readouterr().out


def test_a_download_stopped_after_its_last_byte_completes(tmp_path, photos):
    server, url, archive, seen = _serve(tmp_path, photos)
    dest = tmp_path / "coco"
    dest.mkdir()
    (dest / "val2017.zip.part").write_bytes(archive.read_bytes())  # stopped before the rename
    try:
        assert download_coco.main([str(dest), "--split", "val2017", "--base-url", url]) == 0
    finally:
        server.shutdown()
    assert seen == [f"bytes={archive.stat().st_size}-"]  # the server answered 416: nothing more to get
    for photo in photos:
        assert (dest / "val2017" / photo.name).read_bytes() == photo.read_bytes()


def test_a_missing_file_and_a_corrupt_zip_are_one_line_errors(tmp_path, photos, capsys):
    server, url, archive, _ = _serve(tmp_path, photos)
    dest = tmp_path / "coco"
    try:
        assert download_coco.main([str(dest), "--split", "train2017", "--base-url", url]) == 1
        assert capsys.readouterr().err.strip() == f"error: {url}train2017.zip: HTTP 404 Not Found"
        data = bytearray(archive.read_bytes())
        data[100] ^= 0xFF  # inside the first photo's bytes: its CRC no longer matches
        archive.write_bytes(bytes(data))
        assert download_coco.main([str(dest), "--split", "val2017", "--base-url", url]) == 1
    finally:
        server.shutdown()
    err = capsys.readouterr().err.strip().splitlines()  # the download's progress lines, then the error
    assert err[-1].startswith(f"error: {dest / 'val2017.zip'}: corrupt zip (") and "Bad CRC-32" in err[-1]
    assert not (dest / "val2017").exists()  # nothing half-extracted where training would read it


def test_the_readme_download_line_is_the_script_s_command_line():
    (line,) = [x for x in (REPO / "README.md").read_text().splitlines() if "scripts/download_coco.py" in x]
    args = shlex.split(line.split("#")[0])
    assert args[:2] == ["python", "scripts/download_coco.py"]
    parsed = download_coco.build_parser().parse_args(args[2:])
    assert parsed.split == "train2017" and parsed.base_url == download_coco.BASE_URL
