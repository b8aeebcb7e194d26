"""The dashboard's reads of the store: fixed, parameterised SQL returning frozen records.

Every function takes the writer's connection and runs on the store thread (``StoreThread.call``)::

    overview = await thread.call(queries.overview, thread.store.connection, Range(days=7, width="1h"))

Nothing here formats or escapes: templates do (Jinja2 autoescape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

__all__ = [
    "AlertView",
    "ArticleDetail",
    "ArticleRow",
    "DynamicDetail",
    "EntityDetail",
    "Overview",
    "Point",
    "Range",
    "Series",
    "SilenceView",
    "SourceVolume",
    "StoryRow",
    "article_detail",
    "dynamic_detail",
    "entity_detail",
    "overview",
]

_INTERVAL = "CASE WHEN {w} = '1d' THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END"


@dataclass(frozen=True, slots=True)
class Range:
    """The time window a page shows: the last ``days`` days in ``width`` buckets (``1h`` or ``1d``)."""

    days: int = 7
    width: str = "1h"

    @property
    def since(self) -> datetime:
        now = datetime.now(UTC)
        if self.width == "1d":
            now = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        else:
            now = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return now - timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One scope's volume (``article_count``) and ``zscore`` (or a composite's value) over the range."""

    name: str
    volume: tuple[Point, ...]
    zscore: tuple[Point, ...] = ()

    @property
    def total(self) -> float:
        return sum(point.value for point in self.volume)


@dataclass(frozen=True, slots=True)
class ArticleRow:
    id: str
    title: str
    url: str
    source: str
    published_at: datetime
    labels: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    rule: str
    severity: str
    dynamic: str
    bucket_width: str
    bucket_start: datetime
    value: float
    threshold: float
    message: str
    fired_at: datetime
    status: str
    deliveries: tuple[tuple[str, str], ...]
    evidence: tuple[ArticleRow, ...]


@dataclass(frozen=True, slots=True)
class SourceVolume:
    """A source as the store sees it: articles per day over the range and the newest article."""

    name: str
    articles: int
    per_day: float
    last_article: datetime | None


@dataclass(frozen=True, slots=True)
class StoryRow:
    story_id: str
    title: str
    articles: int
    sources: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class SilenceView:
    """An active silence: what it mutes, until when, who set it and why."""

    id: str
    matchers: tuple[str, ...]
    ends_at: datetime
    created_by: str
    comment: str


@dataclass(frozen=True, slots=True)
class Overview:
    range: Range
    dynamics: tuple[Series, ...]
    composites: tuple[Series, ...]
    entities: tuple[str, ...]
    heat: dict[tuple[str, str], float]
    alerts: tuple[AlertView, ...]
    articles: tuple[ArticleRow, ...]
    sources: tuple[SourceVolume, ...]
    totals: dict[str, int]
    silences: tuple[SilenceView, ...] = ()


@dataclass(frozen=True, slots=True)
class DynamicDetail:
    name: str
    series: Series
    entities: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True, slots=True)
class EntityDetail:
    name: str
    series: Series
    dynamics: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]


@dataclass(frozen=True, slots=True)
class ArticleDetail:
    article: ArticleRow
    summary: str
    connector: str
    fetched_at: datetime | None
    model_version: str | None
    entities: tuple[tuple[str, int], ...]
    story: StoryRow | None
    alerts: tuple[AlertView, ...]


def _rows(connection: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        return cursor.execute(sql, list(params)).fetchall()
    finally:
        cursor.close()


def _series(
    connection: duckdb.DuckDBPyConnection,
    rng: Range,
    *,
    dynamic: str = "*",
    entity: str = "*",
    indicators: tuple[str, ...] = ("article_count", "zscore"),
) -> dict[tuple[str, str], list[Point]]:
    """Points per (dynamic, indicator) of one scope; ``dynamic=""`` means every dynamic (not ``*``)."""
    placeholders = ", ".join("?" for _ in indicators)
    dynamic_clause = "dynamic <> '*'" if dynamic == "" else "dynamic = ?"
    params: list[Any] = [] if dynamic == "" else [dynamic]
    rows = _rows(
        connection,
        f"SELECT dynamic, indicator, bucket_start, value FROM indicators WHERE {dynamic_clause} AND entity = ? "  # noqa: S608 (fixed text)
        f"AND source = '*' AND bucket_width = ? AND bucket_start >= ? AND indicator IN ({placeholders}) "
        "ORDER BY bucket_start",
        [*params, entity, rng.width, rng.since, *indicators],
    )
    out: dict[tuple[str, str], list[Point]] = {}
    for name, indicator, at, value in rows:
        out.setdefault((str(name), str(indicator)), []).append(Point(at, float(value)))
    return out


def _articles(connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int) -> list[ArticleRow]:
    rows = _rows(
        connection,
        "WITH picked AS (SELECT a.id, a.title, a.url, a.source, a.published_at, a.labels FROM articles a "  # noqa: S608 (fixed text)
        f"WHERE {where} ORDER BY a.published_at DESC, a.id LIMIT ?) "
        "SELECT p.id, p.title, p.url, p.source, p.published_at, p.labels, "
        "list((d.dynamic, d.score) ORDER BY d.score DESC) FILTER (WHERE d.dynamic IS NOT NULL) "
        "FROM picked p LEFT JOIN article_dynamics d ON d.article_id = p.id "
        "GROUP BY ALL ORDER BY p.published_at DESC, p.id",
        [*params, limit],
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
        for row in rows
    ]


def _alerts(connection: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], limit: int) -> list[AlertView]:
    interval = _INTERVAL.format(w="al.bucket_width")
    rows = _rows(
        connection,
        "SELECT al.id, al.rule, al.severity, al.dynamic, al.bucket_width, al.bucket_start, al.value, al.threshold, "  # noqa: S608 (fixed text)
        "al.message, al.fired_at, coalesce(x.status, 'firing'), "
        "(SELECT list((dl.webhook, dl.status) ORDER BY dl.webhook) FROM deliveries dl WHERE dl.alert_id = al.id), "
        f"al.bucket_start + {interval} "
        f"FROM alerts al LEFT JOIN alert_details x ON x.alert_id = al.id WHERE {where} "
        "ORDER BY al.fired_at DESC, al.id LIMIT ?",
        [*params, limit],
    )
    alerts = []
    for row in rows:
        evidence = _articles(
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


def _stories(
    connection: duckdb.DuckDBPyConnection, member_where: str, params: Sequence[Any], limit: int
) -> list[StoryRow]:
    rows = _rows(
        connection,
        "SELECT s.story_id, s.title, s.articles, s.sources, s.last_seen FROM stories s WHERE s.story_id IN "  # noqa: S608 (fixed text)
        f"(SELECT st.story_id FROM article_stories st JOIN articles a ON a.id = st.article_id WHERE {member_where}) "
        "ORDER BY s.last_seen DESC, s.articles DESC LIMIT ?",
        [*params, limit],
    )
    return [StoryRow(str(r[0]), str(r[1] or ""), int(r[2]), int(r[3]), r[4]) for r in rows]


def overview(
    connection: duckdb.DuckDBPyConnection, rng: Range, dynamics: Sequence[str], composites: Sequence[str]
) -> Overview:
    """Everything the overview page shows, for the configured ``dynamics`` and ``composites``."""
    points = _series(connection, rng, dynamic="", indicators=("article_count", "zscore", "composite"))
    series = tuple(
        Series(name, tuple(points.get((name, "article_count"), ())), tuple(points.get((name, "zscore"), ())))
        for name in dynamics
    )
    composite_series = tuple(Series(name, tuple(points.get((name, "composite"), ()))) for name in composites)
    heat_rows = _rows(
        connection,
        "SELECT entity, dynamic, sum(value) FROM indicators WHERE indicator = 'article_count' AND entity <> '*' "
        "AND dynamic <> '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= ? GROUP BY ALL",
        [Range(rng.days, "1d").since],
    )
    heat = {(str(e), str(d)): float(v) for e, d, v in heat_rows}
    by_entity: dict[str, float] = {}
    for (entity, _), value in heat.items():
        by_entity[entity] = by_entity.get(entity, 0.0) + value
    entities = tuple(sorted(by_entity, key=lambda name: (-by_entity[name], name))[:15])
    source_rows = _rows(
        connection,
        "SELECT source, count(*) FILTER (WHERE published_at >= ?), max(published_at) FROM articles "
        "GROUP BY source ORDER BY 1",
        [rng.since],
    )
    sources = tuple(
        SourceVolume(str(name), int(count), int(count) / max(rng.days, 1), last) for name, count, last in source_rows
    )
    totals = {
        table: int(_rows(connection, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 (fixed names)
        for table in ("articles", "stories", "alerts", "dead_letters")
    }
    return Overview(
        range=rng,
        dynamics=series,
        composites=composite_series,
        entities=entities,
        heat=heat,
        alerts=tuple(_alerts(connection, "true", [], 10)),
        articles=tuple(_articles(connection, "a.labels IS NOT NULL", [], 25)),
        sources=sources,
        totals=totals,
        silences=tuple(_silences(connection)),
    )


def _silences(connection: duckdb.DuckDBPyConnection) -> list[SilenceView]:
    rows = _rows(
        connection,
        "SELECT id, matchers, ends_at, created_by, comment FROM silences WHERE ends_at > ? ORDER BY ends_at, id",
        [datetime.now(UTC)],
    )
    return [SilenceView(str(row[0]), tuple(row[1]), row[2], str(row[3]), str(row[4])) for row in rows]


def dynamic_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> DynamicDetail:
    points = _series(connection, rng, dynamic=name)
    labelled = "EXISTS (SELECT 1 FROM article_dynamics e WHERE e.article_id = a.id AND e.label AND e.dynamic = ?)"
    entities = _rows(
        connection,
        "SELECT entity, sum(value)::BIGINT FROM indicators WHERE indicator = 'article_count' AND dynamic = ? "
        "AND entity <> '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= ? "
        "GROUP BY entity ORDER BY 2 DESC, 1 LIMIT 20",
        [name, Range(rng.days, "1d").since],
    )
    return DynamicDetail(
        name=name,
        series=Series(name, tuple(points.get((name, "article_count"), ())), tuple(points.get((name, "zscore"), ()))),
        entities=tuple((str(e), int(n)) for e, n in entities),
        articles=tuple(_articles(connection, labelled, [name], 50)),
        stories=tuple(_stories(connection, labelled, [name], 20)),
        alerts=tuple(_alerts(connection, "al.dynamic = ?", [name], 20)),
    )


def entity_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> EntityDetail:
    points = _series(connection, rng, entity=name, indicators=("article_count",))
    mentions = "EXISTS (SELECT 1 FROM article_entities m WHERE m.article_id = a.id AND m.entity = ?)"
    dynamics = _rows(
        connection,
        "SELECT dynamic, sum(value)::BIGINT FROM indicators WHERE indicator = 'article_count' AND entity = ? "
        "AND dynamic <> '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= ? "
        "GROUP BY dynamic ORDER BY 2 DESC, 1",
        [name, Range(rng.days, "1d").since],
    )
    return EntityDetail(
        name=name,
        series=Series(name, tuple(points.get(("*", "article_count"), ()))),
        dynamics=tuple((str(d), int(n)) for d, n in dynamics),
        articles=tuple(_articles(connection, mentions, [name], 50)),
        stories=tuple(_stories(connection, mentions, [name], 20)),
    )


def article_detail(connection: duckdb.DuckDBPyConnection, article_id: str) -> ArticleDetail | None:
    """An article with its scores, entities, story and the alerts it fed; None when unknown."""
    found = _articles(connection, "a.id = ?", [article_id], 1)
    if not found:
        return None
    extra = _rows(
        connection, "SELECT summary, connector, fetched_at, model_version FROM articles WHERE id = ?", [article_id]
    )[0]
    entities = _rows(
        connection,
        "SELECT entity, mentions FROM article_entities WHERE article_id = ? ORDER BY 2 DESC, 1",
        [article_id],
    )
    story = _stories(connection, "a.id = ?", [article_id], 1)
    fed = (
        "EXISTS (SELECT 1 FROM articles a JOIN article_dynamics d ON d.article_id = a.id WHERE a.id = ? AND d.label "  # noqa: S608 (fixed text)
        "AND d.dynamic = al.dynamic AND a.published_at >= al.bucket_start "
        "AND a.published_at < al.bucket_start + " + _INTERVAL.format(w="al.bucket_width") + ")"
    )
    return ArticleDetail(
        article=found[0],
        summary=str(extra[0] or ""),
        connector=str(extra[1] or ""),
        fetched_at=extra[2],
        model_version=extra[3],
        entities=tuple((str(e), int(n)) for e, n in entities),
        story=story[0] if story else None,
        alerts=tuple(_alerts(connection, fed, [article_id], 20)),
    )
