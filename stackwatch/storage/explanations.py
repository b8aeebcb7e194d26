"""Label explanations in DuckDB: for each label of an article, the sentence that drove it and its share of the
dynamic's logit (schema migration 13; :mod:`stackwatch.signals.explanations` computes them)::

    write_explanations(connection, tagged, replaced)        # in the store's article write, after the articles
    explanations_of(connection, "a1", published_at)         # (Explanation('capex', 'Meta lifts ...', 2.41),)

An article written again has its rows replaced with the new record's, so the explanations are always those of the
labels stored; a record without explanations (the keyword backend, or one tagged before they existed) has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from stackwatch.signals.messages import Explanation, TaggedArticle
from stackwatch.storage.scratch import registered
from stackwatch.storage.zonemaps import at, span

__all__ = ["explanations_of", "write_explanations"]


def write_explanations(
    connection: duckdb.DuckDBPyConnection, tagged: Sequence[TaggedArticle], replaced: Mapping[str, datetime]
) -> None:
    """Store the explanations of ``tagged`` (one record per article id), first removing the rows of the articles
    in ``replaced`` (id → the ``published_at`` they were stored with). Runs inside the caller's transaction."""
    old = span(replaced.values())
    if old:
        connection.execute(
            f"DELETE FROM article_explanations WHERE published_at BETWEEN {old[0]} AND {old[1]}"  # noqa: S608 (literals)
            " AND list_contains(?, article_id)",
            [list(replaced)],
        )
    rows = [(item, explanation) for item in tagged for explanation in item.explanations]
    if not rows:
        return
    table = pa.table(
        {
            "article_id": [item.article.id for item, _ in rows],
            "dynamic": [explanation.dynamic for _, explanation in rows],
            "sentence": [explanation.sentence for _, explanation in rows],
            "score": pa.array([explanation.score for _, explanation in rows], pa.float64()),
            "model_version": [item.model_version for item, _ in rows],
            "published_at": pa.array([item.article.published_at for item, _ in rows], pa.timestamp("us", "UTC")),
        }
    )
    with registered(connection, "_explanation_rows", table):
        connection.execute("INSERT INTO article_explanations SELECT * FROM _explanation_rows")


def explanations_of(
    connection: duckdb.DuckDBPyConnection, article_id: str, published_at: datetime
) -> tuple[Explanation, ...]:
    """The stored explanations of one article (its ``published_at`` bounds the read), by dynamic."""
    found = connection.execute(
        f"SELECT dynamic, sentence, score FROM article_explanations WHERE published_at = {at(published_at)}"  # noqa: S608
        " AND article_id = ? ORDER BY dynamic",
        [article_id],
    ).fetchall()
    return tuple(Explanation(str(dynamic), str(sentence), float(score)) for dynamic, sentence, score in found)
