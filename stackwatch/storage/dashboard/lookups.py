"""Small reads the dashboard makes before it reads a page: how much the store holds lately (to choose the default
range) and which stored entity a name in a URL means."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from stackwatch.storage.dashboard.reads import rows
from stackwatch.storage.dashboard.records import Range, RecentVolume

__all__ = ["entity_names", "recent_volume"]


def recent_volume(connection: duckdb.DuckDBPyConnection) -> RecentVolume:
    """Articles in the last 7, 30 and 90 whole UTC days (today included), from the daily all-scope
    ``article_count`` rows: at most 90 rows read."""
    end = Range(1, "1d").until
    found = rows(
        connection,
        "SELECT coalesce(sum(value) FILTER (WHERE bucket_start >= ?), 0)::BIGINT, "
        "coalesce(sum(value) FILTER (WHERE bucket_start >= ?), 0)::BIGINT, coalesce(sum(value), 0)::BIGINT "
        "FROM indicators WHERE indicator = 'article_count' AND dynamic = '*' AND entity = '*' AND source = '*' "
        "AND bucket_width = '1d' AND bucket_start >= ?",
        [end - timedelta(days=7), end - timedelta(days=30), end - timedelta(days=90)],
    )
    last_7d, last_30d, last_90d = found[0]
    return RecentVolume(int(last_7d), int(last_30d), int(last_90d))


def entity_names(connection: duckdb.DuckDBPyConnection, name: str) -> tuple[str, ...]:
    """The stored entity names equal to ``name`` ignoring case, the one written exactly like it first."""
    found = rows(
        connection,
        "SELECT DISTINCT entity FROM article_entities WHERE lower(entity) = lower(?) "
        "ORDER BY entity = ? DESC, entity LIMIT 10",
        [name, name],
    )
    return tuple(str(row[0]) for row in found)
