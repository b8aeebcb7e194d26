"""The queries behind a digest (:mod:`stackwatch.signals.digest`): counts, top stories, new entities, alerts.

    digest = read_digest(store.connection, "daily", Period(start, end), ("decoupling", "exclusivity"))

Every statement is bounded by the period's dates (and the previous period's, or the new-entity lookback's),
written as literals so DuckDB reads those dates' row groups only (:mod:`.zonemaps`). What counts:

- a dynamic's articles are those labelled with it and published in the period; its stories, the distinct
  stories of those articles;
- a dynamic's stories are ranked by :func:`~stackwatch.signals.digest.story_rank` on their size in the period
  (every member published in it, whatever its labels: the event's size, not the dynamic's share of it);
- an entity is new to a dynamic when the dynamic's articles named it in the period and in none of the
  :data:`NEW_ENTITY_LOOKBACK` before it (the lookback's whole UTC days read from the daily article counts per
  dynamic and entity, ``indicators``, so a year costs a row per day and pair, not a year of article rows);
- an alert is in the period when it fired (``alerts.fired_at``) in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from stackwatch.signals.digest import Change, Digest, DigestAlert, DynamicDigest, Period, TopStory, story_rank
from stackwatch.storage.store import as_store_error
from stackwatch.storage.zonemaps import at

__all__ = ["ALERTS", "NEW_ENTITIES", "NEW_ENTITY_LOOKBACK", "TOP_STORIES", "read_digest"]

TOP_STORIES = 5
"""Stories listed per dynamic."""
NEW_ENTITIES = 10
"""New entities listed per dynamic, most mentioned first."""
ALERTS = 50
"""Alerts listed, oldest first."""
NEW_ENTITY_LOOKBACK = timedelta(days=365)
"""How far before the period an entity must be absent from a dynamic to be new to it."""


def _rows(connection: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    # On the connection itself, not a cursor: it is in UTC (the store's and every reader's connection is), and a
    # reader's configuration is locked, so a cursor could not be set to UTC.
    return connection.execute(sql, list(params)).fetchall()


def _within(column: str, start: datetime, end: datetime) -> str:
    return f"{column} >= {at(start)} AND {column} < {at(end)}"


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def _counts(
    connection: duckdb.DuckDBPyConnection, period: Period, dynamics: Sequence[str]
) -> dict[str, tuple[Change, Change]]:
    before = period.previous.start
    found = _rows(
        connection,
        "SELECT d.dynamic, "  # noqa: S608 (literals and placeholders)
        f"count(*) FILTER (WHERE d.published_at >= {at(period.start)}), "
        f"count(*) FILTER (WHERE d.published_at < {at(period.start)}), "
        f"count(DISTINCT s.story_id) FILTER (WHERE d.published_at >= {at(period.start)}), "
        f"count(DISTINCT s.story_id) FILTER (WHERE d.published_at < {at(period.start)}) "
        "FROM article_dynamics d LEFT JOIN article_stories s ON s.article_id = d.article_id "
        f"AND {_within('s.published_at', before, period.end)} "
        f"WHERE d.label AND {_within('d.published_at', before, period.end)} AND d.dynamic IN ({_marks(dynamics)}) "
        "GROUP BY d.dynamic",
        list(dynamics),
    )
    return {
        str(name): (Change(int(now), int(then)), Change(int(stories_now), int(stories_then)))
        for name, now, then, stories_now, stories_then in found
    }


def _top(connection: duckdb.DuckDBPyConnection, period: Period, dynamics: Sequence[str]) -> dict[str, list[TopStory]]:
    members = _within("s.published_at", period.start, period.end)
    found = _rows(
        connection,
        "WITH picked AS (SELECT DISTINCT d.dynamic, s.story_id FROM article_dynamics d "  # noqa: S608 (literals)
        f"JOIN article_stories s ON s.article_id = d.article_id AND {members} "
        f"WHERE d.label AND {_within('d.published_at', period.start, period.end)} "
        f"AND d.dynamic IN ({_marks(dynamics)})), "
        "sizes AS (SELECT s.story_id, count(*) AS size, count(DISTINCT a.source) AS outlets, "
        "arg_min(a.url, (a.published_at, a.id)) AS url FROM article_stories s "
        f"JOIN articles a ON a.id = s.article_id AND {_within('a.published_at', period.start, period.end)} "
        f"WHERE {members} "
        "AND s.story_id IN (SELECT story_id FROM picked) GROUP BY s.story_id) "
        "SELECT p.dynamic, p.story_id, st.title, z.url, z.size, z.outlets, st.first_seen "
        "FROM picked p JOIN sizes z ON z.story_id = p.story_id JOIN stories st ON st.story_id = p.story_id",
        list(dynamics),
    )
    out: dict[str, list[TopStory]] = {}
    for name, story_id, title, url, size, outlets, first_seen in found:
        story = TopStory(
            str(story_id), str(title or ""), str(url or ""), int(size), int(outlets), first_seen,
            first_seen >= period.start,
        )  # fmt: skip
        out.setdefault(str(name), []).append(story)
    return {name: sorted(stories, key=story_rank)[:TOP_STORIES] for name, stories in out.items()}


def _named(start: datetime, end: datetime, dynamics: Sequence[str]) -> str:
    return (
        "SELECT d.dynamic, e.entity, sum(e.mentions) AS mentions FROM article_entities e "  # noqa: S608 (literals)
        f"JOIN article_dynamics d ON d.article_id = e.article_id AND {_within('d.published_at', start, end)} "
        f"WHERE d.label AND {_within('e.published_at', start, end)} AND d.dynamic IN ({_marks(dynamics)}) "
        "GROUP BY d.dynamic, e.entity"
    )


def _new_entities(
    connection: duckdb.DuckDBPyConnection, period: Period, dynamics: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    # The lookback's whole days are read from the daily (dynamic, entity) article counts, a row per day and pair,
    # instead of a year of article rows; the part of the period's first day before it, from the articles.
    day = datetime.combine(period.start.astimezone(UTC).date(), time(), UTC)
    earlier = (
        "SELECT dynamic, entity FROM indicators WHERE indicator = 'article_count' AND bucket_width = '1d' "  # noqa: S608 (literals)
        f"AND source = '*' AND entity <> '*' AND value > 0 AND dynamic IN ({_marks(dynamics)}) "
        f"AND bucket_start >= {at(period.start - NEW_ENTITY_LOOKBACK)} AND bucket_start < {at(day)}"
    )
    params = [*dynamics, *dynamics]
    if day < period.start:
        earlier += f" UNION ALL SELECT dynamic, entity FROM ({_named(day, period.start, dynamics)})"  # noqa: S608 (literals)
        params.extend(dynamics)
    found = _rows(
        connection,
        f"WITH now AS ({_named(period.start, period.end, dynamics)}), before AS ({earlier}) "  # noqa: S608 (literals)
        "SELECT n.dynamic, n.entity FROM now n ANTI JOIN before b ON b.dynamic = n.dynamic AND b.entity = n.entity "
        "ORDER BY n.dynamic, n.mentions DESC, n.entity",
        params,
    )
    out: dict[str, list[str]] = {}
    for name, entity in found:
        out.setdefault(str(name), []).append(str(entity))
    return {name: tuple(entities[:NEW_ENTITIES]) for name, entities in out.items()}


def _alerts(
    connection: duckdb.DuckDBPyConnection, period: Period, dynamics: Sequence[str] | None
) -> tuple[DigestAlert, ...]:
    scope = "" if dynamics is None else f" AND al.dynamic IN ({_marks(dynamics)})"
    found = _rows(
        connection,
        "SELECT al.fired_at, al.rule, al.severity, coalesce(x.status, 'firing'), al.dynamic, al.message "  # noqa: S608 (literals)
        f"FROM alerts al LEFT JOIN alert_details x ON x.alert_id = al.id WHERE al.fired_at >= ? AND al.fired_at < ?"
        f"{scope} ORDER BY al.fired_at, al.id LIMIT ?",
        [period.start, period.end, *(dynamics or ()), ALERTS],
    )
    return tuple(DigestAlert(row[0], str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5])) for row in found)


def read_digest(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    period: Period,
    dynamics: Sequence[str],
    *,
    every_alert: bool = False,
) -> Digest:
    """The digest of ``dynamics`` (a section each, in the order given) over ``period``.

    The alerts are those of ``dynamics``; ``every_alert`` adds the rest (on every article, on a composite), for
    a digest of all dynamics. StoreError when DuckDB cannot answer.
    """
    with as_store_error(f"cannot read the digest of {period.describe()}"):
        counts = _counts(connection, period, dynamics)
        top = _top(connection, period, dynamics)
        entities = _new_entities(connection, period, dynamics)
        alerts = _alerts(connection, period, None if every_alert else dynamics)
    nothing = (Change(0, 0), Change(0, 0))
    sections = tuple(
        DynamicDigest(
            dynamic=dynamic,
            articles=counts.get(dynamic, nothing)[0],
            stories=counts.get(dynamic, nothing)[1],
            top=tuple(top.get(dynamic, ())),
            new_entities=entities.get(dynamic, ()),
        )
        for dynamic in dynamics
    )
    return Digest(name, period, sections, alerts)
