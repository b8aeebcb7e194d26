"""The notification outbox: pending deliveries grouped into notifications (grouping, inhibition, silences), what is
due, and each attempt. Functions over a DuckDB connection (``Store.connection``), called on the store's thread::

    dispatch(store.connection, now, Grouping(...))          # pending deliveries → grouped notifications
    for note in due_notifications(store.connection, now):   # what the deliverer sends now
        ...
        record_attempt(store.connection, note.id, status="delivered", http_status=200, error=None)

Each ``deliveries`` row (one alert, one webhook) joins one notification (one HTTP request to one webhook for
one group of alerts); the notification's id is its webhook-id, the same on every retry and after restarts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stackwatch.signals.alerting import Inhibition, group_key, inhibited_by, silenced_by
from stackwatch.signals.messages import Alert, parse_time
from stackwatch.storage.evidence import alert_labels
from stackwatch.storage.silences import active_silences

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


@dataclass(frozen=True, slots=True)
class Grouping:
    """How pending deliveries become notifications (from the ``alerting:`` settings)."""

    group_by: tuple[str, ...] = ("alertname", "dynamic")
    group_wait: timedelta = timedelta(seconds=30)
    inhibitions: tuple[Inhibition, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as stored, with its labels and evidence."""

    alert: Alert
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """One request to one webhook carrying a group of alerts."""

    id: str
    webhook: str
    group_key: str
    attempts: int
    alerts: tuple[AlertRow, ...]


_ALERT_COLUMNS = (
    "a.id, a.rule, a.severity, a.dynamic, a.indicator, a.bucket_width, a.bucket_start, a.value, a.threshold,"
    " a.message, a.fired_at, coalesce(x.status, 'firing'), coalesce(x.kind, 'threshold'), coalesce(x.dedup_key, a.id),"
    " coalesce(x.labels, '{}'), coalesce(x.indicator_values, '{}'), coalesce(x.evidence, '{}')"
)


def _alert_row(row: Sequence[Any], webhooks: tuple[str, ...] = ()) -> AlertRow:
    alert = Alert(
        id=row[0],
        rule=row[1],
        severity=row[2],
        dynamic=row[3],
        indicator=row[4],
        window=row[5],
        bucket_start=parse_time(row[6]),
        value=row[7],
        threshold=row[8],
        message=row[9],
        webhooks=webhooks,
        fired_at=parse_time(row[10]),
        status=row[11],
        kind=row[12],
        dedup_key=row[13],
        labels=json.loads(row[14]),
        values=json.loads(row[15]),
    )
    return AlertRow(alert, json.loads(row[16]))


def _firing_labels(connection: duckdb.DuckDBPyConnection) -> list[dict[str, str]]:
    """Labels of alerts firing now: the latest alert of each rule and dedup key is a firing one."""
    rows = connection.execute(
        f"""
        SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id
        QUALIFY row_number() OVER (PARTITION BY a.rule, coalesce(x.dedup_key, a.id)
                                   ORDER BY a.bucket_start DESC, coalesce(x.status, 'firing') DESC) = 1
        """  # noqa: S608 (no user input)
    ).fetchall()
    return [alert_labels(_alert_row(row).alert) for row in rows if row[11] == "firing"]


@contextmanager
def _transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Everything in the block commits together, or is rolled back (and the error raised)."""
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def dispatch(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> int:
    """Turn pending, ungrouped deliveries into notifications once their group has waited ``group_wait``.

    Silenced and inhibited alerts are marked on their delivery rows (status ``silenced`` / ``inhibited``) and
    not sent. Returns how many notifications were created. One transaction.
    """
    with _transaction(connection):
        return _dispatch(connection, now, grouping)


def _dispatch(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> int:
    rows = connection.execute(
        f"""
        SELECT d.id, d.webhook, d.created_at, {_ALERT_COLUMNS}
        FROM deliveries d JOIN alerts a ON a.id = d.alert_id LEFT JOIN alert_details x ON x.alert_id = a.id
        WHERE d.status = 'pending' AND d.id NOT IN (SELECT delivery_id FROM notification_members)
        ORDER BY d.created_at, d.id
        """  # noqa: S608 (no user input)
    ).fetchall()
    if not rows:
        return 0
    groups: dict[tuple[str, str], list[tuple[str, datetime, AlertRow]]] = defaultdict(list)
    for row in rows:
        item = _alert_row(row[3:])
        groups[(row[1], group_key(alert_labels(item.alert), grouping.group_by))].append(
            (row[0], parse_time(row[2]), item)
        )
    silences = active_silences(connection, now)
    firing = _firing_labels(connection)
    created = 0
    for (webhook, key), members in groups.items():
        if min(created_at for _, created_at, _ in members) + grouping.group_wait > now:
            continue
        sending: list[tuple[str, AlertRow]] = []
        for delivery, _, item in members:
            labels = alert_labels(item.alert)
            silence = silenced_by(labels, silences, now)
            twin = None if silence else inhibited_by(labels, firing, grouping.inhibitions)
            if silence is not None:
                _mark(connection, delivery, "silenced", f"silenced by {silence}")
            elif twin is not None:
                _mark(
                    connection, delivery, "inhibited", f"inhibited by {twin.get('alertname')} ({twin.get('severity')})"
                )
            else:
                sending.append((delivery, item))
        if not sending:
            continue
        ids = sorted(delivery for delivery, _ in sending)
        note = "msg_" + hashlib.sha256("|".join([webhook, *ids]).encode()).hexdigest()[:24]
        connection.execute(
            "INSERT OR IGNORE INTO notifications (id, webhook, group_key, alert_ids, status, attempts,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
            [note, webhook, key, [item.alert.id for _, item in sending], now, now],
        )
        for delivery in ids:
            connection.execute("INSERT OR IGNORE INTO notification_members VALUES (?, ?)", [delivery, note])
        created += 1
    return created


def _mark(connection: duckdb.DuckDBPyConnection, delivery: str, status: str, why: str) -> None:
    connection.execute("UPDATE deliveries SET status = ?, last_error = ? WHERE id = ?", [status, why, delivery])


def due_notifications(connection: duckdb.DuckDBPyConnection, now: datetime, limit: int = 100) -> list[Notification]:
    """Pending notifications whose next attempt is due, oldest first, with their alerts."""
    notes = connection.execute(
        "SELECT id, webhook, group_key, attempts, alert_ids FROM notifications"
        " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        [now, limit],
    ).fetchall()
    result = []
    for note_id, webhook, key, attempts, alert_ids in notes:
        rows = connection.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id"  # noqa: S608
            " WHERE list_contains(?, a.id) ORDER BY a.bucket_start, a.id",
            [list(alert_ids)],
        ).fetchall()
        alerts = tuple(_alert_row(row, (webhook,)) for row in rows)
        result.append(Notification(note_id, webhook, key, attempts, alerts))
    return result


def retry_pending_now(connection: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Make every pending notification due at ``now``, except those a receiver asked to wait (429/503).

    Called when the service starts: a restart is often the operator's fix, so backoff from before it should not
    delay delivery by minutes. Attempts keep counting, so a notification still goes dead after its schedule.
    """
    with _transaction(connection):
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
    with _transaction(connection):
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
