"""The dashboard's search over stored articles: each filter a fixed SQL condition, each value a parameter.

``q`` is matched with ``contains`` on lower-cased text, never with ``LIKE``, so ``%``, ``_``, quotes and
backslashes in it are plain characters.

A search reads the newest days first: it looks for matches from a day back (then a week, a month, half a year and
the whole range the filters allow) until it has found more than :data:`COUNT_CAP` or the range is
exhausted, so a common word reads a few days or weeks of row groups, not the table. The total is exact below the cap
and "at least :data:`COUNT_CAP`" (``more``) above it. When the range is exhausted first, every match (at most the
cap) is in hand and the page is read by id on their dates, so a rare word reads the table's text once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from stackwatch.storage.dashboard.reads import ARTICLE_COLUMNS, EARLIEST, article_rows, rows, scored_rows, windows
from stackwatch.storage.dashboard.records import ArticleRow, SearchFilters, SearchResult
from stackwatch.storage.zonemaps import at

__all__ = ["COUNT_CAP", "search_articles"]

COUNT_CAP = 1000
"""A search counts its matches up to this many; past it the page says "1,000+"."""

_TEXT = "(contains(lower(a.title), lower(?)) OR contains(lower(a.summary), lower(?)))"
_DYNAMIC = "a.id IN (SELECT e.article_id FROM article_dynamics e WHERE e.label AND e.dynamic = ? AND {e})"
_ENTITY = "a.id IN (SELECT m.article_id FROM article_entities m WHERE m.entity = ? AND {m})"
_SOURCE = "lower(a.source) = lower(?)"


def _bounds(alias: str, lower: datetime | None, upper: datetime | None) -> str:
    """``alias.published_at`` within the window, as literals the zone maps prune by."""
    low = f"{alias}.published_at >= {EARLIEST if lower is None else at(lower)}"
    return low if upper is None else f"{low} AND {alias}.published_at < {at(upper)}"


def _conditions(filters: SearchFilters, lower: datetime | None) -> tuple[str, list[Any]]:
    """The filters and the window from ``lower`` on (to the filters' ``until``) as SQL on ``articles a``."""
    bounds = {alias: _bounds(alias, lower, filters.until) for alias in ("a", "e", "m")}
    parts: list[str] = [bounds["a"]]
    params: list[Any] = []
    if filters.q:
        parts.append(_TEXT)
        params += [filters.q, filters.q]
    for condition, value in ((_DYNAMIC, filters.dynamic), (_ENTITY, filters.entity), (_SOURCE, filters.source)):
        if value is not None and value != "":
            parts.append(condition.format(**bounds))
            params.append(value)
    return " AND ".join(parts), params


def search_articles(
    connection: duckdb.DuckDBPyConnection,
    filters: SearchFilters,
    limit: int,
    offset: int = 0,
    cap: int = COUNT_CAP,
) -> SearchResult:
    """The articles matching every filter given, newest first: ``limit`` of them after ``offset``, and how many
    match, counted up to ``cap`` (or as far as the page needs when it is further)."""
    enough = max(cap, offset + limit) + 1
    where, params, matched = "", list[Any](), list[tuple[Any, ...]]()
    for lower in windows(filters.since, filters.until):
        where, params = _conditions(filters, lower)
        first = f"SELECT a.id, a.published_at FROM articles a WHERE {where} LIMIT ?"  # noqa: S608 (fixed text)
        matched = rows(connection, first, [*params, enough])
        if len(matched) >= enough:
            articles = article_rows(connection, where, params, limit, offset)
            return SearchResult(cap, tuple(articles), more=True)
    # every match is in hand: the page is the newest of them, read by id on their own dates
    matched.sort(key=lambda row: str(row[0]))
    matched.sort(key=lambda row: row[1], reverse=True)  # published_at DESC, then id, as article_rows orders
    return SearchResult(len(matched), tuple(_page(connection, matched[offset : offset + limit])))


def _page(connection: duckdb.DuckDBPyConnection, picked: list[tuple[Any, ...]]) -> list[ArticleRow]:
    """The articles of ``picked`` (id, published_at), in that order."""
    if not picked:
        return []
    moments = " OR ".join(f"a.published_at = {at(moment)}" for moment in sorted({row[1] for row in picked}))
    found = rows(
        connection,
        f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE ({moments}) AND list_contains(?, a.id)",  # noqa: S608 (literals)
        [[str(row[0]) for row in picked]],
    )
    by_id = {str(row[0]): row for row in found}
    return scored_rows(connection, [by_id[str(key)] for key, _ in picked if str(key) in by_id])
