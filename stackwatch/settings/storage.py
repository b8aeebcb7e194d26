"""``storage:`` and ``state:`` sections: where data lives on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from stackwatch.settings.base import Section, parse_duration

__all__ = ["StateSettings", "StorageSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class StorageSettings(Section):
    """The DuckDB file and how the single writer batches into it."""

    path: Path = Path("data/stackwatch.duckdb")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    flush_interval: Seconds = 1.0


class StateSettings(Section):
    """Where connector checkpoints and the embedded broker's log are kept."""

    path: Path = Path("data/state")
