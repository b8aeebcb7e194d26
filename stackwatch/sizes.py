"""Sizes in configuration: ``512MB``, ``2GiB``, or a number of bytes. No dependencies, so the SQL sandbox's
process can import it cheaply.

    >>> parse_size("512MB"), parse_size("2GiB"), parse_size(1024)
    (512000000, 2147483648, 1024)
"""

from __future__ import annotations

import re

__all__ = ["parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    "b": 1,
    **{unit: 1000**power for power, unit in enumerate(("kb", "mb", "gb", "tb"), 1)},
    **{unit: 1024**power for power, unit in enumerate(("kib", "mib", "gib", "tib"), 1)},
}


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"512MB"``, ``"2GiB"`` (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a size such as 512MB or 2GiB, got {value!r}")
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"expected a size such as 512MB or 2GiB, got {value!r}")
        size = float(match.group(1)) * _UNIT_BYTES[(match.group(2) or "b").lower()]
    else:
        size = float(value)
    if size <= 0:
        raise ValueError(f"expected a positive size, got {value!r}")
    return int(size)
