"""Time bounds written as literals, so that DuckDB skips row groups by their zone maps::

    connection.execute(f"DELETE FROM article_dynamics WHERE published_at BETWEEN {lo} AND {hi} AND ...")

DuckDB keeps each column's min and max per row group (about 122,880 rows) and skips a row group whose range a
constant comparison rules out. The per-article tables' ``published_at`` and the indicators' ``bucket_start``
follow the order rows are written in, so a statement bounded by the dates a write touches reads those dates' row
groups, not the table. A constant is what the optimizer pushes into the scan for certain; a bound taken from a
subquery is not always pushed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

__all__ = ["at", "span"]


def at(moment: datetime) -> str:
    """``moment`` as a TIMESTAMPTZ literal."""
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def span(moments: Iterable[datetime]) -> tuple[str, str] | None:
    """The literals of the earliest and the latest of ``moments`` (None if there are none)."""
    chosen = list(moments)
    return (at(min(chosen)), at(max(chosen))) if chosen else None
