"""Which arithmetic to use where: bf16 autocast on hardware that runs it fast, fp32 elsewhere.

Mixed precision here always means: convolutions in the low-precision type, Gram matrices and
losses in float32 (see :mod:`fastnst.nn.losses`). On CPUs with native bf16 dot products
(AVX512-BF16 or AMX) the convolutions run about twice as fast as in fp32 (measured in
docs/benchmarks.md); on older CPUs bf16 is emulated and slower, so fp32 stays the default there.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

# /proc/cpuinfo flags of CPUs whose oneDNN bf16 convolutions are native, not emulated.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 dot products natively (Linux: read from /proc/cpuinfo)."""
    if platform.system() != "Linux" or not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto`` | ``fp32`` | ``bf16`` | ``fp16``) on ``device``.

    ``auto``: bf16 on GPUs that support it (else fp16), bf16 on CPUs with native bf16, else
    None (fp32). None means: no autocast.
    """
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}; expected auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def lightning_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision string for ``auto``: the same rule as :func:`autocast_dtype`."""
    if precision != "auto":
        return precision
    if accelerator in ("cuda", "gpu") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator == "cpu" and cpu_has_fast_bf16():
        return "bf16-mixed"
    return "32-true"
