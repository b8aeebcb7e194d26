"""One read per dashboard page: the overview, a dynamic, an entity, an article."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from stackwatch.storage.dashboard.reads import (
    INTERVAL,
    alert_views,
    article_rows,
    counts_by,
    rows,
    scope_series,
    series_points,
    silence_views,
    story_rows,
)
from stackwatch.storage.dashboard.records import (
    ArticleDetail,
    DynamicDetail,
    EntityDetail,
    Overview,
    Range,
    Series,
    SourceVolume,
)

__all__ = ["ALERTS", "ARTICLES", "STORIES", "article_detail", "dynamic_detail", "entity_detail", "overview"]

ARTICLES, STORIES, ALERTS = 50, 20, 20
"""How many of the newest articles, stories and alerts within its range a dynamic or entity page lists."""

_LABELLED = "EXISTS (SELECT 1 FROM article_dynamics e WHERE e.article_id = a.id AND e.label AND e.dynamic = ?)"
_MENTIONS = "EXISTS (SELECT 1 FROM article_entities m WHERE m.article_id = a.id AND m.entity = ?)"
_IN_RANGE = "a.published_at >= ?"


def overview(
    connection: duckdb.DuckDBPyConnection, rng: Range, dynamics: Sequence[str], composites: Sequence[str]
) -> Overview:
    """Everything the overview page shows, for the configured ``dynamics`` and ``composites``."""
    points = series_points(connection, rng, dynamic="", indicators=("article_count", "zscore", "composite"))
    composite_series = tuple(Series(name, tuple(points.get((name, "composite"), ()))) for name in composites)
    heat_rows = rows(
        connection,
        "SELECT entity, dynamic, sum(value) FROM indicators WHERE indicator = 'article_count' AND entity <> '*' "
        "AND dynamic <> '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= ? GROUP BY ALL",
        [rng.daily_since],
    )
    heat = {(str(e), str(d)): float(v) for e, d, v in heat_rows}
    by_entity: dict[str, float] = {}
    for (entity, _), value in heat.items():
        by_entity[entity] = by_entity.get(entity, 0.0) + value
    entities = tuple(sorted(by_entity, key=lambda name: (-by_entity[name], name))[:15])
    source_rows = rows(
        connection,
        "SELECT source, count(*) FILTER (WHERE published_at >= ?), max(published_at) FROM articles "
        "GROUP BY source ORDER BY 1",
        [rng.since],
    )
    sources = tuple(
        SourceVolume(str(name), int(count), int(count) / max(rng.days, 1), last) for name, count, last in source_rows
    )
    totals = {
        table: int(rows(connection, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 (fixed names)
        for table in ("articles", "stories", "alerts", "dead_letters")
    }
    return Overview(
        range=rng,
        dynamics=tuple(scope_series(points, name) for name in dynamics),
        composites=composite_series,
        entities=entities,
        heat=heat,
        alerts=tuple(alert_views(connection, "true", [], 10)),
        articles=tuple(article_rows(connection, "a.labels IS NOT NULL", [], 25)),
        sources=sources,
        totals=totals,
        silences=tuple(silence_views(connection)),
    )


def dynamic_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> DynamicDetail:
    """A dynamic's series, its entities, and its labelled articles, stories and alerts within the range (the
    newest :data:`ARTICLES`, :data:`STORIES` and :data:`ALERTS`)."""
    since = rng.since
    return DynamicDetail(
        name=name,
        series=scope_series(series_points(connection, rng, dynamic=name), name),
        entities=counts_by(connection, "entity", name, rng, limit=20),
        articles=tuple(article_rows(connection, f"{_LABELLED} AND {_IN_RANGE}", [name, since], ARTICLES)),
        stories=tuple(story_rows(connection, f"{_LABELLED} AND {_IN_RANGE}", [name, since], STORIES)),
        alerts=tuple(alert_views(connection, "al.dynamic = ? AND al.bucket_start >= ?", [name, since], ALERTS)),
    )


def entity_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> EntityDetail:
    """An entity's volume, the dynamics it appears in, and the articles and stories within the range that mention
    it (the newest :data:`ARTICLES` and :data:`STORIES`)."""
    since = rng.since
    points = series_points(connection, rng, entity=name, indicators=("article_count",))
    return EntityDetail(
        name=name,
        series=scope_series(points, name, key="*"),
        dynamics=counts_by(connection, "dynamic", name, rng),
        articles=tuple(article_rows(connection, f"{_MENTIONS} AND {_IN_RANGE}", [name, since], ARTICLES)),
        stories=tuple(story_rows(connection, f"{_MENTIONS} AND {_IN_RANGE}", [name, since], STORIES)),
    )


def article_detail(connection: duckdb.DuckDBPyConnection, article_id: str) -> ArticleDetail | None:
    """An article with its scores, entities, story and the alerts it fed; None when unknown."""
    found = article_rows(connection, "a.id = ?", [article_id], 1)
    if not found:
        return None
    extra = rows(
        connection, "SELECT summary, connector, fetched_at, model_version FROM articles WHERE id = ?", [article_id]
    )[0]
    entities = rows(
        connection,
        "SELECT entity, mentions FROM article_entities WHERE article_id = ? ORDER BY 2 DESC, 1",
        [article_id],
    )
    story = story_rows(connection, "a.id = ?", [article_id], 1)
    fed = (
        "EXISTS (SELECT 1 FROM articles a JOIN article_dynamics d ON d.article_id = a.id WHERE a.id = ? AND d.label "  # noqa: S608 (fixed text)
        "AND d.dynamic = al.dynamic AND a.published_at >= al.bucket_start "
        "AND a.published_at < al.bucket_start + " + INTERVAL.format(w="al.bucket_width") + ")"
    )
    return ArticleDetail(
        article=found[0],
        summary=str(extra[0] or ""),
        connector=str(extra[1] or ""),
        fetched_at=extra[2],
        model_version=extra[3],
        entities=tuple((str(e), int(n)) for e, n in entities),
        story=story[0] if story else None,
        alerts=tuple(alert_views(connection, fed, [article_id], 20)),
    )
