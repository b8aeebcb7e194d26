"""``storage:`` and ``state:`` sections: where data lives on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from stackwatch.settings.base import Section, parse_duration

__all__ = ["RetentionSettings", "StateSettings", "StorageSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]

DEFAULT_MAX_FLUSH_INTERVAL = 10.0


class RetentionSettings(Section):
    """What the daily maintenance job keeps: bodies go after ``body_days``; metadata, tags, entities, stories,
    indicators and alerts stay. The job then checkpoints (reclaiming space) and records file size and row counts."""

    body_days: int | None = Field(default=90, ge=1)
    dead_letter_days: int | None = Field(default=30, ge=1)
    interval: Seconds = 86400.0


class StorageSettings(Section):
    """The DuckDB file, how the single writer batches into it, its read-only snapshot and its retention."""

    path: Path = Path("data/stackwatch.duckdb")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    flush_interval: Seconds = Field(default=1.0, description="how long the sink gathers records after the first")
    max_flush_interval: Seconds | None = Field(
        default=None,
        description="longest it gathers when its writes are slow (nine times the last write's time);"
        " null: 10s, or flush_interval if that is longer",
    )
    drain_timeout: Seconds = Field(
        default=60.0, ge=0,
        description="how long a graceful stop waits until the store holds every article read;"
        " what is not stored by then is read again at the next start",
    )  # fmt: skip
    snapshot_path: Path | None = Field(default=None, description="default: <path>.snapshot.duckdb")
    snapshot_interval: Seconds | None = Field(default=60.0, description="null: no snapshot file")
    retention: RetentionSettings = RetentionSettings()
    memory_limit: str = Field(
        default="1GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="cap on DuckDB's buffer cache in the writer (e.g. 512MB, 2GB)",
    )  # fmt: skip

    @property
    def longest_gather(self) -> float:
        """``max_flush_interval``, or its default."""
        return self.max_flush_interval or max(DEFAULT_MAX_FLUSH_INTERVAL, self.flush_interval)

    @model_validator(mode="after")
    def _check_flush_intervals(self) -> StorageSettings:
        if self.max_flush_interval is not None and self.max_flush_interval < self.flush_interval:
            raise ValueError(
                f"max_flush_interval ({self.max_flush_interval:g}s) is shorter than flush_interval"
                f" ({self.flush_interval:g}s)"
            )
        return self

    def snapshot_file(self) -> Path:
        return self.snapshot_path or self.path.with_name(self.path.stem + ".snapshot.duckdb")


class StateSettings(Section):
    """Where connector checkpoints and the embedded broker's log are kept."""

    path: Path = Path("data/state")
