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

A notification's evidence is assembled when the notification is made, from what the store holds then
(:func:`~stackwatch.storage.evidence.evidence_for`): articles stored after the alert (late reports of its bucket)
are in it, and a repeat carries the evidence of its own time. Retries of one notification send the same body.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stackwatch.signals.alerting import Inhibition, Silence, group_key, inhibited_by, silenced_by
from stackwatch.signals.messages import Alert, parse_time
from stackwatch.storage.evidence import alert_labels, evidence_for
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
# Each phase reads what it needs in one query, decides in Python, and writes each kind of change with one
# statement over lists (unnest): a statement costs DuckDB milliseconds, so one per alert or group would not do.

_SEP = "\x1f"  # between webhook and group key in one text (neither holds a control character)


@dataclass(slots=True)
class _Firing:
    delivery: str
    bucket_start: datetime
    notified: bool
    new: bool = False  # taken in by this round


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
    if not rows:
        return
    firing: dict[tuple[str, str, str], list[_Firing]] = defaultdict(list)
    for delivery, webhook, rule, dedup, bucket, notified in connection.execute(
        "SELECT delivery_id, webhook, rule, dedup_key, bucket_start, notified_at IS NOT NULL"
        " FROM alert_group_members WHERE status = 'firing'"
    ).fetchall():
        firing[(webhook, rule, dedup)].append(_Firing(delivery, parse_time(bucket), bool(notified)))
    started: dict[tuple[str, str], datetime] = {}
    joining: dict[str, list[Any]] = {}
    leaving: list[str] = []
    muted: dict[str, str] = {}
    for row in rows:
        delivery, webhook, created_at = row[0], row[1], parse_time(row[2])
        alert = alert_row(row[3:]).alert
        key = group_key(alert_labels(alert), grouping.group_by)
        series = (webhook, alert.rule, alert.dedup_key)
        if alert.status == "resolved":
            ended = [item for item in firing[series] if item.bucket_start <= alert.bucket_start]
            firing[series] = [item for item in firing[series] if item.bucket_start > alert.bucket_start]
            for item in ended:
                if item.new:
                    del joining[item.delivery]
                else:
                    leaving.append(item.delivery)
                if not item.notified:
                    muted[item.delivery] = "resolved before it was notified"
            if not (any(item.notified for item in ended) if ended else _carried_before(connection, webhook, alert)):
                muted[delivery] = "its firing was never notified (nothing to resolve)"
                continue
        else:
            firing[series].append(_Firing(delivery, alert.bucket_start, notified=False, new=True))
        first = min(created_at, now)
        started[(webhook, key)] = min(started.get((webhook, key), first), first)
        joining[delivery] = [
            delivery, webhook, key, alert.id, alert.rule, alert.dedup_key, alert.status, alert.bucket_start, now,
        ]  # fmt: skip
    if leaving:
        connection.execute("DELETE FROM alert_group_members WHERE list_contains(?::VARCHAR[], delivery_id)", [leaving])
    _mark(connection, {delivery: ("muted", why) for delivery, why in muted.items()}, only_pending=True)
    if started:
        keys = list(started)
        connection.execute(
            "INSERT OR IGNORE INTO alert_groups (webhook, group_key, started_at, next_flush_at, sent_firing,"
            " sent_resolved) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]),"
            " unnest(?::TIMESTAMPTZ[]), [], []",
            [
                [webhook for webhook, _ in keys],
                [key for _, key in keys],
                [started[item] for item in keys],
                [started[item] + grouping.group_wait for item in keys],
            ],
        )
    if joining:
        columns = list(zip(*joining.values(), strict=True))
        connection.execute(
            "INSERT INTO alert_group_members SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
            " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
            " unnest(?::TIMESTAMPTZ[]), unnest(?::TIMESTAMPTZ[]), NULL",
            [list(column) for column in columns],
        )


def _carried_before(connection: duckdb.DuckDBPyConnection, webhook: str, resolution: Alert) -> bool:
    """Whether a notification to ``webhook`` carried a firing that ``resolution`` ends, when no group member holds
    one (a firing recorded before schema 10)."""
    carried = connection.execute(
        """
        SELECT count(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id JOIN alert_details x ON x.alert_id = a.id
        WHERE d.webhook = ? AND a.rule = ? AND x.dedup_key = ? AND x.status = 'firing' AND a.bucket_start <= ?
          AND d.id IN (SELECT delivery_id FROM notification_members)
        """,
        [webhook, resolution.rule, resolution.dedup_key, resolution.bucket_start],
    ).fetchone()
    return bool(carried and carried[0])


def _mark(
    connection: duckdb.DuckDBPyConnection, marks: Mapping[str, tuple[str, str]], *, only_pending: bool = False
) -> None:
    """Set each delivery's status and reason (``marks``: delivery id → (status, reason))."""
    if not marks:
        return
    connection.execute(
        "UPDATE deliveries SET status = u.status, last_error = u.why FROM (SELECT unnest(?::VARCHAR[]) AS id,"
        " unnest(?::VARCHAR[]) AS status, unnest(?::VARCHAR[]) AS why) u WHERE deliveries.id = u.id"
        " AND (NOT ? OR deliveries.status = 'pending')",
        [list(marks), [status for status, _ in marks.values()], [why for _, why in marks.values()], only_pending],
    )


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
    retrying: bool  # its last notification is still pending (a repeat would only queue behind it)
    repeat_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Member:
    delivery: str
    notified: bool
    item: AlertRow


@dataclass(slots=True)
class _Changes:
    """What one flush round writes, gathered over every due group."""

    marks: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[list[Any]] = field(default_factory=list)
    carried: list[tuple[str, str]] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)
    sent_resolutions: list[str] = field(default_factory=list)
    groups: list[list[Any]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    sent: dict[str, Alert] = field(default_factory=dict)
    """The alerts the round's notifications carry: their evidence is assembled again as they are sent."""


def _flush_due(connection: duckdb.DuckDBPyConnection, now: datetime, grouping: Grouping) -> int:
    rows = connection.execute(
        """
        SELECT g.webhook, g.group_key, g.next_flush_at, g.last_sent_at, g.last_notification, g.sent_firing,
               g.sent_resolved, coalesce(n.status = 'pending', false), g.repeat_due_at
        FROM alert_groups g LEFT JOIN notifications n ON n.id = g.last_notification
        WHERE g.next_flush_at <= ? ORDER BY g.next_flush_at, g.webhook, g.group_key
        """,
        [now],
    ).fetchall()
    if not rows:
        return 0
    members: dict[tuple[str, str], list[_Member]] = defaultdict(list)
    for row in connection.execute(
        f"""
        SELECT m.webhook, m.group_key, m.delivery_id, m.notified_at IS NOT NULL, {ALERT_COLUMNS}
        FROM alert_group_members m JOIN alert_groups g ON g.webhook = m.webhook AND g.group_key = m.group_key
        JOIN alerts a ON a.id = m.alert_id LEFT JOIN alert_details x ON x.alert_id = a.id
        WHERE g.next_flush_at <= ?
        ORDER BY a.bucket_start, a.id
        """,  # noqa: S608 (no user input)
        [now],
    ).fetchall():
        members[(row[0], row[1])].append(_Member(row[2], bool(row[3]), alert_row(row[4:])))
    silences = active_silences(connection, now)
    firing_now = _firing_labels(connection) if grouping.inhibitions else []
    changes = _Changes()
    for row in rows:
        group = _Group(
            row[0],
            row[1],
            parse_time(row[2]),
            None if row[3] is None else parse_time(row[3]),
            row[4],
            frozenset(row[5]),
            frozenset(row[6]),
            bool(row[7]),
            None if row[8] is None else parse_time(row[8]),
        )
        _flush(group, members[(group.webhook, group.key)], now, grouping, silences, firing_now, changes)
    _write(connection, changes, now)
    return len(changes.notes)


def _flush(
    group: _Group,
    members: list[_Member],
    now: datetime,
    grouping: Grouping,
    silences: Sequence[Silence],
    firing_now: list[dict[str, str]],
    changes: _Changes,
) -> None:
    """Decide what ``group`` sends at ``now`` (if anything) and gather the changes into ``changes``."""
    if not members:
        changes.ended.append(group.webhook + _SEP + group.key)
        return
    firing: list[_Member] = []
    resolved: list[_Member] = []
    for member in members:
        if member.item.alert.status == "resolved":
            resolved.append(member)  # owed: its firing was notified, so no silence keeps the receiver waiting
            continue
        muted = _muted(member, now, grouping, silences, firing_now)
        if muted is None:
            firing.append(member)
        elif not member.notified:
            changes.marks[member.delivery] = muted
    firing_ids = {member.item.alert.id for member in firing}
    resolved_ids = {member.item.alert.id for member in resolved}
    changed = not firing_ids <= group.sent_firing or not resolved_ids <= group.sent_resolved
    repeat = (
        not changed
        and bool(firing)
        and group.last_sent_at is not None
        and group.last_sent_at + grouping.repeat_interval <= now
        and not group.retrying
    )
    next_flush = _next_tick(group.next_flush_at, now, grouping.group_interval)
    if not (firing or resolved) or not (changed or repeat):
        changes.groups.append(
            [group.webhook, group.key, next_flush, group.last_sent_at, group.last_notification,
             sorted(group.sent_firing), sorted(group.sent_resolved), group.repeat_due_at]
        )  # fmt: skip
        return
    carried = firing + resolved
    alert_ids = [member.item.alert.id for member in carried]
    seed = "|".join([group.webhook, group.key, now.isoformat(), *sorted(alert_ids)])
    note = "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    changes.notes.append([note, group.webhook, group.key, alert_ids, repeat])
    changes.carried += [(member.delivery, note) for member in carried]
    changes.sent.update((member.item.alert.id, member.item.alert) for member in carried)
    changes.notified += [member.delivery for member in firing]
    changes.sent_resolutions += [member.delivery for member in resolved]
    if not firing and len(members) == len(resolved):  # everything it held is resolved and sent: the group ends
        changes.ended.append(group.webhook + _SEP + group.key)
        return
    changes.groups.append(
        [group.webhook, group.key, next_flush, now, note, sorted(firing_ids), sorted(resolved_ids),
         now + grouping.repeat_interval if firing else None]
    )  # fmt: skip


def _muted(
    member: _Member,
    now: datetime,
    grouping: Grouping,
    silences: Sequence[Silence],
    firing_now: list[dict[str, str]],
) -> tuple[str, str] | None:
    """Why a firing member is left out of this flush, as (delivery status, reason): a silence, an inhibiting
    alert. None when it is sent."""
    labels = alert_labels(member.item.alert)
    silence = silenced_by(labels, silences, now)
    if silence is not None:
        return "silenced", f"silenced by {silence}"
    twin = inhibited_by(labels, firing_now, grouping.inhibitions)
    if twin is not None:
        return "inhibited", f"inhibited by {twin.get('alertname')} ({twin.get('severity')})"
    return None


def _next_tick(due: datetime, now: datetime, interval: timedelta) -> datetime:
    """The group's first tick after ``now`` on its cadence (``due`` + a whole number of ``interval``)."""
    steps = (now - due) // interval + 1
    return due + steps * interval


def _write(connection: duckdb.DuckDBPyConnection, changes: _Changes, now: datetime) -> None:
    """Write one flush round's changes, one statement for each kind."""
    _mark(connection, changes.marks)
    for alert in changes.sent.values():  # what the store holds now: articles stored after the alert count too
        connection.execute(
            "UPDATE alert_details SET evidence = ? WHERE alert_id = ?",
            [json.dumps(evidence_for(connection, alert)), alert.id],
        )
    if changes.notes:
        notes = list(zip(*changes.notes, strict=True))
        connection.execute(
            "INSERT OR IGNORE INTO notifications (id, webhook, group_key, alert_ids, repeat, status, attempts,"
            " next_attempt_at, created_at) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
            " unnest(?::VARCHAR[][]), unnest(?::BOOLEAN[]), 'pending', 0, ?::TIMESTAMPTZ, ?::TIMESTAMPTZ",
            [*(list(column) for column in notes), now, now],
        )
        log.debug("outbox: %d notification(s) made, %d of them repeats", len(notes[0]), sum(notes[4]))
    if changes.carried:  # a delivery mirrors the last notification that carried its alert (record_attempt)
        connection.execute(
            "INSERT OR REPLACE INTO notification_members SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            [[delivery for delivery, _ in changes.carried], [note for _, note in changes.carried]],
        )
    if changes.notified:
        connection.execute(
            "UPDATE alert_group_members SET notified_at = coalesce(notified_at, ?)"
            " WHERE list_contains(?::VARCHAR[], delivery_id)",
            [now, changes.notified],
        )
    if changes.sent_resolutions:
        connection.execute(
            "DELETE FROM alert_group_members WHERE list_contains(?::VARCHAR[], delivery_id)",
            [changes.sent_resolutions],
        )
    if changes.groups:
        connection.execute(
            """
            UPDATE alert_groups SET next_flush_at = u.next_flush_at, last_sent_at = u.last_sent_at,
                   last_notification = u.last_notification, sent_firing = u.sent_firing,
                   sent_resolved = u.sent_resolved, repeat_due_at = u.repeat_due_at
            FROM (SELECT unnest(?::VARCHAR[]) AS webhook, unnest(?::VARCHAR[]) AS group_key,
                         unnest(?::TIMESTAMPTZ[]) AS next_flush_at, unnest(?::TIMESTAMPTZ[]) AS last_sent_at,
                         unnest(?::VARCHAR[]) AS last_notification, unnest(?::VARCHAR[][]) AS sent_firing,
                         unnest(?::VARCHAR[][]) AS sent_resolved, unnest(?::TIMESTAMPTZ[]) AS repeat_due_at) u
            WHERE alert_groups.webhook = u.webhook AND alert_groups.group_key = u.group_key
            """,
            [list(column) for column in zip(*changes.groups, strict=True)],
        )
    if changes.ended:
        connection.execute(
            "DELETE FROM alert_groups WHERE list_contains(?::VARCHAR[], webhook || chr(31) || group_key)",
            [changes.ended],
        )


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
