"""Reading the alerting history back: recent alerts with their deliveries, one alert in full (its evidence), and
the stored articles and indicator values a backtest replays.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import duckdb

from stackwatch.signals.messages import IndicatorUpdate, Observation, parse_time
from stackwatch.storage.recovery import stored_history
from stackwatch.storage.store import as_store_error

__all__ = ["MIN_ALERT_PREFIX", "alert_record", "indicator_history", "observation_history", "recent_alerts"]

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


MIN_ALERT_PREFIX = 10
"""The shortest start of an alert id that ``alerts show`` looks an alert up by (``alert_`` and four characters)."""


def alert_record(connection: duckdb.DuckDBPyConnection, alert_id: str) -> dict[str, Any] | None:
    """The alert ``alert_id`` (or the one alert whose id starts with it, given at least :data:`MIN_ALERT_PREFIX`
    characters) as ``stackwatch alerts show`` prints it: its fields, labels, judged values, the evidence stored
    with it (articles and the SQL that reproduces the value) and its deliveries. None when there is none;
    ValueError naming the candidates when the start matches several; StoreError when DuckDB fails."""
    with as_store_error("cannot read the alert"):
        rows = connection.execute(
            """
            SELECT a.id, a.rule, a.severity, coalesce(x.status, 'firing'), coalesce(x.kind, ''), a.dynamic,
                   a.indicator, a.bucket_width, a.bucket_start, a.value, a.threshold, a.message, a.stored_at,
                   coalesce(x.dedup_key, ''), coalesce(x.labels, '{}'), coalesce(x.indicator_values, '{}'),
                   coalesce(x.evidence, '{}')
            FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id
            WHERE a.id = $id OR (length($id) >= $shortest AND starts_with(a.id, $id))
            ORDER BY a.id LIMIT 6
            """,
            {"id": alert_id, "shortest": MIN_ALERT_PREFIX},
        ).fetchall()
        exact = [row for row in rows if row[0] == alert_id]
        if not exact and len(rows) > 1:
            raise ValueError(f"{alert_id!r} starts several alert ids: {', '.join(row[0] for row in rows[:5])}")
        if not rows:
            return None
        row = (exact or rows)[0]
        deliveries = connection.execute(
            "SELECT webhook, status, attempts, delivered_at, last_error FROM deliveries WHERE alert_id = ?"
            " ORDER BY webhook",
            [row[0]],
        ).fetchall()
    names = ("id", "rule", "severity", "status", "kind", "dynamic", "indicator", "window", "bucket_start", "value")
    record: dict[str, Any] = dict(zip(names, row[:10], strict=True))
    record.update(threshold=row[10], message=row[11], stored_at=row[12], dedup_key=row[13])
    record.update(labels=json.loads(row[14]), values=json.loads(row[15]), evidence=json.loads(row[16]))
    record["deliveries"] = [
        {"webhook": hook, "status": status, "attempts": attempts, "delivered_at": at, "last_error": error}
        for hook, status, attempts, at, error in deliveries
    ]
    return record


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
