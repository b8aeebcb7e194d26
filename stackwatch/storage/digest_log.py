"""Which scheduled digests were sent: one ``notifications`` row per digest, webhook and period, so a restart (or a
crash) neither sends a digest twice nor forgets one that is due.

    entry = digest_entry(connection, entry_id)                 # None: never tried
    record_attempt(connection, entry_id, "chat", "morning", due, now, status=200, error=None, retry_at=None)

A digest's row is a notification with no alerts: ``group_key`` ``digest:<name>`` and ``status`` ``delivered``
once its webhook took it, ``retrying`` after a failed attempt (the next is due at ``next_attempt_at``), or
``failed`` once given up. The outbox sends only ``pending`` notifications, so it never picks a digest's row up.
The row is written after the request: a crash between the two sends the digest again after the restart, under
the same ``webhook-id`` (the row's id), as alert notifications are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb

from stackwatch.storage.store import as_store_error

__all__ = ["DigestEntry", "digest_entry", "entry_id", "record_attempt"]


def entry_id(name: str, webhook: str, due: datetime) -> str:
    """The id of a digest's row, and its ``webhook-id``: the same for one digest, webhook and period end."""
    return "digest_" + hashlib.sha256(f"{name}|{webhook}|{due.isoformat()}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """A digest tried at least once: ``status`` (``delivered``, ``retrying`` or ``failed``), attempts so far and
    when the next one is due."""

    status: str
    attempts: int
    next_attempt_at: datetime


def digest_entry(connection: duckdb.DuckDBPyConnection, key: str) -> DigestEntry | None:
    """The row of digest ``key``, or None when it was never tried. StoreError when DuckDB cannot answer."""
    with as_store_error("cannot read the record of a digest"):
        row = connection.execute(
            "SELECT status, attempts, next_attempt_at FROM notifications WHERE id = ?", [key]
        ).fetchone()
    return None if row is None else DigestEntry(str(row[0]), int(row[1]), row[2])


def record_attempt(
    connection: duckdb.DuckDBPyConnection,
    key: str,
    webhook: str,
    name: str,
    due: datetime,
    now: datetime,
    *,
    status: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Record one attempt at digest ``key``: delivered when ``error`` is None, else to be retried at ``retry_at``
    (None: given up)."""
    state = "delivered" if error is None else ("retrying" if retry_at is not None else "failed")
    with as_store_error(f"cannot record digest {key}"):
        connection.execute(
            "INSERT INTO notifications (id, webhook, group_key, alert_ids, status, attempts, next_attempt_at, "
            "last_status, last_error, created_at, delivered_at) VALUES (?, ?, ?, [], ?, 1, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempts = notifications.attempts + 1, "
            "next_attempt_at = excluded.next_attempt_at, last_status = excluded.last_status, "
            "last_error = excluded.last_error, delivered_at = excluded.delivered_at",
            [
                key,
                webhook,
                f"digest:{name}",
                state,
                retry_at or due,
                status,
                error,
                now,
                now if error is None else None,
            ],
        )
