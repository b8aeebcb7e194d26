"""The outbox's rows as values: an alert as stored (:class:`AlertRow`), one request (:class:`Notification`), and
the one transaction helper the outbox's writers share::

    rows = connection.execute(f"SELECT {ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_details x ON ...").fetchall()
    alerts = [alert_row(row) for row in rows]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from stackwatch.signals.messages import Alert, parse_time

__all__ = ["ALERT_COLUMNS", "AlertRow", "Notification", "alert_row", "transaction"]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as stored, with its labels and evidence."""

    alert: Alert
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """One request to one webhook carrying a group of alerts. ``repeat``: it re-sends alerts already notified,
    unchanged (``alerting.repeat_interval``)."""

    id: str
    webhook: str
    group_key: str
    attempts: int
    alerts: tuple[AlertRow, ...]
    repeat: bool = False


ALERT_COLUMNS = (
    "a.id, a.rule, a.severity, a.dynamic, a.indicator, a.bucket_width, a.bucket_start, a.value, a.threshold,"
    " a.message, a.fired_at, coalesce(x.status, 'firing'), coalesce(x.kind, 'threshold'), coalesce(x.dedup_key, a.id),"
    " coalesce(x.labels, '{}'), coalesce(x.indicator_values, '{}'), coalesce(x.evidence, '{}')"
)
"""An alert's columns, from ``alerts a LEFT JOIN alert_details x ON x.alert_id = a.id``, as :func:`alert_row` reads
them."""


def alert_row(row: Sequence[Any], webhooks: tuple[str, ...] = ()) -> AlertRow:
    """The :class:`AlertRow` of a row selected with :data:`ALERT_COLUMNS`."""
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


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Everything in the block commits together, or is rolled back (and the error raised)."""
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
