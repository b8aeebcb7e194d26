"""Former tags of articles tagged again by another classifier version (schema 14, ``tag_history``), each with the
explanation it had (schema 16: the sentence that drove the label and its share of the logit).

Called by the store's article write, before it replaces the tags, inside its transaction::

    archive_retagged(connection, "published_at BETWEEN ... AND ...", [("a1", "v2")])   # a1's v1 tags are kept

A rewrite by the same version (a redelivery, a replay) archives nothing: its tags are the same. The former tags
held from the newest ``superseded_at`` the article already has here, else from its ``stored_at``, until now.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from stackwatch.storage.scratch import registered

__all__ = ["archive_retagged"]


def archive_retagged(connection: duckdb.DuckDBPyConnection, within: str, incoming: Sequence[tuple[str, str]]) -> int:
    """Keep the stored tags of the articles in ``incoming`` (id, the version about to tag them) whose stored
    version differs; ``within`` bounds ``published_at`` to the stored articles' dates. Returns the rows kept."""
    if not incoming:
        return 0
    table = pa.table({"id": [item[0] for item in incoming], "model_version": [item[1] for item in incoming]})
    with registered(connection, "_incoming_versions", table):
        row = connection.execute(
            "INSERT INTO tag_history BY NAME"  # noqa: S608 (``within`` is the store's own date bounds)
            " SELECT d.article_id, d.dynamic, d.score, d.label, d.model_version, d.published_at,"
            "  coalesce((SELECT max(h.superseded_at) FROM tag_history h WHERE h.article_id = d.article_id),"
            "   a.stored_at) AS valid_from, now() AS superseded_at, x.sentence, x.score AS sentence_score"
            f" FROM article_dynamics d JOIN _incoming_versions v ON v.id = d.article_id"
            f" JOIN articles a ON a.id = d.article_id AND a.{within}"
            " LEFT JOIN article_explanations x ON x.article_id = d.article_id AND x.dynamic = d.dynamic"
            f"  AND x.{within}"
            f" WHERE d.{within} AND d.model_version <> v.model_version"
        ).fetchone()
    return int(row[0]) if row else 0
