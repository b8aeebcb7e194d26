"""What a restart reads back from the store: which articles it holds, the history the rules replay, and the
alerts already recorded. Functions over a DuckDB connection, called on the store's thread::

    stored_ids(store.connection, ["a1", "a2"])                  # {"a1"}: a1 is stored (or dead-lettered)
    stored_history(store.connection, since)                     # what the rules agent saw, in stored order
    recorded_alerts(store.connection, ["capex-surge"])          # the alerts the store holds of those rules

With the embedded (memory-only) broker the store is the only durable state: sources count an article as done
only once :func:`stored_ids` says so, and the rules agent rebuilds its state from :func:`stored_history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from stackwatch.signals.messages import Observation, parse_time
from stackwatch.signals.rule_state import Notice, StoredObservation
from stackwatch.storage.store import as_store_error

__all__ = ["RecordedAlerts", "recorded_alerts", "stored_history", "stored_ids"]

DONE_STAGES = ("classify",)
"""Dead letters of these stages name the article id as their origin: such an article is done, not lost."""


def stored_ids(connection: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the store holds as articles, or as articles the classifier dead-lettered."""
    if not ids:
        return set()
    with as_store_error("cannot read which articles are stored"):
        rows = connection.execute(
            "SELECT id FROM articles WHERE id IN (SELECT unnest($ids))"
            " UNION SELECT origin FROM dead_letters WHERE stage IN (SELECT unnest($stages))"
            " AND origin IN (SELECT unnest($ids))",
            {"ids": list(ids), "stages": list(DONE_STAGES)},
        ).fetchall()
    return {row[0] for row in rows}


def stored_history(connection: duckdb.DuckDBPyConnection, since: datetime) -> list[StoredObservation]:
    """Articles published from ``since`` as the rules stage sees them (labels, entities, the labelled dynamics'
    scores, story and novelty as the store holds them now), in the order they were stored (one store transaction
    shares one ``stored_at``)."""
    with as_store_error("cannot read the stored history"):
        rows = connection.execute(
            "SELECT a.stored_at, a.id, a.source, a.published_at, a.labels, e.entities, d.dynamics, d.scores,"
            " s.story_id, s.novelty"
            " FROM articles a"
            " LEFT JOIN (SELECT article_id, list(entity ORDER BY entity) AS entities FROM article_entities"
            "   WHERE published_at >= $since GROUP BY article_id) e ON e.article_id = a.id"
            " LEFT JOIN (SELECT article_id, list(dynamic ORDER BY dynamic) AS dynamics,"
            "   list(score ORDER BY dynamic) AS scores FROM article_dynamics WHERE label AND published_at >= $since"
            "   GROUP BY article_id) d ON d.article_id = a.id"
            " LEFT JOIN (SELECT article_id, story_id, novelty FROM article_stories WHERE published_at >= $since)"
            "   s ON s.article_id = a.id"
            " WHERE a.published_at >= $since"
            " ORDER BY a.stored_at, a.published_at, a.id",
            {"since": since},
        ).fetchall()
    return [
        StoredObservation(
            parse_time(row[0]),
            Observation(
                row[1],
                row[2],
                parse_time(row[3]),
                tuple(row[4] or ()),
                tuple(row[5] or ()),
                dict(zip(row[6] or (), (float(score) for score in row[7] or ()), strict=True)),
                row[8] or "",
                1.0 if row[9] is None else float(row[9]),
            ),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class RecordedAlerts:
    """The alerts the store holds: their ids, and per (rule, dedup key) the newest bucket alerted."""

    ids: set[str]
    newest: dict[tuple[str, str], datetime]
    firing_since: datetime | None
    """The oldest bucket of a series whose newest alert is a firing one: its state must be replayed from there."""
    notices: list[Notice]
    """Every recorded alert as the receivers were told it, for :func:`~stackwatch.signals.rule_state.reconcile`."""


def recorded_alerts(connection: duckdb.DuckDBPyConnection, rules: Sequence[str]) -> RecordedAlerts:
    """What :func:`~stackwatch.signals.rule_state.unrecorded` compares a replay with: the alerts of ``rules`` (the
    engine's; alerts are few: all of them). Other rules' alerts (source health, rules since removed) have no
    state in the engine to rebuild."""
    with as_store_error("cannot read the recorded alerts"):
        rows = connection.execute(
            "SELECT a.id, a.rule, d.dedup_key, a.bucket_start, d.status"
            " FROM alerts a JOIN alert_details d ON d.alert_id = a.id WHERE list_contains($rules, a.rule)",
            {"rules": list(rules)},
        ).fetchall()
        open_series = connection.execute(
            "SELECT min(bucket_start) FROM ("
            " SELECT arg_max(d.status, a.bucket_start) AS status, max(a.bucket_start) AS bucket_start"
            " FROM alerts a JOIN alert_details d ON d.alert_id = a.id WHERE list_contains($rules, a.rule)"
            " GROUP BY a.rule, d.dedup_key"
            ") WHERE status = 'firing'",
            {"rules": list(rules)},
        ).fetchone()
    newest: dict[tuple[str, str], datetime] = {}
    notices: list[Notice] = []
    for _, rule, dedup, bucket, status in rows:
        key = (rule, dedup)
        started = parse_time(bucket)
        notices.append(Notice(rule, dedup, started, status))
        if key not in newest or started > newest[key]:
            newest[key] = started
    firing = open_series[0] if open_series else None
    return RecordedAlerts({row[0] for row in rows}, newest, parse_time(firing) if firing is not None else None, notices)
