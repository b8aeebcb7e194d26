"""Silences in DuckDB: added, listed, expired, and the active ones the outbox applies.

add_silence(store.connection, matchers, now, timedelta(hours=2), "known story", "ana")
active_silences(store.connection, now)
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stackwatch.signals.alerting import Matcher, Silence
from stackwatch.signals.messages import parse_time
from stackwatch.storage.store import as_store_error

__all__ = [
    "MAX_SILENCE",
    "active_silences",
    "add_silence",
    "as_store_error",
    "expire_silence",
    "list_silences",
    "silence_records",
]

log = logging.getLogger(__name__)

MAX_SILENCE = timedelta(days=3650)
"""The longest silence (a longer one would be a rule to delete, not a silence)."""


_IGNORED_SILENCES: set[str] = set()


def add_silence(
    connection: duckdb.DuckDBPyConnection,
    matchers: Sequence[Matcher],
    ends_at: datetime,
    *,
    now: datetime,
    comment: str = "",
    created_by: str = "",
) -> str:
    """Store a silence from ``now`` until ``ends_at``; returns its id.

    ValueError for no matchers or an end that is not in the future or more than :data:`MAX_SILENCE` away;
    StoreError when DuckDB fails.
    """
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if ends_at <= now:
        raise ValueError("a silence must end in the future")
    if ends_at - now > MAX_SILENCE:
        raise ValueError(f"a silence lasts at most {MAX_SILENCE.days}d")
    silence_id = "sil_" + secrets.token_hex(6)
    with as_store_error("cannot store the silence"):
        connection.execute(
            "INSERT INTO silences (id, matchers, comment, created_by, starts_at, ends_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [silence_id, [str(matcher) for matcher in matchers], comment, created_by, now, ends_at, now],
        )
    return silence_id


def _silence_rows(connection: duckdb.DuckDBPyConnection, now: datetime, include_expired: bool) -> list[Any]:
    with as_store_error("cannot read the silences"):
        return connection.execute(
            "SELECT id, matchers, starts_at, ends_at, comment, created_by FROM silences"
            " WHERE ? OR ends_at > ? ORDER BY ends_at, id",
            [include_expired, now],
        ).fetchall()


def list_silences(
    connection: duckdb.DuckDBPyConnection, now: datetime, *, include_expired: bool = False
) -> list[Silence]:
    rows = _silence_rows(connection, now, include_expired)
    return [silence for row in rows if (silence := _stored_silence(row)) is not None]


def silence_records(
    connection: duckdb.DuckDBPyConnection, now: datetime, *, include_expired: bool = False
) -> list[dict[str, Any]]:
    """Silences as JSON-ready records (what ``GET /api/silences`` returns and ``stackwatch silence list`` shows):
    ``id``, ``matchers`` (strings), ``starts_at``, ``ends_at`` (ISO-8601), ``state`` (``active``/``expired``),
    ``comment``, ``created_by``. Active ones (and expired ones with ``include_expired``), soonest end first."""
    records = []
    for row in _silence_rows(connection, now, include_expired):
        starts_at, ends_at = parse_time(row[2]), parse_time(row[3])
        records.append(
            {
                "id": row[0],
                "matchers": list(row[1]),
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "state": "active" if starts_at <= now < ends_at else "expired",
                "comment": row[4],
                "created_by": row[5],
            }
        )
    return records


def expire_silence(connection: duckdb.DuckDBPyConnection, silence_id: str, now: datetime) -> bool:
    """End a silence now; False if there is no such active silence."""
    with as_store_error("cannot expire the silence"):
        found = connection.execute(
            "SELECT count(*) FROM silences WHERE id = ? AND ends_at > ?", [silence_id, now]
        ).fetchone()
        if not found or not found[0]:
            return False
        connection.execute("UPDATE silences SET ends_at = ? WHERE id = ?", [now, silence_id])
    return True


def active_silences(connection: duckdb.DuckDBPyConnection, now: datetime) -> list[Silence]:
    rows = connection.execute(
        "SELECT id, matchers, starts_at, ends_at, comment FROM silences WHERE ends_at > ? ORDER BY id", [now]
    ).fetchall()
    return [silence for row in rows if (silence := _stored_silence(row)) is not None]


def _stored_silence(row: Sequence[Any]) -> Silence | None:
    """A ``silences`` row as a Silence; None (and a warning) for one whose matchers no longer parse, such as a
    regex stored before matchers were compiled with RE2: it mutes nothing rather than stop every dispatch."""
    try:
        matchers = tuple(Matcher.parse(text) for text in row[1])
    except ValueError as error:
        if row[0] not in _IGNORED_SILENCES:  # once per process, not on every dispatch
            _IGNORED_SILENCES.add(row[0])
            log.warning("silence %s is ignored: %s (expire it and add it again)", row[0], error)
        return None
    return Silence(row[0], matchers, parse_time(row[2]), parse_time(row[3]), row[4])
