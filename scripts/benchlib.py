"""Shared by the ``bench.py`` parts: where the assets are, a machine description, a plain table."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_ASSETS = Path(os.environ.get("FASTNST_ASSETS", REPO.parent / "shared" / "assets"))


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines(device: torch.device) -> list[str]:
    """Two lines naming the machine, the software and the device measured."""
    from fastnst.nn.precision import cpu_has_fast_bf16

    cpus = f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable)"
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    bf16 = "native bf16" if cpu_has_fast_bf16() else "no native bf16"
    return [
        f"machine: {cpu_name()} ({bf16}), {cpus}{gpu}, python {platform.python_version()}",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, load {load_average()}",
    ]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Table:
    """Rows of strings printed as aligned columns."""

    def __init__(self, header: list[str]) -> None:
        self.header, self.rows = header, []

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def print(self) -> None:
        widths = [max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        line = "  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))
        print(line)
        print("-" * len(line))
        for r in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
