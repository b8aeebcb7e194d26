"""What a restart reads back from the store: which articles it holds, the history the rules replay, and the
alerts already recorded. Functions over a DuckDB connection, called on the store's thread::

    stored_ids(store.connection, ["a1", "a2"])                  # {"a1"}: a1 is stored (or dead-lettered)
    stored_history(store.connection, since)                     # what the rules agent saw, in stored order
    stored_observations(store.connection, store.write(batch))   # what the sink sends the rules agent after a write
    recorded_alerts(store.connection, ["capex-surge"])          # the alerts the store holds of those rules

With the embedded (memory-only) broker the store is the only durable state: sources count an article as done
only once :func:`stored_ids` says so, and the rules agent rebuilds its state from :func:`stored_history`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from stackwatch.signals.indicators import WINDOWS
from stackwatch.signals.messages import Observation, parse_time
from stackwatch.signals.rule_state import Notice, StoredBaseline, StoredObservation
from stackwatch.storage.store import as_store_error

__all__ = [
    "RecordedAlerts",
    "recorded_alerts",
    "stored_baselines",
    "stored_history",
    "stored_ids",
    "stored_observations",
]

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
            _observations("published_at >= $since") + " ORDER BY a.stored_at, a.published_at, a.id",
            {"since": since},
        ).fetchall()
    return [StoredObservation(parse_time(row[0]), _observation(row[1:])) for row in rows]


def stored_observations(connection: duckdb.DuckDBPyConnection, dated: Mapping[str, datetime]) -> list[Observation]:
    """The articles of ``dated`` (id: ``published_at``, as :meth:`~stackwatch.storage.store.Store.write` returns
    them) as the rules stage sees them, read just as :func:`stored_history` reads them, in time order, each with the
    story ids merged lately into its story (``former_stories``)."""
    if not dated:
        return []
    with as_store_error("cannot read the stored observations"):
        rows = connection.execute(
            _observations("published_at BETWEEN $lo AND $hi", listed=True) + " ORDER BY a.published_at, a.id",
            {"ids": list(dated), "lo": min(dated.values()), "hi": max(dated.values())},
        ).fetchall()
    return [_observation(row[1:]) for row in rows]


_FORMER_STORIES = (
    " LEFT JOIN (SELECT story_id, list(alias ORDER BY alias) AS formers FROM story_aliases"
    "   WHERE merged_at >= now() - INTERVAL 1 DAY GROUP BY story_id) r ON r.story_id = s.story_id"
)
"""The ids merged lately into each article's story: a write that merges stories sends their articles again."""


def _observations(dates: str, *, listed: bool = False) -> str:
    """The query of articles' observations, with when each was stored: articles and their derived rows within
    ``dates`` (a condition on ``published_at``: the zone maps skip the rest), only those of ``$ids`` if
    ``listed``."""
    only = " AND list_contains($ids, article_id)" if listed else ""
    formers, former_join = (", r.formers", _FORMER_STORIES) if listed else (", NULL", "")
    # Our constant fragments only; every value is a parameter.
    return (
        "SELECT a.stored_at, a.id, a.source, a.published_at, a.labels, e.entities, d.dynamics, d.scores,"  # noqa: S608
        f" s.story_id, s.novelty{formers}, a.title FROM articles a"
        " LEFT JOIN (SELECT article_id, list(entity ORDER BY entity) AS entities FROM article_entities"
        f"   WHERE {dates}{only} GROUP BY article_id) e ON e.article_id = a.id"
        " LEFT JOIN (SELECT article_id, list(dynamic ORDER BY dynamic) AS dynamics,"
        f"   list(score ORDER BY dynamic) AS scores FROM article_dynamics WHERE label AND {dates}{only}"
        "   GROUP BY article_id) d ON d.article_id = a.id"
        f" LEFT JOIN (SELECT article_id, story_id, novelty FROM article_stories WHERE {dates}{only})"
        f"   s ON s.article_id = a.id{former_join}"
        f" WHERE a.{dates}" + (" AND list_contains($ids, a.id)" if listed else "")
    )


def _observation(row: Sequence[Any]) -> Observation:
    article_id, source, published_at, labels, entities, dynamics, scores, story_id, novelty, formers, title = row
    return Observation(
        article_id,
        source,
        parse_time(published_at),
        tuple(labels or ()),
        tuple(entities or ()),
        dict(zip(dynamics or (), (float(score) for score in scores or ()), strict=True)),
        story_id or "",
        1.0 if novelty is None else float(novelty),
        tuple(formers or ()),
        title or "",
    )


def stored_baselines(
    connection: duckdb.DuckDBPyConnection, wanted: Sequence[tuple[str, str, datetime]]
) -> dict[tuple[str, str], StoredBaseline]:
    """For each (dynamic, window, before) of ``wanted``: the store's EWMA state of the dynamic's article count at
    its last bucket before ``before``, keyed by (dynamic, window); absent when the series starts later."""
    found: dict[tuple[str, str], StoredBaseline] = {}
    with as_store_error("cannot read the stored baselines"):
        for dynamic, window, before in wanted:
            row = connection.execute(
                "SELECT bucket_start, mean, variance, fast, slow, count(*) OVER (ORDER BY bucket_start)"
                " FROM baseline_state WHERE dynamic = ? AND bucket_width = ? AND bucket_start < ?"
                " ORDER BY bucket_start DESC LIMIT 1",
                [dynamic, window, before],
            ).fetchone()
            if row is None:
                continue
            last = parse_time(row[0])
            following = connection.execute(
                "SELECT value FROM indicators WHERE indicator = 'article_count' AND dynamic = ? AND entity = '*'"
                " AND source = '*' AND bucket_width = ? AND bucket_start = ?",
                [dynamic, window, last + WINDOWS[window]],
            ).fetchone()
            state = (float(row[1]), float(row[2]), float(row[3]), float(row[4]))
            value = float(following[0]) if following else 0.0
            found[(dynamic, window)] = StoredBaseline(last, state, int(row[5]), value)
    return found


@dataclass(frozen=True, slots=True)
class RecordedAlerts:
    """The alerts the store holds: their ids, and per (rule, dedup key) the newest bucket alerted."""

    ids: set[str]
    newest: dict[tuple[str, str], datetime]
    notices: list[Notice]
    """Every recorded alert as the receivers were told it, for :func:`~stackwatch.signals.rule_state.reconcile`
    and :func:`~stackwatch.signals.rule_state.open_since`."""


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
    newest: dict[tuple[str, str], datetime] = {}
    notices: list[Notice] = []
    for _, rule, dedup, bucket, status in rows:
        key = (rule, dedup)
        started = parse_time(bucket)
        notices.append(Notice(rule, dedup, started, status))
        if key not in newest or started > newest[key]:
            newest[key] = started
    return RecordedAlerts({row[0] for row in rows}, newest, notices)
