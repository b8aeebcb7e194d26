"""Alerting in DuckDB: evidence, the notification outbox (grouping, inhibition, silences), silences, history.

Functions over a DuckDB connection (``Store.connection``), called on the store's thread::

    write_alert_details(store.connection, alerts)          # in the sink's write transaction
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
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stackwatch.errors import StoreError
from stackwatch.signals.alerting import Inhibition, Matcher, Silence, group_key, inhibited_by, silenced_by
from stackwatch.signals.indicators import WINDOWS
from stackwatch.signals.messages import Alert, IndicatorUpdate, Observation, parse_time

__all__ = [
    "MAX_SILENCE",
    "AlertRow",
    "Grouping",
    "Notification",
    "add_silence",
    "alert_labels",
    "dispatch",
    "due_notifications",
    "evidence_for",
    "expire_silence",
    "indicator_history",
    "list_silences",
    "observation_history",
    "recent_alerts",
    "record_attempt",
    "retry_pending_now",
    "silence_records",
    "write_alert_details",
]

log = logging.getLogger(__name__)
_IGNORED_SILENCES: set[str] = set()

TOP_ARTICLES = 5
MAX_SILENCE = timedelta(days=3650)
"""The longest silence (a longer one would be a rule to delete, not a silence)."""


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


def alert_labels(alert: Alert) -> dict[str, str]:
    """An alert's labels (older rows without details get the basic ones)."""
    base = {"alertname": alert.rule, "severity": alert.severity, "dynamic": alert.dynamic, "window": alert.window}
    return {**base, **alert.labels}


# -- evidence ------------------------------------------------------------------------------------------------------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def evidence_for(connection: duckdb.DuckDBPyConnection, alert: Alert) -> dict[str, Any]:
    """The top contributing articles, the values that tripped the rule, and SQL that reproduces the counts."""
    dynamics = [name for name in alert.labels.get("dynamics", alert.dynamic).split(",") if name]
    width = WINDOWS.get(alert.window, timedelta(hours=1))
    start, end = alert.bucket_start, alert.bucket_start + width
    where = (
        f"d.label AND d.dynamic IN ({', '.join(_literal(name) for name in dynamics)})"
        f" AND a.published_at >= TIMESTAMPTZ {_literal(start.isoformat())}"
        f" AND a.published_at < TIMESTAMPTZ {_literal(end.isoformat())}"
    ) + _entity_filter(alert)
    joined = "FROM articles a JOIN article_dynamics d ON d.article_id = a.id"
    sql = f"SELECT d.dynamic, count(DISTINCT a.id) AS article_count {joined} WHERE {where} GROUP BY d.dynamic"
    top = f"SELECT a.title, a.url, a.source, a.published_at, d.dynamic, d.score {joined} WHERE {where}"
    rows = connection.execute(
        f"{top} ORDER BY d.score DESC, a.published_at DESC, a.id LIMIT ?", [TOP_ARTICLES]
    ).fetchall()
    articles = [
        {
            "title": row[0],
            "url": row[1],
            "source": row[2],
            "published_at": row[3].isoformat(),
            "scores": {row[4]: round(float(row[5]), 4)},
        }
        for row in rows
    ]
    return {"articles": articles, "values": dict(alert.values), "threshold": alert.threshold, "sql": sql}


def _entity_filter(alert: Alert) -> str:
    """For alerts about entities (co-occurrence, first-seen), only the articles that name them count as evidence."""
    if "entity" in alert.labels:
        wanted, every = [alert.labels["entity"]], True
    elif "entities" in alert.labels:
        text = alert.labels["entities"]
        every = " | " not in text
        wanted = text.split(" & " if every else " | ")
    else:
        return ""
    folded = sorted({name.casefold() for name in wanted})
    named = (
        "SELECT count(DISTINCT lower(e.entity)) FROM article_entities e"  # noqa: S608 (values go through _literal)
        f" WHERE e.article_id = a.id AND lower(e.entity) IN ({', '.join(_literal(name) for name in folded)})"
    )
    return f" AND ({named}) = {len(folded)}" if every else f" AND ({named}) > 0"


def write_alert_details(connection: duckdb.DuckDBPyConnection, alerts: Iterable[Alert]) -> None:
    """Record labels and evidence of new alerts (inside the caller's transaction); a recorded alert keeps its own."""
    for alert in alerts:
        connection.execute(
            "INSERT OR IGNORE INTO alert_details (alert_id, status, kind, dedup_key, labels, indicator_values,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                alert.id,
                alert.status,
                alert.kind,
                alert.dedup_key or alert.id,
                json.dumps(alert_labels(alert), sort_keys=True),
                json.dumps(dict(alert.values), sort_keys=True),
                json.dumps(evidence_for(connection, alert)),
            ],
        )


# -- grouping into notifications -------------------------------------------------------------------------------------

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


def _active_silences(connection: duckdb.DuckDBPyConnection, now: datetime) -> list[Silence]:
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
    silences = _active_silences(connection, now)
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


# -- silences ------------------------------------------------------------------------------------------------------


@contextmanager
def _as_store_error(action: str) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as error:
        raise StoreError(f"{action}: {error}") from error


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
    with _as_store_error("cannot store the silence"):
        connection.execute(
            "INSERT INTO silences (id, matchers, comment, created_by, starts_at, ends_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [silence_id, [str(matcher) for matcher in matchers], comment, created_by, now, ends_at, now],
        )
    return silence_id


def _silence_rows(connection: duckdb.DuckDBPyConnection, now: datetime, include_expired: bool) -> list[Any]:
    with _as_store_error("cannot read the silences"):
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
    with _as_store_error("cannot expire the silence"):
        found = connection.execute(
            "SELECT count(*) FROM silences WHERE id = ? AND ends_at > ?", [silence_id, now]
        ).fetchone()
        if not found or not found[0]:
            return False
        connection.execute("UPDATE silences SET ends_at = ? WHERE id = ?", [now, silence_id])
    return True


# -- reading ---------------------------------------------------------------------------------------------------------


def recent_alerts(connection: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple[Any, ...]]:
    """Recent alerts with their delivery status per webhook: (fired_at, rule, severity, status, dynamic, value,
    deliveries) where deliveries reads like ``ops:delivered(1) chat:pending(3)``. StoreError when DuckDB fails."""
    with _as_store_error("cannot read the alerts"):
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
    """Stored articles published from ``since`` as the rules stage sees them (labels and entities), in time order."""
    rows = connection.execute(
        "SELECT a.id, a.source, a.published_at, a.labels,"
        " list(e.entity ORDER BY e.entity) FILTER (e.entity IS NOT NULL)"
        " FROM articles a LEFT JOIN article_entities e ON e.article_id = a.id"
        " WHERE a.published_at >= ? AND (? IS NULL OR a.published_at < ?)"
        " GROUP BY ALL ORDER BY a.published_at, a.id",
        [since, until, until],
    ).fetchall()
    return [Observation(row[0], row[1], parse_time(row[2]), tuple(row[3] or ()), tuple(row[4] or ())) for row in rows]


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
