"""The rows of ``article_entities``: each article's entities with their mentions, kinds and roles.

Written with the article (:func:`entity_table`, by ``Derivation.derive_articles``) and re-matched from the stored
text by ``rebuild`` (:func:`rematch`, a chunk of days at a time), so an entity added to the configuration applies to
history::

    rows = entity_table(gazetteer, [(article.id, article.text, article.published_at)])
    rematch(connection, gazetteer, since, until)        # the articles published in [since, until)

One row per article and entity, whatever its roles: the indicators count entities by these rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.entity_roles import match_entities
from stackwatch.storage.scratch import registered
from stackwatch.storage.zonemaps import at

__all__ = ["entity_table", "insert", "rematch"]

_COLUMNS = "article_id, entity, mentions, published_at, kind, roles"


def entity_table(gazetteer: Gazetteer, articles: Iterable[tuple[str, str, datetime]]) -> pa.Table:
    """The ``article_entities`` rows of ``(id, text, published_at)`` articles, in the table's column order."""
    ids: list[str] = []
    names: list[str] = []
    mentions: list[int] = []
    published: list[datetime] = []
    kinds: list[str] = []
    roles: list[list[str]] = []
    for article_id, text, published_at in articles:
        for match in match_entities(gazetteer, text):
            ids.append(article_id)
            names.append(match.entity)
            mentions.append(match.mentions)
            published.append(published_at)
            kinds.append(match.kind)
            roles.append(list(match.roles))
    return _table(ids, names, mentions, published, kinds, roles)


def _table(
    ids: Sequence[str],
    names: Sequence[str],
    mentions: Sequence[int],
    published: Sequence[datetime],
    kinds: Sequence[str],
    roles: Sequence[Sequence[str]],
) -> pa.Table:
    return pa.table(
        {
            "article_id": pa.array(ids, pa.string()),
            "entity": pa.array(names, pa.string()),
            "mentions": pa.array(mentions, pa.int32()),
            "published_at": pa.array(published, pa.timestamp("us", "UTC")),
            "kind": pa.array(kinds, pa.string()),
            "roles": pa.array(roles, pa.list_(pa.string())),
        }
    )


def insert(connection: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Append ``rows`` (an :func:`entity_table`) to ``article_entities``."""
    if rows.num_rows:
        with registered(connection, "_entity_rows", rows):
            connection.execute(f"INSERT INTO article_entities ({_COLUMNS}) SELECT {_COLUMNS} FROM _entity_rows")  # noqa: S608


def rematch(
    connection: duckdb.DuckDBPyConnection, gazetteer: Gazetteer, since: datetime | None, until: datetime | None
) -> int:
    """Replace the entity rows of the articles published in [since, until) (None: unbounded) by a new match of
    their stored text (title, then summary or else body, as ``Article.text``); returns the rows written.

    An article with neither summary nor body (retention may have dropped the body it was matched on) keeps the
    stored rows of entities its title does not name, if the gazetteer still has them: nothing is lost to a
    re-match that sees less than the first match did."""
    bounds = " AND ".join(
        [*([f"published_at >= {at(since)}"] if since else []), *([f"published_at < {at(until)}"] if until else [])]
    )
    where = f" WHERE {bounds}" if bounds else ""
    articles = connection.execute(
        "SELECT id, title, CASE WHEN summary <> '' THEN summary ELSE coalesce(body, '') END, published_at"  # noqa: S608
        f" FROM articles{where} ORDER BY published_at, id"
    ).fetchall()
    texts = [(str(key), "\n".join(part for part in (title, rest) if part), when) for key, title, rest, when in articles]
    fresh = entity_table(gazetteer, texts)
    title_only = {str(key) for key, _, rest, _ in articles if not rest}
    kept = _kept(connection, gazetteer, where, title_only, fresh) if title_only else None
    connection.execute(f"DELETE FROM article_entities{where}")  # noqa: S608
    insert(connection, fresh)
    if kept is not None:
        insert(connection, kept)
    return int(fresh.num_rows) + (int(kept.num_rows) if kept is not None else 0)


def _kept(
    connection: duckdb.DuckDBPyConnection, gazetteer: Gazetteer, where: str, ids: set[str], fresh: pa.Table
) -> pa.Table:
    """The stored rows of ``ids`` whose entity the fresh match lacks and the gazetteer still has (kind refreshed)."""
    found = set(zip(fresh.column("article_id").to_pylist(), fresh.column("entity").to_pylist(), strict=True))
    rows = [
        row
        for row in connection.execute(
            f"SELECT article_id, entity, mentions, published_at, roles FROM article_entities{where}"  # noqa: S608
            f"{' AND' if where else ' WHERE'} list_contains(?, article_id)",
            [sorted(ids)],
        ).fetchall()
        if (row[0], row[1]) not in found and row[1] in gazetteer.by_name
    ]
    return _table(
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[2] for row in rows],
        [row[3] for row in rows],
        [gazetteer.kind(row[1]) for row in rows],
        [list(row[4] or ()) for row in rows],
    )
