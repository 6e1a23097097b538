"""A small progress bar for the inference path (no dependencies: the light install has no tqdm)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``with Progress(total, "stylize") as bar: bar.update()``; draws on stderr when it is a terminal.

    On a non-terminal (a log file, CI) it prints a line at 25% steps instead of redrawing.
    """

    def __init__(self, total: int | None, label: str = "", enabled: bool = True, stream: TextIO | None = None):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_quarter = -1

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1, note: str = "") -> None:
        """Count ``n`` more items done; ``note`` is shown after the counts."""
        self.count += n
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        if self.total:
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            width = 24
            filled = int(width * self.count / self.total)
            line = (
                f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
                f"{rate:.2f}/s ETA {eta:.0f}s {note}"
            )
            quarter = 4 * self.count // self.total
        else:
            line, quarter = f"{self.label} {self.count} {rate:.2f}/s {note}", self.count
        if self._tty:
            self.stream.write("\r" + line[:200].ljust(80))
        elif quarter != self._last_quarter:
            self.stream.write(line + "\n")
        self._last_quarter = quarter
        self.stream.flush()
