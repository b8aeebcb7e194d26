"""Reading the alerting history back: recent alerts with their deliveries, and the stored articles and indicator
values a backtest replays.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import duckdb

from stackwatch.signals.messages import IndicatorUpdate, Observation, parse_time
from stackwatch.storage.recovery import stored_history
from stackwatch.storage.store import as_store_error

__all__ = ["indicator_history", "observation_history", "recent_alerts"]

log = logging.getLogger(__name__)


def recent_alerts(connection: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple[Any, ...]]:
    """Recent alerts with their delivery status per webhook: (fired_at, rule, severity, status, dynamic, value,
    deliveries) where deliveries reads like ``ops:delivered(1) chat:pending(3)``. StoreError when DuckDB fails."""
    with as_store_error("cannot read the alerts"):
        return connection.execute(
            """
            SELECT a.bucket_start, a.rule, a.severity, coalesce(x.status, 'firing') AS status, a.dynamic, a.value,
                   coalesce(string_agg(d.webhook || ':' || d.status || '(' || d.attempts || ')', ' '
                                       ORDER BY d.webhook), '-') AS deliveries
            FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id LEFT JOIN deliveries d ON d.alert_id = a.id
            GROUP BY ALL ORDER BY a.bucket_start DESC, a.rule LIMIT ?
            """,
            [limit],
        ).fetchall()


def observation_history(
    connection: duckdb.DuckDBPyConnection, since: datetime, until: datetime | None = None
) -> list[Observation]:
    """Stored articles published from ``since`` (to ``until``) as the rules stage sees them, in time order: what
    :func:`~stackwatch.storage.recovery.stored_history` reads (scores, story and novelty included)."""
    observed = [item.observation for item in stored_history(connection, since)]
    kept = [item for item in observed if until is None or item.published_at < until]
    return sorted(kept, key=lambda item: (item.published_at, item.article_id))


def indicator_history(
    connection: duckdb.DuckDBPyConnection, since: datetime, until: datetime | None = None
) -> list[IndicatorUpdate]:
    """Stored indicator values from ``since``, in the order the stream produced them (bucket, then dynamic)."""
    rows = connection.execute(
        "SELECT indicator, dynamic, bucket_width, bucket_start, value, updated_at FROM indicators"
        " WHERE entity = '*' AND source = '*' AND dynamic <> '*'"
        " AND bucket_start >= ? AND (? IS NULL OR bucket_start < ?)"
        " ORDER BY bucket_start, bucket_width, dynamic, indicator",
        [since, until, until],
    ).fetchall()
    return [
        IndicatorUpdate(row[0], row[1], row[2], parse_time(row[3]), float(row[4]), parse_time(row[5])) for row in rows
    ]
