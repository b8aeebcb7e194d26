"""What the machine a benchmark ran on offers the model: printed beside every figure, since CPUs differ between
machines (AVX2 only, or AVX-512 VNNI and AMX) and the targets are ratios measured in one run."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_flags", "machine"]


def cpu_flags() -> str:
    """The SIMD flags that matter for the model, as this machine reports them."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "amx_tile")
    return " ".join(flag for flag in wanted if f" {flag}" in flags) or "no avx2"


def machine() -> str:
    """One line: cores and CPU flags."""
    return f"machine: {os.cpu_count()} cores; CPU {cpu_flags()}"
