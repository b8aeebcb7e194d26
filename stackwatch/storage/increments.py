"""Measures kept by increments: a write changes each measure by what its changed articles add and take away.

A write knows the articles it changes: the batch's (new, or replacing a stored version) and those whose story or
novelty the clustering changed. The stored versions of the batch's articles are captured before anything is
deleted; after the write, both versions of every changed article are put in their buckets and scopes (+1 after,
-1 before) and each measure moves by the difference::

    before = capture(connection, replaced)        # the stored versions about to be replaced
    ...                                           # write articles, dynamics, entities, stories
    buckets = apply_increments(connection, Changes(batch, restoried, before))   # the buckets it changed

- counts and sums add up. Sums are whole nanounits (scopes.py), so a value reached by increments is the very
  number a recount gives;
- a distinct count (stories, sources) moves where a member's multiplicity in a scope goes from none to some or
  back. Only those members' multiplicity after the write is looked up: a story's articles in the bucket; a
  source's articles from the source-scoped counts, or under an entity from the entity's rows;
- a share is its count over its bucket's: every share of a bucket the write touched is rewritten.

Intermediate rows are kept as Arrow tables (scratch.py), outside DuckDB's memory cap and only for the write.
So a write reads its own articles, the stories they belong to and the keys of the buckets they touch, not every
article of a bucket. ``rebuild`` recounts every bucket from its rows (derive.py); the tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from stackwatch.signals.indicators import MEASURES, WINDOWS, bucket_start
from stackwatch.storage.rebuild_plan import Bucket, bucket_span
from stackwatch.storage.scopes import NANOS_PER_UNIT, NOVELTY_NANOS, SCORE_NANOS, scoped_arrow
from stackwatch.storage.scratch import Scratch
from stackwatch.storage.zonemaps import at

__all__ = ["Changes", "Versions", "apply_increments", "capture"]

_KEY = ("bucket_width", "bucket_start", "dynamic", "entity", "source")
_KEY_LIST = ", ".join(_KEY)
_COUNTED = tuple(name for name in MEASURES if name != "share")
_COUNTED_LIST = ", ".join(f"'{name}'" for name in _COUNTED)


@dataclass(frozen=True)
class Versions:
    """Articles as stored at one moment: ``facts`` (id, source, published_at, story_id, novelty), ``entities``
    (article_id, entity) and labelled ``dynamics`` (article_id, dynamic, score)."""

    facts: pa.Table
    entities: pa.Table
    dynamics: pa.Table


@dataclass(frozen=True)
class Changes:
    """The articles a write changed: ``articles``, the batch's, at their new dates; ``restoried``, the others
    whose story or novelty changed: their former (story id, novelty) and their date; ``before``, the stored
    versions the batch replaced (:func:`capture`)."""

    articles: Mapping[str, datetime]
    restoried: Mapping[str, tuple[str, float, datetime]]
    before: Versions | None = None

    def dated(self) -> dict[str, datetime]:
        """Every article whose stored facts the write changed (the batch's and the restoried), at its date now."""
        return {**{key: value[2] for key, value in self.restoried.items()}, **self.articles}

    def buckets(self) -> set[Bucket]:
        """Every bucket a changed article is in, or was in before the write."""
        dates = [*self.articles.values(), *(value[2] for value in self.restoried.values())]
        if self.before is not None:
            dates += self.before.facts["published_at"].to_pylist()
        return {(window, bucket_start(moment, window)) for moment in dates for window in WINDOWS}


def capture(connection: duckdb.DuckDBPyConnection, replaced: Mapping[str, datetime]) -> Versions:
    """The stored versions of ``replaced`` (id: stored published_at), read before the write deletes them."""
    return _versions(connection, replaced)


def _versions(connection: duckdb.DuckDBPyConnection, dated: Mapping[str, datetime]) -> Versions:
    """The facts, entities and labelled dynamics of the articles in ``dated`` (id: published_at)."""
    dates = list(dated.values())
    bounds = f"published_at BETWEEN {at(min(dates))} AND {at(max(dates))}" if dates else "false"
    ids = "(SELECT id FROM _version_ids)"
    with Scratch(connection) as scratch:
        scratch.put("_version_ids", pa.table({"id": pa.array(list(dated), pa.string())}))
        return Versions(
            facts=scratch.keep(
                "_version_facts",
                f"""
                SELECT a.id, a.source, a.published_at, coalesce(s.story_id, a.id) AS story_id,
                       coalesce(s.novelty, 1.0) AS novelty
                FROM (SELECT id, source, published_at FROM articles WHERE {bounds} AND id IN {ids}) a
                LEFT JOIN (SELECT article_id, story_id, novelty FROM article_stories
                           WHERE {bounds} AND article_id IN {ids}) s ON s.article_id = a.id
                """,  # noqa: S608 (names and literals of this package only)
            ),
            entities=scratch.keep(
                "_version_entities",
                f"SELECT article_id, entity FROM article_entities WHERE {bounds} AND article_id IN {ids}",  # noqa: S608
            ),
            dynamics=scratch.keep(
                "_version_dynamics",
                f"SELECT article_id, dynamic, score FROM article_dynamics"  # noqa: S608
                f" WHERE {bounds} AND label AND article_id IN {ids}",
            ),
        )


def apply_increments(
    connection: duckdb.DuckDBPyConnection, changes: Changes, now: datetime | None = None
) -> list[Bucket]:
    """Move every measure of every key the changed articles touch (before or after) by their difference, and
    rewrite the shares of their buckets; returns those buckets."""
    changed = {**changes.articles, **{key: value[2] for key, value in changes.restoried.items()}}
    if not changed:
        return []
    after = _versions(connection, changed)
    before = _with_former_stories(changes.before or _versions(connection, {}), after, changes.restoried)
    with Scratch(connection) as scratch:
        versions = []
        for version, sign in ((after, 1), (before, -1)):
            rows = scoped_arrow(version.facts, version.entities, version.dynamics)
            versions.append(rows.add_column(0, "sign", pa.array([sign] * rows.num_rows, pa.int8())))
        scratch.put("_delta_rows", pa.concat_tables(versions))
        touched = scratch.keep("_touched", "SELECT DISTINCT bucket_width, bucket_start FROM _delta_rows")
        buckets = list(zip(touched["bucket_width"].to_pylist(), touched["bucket_start"].to_pylist(), strict=True))
        if not buckets:
            return []
        lo, hi = bucket_span(buckets)
        within = _bucket_range(lo, hi)  # prunes the indicators by zone maps
        published = f"published_at >= {at(lo)} AND published_at < {at(hi)}"
        scratch.keep("_keys", _key_deltas(within))
        _story_moves(connection, scratch, published)
        _source_moves(scratch, published)
        _write(connection, _fresh_counts(), ("_keys", _KEY), _COUNTED, (lo, hi), now)
        _write(connection, _SHARES.format(within=within), ("_touched", _KEY[:2]), ("share",), (lo, hi), now)
    return buckets


def _with_former_stories(
    before: Versions, after: Versions, restoried: Mapping[str, tuple[str, float, datetime]]
) -> Versions:
    """A re-storied article's former version is its current one with its former story and novelty."""
    if not restoried:
        return before
    ids = pa.array(list(restoried), pa.string())
    facts = after.facts.filter(pc.is_in(after.facts["id"], ids))
    former = [restoried[article_id] for article_id in facts["id"].to_pylist()]
    facts = facts.set_column(
        facts.schema.get_field_index("story_id"), "story_id", pa.array([f[0] for f in former], pa.string())
    )
    facts = facts.set_column(
        facts.schema.get_field_index("novelty"), "novelty", pa.array([f[1] for f in former], pa.float64())
    )

    def extended(mine: pa.Table, current: pa.Table) -> pa.Table:
        return pa.concat_tables(
            [mine, current.filter(pc.is_in(current["article_id"], ids))], promote_options="permissive"
        )

    return Versions(
        facts=pa.concat_tables([before.facts, facts], promote_options="permissive"),
        entities=extended(before.entities, after.entities),
        dynamics=extended(before.dynamics, after.dynamics),
    )


def _key_deltas(within: str) -> str:
    """Per key touched: its stored measures and the change in its article count and sums."""
    old = ", ".join(f"max(value) FILTER (WHERE indicator = '{name}') AS old_{name}" for name in _COUNTED)
    return f"""
    WITH k AS (
        SELECT bucket_width, bucket_start, dynamic, entity, source, sum(sign) AS articles,
               sum(sign * {SCORE_NANOS}) AS score_nanos, sum(sign * {NOVELTY_NANOS}) AS novelty_nanos
        FROM _delta_rows GROUP BY ALL
    ),
    stored AS (
        SELECT i.bucket_width, i.bucket_start, i.dynamic, i.entity, i.source, {old}
        FROM (SELECT * FROM indicators WHERE {within} AND indicator IN ({_COUNTED_LIST})) i
        SEMI JOIN k ON {" AND ".join(f"i.{column} = k.{column}" for column in _KEY)}
        GROUP BY ALL
    )
    SELECT k.*, coalesce(stored.old_article_count, 0) + k.articles AS article_count,
           stored.* EXCLUDE ({_KEY_LIST})
    FROM k LEFT JOIN stored USING ({_KEY_LIST})
    """  # noqa: S608


def _story_moves(connection: duckdb.DuckDBPyConnection, scratch: Scratch, published: str) -> None:
    """``_story_moves``: per key, how many stories it gained or lost. A story counts in a key while any of its
    articles does; its articles after the write are looked up by story id in the buckets touched, and read as the
    changed ones are (:func:`_versions`). One step a statement, each kept (every hash table and aggregate of a
    statement holds whole blocks of the memory cap)."""
    scratch.keep(
        "_story_delta",
        "SELECT bucket_width, bucket_start, dynamic, entity, source, story_id, sum(sign) AS d"
        " FROM _delta_rows GROUP BY ALL HAVING sum(sign) <> 0",
    )
    stories = scratch.keep(
        "_member_stories",
        f"SELECT article_id, published_at FROM article_stories"  # noqa: S608
        f" WHERE {published} AND story_id IN (SELECT DISTINCT story_id FROM _story_delta)",
    )
    members = _versions(
        connection,
        dict(zip(stories["article_id"].to_pylist(), stories["published_at"].to_pylist(), strict=True)),
    )
    scratch.put("_member_scoped", scoped_arrow(members.facts, members.entities, members.dynamics))
    scratch.keep(
        "_story_after",
        "SELECT bucket_width, bucket_start, dynamic, entity, source, story_id, count(*) AS n"
        " FROM _member_scoped GROUP BY ALL",
    )
    scratch.keep(
        "_story_moves",
        f"""
        SELECT bucket_width, bucket_start, dynamic, entity, source,
               sum((coalesce(n, 0) > 0)::INTEGER - (coalesce(n, 0) - d > 0)::INTEGER) AS moved
        FROM _story_delta LEFT JOIN _story_after USING ({_KEY_LIST}, story_id)
        GROUP BY ALL
        """,  # noqa: S608
    )


def _source_moves(scratch: Scratch, published: str) -> None:
    """``_source_moves``: per key, how many sources it gained or lost. A source's articles in a key after the
    write: the key's own count for a source scope; the count of the source's scope under the same dynamic for an
    all-entity key; and, under an entity, its articles naming the entity, looked up. One step a statement."""
    scratch.keep(
        "_source_delta",
        "SELECT bucket_width, bucket_start, dynamic, entity, source, src, sum(sign) AS d"
        " FROM _delta_rows GROUP BY ALL HAVING sum(sign) <> 0",
    )
    scratch.keep(
        "_source_pairs",
        "SELECT DISTINCT bucket_width, bucket_start, dynamic, entity, src FROM _source_delta"
        " WHERE entity <> '*' AND source = '*'",
    )
    scratch.keep(
        "_named",
        f"""
        SELECT a.id, a.source AS src, a.published_at, e.entity
        FROM (SELECT id, source, published_at FROM articles
              WHERE {published} AND source IN (SELECT DISTINCT src FROM _source_pairs)) a
        JOIN (SELECT article_id, entity FROM article_entities
              WHERE {published} AND entity IN (SELECT DISTINCT entity FROM _source_pairs)) e ON e.article_id = a.id
        """,  # noqa: S608
    )
    scratch.keep(
        "_named_wanted",
        """
        WITH bucketed AS (
            SELECT id, src, entity, '1h' AS bucket_width, date_trunc('hour', published_at) AS bucket_start FROM _named
            UNION ALL SELECT id, src, entity, '1d', date_trunc('day', published_at) FROM _named
        )
        SELECT b.* FROM bucketed b
        SEMI JOIN (SELECT DISTINCT bucket_width, bucket_start, entity, src FROM _source_pairs) p
        USING (bucket_width, bucket_start, entity, src)
        """,
    )
    scratch.keep(
        "_named_labelled",
        f"SELECT article_id, dynamic FROM article_dynamics WHERE {published} AND label"  # noqa: S608
        " AND dynamic IN (SELECT DISTINCT dynamic FROM _source_pairs)"
        " AND article_id IN (SELECT id FROM _named_wanted)",
    )
    scratch.keep(
        "_entity_sources",
        """
        SELECT bucket_width, bucket_start, '*' AS dynamic, entity, src, count(*) AS n FROM _named_wanted GROUP BY ALL
        UNION ALL SELECT w.bucket_width, w.bucket_start, l.dynamic, w.entity, w.src, count(*)
            FROM _named_wanted w JOIN _named_labelled l ON l.article_id = w.id GROUP BY ALL
        """,
    )
    scratch.keep(
        "_source_moves",
        """
        WITH after AS (
            SELECT s.*, CASE WHEN s.source <> '*' THEN own.article_count
                             WHEN s.entity = '*' THEN scope.article_count
                             ELSE coalesce(named.n, 0) END AS n
            FROM _source_delta s
            LEFT JOIN _keys own USING (bucket_width, bucket_start, dynamic, entity, source)
            LEFT JOIN _keys scope ON scope.bucket_width = s.bucket_width AND scope.bucket_start = s.bucket_start
                 AND scope.dynamic = s.dynamic AND scope.entity = '*' AND scope.source = s.src
            LEFT JOIN _entity_sources named ON named.bucket_width = s.bucket_width
                 AND named.bucket_start = s.bucket_start AND named.dynamic = s.dynamic AND named.entity = s.entity
                 AND named.src = s.src
        )
        SELECT bucket_width, bucket_start, dynamic, entity, source,
               sum((n > 0)::INTEGER - (n - d > 0)::INTEGER) AS moved
        FROM after GROUP BY ALL
        """,
    )


def _fresh_counts() -> str:
    """Every counted measure of the touched keys after the write (none for a key left with no article)."""
    nanos = "round(coalesce(old_{0}, 0) * {1})::HUGEINT + {2}"
    return f"""
    SELECT k.bucket_width, k.bucket_start, k.dynamic, k.entity, k.source,
           k.article_count::DOUBLE AS article_count,
           (coalesce(k.old_story_count, 0) + coalesce(st.moved, 0))::DOUBLE AS story_count,
           (coalesce(k.old_source_count, 0) + coalesce(so.moved, 0))::DOUBLE AS source_count,
           CASE WHEN k.dynamic <> '*' THEN
                ({nanos.format("score_sum", NANOS_PER_UNIT, "k.score_nanos")}) / {NANOS_PER_UNIT} END AS score_sum,
           ({nanos.format("novelty", NANOS_PER_UNIT, "k.novelty_nanos")}) / {NANOS_PER_UNIT} AS novelty
    FROM _keys k
    LEFT JOIN _story_moves st USING (bucket_width, bucket_start, dynamic, entity, source)
    LEFT JOIN _source_moves so USING (bucket_width, bucket_start, dynamic, entity, source)
    WHERE k.article_count > 0
    """  # noqa: S608


_SHARES = """
SELECT i.bucket_width, i.bucket_start, i.dynamic, i.entity, i.source, i.value / t.value AS share
FROM (SELECT * FROM indicators WHERE {within} AND indicator = 'article_count') i
SEMI JOIN _touched a USING (bucket_width, bucket_start)
JOIN (SELECT * FROM indicators WHERE {within} AND indicator = 'article_count' AND dynamic = '*' AND entity = '*'
      AND source = '*') t USING (bucket_width, bucket_start)
"""


def _write(
    connection: duckdb.DuckDBPyConnection,
    wide: str,
    scope: tuple[str, Sequence[str]],
    names: Sequence[str],
    bounds: tuple[datetime, datetime],
    now: datetime | None,
) -> None:
    """Make the ``names`` rows of the keys (or buckets) in ``scope`` (a table and its key columns) those of
    ``wide`` (one column per indicator), rewriting only the rows whose value changed."""
    table, columns = scope
    listed = ", ".join(f"'{name}'" for name in names)
    select = "SELECT '{0}' AS indicator, dynamic, entity, source, bucket_width, bucket_start, {0} AS value"
    long = " UNION ALL ".join(select.format(name) + f" FROM _new_wide WHERE {name} IS NOT NULL" for name in names)
    on_scope = " AND ".join(f"i.{column} = k.{column}" for column in columns)
    with Scratch(connection) as scratch:
        scratch.keep("_new_wide", wide)
        scratch.keep("_new_values", long)
        _replace_changed(connection, f"{table} k WHERE {on_scope}", listed, bounds, now)


def _replace_changed(
    connection: duckdb.DuckDBPyConnection,
    scope: str,
    listed: str,
    bounds: tuple[datetime, datetime],
    now: datetime | None,
) -> None:
    """Delete the ``listed`` indicators of ``scope`` whose value is not the one in ``_new_values``; insert those of
    ``_new_values`` not stored."""
    connection.execute(
        f"DELETE FROM indicators i USING {scope} AND i.indicator IN ({listed})"  # noqa: S608
        f" AND {_bucket_range(*bounds, alias='i')}"
        " AND NOT EXISTS (SELECT 1 FROM _new_values n WHERE n.indicator = i.indicator AND n.dynamic = i.dynamic"
        " AND n.entity = i.entity AND n.source = i.source AND n.bucket_width = i.bucket_width"
        " AND n.bucket_start = i.bucket_start AND n.value = i.value)"
    )
    stamp = "now()" if now is None else "?::TIMESTAMPTZ"
    connection.execute(
        "INSERT INTO indicators SELECT n.*, " + stamp + " FROM _new_values n ANTI JOIN"  # noqa: S608
        f" (SELECT * FROM indicators WHERE {_bucket_range(*bounds)} AND indicator IN ({listed})) i"
        " ON n.indicator = i.indicator AND n.dynamic = i.dynamic AND n.entity = i.entity AND n.source = i.source"
        " AND n.bucket_width = i.bucket_width AND n.bucket_start = i.bucket_start",
        [] if now is None else [now],
    )


def _bucket_range(lo: datetime, hi: datetime, alias: str = "") -> str:
    column = f"{alias}.bucket_start" if alias else "bucket_start"
    return f"{column} >= {at(lo)} AND {column} < {at(hi)}"
