"""The dashboard's search over stored articles: each filter a fixed SQL condition, each value a parameter.

``q`` is matched with ``contains`` on lower-cased text, never with ``LIKE``, so ``%``, ``_``, quotes and
backslashes in it are plain characters.
"""

from __future__ import annotations

from typing import Any

import duckdb

from stackwatch.storage.dashboard.reads import article_rows, rows
from stackwatch.storage.dashboard.records import SearchFilters, SearchResult

__all__ = ["search_articles"]

_TEXT = "(contains(lower(a.title), lower(?)) OR contains(lower(a.summary), lower(?)))"
_DYNAMIC = "EXISTS (SELECT 1 FROM article_dynamics e WHERE e.article_id = a.id AND e.label AND e.dynamic = ?)"
_ENTITY = "EXISTS (SELECT 1 FROM article_entities m WHERE m.article_id = a.id AND m.entity = ?)"
_SOURCE = "lower(a.source) = lower(?)"
_SINCE = "a.published_at >= ?"
_UNTIL = "a.published_at < ?"


def _conditions(filters: SearchFilters) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    if filters.q:
        parts.append(_TEXT)
        params += [filters.q, filters.q]
    for condition, value in (
        (_DYNAMIC, filters.dynamic),
        (_ENTITY, filters.entity),
        (_SOURCE, filters.source),
        (_SINCE, filters.since),
        (_UNTIL, filters.until),
    ):
        if value is not None and value != "":
            parts.append(condition)
            params.append(value)
    return (" AND ".join(parts) or "true"), params


def search_articles(
    connection: duckdb.DuckDBPyConnection, filters: SearchFilters, limit: int, offset: int = 0
) -> SearchResult:
    """The articles matching every filter given, newest first: ``limit`` of them after ``offset``, and the
    number that match in all."""
    where, params = _conditions(filters)
    total = rows(connection, f"SELECT count(*) FROM articles a WHERE {where}", params)[0][0]  # noqa: S608 (fixed text)
    return SearchResult(int(total), tuple(article_rows(connection, where, params, limit, offset)))
