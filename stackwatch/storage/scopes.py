"""The SQL that puts articles in their buckets and scopes, shared by the recount (derive.py) and the increments
(increments.py), so the two count the same rows::

    connection.execute(f"CREATE TEMP TABLE _b AS {bucketed('_facts')}")
    connection.execute(f"CREATE TEMP TABLE _s AS {scoped('_b', '_entities', '_dynamics')}")

``facts`` has one row per article: ``id, source, published_at, story_id, novelty``; ``entities`` has
``article_id, entity``; ``dynamics`` has ``article_id, dynamic, score``, for labelled dynamics only.

Sums are kept in whole nanounits: each score and novelty is rounded to 9 decimals before it is added
(:data:`SCORE_NANOS`), so a sum changed by increments is the very number a recount gives.
"""

from __future__ import annotations

__all__ = ["NANOS_PER_UNIT", "NOVELTY_NANOS", "SCORE_NANOS", "bucketed", "scoped"]

NANOS_PER_UNIT = "1e9"
SCORE_NANOS = f"round(score * {NANOS_PER_UNIT})::BIGINT"
NOVELTY_NANOS = f"round(novelty * {NANOS_PER_UNIT})::BIGINT"


def bucketed(facts: str) -> str:
    """One row per (window, article) of ``facts``, with its bucket (the store's TimeZone is UTC)."""
    columns = "id, source, story_id, novelty"
    return (
        f"SELECT '1h' AS bucket_width, date_trunc('hour', published_at) AS bucket_start, {columns} FROM {facts}"  # noqa: S608
        f" UNION ALL SELECT '1d', date_trunc('day', published_at), {columns} FROM {facts}"
    )


def scoped(facts: str, entities: str, dynamics: str) -> str:
    """One row per (bucket, scope, article) of bucketed ``facts``: the six scopes of signals/indicators.py."""
    return f"""
    SELECT bucket_width, bucket_start, '*' AS dynamic, '*' AS entity, '*' AS source, id, story_id,
           source AS src, novelty, NULL::DOUBLE AS score FROM {facts}
    UNION ALL SELECT bucket_width, bucket_start, '*', '*', source, id, story_id, source, novelty, NULL FROM {facts}
    UNION ALL SELECT f.bucket_width, f.bucket_start, '*', e.entity, '*', f.id, f.story_id, f.source, f.novelty, NULL
        FROM {facts} f JOIN {entities} e ON e.article_id = f.id
    UNION ALL SELECT f.bucket_width, f.bucket_start, d.dynamic, '*', '*', f.id, f.story_id, f.source, f.novelty,
                     d.score
        FROM {facts} f JOIN {dynamics} d ON d.article_id = f.id
    UNION ALL SELECT f.bucket_width, f.bucket_start, d.dynamic, '*', f.source, f.id, f.story_id, f.source,
                     f.novelty, d.score
        FROM {facts} f JOIN {dynamics} d ON d.article_id = f.id
    UNION ALL SELECT f.bucket_width, f.bucket_start, d.dynamic, e.entity, '*', f.id, f.story_id, f.source,
                     f.novelty, d.score
        FROM {facts} f JOIN {dynamics} d ON d.article_id = f.id
        JOIN {entities} e ON e.article_id = f.id
    """  # noqa: S608 (table names of this package only)
