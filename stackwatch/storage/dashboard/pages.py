"""One read per dashboard page: the overview, a dynamic, an entity, an article.

Every statement is bounded by dates written as literals, which DuckDB prunes by zone maps
(:mod:`stackwatch.storage.zonemaps`): a page reads the row groups of its range, not the tables. Lists of the newest
articles look in the newest days first (:func:`~.reads.newest_articles`); an alert's evidence is the one stored
with it; an article is looked for on the day its link names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from stackwatch.storage.dashboard.reads import (
    INTERVAL,
    alert_views,
    counts_by,
    model_changes,
    newest_articles,
    newest_stories,
    rows,
    scope_series,
    series_points,
    silence_views,
    story_row,
)
from stackwatch.storage.dashboard.records import (
    ArticleDetail,
    ArticleEntity,
    ArticleRow,
    DynamicDetail,
    EntityDetail,
    EntityRoles,
    Overview,
    Range,
    Series,
    SourceVolume,
)
from stackwatch.storage.explanations import explanations_of
from stackwatch.storage.zonemaps import at

__all__ = [
    "ALERTS",
    "ARTICLES",
    "LATEST_ALERTS",
    "RECENT_ARTICLES",
    "STORIES",
    "article_detail",
    "dynamic_detail",
    "entity_detail",
    "overview",
]

ARTICLES, STORIES, ALERTS = 50, 20, 20
"""How many of the newest articles, stories and alerts within its range a dynamic or entity page lists."""
LATEST_ALERTS, RECENT_ARTICLES = 10, 25
"""How many of the newest alerts (on buckets in its range) and articles (published in it) the overview lists."""

_LABELLED = "SELECT e.article_id FROM article_dynamics e WHERE e.label AND e.dynamic = ? AND e.published_at >= {lo}"
_MENTIONS = "SELECT m.article_id FROM article_entities m WHERE m.entity = ? AND m.published_at >= {lo}"
_IN = "a.published_at >= {lo} AND a.id IN ({members})"


def overview(
    connection: duckdb.DuckDBPyConnection, rng: Range, dynamics: Sequence[str], composites: Sequence[str]
) -> Overview:
    """Everything the overview page shows, for the configured ``dynamics`` and ``composites``: the alerts on
    buckets in the range, the articles and the sources' volumes published in it."""
    since = rng.since
    points = series_points(connection, rng, dynamic="", indicators=("article_count", "zscore", "composite"))
    changes = model_changes(connection, rng)
    composite_series = tuple(
        Series(name, tuple(points.get((name, "composite"), ())), changes=changes) for name in composites
    )
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
        f"SELECT source, count(*), max(published_at) FROM articles WHERE published_at >= {at(since)} "  # noqa: S608 (a literal)
        "GROUP BY source ORDER BY 1",
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
        dynamics=tuple(scope_series(points, name, changes=changes) for name in dynamics),
        composites=composite_series,
        entities=entities,
        heat=heat,
        alerts=tuple(alert_views(connection, "al.bucket_start >= ?", [since], LATEST_ALERTS)),
        articles=tuple(newest_articles(connection, lambda lo: f"a.published_at >= {lo}", [], RECENT_ARTICLES, since)),
        sources=sources,
        totals=totals,
        silences=tuple(silence_views(connection)),
    )


def _newest(connection: duckdb.DuckDBPyConnection, members: str, name: str, since: datetime) -> list[ArticleRow]:
    def where(lo: str) -> str:
        return _IN.format(lo=lo, members=members.format(lo=lo))

    return newest_articles(connection, where, [name], ARTICLES, since)


_ROLE_COUNTS = "count(DISTINCT e.article_id), " + ", ".join(
    f"count(DISTINCT e.article_id) FILTER (WHERE list_contains(e.roles, '{role}'))"
    for role in ("buyer", "displaced_vendor", "party")
)
"""Articles, and articles per role, of the ``article_entities e`` rows of a group."""


def _role_rows(connection: duckdb.DuckDBPyConnection, dynamic: str, rng: Range) -> list[EntityRoles]:
    """Per entity of the articles labelled ``dynamic`` in the range's days, its articles and roles in them."""
    lo = at(rng.daily_since)
    found = rows(
        connection,
        f"SELECT e.entity, any_value(e.kind), {_ROLE_COUNTS} FROM article_entities e "  # noqa: S608 (literals)
        f"WHERE e.published_at >= {lo} AND e.article_id IN ({_LABELLED.format(lo=lo)}) GROUP BY e.entity",
        [dynamic],
    )
    return [EntityRoles(str(row[0]), str(row[1] or "company"), *(int(n) for n in row[2:])) for row in found]


def dynamic_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> DynamicDetail:
    """A dynamic's series, its entities (the drivers apart from the displaced vendors), and its labelled articles,
    stories and alerts within the range (the newest :data:`ARTICLES`, :data:`STORIES` and :data:`ALERTS`)."""
    since = rng.since
    roles = _role_rows(connection, name, rng)
    drivers = sorted(
        (entity for entity in roles if entity.articles > entity.displaced_vendor),
        key=lambda e: (-(e.buyer + e.party), -(e.articles - e.displaced_vendor), e.entity),
    )
    displaced = sorted(
        (entity for entity in roles if entity.displaced_vendor), key=lambda e: (-e.displaced_vendor, e.entity)
    )
    return DynamicDetail(
        name=name,
        series=scope_series(series_points(connection, rng, dynamic=name), name, changes=model_changes(connection, rng)),
        entities=counts_by(connection, "entity", name, rng, limit=20),
        articles=tuple(_newest(connection, _LABELLED, name, since)),
        stories=tuple(newest_stories(connection, _LABELLED, [name], STORIES, since)),
        alerts=tuple(alert_views(connection, "al.dynamic = ? AND al.bucket_start >= ?", [name, since], ALERTS)),
        drivers=tuple(drivers[:20]),
        displaced=tuple(displaced[:20]),
    )


def _entity_roles(
    connection: duckdb.DuckDBPyConnection, name: str, rng: Range
) -> tuple[str, list[tuple[str, EntityRoles]]]:
    """The entity's kind, and its roles in its articles of the range's days: in all (``*``), then per labelled
    dynamic."""
    lo = at(rng.daily_since)
    mine = f"(SELECT article_id, kind, roles FROM article_entities WHERE entity = ? AND published_at >= {lo}) e"  # noqa: S608 (a literal)
    total = rows(connection, f"SELECT any_value(e.kind), {_ROLE_COUNTS} FROM {mine}", [name])  # noqa: S608
    per = rows(
        connection,
        f"SELECT d.dynamic, any_value(e.kind), {_ROLE_COUNTS} FROM {mine} JOIN article_dynamics d "  # noqa: S608
        f"ON d.article_id = e.article_id AND d.label AND d.published_at >= {lo} GROUP BY d.dynamic ORDER BY 1",
        [name],
    )
    kind = str(total[0][0]) if total and total[0][0] is not None else "company"
    found = [("*", EntityRoles(name, kind, *(int(n) for n in row[1:]))) for row in total if row[1]]
    found += [(str(row[0]), EntityRoles(name, kind, *(int(n) for n in row[2:]))) for row in per]
    return kind, found


def entity_detail(connection: duckdb.DuckDBPyConnection, name: str, rng: Range) -> EntityDetail:
    """An entity's volume, the dynamics it appears in, and the articles and stories within the range that mention
    it (the newest :data:`ARTICLES` and :data:`STORIES`)."""
    since = rng.since
    points = series_points(connection, rng, entity=name, indicators=("article_count",))
    kind, roles = _entity_roles(connection, name, rng)
    return EntityDetail(
        name=name,
        series=scope_series(points, name, key="*", changes=model_changes(connection, rng)),
        dynamics=counts_by(connection, "dynamic", name, rng),
        articles=tuple(_newest(connection, _MENTIONS, name, since)),
        stories=tuple(newest_stories(connection, _MENTIONS, [name], STORIES, since)),
        kind=kind,
        roles=tuple(roles),
    )


def _find(connection: duckdb.DuckDBPyConnection, article_id: str, day: date | None) -> tuple[Any, ...] | None:
    """The article's row: looked for on ``day`` (UTC) first, which reads that day's row groups; then, for a link
    that names no day or a day the article is no longer on (it was published again), in the whole table."""
    select = (
        "SELECT id, title, url, source, published_at, labels, summary, connector, fetched_at, model_version "
        "FROM articles WHERE {bound} id = ? LIMIT 1"
    )
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        bound = f"published_at >= {at(start)} AND published_at < {at(start + timedelta(days=1))} AND"
        found = rows(connection, select.format(bound=bound), [article_id])
        if found:
            return found[0]
    found = rows(connection, select.format(bound=""), [article_id])
    return found[0] if found else None


def article_detail(
    connection: duckdb.DuckDBPyConnection, article_id: str, day: date | None = None
) -> ArticleDetail | None:
    """An article with its scores, entities, story and the alerts it fed; None when unknown. ``day``, the UTC day
    it was published on as its link gives it, bounds the lookup (without it, or when it is wrong, the whole
    articles table is read); every other read is bounded by the article's own ``published_at``."""
    found = _find(connection, article_id, day)
    if found is None:
        return None
    key, title, url, source, published, labels, summary, connector, fetched_at, model_version = found
    assert isinstance(published, datetime)
    on = f"published_at = {at(published)}"
    scored = rows(
        connection,
        f"SELECT dynamic, score, label FROM article_dynamics WHERE {on} AND article_id = ? ORDER BY 2 DESC, 1",  # noqa: S608
        [article_id],
    )
    entities = rows(
        connection,
        f"SELECT entity, mentions, kind, roles FROM article_entities WHERE {on} AND article_id = ?"  # noqa: S608
        " ORDER BY 2 DESC, 1",
        [article_id],
    )
    story = rows(
        connection,
        "SELECT s.story_id, s.title, s.articles, s.sources, s.last_seen, s.first_seen FROM stories s "  # noqa: S608 (literals)
        f"WHERE s.first_seen <= {at(published)} AND s.last_seen >= {at(published)} AND s.story_id = "
        f"(SELECT story_id FROM article_stories WHERE {on} AND article_id = ? LIMIT 1) LIMIT 1",
        [article_id],
    )
    labelled = sorted(str(dynamic) for dynamic, _, label in scored if label)
    fed = (
        "list_contains(?, al.dynamic) AND al.bucket_start <= ? AND al.bucket_start > ? "
        "AND al.bucket_start + " + INTERVAL.format(w="al.bucket_width") + " > ?"
    )
    article = ArticleRow(
        id=str(key),
        title=str(title or ""),
        url=str(url or ""),
        source=str(source or ""),
        published_at=published,
        labels=tuple(labels or ()),
        scores=tuple((str(dynamic), float(score)) for dynamic, score, _ in scored),
    )
    return ArticleDetail(
        article=article,
        summary=str(summary or ""),
        connector=str(connector or ""),
        fetched_at=fetched_at,
        model_version=model_version,
        entities=tuple(
            ArticleEntity(str(name), int(mentions), str(kind or "company"), tuple(roles or ()))
            for name, mentions, kind, roles in entities
        ),
        story=story_row(story[0]) if story else None,
        alerts=tuple(alert_views(connection, fed, [labelled, published, published - timedelta(days=1), published], 20))
        if labelled
        else (),
        explanations=explanations_of(connection, str(key), published),
    )
