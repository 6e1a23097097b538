"""Progress of finished work on stderr: a tqdm bar on a terminal, plain lines in a file or a pipe.

A log file or a pipe gets no carriage returns: instead, one line per finished item, at most about 20
per bar (every 5% of a known total; every 10 s of an unknown one), and a last line when the bar ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

_LINES = 20  # plain lines per bar of known length, at most (plus the last)
_UNKNOWN_EVERY = 10.0  # seconds between plain lines when the total is unknown (a video without a frame count)


class Progress:
    """``with Progress(total, "stylize") as bar: bar.update(note=...)`` after each *finished* item.

    ``total`` None: unknown length. ``enabled`` False: nothing is written. ``stream``: stderr by default;
    a terminal gets a tqdm bar, anything else plain lines.
    """

    def __init__(
        self, total: int | None, label: str = "", enabled: bool = True, stream: TextIO | None = None, unit: str = "it"
    ) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.count = 0
        self._start = self._last_line = time.monotonic()
        self._shown = 0  # the count on the last plain line
        self._tty = enabled and _isatty(self.stream)
        self._bar = (
            tqdm(total=total, desc=label, unit=unit, file=self.stream, dynamic_ncols=True, leave=True)
            if self._tty
            else None
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.count > self._shown:  # where it stopped: an unknown total, or cut short
            self._plain_line("")

    def update(self, n: int = 1, note: str = "") -> None:
        """Count ``n`` more items finished; ``note`` (e.g. the item's name) is shown beside the counts."""
        self.count += n
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
        elif self.enabled and self._line_due(n):
            self._plain_line(note)

    def _line_due(self, n: int) -> bool:
        if self.total:
            step = max(1, self.total // _LINES)
            return self.count >= self.total or self.count // step != (self.count - n) // step
        return time.monotonic() - self._last_line >= _UNKNOWN_EVERY

    def _plain_line(self, note: str) -> None:
        now = time.monotonic()
        counts = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        self.stream.write(f"{self.label}: {counts} done, {now - self._start:.1f} s {note}".rstrip() + "\n")
        self.stream.flush()
        self._last_line, self._shown = now, self.count


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: treat it as a file
        return False
