"""The notification outbox: pending deliveries grouped into notifications (timing, grouping, inhibition, silences:
:mod:`stackwatch.storage.alert_groups`), what is due, and each attempt. Functions over a DuckDB connection
(``Store.connection``), called on the store's thread::

    dispatch(store.connection, now, Grouping(...))          # pending deliveries → grouped notifications
    for note in due_notifications(store.connection, now):   # what the deliverer sends now
        ...
        record_attempt(store.connection, note.id, status="delivered", http_status=200, error=None)

Each ``deliveries`` row (one alert, one webhook) is carried by notifications (one HTTP request to one webhook for
one group of alerts) and mirrors the last one; a notification's id is its webhook-id, the same on every retry and
after restarts, and a repeat of unchanged alerts is a new notification with a new id.
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb

from stackwatch.storage.alert_groups import Grouping, dispatch
from stackwatch.storage.outbox_rows import ALERT_COLUMNS, AlertRow, Notification, alert_row, transaction

__all__ = [
    "AlertRow",
    "Grouping",
    "Notification",
    "dispatch",
    "due_notifications",
    "record_attempt",
    "retry_pending_now",
]

log = logging.getLogger(__name__)


def due_notifications(connection: duckdb.DuckDBPyConnection, now: datetime, limit: int = 100) -> list[Notification]:
    """Pending notifications whose next attempt is due, oldest first, with their alerts."""
    notes = connection.execute(
        "SELECT id, webhook, group_key, attempts, alert_ids, repeat FROM notifications"
        " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        [now, limit],
    ).fetchall()
    result = []
    for note_id, webhook, key, attempts, alert_ids, repeat in notes:
        rows = connection.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id"  # noqa: S608
            " WHERE list_contains(?, a.id) ORDER BY a.bucket_start, a.id",
            [list(alert_ids)],
        ).fetchall()
        alerts = tuple(alert_row(row, (webhook,)) for row in rows)
        result.append(Notification(note_id, webhook, key, attempts, alerts, bool(repeat)))
    return result


def retry_pending_now(connection: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Make every pending notification due at ``now``, except those a receiver asked to wait (429/503).

    Called when the service starts: a restart is often the operator's fix, so backoff from before it should not
    delay delivery by minutes. Attempts keep counting, so a notification still goes dead after its schedule.
    """
    with transaction(connection):
        rows = connection.execute(
            "UPDATE notifications SET next_attempt_at = ? WHERE status = 'pending' AND next_attempt_at > ?"
            " AND coalesce(last_status, 0) NOT IN (429, 503) RETURNING id",
            [now, now],
        ).fetchall()
        # Mirrored on the deliveries, as record_attempt does, so the table analysts query says the same.
        connection.execute(
            "UPDATE deliveries SET next_attempt_at = ? WHERE id IN"
            " (SELECT delivery_id FROM notification_members WHERE list_contains(?, notification_id))",
            [now, [row[0] for row in rows]],
        )
    return len(rows)


def record_attempt(
    connection: duckdb.DuckDBPyConnection,
    notification: str,
    *,
    status: str,
    http_status: int | None,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Record one attempt on a notification and mirror it on its deliveries: pending, delivered or dead."""
    params = [status, http_status, error, next_attempt_at, status]
    with transaction(connection):
        connection.execute(
            """
            UPDATE notifications SET status = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
                   next_attempt_at = coalesce(?, next_attempt_at),
                   delivered_at = CASE WHEN ? = 'delivered' THEN now() ELSE delivered_at END
            WHERE id = ?
            """,
            [*params, notification],
        )
        connection.execute(
            """
            UPDATE deliveries SET status = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
                   next_attempt_at = coalesce(?, next_attempt_at),
                   delivered_at = CASE WHEN ? = 'delivered' THEN now() ELSE delivered_at END
            WHERE id IN (SELECT delivery_id FROM notification_members WHERE notification_id = ?)
            """,
            [*params, notification],
        )
