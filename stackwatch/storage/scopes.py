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

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["NANOS_PER_UNIT", "NOVELTY_NANOS", "SCORE_NANOS", "bucketed", "scoped", "scoped_arrow"]

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


_SCOPED_SCHEMA = pa.schema(
    [
        ("bucket_width", pa.string()),
        ("bucket_start", pa.timestamp("us", "UTC")),
        ("dynamic", pa.string()),
        ("entity", pa.string()),
        ("source", pa.string()),
        ("id", pa.string()),
        ("story_id", pa.string()),
        ("src", pa.string()),
        ("novelty", pa.float64()),
        ("score", pa.float64()),
    ]
)


def scoped_arrow(facts: pa.Table, entities: pa.Table, dynamics: pa.Table) -> pa.Table:
    """:func:`bucketed` then :func:`scoped`, in Arrow, for a write's own few articles: the same rows, without the
    DuckDB hash tables that each take whole blocks of ``storage.memory_limit`` however few rows they hold."""
    facts = facts.select(["id", "source", "published_at", "story_id", "novelty"]).cast(
        pa.schema(
            [
                ("id", pa.string()),
                ("source", pa.string()),
                ("published_at", pa.timestamp("us", "UTC")),
                ("story_id", pa.string()),
                ("novelty", pa.float64()),
            ]
        )
    )
    entities = entities.select(["article_id", "entity"]).cast(
        pa.schema([("article_id", pa.string()), ("entity", pa.string())])
    )
    dynamics = dynamics.select(["article_id", "dynamic", "score"]).cast(
        pa.schema([("article_id", pa.string()), ("dynamic", pa.string()), ("score", pa.float64())])
    )
    buckets = pa.concat_tables(
        [
            facts.append_column("bucket_width", pa.array([window] * facts.num_rows, pa.string())).append_column(
                "bucket_start", pc.floor_temporal(facts["published_at"], unit=unit)
            )
            for window, unit in (("1h", "hour"), ("1d", "day"))
        ]
    )
    named = buckets.join(entities, keys="id", right_keys="article_id", join_type="inner")
    labelled = buckets.join(dynamics, keys="id", right_keys="article_id", join_type="inner")
    both = labelled.join(entities, keys="id", right_keys="article_id", join_type="inner")
    parts = [
        _scope(buckets, dynamic=None, entity=None, source=False),
        _scope(buckets, dynamic=None, entity=None, source=True),
        _scope(named, dynamic=None, entity="entity", source=False),
        _scope(labelled, dynamic="dynamic", entity=None, source=False),
        _scope(labelled, dynamic="dynamic", entity=None, source=True),
        _scope(both, dynamic="dynamic", entity="entity", source=False),
    ]
    return pa.concat_tables(parts)


def _scope(rows: pa.Table, *, dynamic: str | None, entity: str | None, source: bool) -> pa.Table:
    """``rows`` as scoped rows: ``dynamic`` and ``entity`` name the column scoping them ('*' when None), ``source``
    whether the source scopes them."""
    count = rows.num_rows

    def every(value: str) -> pa.Array:
        return pa.array([value] * count, pa.string())

    return pa.table(
        {
            "bucket_width": rows["bucket_width"],
            "bucket_start": rows["bucket_start"],
            "dynamic": rows[dynamic] if dynamic else every("*"),
            "entity": rows[entity] if entity else every("*"),
            "source": rows["source"] if source else every("*"),
            "id": rows["id"],
            "story_id": rows["story_id"],
            "src": rows["source"],
            "novelty": rows["novelty"],
            "score": rows["score"] if dynamic else pa.nulls(count, pa.float64()),
        },
        schema=_SCOPED_SCHEMA,
    )
