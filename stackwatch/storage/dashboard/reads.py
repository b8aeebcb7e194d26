"""The reads the dashboard's pages share: series of one scope, article rows, alerts with their evidence, stories,
silences and per-entity or per-dynamic counts. Each is fixed, parameterised SQL; ``where`` fragments are fixed
text written in :mod:`.pages`, never user input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import duckdb

from stackwatch.storage.dashboard.records import AlertView, ArticleRow, Point, Range, Series, SilenceView, StoryRow

__all__ = [
    "INTERVAL",
    "Points",
    "alert_views",
    "article_rows",
    "counts_by",
    "rows",
    "scope_series",
    "series_points",
    "silence_views",
    "story_rows",
]

INTERVAL = "CASE WHEN {w} = '1d' THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END"
"""The length of a bucket of width column ``{w}``, as SQL."""

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


def scope_series(points: Points, name: str, key: str | None = None) -> Series:
    """The volume and z-score series called ``name``, from the points of dynamic ``key`` (default ``name``)."""
    key = name if key is None else key
    return Series(name, tuple(points.get((key, "article_count"), ())), tuple(points.get((key, "zscore"), ())))


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


def article_rows(
    connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int, offset: int = 0
) -> list[ArticleRow]:
    """The newest articles ``a`` matching ``where`` (``offset`` skipped), each with its dynamics' scores, best
    first."""
    found = rows(
        connection,
        "WITH picked AS (SELECT a.id, a.title, a.url, a.source, a.published_at, a.labels FROM articles a "  # noqa: S608 (fixed text)
        f"WHERE {where} ORDER BY a.published_at DESC, a.id LIMIT ? OFFSET ?) "
        "SELECT p.id, p.title, p.url, p.source, p.published_at, p.labels, "
        "list((d.dynamic, d.score) ORDER BY d.score DESC) FILTER (WHERE d.dynamic IS NOT NULL) "
        "FROM picked p LEFT JOIN article_dynamics d ON d.article_id = p.id "
        "GROUP BY ALL ORDER BY p.published_at DESC, p.id",
        [*params, limit, offset],
    )
    return [
        ArticleRow(
            id=str(row[0]),
            title=str(row[1] or ""),
            url=str(row[2] or ""),
            source=str(row[3] or ""),
            published_at=row[4],
            labels=tuple(row[5] or ()),
            scores=tuple((str(item[0]), float(item[1])) for item in row[6] or ()),
        )
        for row in found
    ]


def alert_views(
    connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int
) -> list[AlertView]:
    """The newest alerts ``al`` matching ``where``, with their deliveries and up to five evidence articles."""
    interval = INTERVAL.format(w="al.bucket_width")
    found = rows(
        connection,
        "SELECT al.id, al.rule, al.severity, al.dynamic, al.bucket_width, al.bucket_start, al.value, al.threshold, "  # noqa: S608 (fixed text)
        "al.message, al.fired_at, coalesce(x.status, 'firing'), "
        "(SELECT list((dl.webhook, dl.status) ORDER BY dl.webhook) FROM deliveries dl WHERE dl.alert_id = al.id), "
        f"al.bucket_start + {interval}, coalesce(x.kind, '') "
        f"FROM alerts al LEFT JOIN alert_details x ON x.alert_id = al.id WHERE {where} "
        "ORDER BY al.fired_at DESC, al.id LIMIT ?",
        [*params, limit],
    )
    alerts = []
    for row in found:
        evidence = article_rows(
            connection,
            "a.published_at >= ? AND a.published_at < ? AND EXISTS (SELECT 1 FROM article_dynamics e "
            "WHERE e.article_id = a.id AND e.label AND e.dynamic = ?)",
            [row[5], row[12], row[3]],
            5,
        )
        alerts.append(
            AlertView(
                id=str(row[0]),
                rule=str(row[1]),
                kind=str(row[13]),
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
                evidence=tuple(evidence),
            )
        )
    return alerts


def story_rows(
    connection: duckdb.DuckDBPyConnection, member_where: str, params: Sequence[Any], limit: int
) -> list[StoryRow]:
    """The latest stories with a member article ``a`` matching ``member_where``."""
    found = rows(
        connection,
        "SELECT s.story_id, s.title, s.articles, s.sources, s.last_seen FROM stories s WHERE s.story_id IN "  # noqa: S608 (fixed text)
        f"(SELECT st.story_id FROM article_stories st JOIN articles a ON a.id = st.article_id WHERE {member_where}) "
        "ORDER BY s.last_seen DESC, s.articles DESC LIMIT ?",
        [*params, limit],
    )
    return [StoryRow(str(r[0]), str(r[1] or ""), int(r[2]), int(r[3]), r[4]) for r in found]


def silence_views(connection: duckdb.DuckDBPyConnection) -> list[SilenceView]:
    """The silences in force now, the soonest to end first."""
    found = rows(
        connection,
        "SELECT id, matchers, ends_at, created_by, comment FROM silences WHERE ends_at > ? ORDER BY ends_at, id",
        [datetime.now(UTC)],
    )
    return [SilenceView(str(row[0]), tuple(row[1]), row[2], str(row[3]), str(row[4])) for row in found]
