"""``sql:`` section: the limits of the read-only SQL front (``POST /api/sql``, ``stackwatch sql``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from stackwatch.settings.base import Section, parse_duration

__all__ = ["SqlSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class SqlSettings(Section):
    """Each ad-hoc query runs in a process of its own on a read-only copy of the store, within these limits."""

    time_limit: Seconds = Field(
        default=5.0, le=3600, description="a query still running after this long is stopped (e.g. 5s, 500ms)"
    )
    max_rows: int = Field(
        default=10_000, ge=1, le=1_000_000, description="rows returned at most; more are cut and truncated is true"
    )
    memory_limit: str = Field(
        default="256MB", pattern=r"^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$",
        description="memory one query may use (DuckDB's memory_limit; its process may map about 1 GiB more)",
    )  # fmt: skip
    max_concurrent: int = Field(
        default=2, ge=1, le=64, description="queries running at once; one more is answered 429 (busy)"
    )
    max_staleness: Seconds = Field(
        default=1.0,
        le=86400,
        description="a query reads a snapshot at most this old when the store has changed since (a slow"
        " snapshot is refreshed less often: at most a tenth of the writer's time goes to them)",
    )
