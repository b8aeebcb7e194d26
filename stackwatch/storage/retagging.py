"""Reading stored articles back to tag them again (``stackwatch reclassify``), a page at a time, in
(published_at, id) order::

    total = articles_since(store.connection, since)
    for page in article_pages(store.connection, since, size=256):
        store.write(Batch(tagged=[result.tagged(a, version) for a, result in zip(page, classify(page))]))

Each page is read after the write before it, by its position: a rewrite never moves an article in that order
(``published_at`` and ``id`` are the record's own), so every article is read once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb

from stackwatch.signals.messages import Article, parse_time
from stackwatch.storage.store import as_store_error

__all__ = ["article_pages", "articles_since"]

_COLUMNS = "id, url, title, summary, source, connector, published_at, fetched_at, body, language"


def articles_since(connection: duckdb.DuckDBPyConnection, since: datetime) -> int:
    """How many stored articles were published from ``since`` on."""
    with as_store_error("cannot count the stored articles"):
        row = connection.execute("SELECT count(*) FROM articles WHERE published_at >= ?", [since]).fetchone()
    return int(row[0]) if row else 0


def article_pages(connection: duckdb.DuckDBPyConnection, since: datetime, *, size: int) -> Iterator[list[Article]]:
    """The stored articles published from ``since`` on, ``size`` at a time, oldest first."""
    after: tuple[datetime, str] | None = None
    while True:
        with as_store_error("cannot read the stored articles"):
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM articles WHERE published_at >= $since"  # noqa: S608 (fixed columns)
                " AND (NOT $paged OR published_at > $at OR (published_at = $at AND id > $id))"
                " ORDER BY published_at, id LIMIT $size",
                {
                    "since": since,
                    "paged": after is not None,
                    "at": after[0] if after else since,
                    "id": after[1] if after else "",
                    "size": size,
                },
            ).fetchall()
        if not rows:
            return
        page = [
            Article(
                row[0], row[1], row[2], row[3], row[4], row[5], parse_time(row[6]), parse_time(row[7]), row[8], row[9]
            )
            for row in rows
        ]
        yield page
        after = (page[-1].published_at, page[-1].id)
