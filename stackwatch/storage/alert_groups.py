"""Alertmanager's notification timing over the DuckDB outbox: ``group_wait``, ``group_interval``,
``repeat_interval``, and resolutions paired with the firings they end.

An aggregation group is one webhook and one :func:`~stackwatch.signals.alerting.group_key`. Each round::

    dispatch(store.connection, now, Grouping(group_wait=timedelta(seconds=30)))   # new notifications made

takes the alerts recorded since the last round into their groups, then flushes every group whose timer is due:

- a new group first flushes ``group_wait`` after its first alert was recorded, then every ``group_interval``;
- a flush notifies when the group holds a firing alert the last notification did not carry, or a resolution
  not sent yet; otherwise, once ``repeat_interval`` has passed since the last notification, it re-sends the
  firing alerts (a new notification, so a new webhook-id, carrying the same alert ids);
- a resolution is sent only when a notification carried its firing; the resolution of a firing that was never
  notified (silenced, inhibited, or resolved before its group flushed) is marked ``muted``, as is that firing.

Every timer lives in ``alert_groups`` and ``alert_group_members`` (schema 10), and a round is one transaction,
so a restart resumes the timers where the last committed round left them: a due notification is never lost and
a repeat is never early. Silences and inhibitions are judged at each flush, as Alertmanager does: an alert
muted at one flush is notified at the first flush after its silence ends, if it still fires.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from stackwatch.signals.alerting import Inhibition, Silence, group_key, inhibited_by, silenced_by
from stackwatch.signals.messages import parse_time
from stackwatch.storage.evidence import alert_labels
from stackwatch.storage.outbox_rows import ALERT_COLUMNS, AlertRow, alert_row, transaction
from stackwatch.storage.silences import active_silences

__all__ = ["Grouping", "dispatch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Grouping:
    """How the outbox becomes notifications, and when (from the ``alerting:`` settings; Alertmanager's defaults
    for the intervals)."""

    group_by: tuple[str, ...] = ("alertname", "dynamic")
    group_wait: timedelta = timedelta(seconds=30)
    inhibitions: tuple[Inhibition, ...] = ()
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)

    def __post_init__(self) -> None:
        if self.group_interval <= timedelta(0) or self.repeat_interval <= timedelta(0):
            raise ValueError("group_interval and repeat_interval must be longer than zero")
        if self.group_wait < timedelta(0):
            raise ValueError("group_wait must not be negative")


def dispatch(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> int:
    """Take new deliveries into their groups and flush every group that is due at ``now``; one transaction.

    Returns how many notifications were made (each is then attempted by the deliverer).
    """
    with transaction(connection):
        _intake(connection, now, grouping)
        return _flush_due(connection, now, grouping)


# -- intake: new deliveries join their group --------------------------------------------------------------------


def _intake(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> None:
    rows = connection.execute(
        f"""
        SELECT d.id, d.webhook, d.created_at, {ALERT_COLUMNS}
        FROM deliveries d JOIN alerts a ON a.id = d.alert_id LEFT JOIN alert_details x ON x.alert_id = a.id
        WHERE d.status = 'pending'
          AND d.id NOT IN (SELECT delivery_id FROM notification_members)
          AND d.id NOT IN (SELECT delivery_id FROM alert_group_members)
        ORDER BY a.bucket_start, coalesce(x.status, 'firing'), d.created_at, d.id
        """  # noqa: S608 (no user input)
    ).fetchall()
    for row in rows:
        delivery, webhook, created_at = row[0], row[1], parse_time(row[2])
        item = alert_row(row[3:])
        key = group_key(alert_labels(item.alert), grouping.group_by)
        if item.alert.status == "resolved" and not _resolves_notified(connection, webhook, item):
            _mark(connection, delivery, "muted", "its firing was never notified (nothing to resolve)")
            continue
        _ensure_group(connection, webhook, key, min(created_at, now), grouping)
        connection.execute(
            "INSERT INTO alert_group_members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                delivery,
                webhook,
                key,
                item.alert.id,
                item.alert.rule,
                item.alert.dedup_key,
                item.alert.status,
                item.alert.bucket_start,
                now,
            ],
        )


def _resolves_notified(connection: duckdb.DuckDBPyConnection, webhook: str, resolution: AlertRow) -> bool:
    """Whether a notification to ``webhook`` carried the firing ``resolution`` ends; that firing leaves its group.

    The firing is the group member of the same rule and dedup key; one recorded before schema 10 is found among
    the deliveries a notification carried.
    """
    alert = resolution.alert
    members = connection.execute(
        "DELETE FROM alert_group_members WHERE webhook = ? AND rule = ? AND dedup_key = ? AND status = 'firing'"
        " AND bucket_start <= ? RETURNING delivery_id, notified_at",
        [webhook, alert.rule, alert.dedup_key, alert.bucket_start],
    ).fetchall()
    if members:
        for delivery, notified_at in members:
            if notified_at is None:
                connection.execute(
                    "UPDATE deliveries SET status = 'muted', last_error = ? WHERE id = ? AND status = 'pending'",
                    ["resolved before it was notified", delivery],
                )
        return any(notified_at is not None for _, notified_at in members)
    carried = connection.execute(
        """
        SELECT count(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id JOIN alert_details x ON x.alert_id = a.id
        WHERE d.webhook = ? AND a.rule = ? AND x.dedup_key = ? AND x.status = 'firing' AND a.bucket_start <= ?
          AND d.id IN (SELECT delivery_id FROM notification_members)
        """,
        [webhook, alert.rule, alert.dedup_key, alert.bucket_start],
    ).fetchone()
    return bool(carried and carried[0])


def _ensure_group(
    connection: duckdb.DuckDBPyConnection, webhook: str, key: str, started: datetime, grouping: Grouping
) -> None:
    connection.execute(
        "INSERT OR IGNORE INTO alert_groups (webhook, group_key, started_at, next_flush_at, sent_firing, sent_resolved)"
        " VALUES (?, ?, ?, ?, [], [])",
        [webhook, key, started, started + grouping.group_wait],
    )


def _mark(connection: duckdb.DuckDBPyConnection, delivery: str, status: str, why: str) -> None:
    connection.execute("UPDATE deliveries SET status = ?, last_error = ? WHERE id = ?", [status, why, delivery])


# -- flush: due groups notify what changed, or repeat ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Group:
    webhook: str
    key: str
    next_flush_at: datetime
    last_sent_at: datetime | None
    last_notification: str | None
    sent_firing: frozenset[str]
    sent_resolved: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Member:
    delivery: str
    notified: bool
    item: AlertRow


def _flush_due(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> int:
    rows = connection.execute(
        "SELECT webhook, group_key, next_flush_at, last_sent_at, last_notification, sent_firing, sent_resolved"
        " FROM alert_groups WHERE next_flush_at <= ? ORDER BY next_flush_at, webhook, group_key",
        [now],
    ).fetchall()
    if not rows:
        return 0
    silences = active_silences(connection, now)
    firing_now = _firing_labels(connection)
    made = 0
    for row in rows:
        group = _Group(
            row[0],
            row[1],
            parse_time(row[2]),
            None if row[3] is None else parse_time(row[3]),
            row[4],
            frozenset(row[5]),
            frozenset(row[6]),
        )
        made += _flush(connection, group, now, grouping, silences, firing_now)
    return made


def _flush(
    connection: duckdb.DuckDBPyConnection,
    group: _Group,
    now: datetime,
    grouping: Grouping,
    silences: Sequence[Silence],
    firing_now: list[dict[str, str]],
) -> int:
    members = _members(connection, group)
    if not members:
        connection.execute("DELETE FROM alert_groups WHERE webhook = ? AND group_key = ?", [group.webhook, group.key])
        return 0
    firing: list[_Member] = []
    resolved: list[_Member] = []
    for member in members:
        if member.item.alert.status == "resolved":
            resolved.append(member)  # owed: its firing was notified, so no silence keeps the receiver waiting
        elif _muted(connection, member, now, grouping, silences, firing_now) is None:
            firing.append(member)
    firing_ids = {member.item.alert.id for member in firing}
    resolved_ids = {member.item.alert.id for member in resolved}
    changed = not firing_ids <= group.sent_firing or not resolved_ids <= group.sent_resolved
    repeat = (
        not changed
        and bool(firing)
        and group.last_sent_at is not None
        and group.last_sent_at + grouping.repeat_interval <= now
        and not _still_pending(connection, group.last_notification)
    )
    next_flush = _next_tick(group.next_flush_at, now, grouping.group_interval)
    if not (firing or resolved) or not (changed or repeat):
        connection.execute(
            "UPDATE alert_groups SET next_flush_at = ? WHERE webhook = ? AND group_key = ?",
            [next_flush, group.webhook, group.key],
        )
        return 0
    carried = firing + resolved
    note = _notify(connection, group, carried, now, repeat)
    connection.execute(
        "UPDATE alert_group_members SET notified_at = coalesce(notified_at, ?) WHERE list_contains(?, delivery_id)",
        [now, [member.delivery for member in firing]],
    )
    connection.execute(
        "DELETE FROM alert_group_members WHERE list_contains(?, delivery_id)",
        [[member.delivery for member in resolved]],
    )
    connection.execute(
        """
        UPDATE alert_groups SET next_flush_at = ?, last_sent_at = ?, last_notification = ?, sent_firing = ?,
               sent_resolved = ?, repeat_due_at = ?
        WHERE webhook = ? AND group_key = ?
        """,
        [
            next_flush,
            now,
            note,
            sorted(firing_ids),
            sorted(resolved_ids),
            now + grouping.repeat_interval if firing else None,
            group.webhook,
            group.key,
        ],
    )
    if not firing and len(members) == len(resolved):  # everything it held is resolved and sent: the group ends
        connection.execute("DELETE FROM alert_groups WHERE webhook = ? AND group_key = ?", [group.webhook, group.key])
    return 1


def _members(connection: duckdb.DuckDBPyConnection, group: _Group) -> list[_Member]:
    rows = connection.execute(
        f"""
        SELECT m.delivery_id, m.notified_at IS NOT NULL, {ALERT_COLUMNS}
        FROM alert_group_members m JOIN alerts a ON a.id = m.alert_id LEFT JOIN alert_details x ON x.alert_id = a.id
        WHERE m.webhook = ? AND m.group_key = ?
        ORDER BY a.bucket_start, a.id
        """,  # noqa: S608 (no user input)
        [group.webhook, group.key],
    ).fetchall()
    return [_Member(row[0], bool(row[1]), alert_row(row[2:])) for row in rows]


def _muted(
    connection: duckdb.DuckDBPyConnection,
    member: _Member,
    now: datetime,
    grouping: Grouping,
    silences: Sequence[Silence],
    firing_now: list[dict[str, str]],
) -> str | None:
    """Why a firing member is left out of this flush (a silence, an inhibiting alert), or None.

    A member no notification carried yet has its delivery marked ``silenced`` / ``inhibited`` with the reason.
    """
    labels = alert_labels(member.item.alert)
    silence = silenced_by(labels, silences, now)
    twin = None if silence else inhibited_by(labels, firing_now, grouping.inhibitions)
    if silence is not None:
        status, why = "silenced", f"silenced by {silence}"
    elif twin is not None:
        status, why = "inhibited", f"inhibited by {twin.get('alertname')} ({twin.get('severity')})"
    else:
        return None
    if not member.notified:
        _mark(connection, member.delivery, status, why)
    return why


def _still_pending(connection: duckdb.DuckDBPyConnection, notification: str | None) -> bool:
    """Whether the group's last notification is still being retried (a repeat would only queue behind it)."""
    if notification is None:
        return False
    row = connection.execute("SELECT status FROM notifications WHERE id = ?", [notification]).fetchone()
    return row is not None and row[0] == "pending"


def _next_tick(due: datetime, now: datetime, interval: timedelta) -> datetime:
    """The group's first tick after ``now`` on its cadence (``due`` + a whole number of ``interval``)."""
    steps = (now - due) // interval + 1
    return due + steps * interval


def _notify(
    connection: duckdb.DuckDBPyConnection, group: _Group, carried: list[_Member], now: datetime, repeat: bool
) -> str:
    """A new notification carrying ``carried``: its own id (so its own webhook-id), due at once."""
    alert_ids = [member.item.alert.id for member in carried]
    seed = "|".join([group.webhook, group.key, now.isoformat(), *sorted(alert_ids)])
    note = "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    connection.execute(
        "INSERT OR IGNORE INTO notifications (id, webhook, group_key, alert_ids, status, attempts, next_attempt_at,"
        " created_at, repeat) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        [note, group.webhook, group.key, alert_ids, now, now, repeat],
    )
    # A delivery mirrors the last notification that carried its alert (record_attempt updates it).
    connection.execute(
        "INSERT OR REPLACE INTO notification_members SELECT unnest(?), ?", [[m.delivery for m in carried], note]
    )
    log.debug("outbox: %s to %s carries %d alert(s), repeat=%s", note, group.webhook, len(carried), repeat)
    return note


def _firing_labels(connection: duckdb.DuckDBPyConnection) -> list[dict[str, str]]:
    """Labels of alerts firing now: the latest alert of each rule and dedup key is a firing one."""
    rows = connection.execute(
        f"""
        SELECT {ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_details x ON x.alert_id = a.id
        QUALIFY row_number() OVER (PARTITION BY a.rule, coalesce(x.dedup_key, a.id)
                                   ORDER BY a.bucket_start DESC, coalesce(x.status, 'firing') DESC) = 1
        """  # noqa: S608 (no user input)
    ).fetchall()
    return [alert_labels(alert_row(row).alert) for row in rows if row[11] == "firing"]
