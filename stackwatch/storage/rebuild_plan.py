"""How ``rebuild`` splits a store into transactions: chunks of whole UTC days, bounded in days and articles::

    for chunk in rebuild_chunks(connection, articles=20_000):   # time order, together covering all time
        derivation.rebuild_chunk(connection, chunk)             # one transaction each

A chunk's memory grows with the articles it recomputes, so ``Store.rebuild`` scales ``articles`` to its memory cap
(:data:`REBUILD_ARTICLE_BYTES` each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from stackwatch.signals.indicators import WINDOWS, bucket_start

__all__ = [
    "REBUILD_ARTICLE_BYTES",
    "REBUILD_CHUNK_ARTICLES",
    "REBUILD_CHUNK_DAYS",
    "RebuildChunk",
    "bucket_span",
    "rebuild_chunks",
]

Bucket = tuple[str, datetime]
"""(window, bucket start)."""


def bucket_span(buckets: Iterable[Bucket]) -> tuple[datetime, datetime]:
    """The start of the earliest of ``buckets`` and the end of the latest (``buckets`` must not be empty)."""
    chosen = list(buckets)
    return min(start for _, start in chosen), max(start + WINDOWS[window] for window, start in chosen)


REBUILD_CHUNK_DAYS = 8
"""At most this many days of buckets per rebuild transaction."""
REBUILD_CHUNK_ARTICLES = 20_000
"""About this many articles per rebuild transaction at most (``Store.rebuild`` scales it to its memory cap)."""
REBUILD_ARTICLE_BYTES = 8_000
"""Memory a rebuild chunk needs per article it recomputes, with margin: within a 64 MB cap, chunks of 16,777 articles
failed and 13,421 fit (``tests/test_storage_scale.py``'s store, which matches two entities per article)."""


@dataclass(frozen=True, slots=True)
class RebuildChunk:
    """What one transaction of a rebuild replaces: the derived rows of buckets starting in [since, until) (None:
    unbounded), recomputed from ``buckets``."""

    since: datetime | None
    until: datetime | None
    buckets: tuple[Bucket, ...]


def rebuild_chunks(
    connection: duckdb.DuckDBPyConnection, *, days: int = REBUILD_CHUNK_DAYS, articles: int = REBUILD_CHUNK_ARTICLES
) -> list[RebuildChunk]:
    """Every bucket that holds articles, in chunks of whole UTC days in time order: at most ``days`` days, and no
    more than ``articles`` articles unless one day holds more (a chunk's memory grows with its articles). Together
    the chunks' ranges cover all time, so rows of buckets that no longer hold an article go too."""
    per_day = connection.execute(
        "SELECT date_trunc('day', published_at), count(*) FROM articles GROUP BY ALL ORDER BY 1"
    ).fetchall()
    buckets: dict[datetime, list[Bucket]] = {}
    for window in WINDOWS:  # each is at most a day, so each bucket lies within one day
        starts = connection.execute(
            f"SELECT DISTINCT time_bucket(INTERVAL {int(WINDOWS[window].total_seconds())} SECONDS,"  # noqa: S608
            " published_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') FROM articles"
        ).fetchall()
        for (start,) in starts:
            buckets.setdefault(bucket_start(start, "1d"), []).append((window, start))
    groups: list[list[datetime]] = [[]]
    held = 0
    for day, count in per_day:
        if groups[-1] and (len(groups[-1]) >= days or held + count > articles):
            groups.append([])
            held = 0
        groups[-1].append(day)
        held += count
    chunks = []
    for index, group in enumerate(groups):
        since = group[0] if index else None
        until = groups[index + 1][0] if index + 1 < len(groups) else None
        chosen = sorted((bucket for day in group for bucket in buckets.get(day, [])), key=lambda b: (b[1], b[0]))
        chunks.append(RebuildChunk(since, until, tuple(chosen)))
    return chunks
