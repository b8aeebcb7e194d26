"""The reads the dashboard's pages share: series of one scope, article rows, alerts with their evidence, stories,
silences and per-entity or per-dynamic counts. Each is fixed, parameterised SQL; ``where`` fragments are fixed
text written in :mod:`.pages`, never user input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

from stackwatch.storage import zonemaps
from stackwatch.storage.dashboard.records import (
    AlertView,
    ArticleRow,
    Evidence,
    ModelChange,
    Point,
    Range,
    Series,
    SilenceView,
    StoryRow,
)

__all__ = [
    "ARTICLE_COLUMNS",
    "EARLIEST",
    "INTERVAL",
    "SPANS",
    "Points",
    "alert_views",
    "article_rows",
    "article_scores",
    "counts_by",
    "model_changes",
    "newest_articles",
    "newest_stories",
    "rows",
    "scope_series",
    "scored_rows",
    "series_points",
    "silence_views",
    "story_row",
    "windows",
]

INTERVAL = "CASE WHEN {w} = '1d' THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END"
"""The length of a bucket of width column ``{w}``, as SQL."""

SPANS = (timedelta(days=1), timedelta(days=7), timedelta(days=30), timedelta(days=182))
"""How far back the lists of the newest articles look first, widening in turn until they have enough (and then the
whole range asked for): the store is in time order, so each window reads only its own dates' row groups. The
windows that find too little cost about a fifth of half a year's rows on top of the last one."""

EARLIEST = "TIMESTAMPTZ '-infinity'"
"""The lower bound of a window that has none."""

Points = dict[tuple[str, str], list[Point]]
"""Points per (dynamic, indicator)."""

_WEEKLY = (
    "SELECT dynamic, indicator, date_trunc('week', bucket_start) AS starts, "  # ISO weeks: rows() reads in UTC
    "CASE indicator WHEN 'article_count' THEN sum(value) WHEN 'zscore' THEN max(value) ELSE avg(value) END "
)


def rows(connection: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of one query, run on a cursor of its own in UTC (a cursor does not inherit the connection's
    ``TimeZone``: without this, weeks would start and times read in the machine's zone)."""
    cursor = connection.cursor()
    try:
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor.execute(sql, list(params)).fetchall()
    finally:
        cursor.close()


def series_points(
    connection: duckdb.DuckDBPyConnection,
    rng: Range,
    *,
    dynamic: str = "*",
    entity: str = "*",
    indicators: tuple[str, ...] = ("article_count", "zscore"),
) -> Points:
    """Points per (dynamic, indicator) of one scope; ``dynamic=""`` means every dynamic (not ``*``).

    A weekly range reads the daily rows and folds them into ISO weeks: ``article_count`` is the week's sum,
    ``zscore`` the week's highest daily value, any other indicator (a composite) the mean of its days.
    """
    placeholders = ", ".join("?" for _ in indicators)
    dynamic_clause = "dynamic <> '*'" if dynamic == "" else "dynamic = ?"
    params: list[Any] = [] if dynamic == "" else [dynamic]
    scope = (
        f"FROM indicators WHERE {dynamic_clause} AND entity = ? AND source = '*' AND bucket_width = ? "
        f"AND bucket_start >= ? AND indicator IN ({placeholders})"
    )
    select = _WEEKLY if rng.width == "1w" else "SELECT dynamic, indicator, bucket_start AS starts, value "
    found = rows(
        connection,
        select + scope + (" GROUP BY 1, 2, 3" if rng.width == "1w" else "") + " ORDER BY starts",
        [*params, entity, rng.stored_width, rng.since, *indicators],
    )
    out: Points = {}
    for name, indicator, at, value in found:
        out.setdefault((str(name), str(indicator)), []).append(Point(at, float(value)))
    return out


def scope_series(points: Points, name: str, key: str | None = None, changes: tuple[ModelChange, ...] = ()) -> Series:
    """The volume and z-score series called ``name``, from the points of dynamic ``key`` (default ``name``), with
    the range's ``changes`` of classifier version (:func:`model_changes`)."""
    key = name if key is None else key
    volume, zscore = tuple(points.get((key, "article_count"), ())), tuple(points.get((key, "zscore"), ()))
    return Series(name, volume, zscore, changes)


def model_changes(connection: duckdb.DuckDBPyConnection, rng: Range) -> tuple[ModelChange, ...]:
    """Where in the range another classifier version's articles begin: the earliest publication time of each
    version there but the first (``stackwatch reclassify --since`` moves it to that date)."""
    found = rows(
        connection,
        "SELECT model_version, min(published_at) AS since FROM articles WHERE published_at >= ? GROUP BY 1 ORDER BY 2",
        [rng.since],
    )
    return tuple(ModelChange(since, str(version)) for version, since in found[1:])


def counts_by(
    connection: duckdb.DuckDBPyConnection,
    axis: Literal["entity", "dynamic"],
    within: str,
    rng: Range,
    limit: int | None = None,
) -> tuple[tuple[str, int], ...]:
    """Articles per ``axis`` value over the range's days, most first: the entities of dynamic ``within``, or the
    dynamics of entity ``within``."""
    scope = "dynamic" if axis == "entity" else "entity"
    found = rows(
        connection,
        f"SELECT {axis}, sum(value)::BIGINT FROM indicators WHERE indicator = 'article_count' AND {scope} = ? "  # noqa: S608 (fixed names)
        f"AND {axis} <> '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= ? "
        f"GROUP BY {axis} ORDER BY 2 DESC, 1" + (" LIMIT ?" if limit is not None else ""),
        [within, rng.daily_since, *([limit] if limit is not None else [])],
    )
    return tuple((str(value), int(count)) for value, count in found)


def windows(since: datetime | None, until: datetime | None = None) -> list[datetime | None]:
    """The lower bounds a list of the newest rows tries in turn, newest window first: :data:`SPANS` back from
    ``until`` (now when None) as long as they start after ``since``, and ``since`` itself (None: no bound) last."""
    anchor = datetime.now(UTC) if until is None else until
    tried: list[datetime | None] = [anchor - span for span in SPANS if since is None or anchor - span > since]
    return [*tried, since]


ARTICLE_COLUMNS = "a.id, a.title, a.url, a.source, a.published_at, a.labels"
"""The columns of ``articles a`` an :class:`ArticleRow` is made of (:func:`scored_rows`)."""


def article_rows(
    connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int, offset: int = 0
) -> list[ArticleRow]:
    """The newest articles ``a`` matching ``where`` (``offset`` skipped), each with its dynamics' scores, best
    first."""
    picked = rows(
        connection,
        f"SELECT {ARTICLE_COLUMNS} FROM articles a "  # noqa: S608 (fixed text)
        f"WHERE {where} ORDER BY a.published_at DESC, a.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return scored_rows(connection, picked)


def scored_rows(connection: duckdb.DuckDBPyConnection, picked: Sequence[Sequence[Any]]) -> list[ArticleRow]:
    """Articles from rows of :data:`ARTICLE_COLUMNS`, with their scores read for the articles' own dates, which
    the zone maps prune."""
    scores = article_scores(connection, [(str(row[0]), row[4]) for row in picked])
    return [
        ArticleRow(
            id=str(row[0]),
            title=str(row[1] or ""),
            url=str(row[2] or ""),
            source=str(row[3] or ""),
            published_at=row[4],
            labels=tuple(row[5] or ()),
            scores=scores.get(str(row[0]), ()),
        )
        for row in picked
    ]


def newest_articles(
    connection: duckdb.DuckDBPyConnection,
    where: Callable[[str], str],
    params: Sequence[Any],
    limit: int,
    since: datetime | None,
) -> list[ArticleRow]:
    """The newest ``limit`` articles matching ``where(lower)`` from ``since`` on, looked for in the newest
    :func:`windows` first: ``where`` is given each window's lower bound as a literal (:data:`EARLIEST` for none)
    and must bound every table it reads by it."""
    found: list[ArticleRow] = []
    for lower in windows(since):
        found = article_rows(connection, where(EARLIEST if lower is None else zonemaps.at(lower)), params, limit)
        if len(found) >= limit:
            break
    return found


def article_scores(
    connection: duckdb.DuckDBPyConnection, articles: Sequence[tuple[str, datetime]]
) -> dict[str, tuple[tuple[str, float], ...]]:
    """The dynamics' scores of ``articles`` (id, published_at), best first, per article id."""
    if not articles:
        return {}
    distinct = sorted({moment for _, moment in articles})
    moments = " OR ".join(f"published_at = {zonemaps.at(moment)}" for moment in distinct)
    found = rows(
        connection,
        "SELECT article_id, list((dynamic, score) ORDER BY score DESC, dynamic) FROM article_dynamics "  # noqa: S608 (literals)
        f"WHERE ({moments}) AND list_contains(?, article_id) GROUP BY article_id",
        [[key for key, _ in articles]],
    )
    return {str(key): tuple((str(item[0]), float(item[1])) for item in listed or ()) for key, listed in found}


def _evidence(text: str | None) -> tuple[Evidence, ...]:
    """The articles of stored evidence JSON; what is missing or malformed is left out, never an error."""
    try:
        stored = json.loads(text) if text else {}
    except ValueError:
        return ()
    items = stored.get("articles") if isinstance(stored, dict) else None
    out = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        try:
            published = datetime.fromisoformat(str(item.get("published_at"))).astimezone(UTC)
        except ValueError:
            published = None
        key = item.get("id")
        explanation = item.get("explanation")
        why = explanation.get("sentence") if isinstance(explanation, dict) else None
        out.append(
            Evidence(
                id=str(key) if key else None,
                title=str(item.get("title") or ""),
                url=str(item.get("url") or ""),
                source=str(item.get("source") or ""),
                published_at=published,
                why=why if isinstance(why, str) else "",
            )
        )
    return tuple(out)


def alert_views(
    connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int
) -> list[AlertView]:
    """The alerts ``al`` matching ``where`` recorded last (an alert on an older bucket that fired just now, on late
    articles, comes first), with their deliveries and their evidence as stored (``alert_details.evidence``: no
    article is read again)."""
    found = rows(
        connection,
        "SELECT al.id, al.rule, al.severity, al.dynamic, al.bucket_width, al.bucket_start, al.value, al.threshold, "  # noqa: S608 (fixed text)
        "al.message, al.fired_at, coalesce(x.status, 'firing'), "
        "(SELECT list((dl.webhook, dl.status) ORDER BY dl.webhook) FROM deliveries dl WHERE dl.alert_id = al.id), "
        "coalesce(x.kind, ''), x.evidence "
        f"FROM alerts al LEFT JOIN alert_details x ON x.alert_id = al.id WHERE {where} "
        "ORDER BY al.stored_at DESC, al.bucket_start DESC, al.id LIMIT ?",
        [*params, limit],
    )
    return [
        AlertView(
            id=str(row[0]),
            rule=str(row[1]),
            kind=str(row[12]),
            severity=str(row[2]),
            dynamic=str(row[3]),
            bucket_width=str(row[4]),
            bucket_start=row[5],
            value=float(row[6]),
            threshold=float(row[7]),
            message=str(row[8]),
            fired_at=row[9],
            status=str(row[10]),
            deliveries=tuple((str(w), str(s)) for w, s in row[11] or ()),
            evidence=_evidence(row[13]),
        )
        for row in found
    ]


def newest_stories(
    connection: duckdb.DuckDBPyConnection, members: str, params: Sequence[Any], limit: int, since: datetime
) -> list[StoryRow]:
    """The latest ``limit`` stories (by ``last_seen``) with a member published from ``since`` on whose id
    ``members`` selects (a subquery whose ``{lo}`` is given a lower bound of its dates, as a literal).

    The stories seen last in the newest :func:`windows` are tried first; their members are read from the earliest
    ``first_seen`` among them on, so both tables read the row groups of a few days while a window has enough."""
    found: list[tuple[Any, ...]] = []
    for lower in windows(since):
        seen = EARLIEST if lower is None else zonemaps.at(lower)
        first = rows(connection, f"SELECT min(first_seen) FROM stories WHERE last_seen >= {seen}")[0][0]  # noqa: S608
        if first is None:
            continue
        lo = zonemaps.at(max(first, since))
        found = rows(
            connection,
            "SELECT s.story_id, s.title, s.articles, s.sources, s.last_seen, s.first_seen FROM stories s "  # noqa: S608 (literals)
            f"WHERE s.last_seen >= {seen} AND s.story_id IN (SELECT st.story_id FROM article_stories st "
            f"WHERE st.published_at >= {lo} AND st.article_id IN ({members.format(lo=lo)})) "
            "ORDER BY s.last_seen DESC, s.articles DESC LIMIT ?",
            [*params, limit],
        )
        if len(found) >= limit:
            break
    return [story_row(row) for row in found]


def story_row(row: Sequence[Any]) -> StoryRow:
    """A story from ``story_id, title, articles, sources, last_seen, first_seen``."""
    return StoryRow(str(row[0]), str(row[1] or ""), int(row[2]), int(row[3]), row[4], row[5])


def silence_views(connection: duckdb.DuckDBPyConnection) -> list[SilenceView]:
    """The silences in force now, the soonest to end first."""
    found = rows(
        connection,
        "SELECT id, matchers, ends_at, created_by, comment FROM silences WHERE ends_at > ? ORDER BY ends_at, id",
        [datetime.now(UTC)],
    )
    return [SilenceView(str(row[0]), tuple(row[1]), row[2], str(row[3]), str(row[4])) for row in found]
