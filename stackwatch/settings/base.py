"""The base model every configuration section derives from."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

__all__ = ["Section", "parse_duration", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    "b": 1,
    **{unit: 1000**power for power, unit in enumerate(("kb", "mb", "gb", "tb"), 1)},
    **{unit: 1024**power for power, unit in enumerate(("kib", "mib", "gib", "tib"), 1)},
}


class Section(BaseModel):
    """A configuration section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"`` or ``"250ms"``.

    >>> parse_duration("1h")
    3600.0
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration such as 30s, 5m, 1h or a number of seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"512MB"``, ``"2GiB"`` (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024).

    >>> parse_size("512MB")
    512000000
    """
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
