"""What the status page and the metrics read of the store, behind named functions (run on the store's thread).

ping(store.connection)                       # raises when DuckDB does not answer
alert_and_delivery_counts(store.connection)  # ({"warning": 3}, {"delivered": 2, "pending": 1})
store_summary(store.connection)              # articles, last stored, dead letters, the last five alerts
                                             # (each with when it was notified, on the wall clock)
"""

from __future__ import annotations

from typing import Any

import duckdb

__all__ = ["alert_and_delivery_counts", "ping", "store_summary"]

LAST_ALERTS = 5


def ping(connection: duckdb.DuckDBPyConnection) -> None:
    """A trivial query: returns when DuckDB answers, raises ``duckdb.Error`` when it fails."""
    connection.execute("SELECT 1").fetchall()


def alert_and_delivery_counts(connection: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict[str, int]]:
    """Alerts per severity, and deliveries per status."""
    by_severity = connection.execute("SELECT severity, count(*) FROM alerts GROUP BY 1").fetchall()
    by_status = connection.execute("SELECT status, count(*) FROM deliveries GROUP BY 1").fetchall()
    return {str(k): int(v) for k, v in by_severity}, {str(k): int(v) for k, v in by_status}


def store_summary(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Articles stored, when the last one was, dead letters, and the last alerts recorded.

    Each alert says when it was notified on the wall clock (``notified_at``: the first notification carrying it
    that a webhook accepted; None while none has) and when it was recorded (``recorded_at``), apart from the
    bucket it judged (``bucket_start``, which for a daily rule is up to a day before it fired).
    """
    counts = connection.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT max(stored_at) FROM articles), "
        "(SELECT count(*) FROM dead_letters)"
    ).fetchone()
    columns = ("notified_at", "recorded_at", "bucket_start", "severity", "rule", "dynamic", "message")
    last = connection.execute(
        """
        SELECT (SELECT min(n.delivered_at) FROM notifications n WHERE list_contains(n.alert_ids, a.id)),
               a.stored_at, a.bucket_start, a.severity, a.rule, a.dynamic, a.message
        FROM (SELECT * FROM alerts ORDER BY stored_at DESC, id LIMIT ?) a
        ORDER BY a.stored_at DESC, a.id
        """,
        [LAST_ALERTS],
    ).fetchall()
    return {
        "articles": counts[0] if counts else 0,
        "last_stored": counts[1] if counts else None,
        "dead_letters": counts[2] if counts else 0,
        "last_alerts": [dict(zip(columns, row, strict=True)) for row in last],
    }
