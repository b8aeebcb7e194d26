"""Derived rows, kept inside the write transaction: entities, stories, and every derived indicator.

After writing a batch of articles the sink knows the articles it changed (the batch's, and those whose story or
novelty changed) and brings the indicators up to date in the same transaction: by increments where the days it
touches are full (increments.py), by a recount of their buckets from the stored rows where they are small (this
module). Both give the same rows. A crash rolls everything back together; a replay changes nothing; ``rebuild``
recounts every bucket, so it equals what the stream produced::

    derivation = Derivation(Gazetteer(), composites=(CompositeIndex("moat", {"edge": 1.0}),))
    before = capture(connection, replaced)                          # stored versions about to be replaced
    changes = derivation.derive_articles(connection, tagged, replaced, before)   # entities + stories
    derivation.apply(connection, changes)                           # measures, composites, baselines

    for chunk in rebuild_chunks(connection):                     # rebuild: whole days, one transaction each
        derivation.rebuild_chunk(connection, chunk)                 # (rebuild_plan.py)
    derivation.rebuild_signals(connection)                       # then the baselines, in one more

The recount's scratch rows live in TEMP tables, which DuckDB can spill within ``storage.memory_limit``. A TEMP
table replaced inside a transaction keeps its former versions until the commit, so ``rebuild`` commits each chunk.

A write costs what it writes, not what the store holds: the per-article tables carry ``published_at`` and the
indicators ``bucket_start``, both in about insertion order, and every statement of a write is bounded by the time
range of what it touches (its buckets; the dates replaced articles had), so DuckDB reads only the row groups whose
min/max (zone maps) overlap it. The one statement that reads a whole column is the store's lookup of the batch's
ids (an id may be anywhere in time). A write that touches far-apart days (an article re-published a year later)
reads the row groups between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from stackwatch.signals.baselines import BaselineParams, BaselineState, baselines
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.indicators import COMPOSITE, MEASURES, SIGNALS, WINDOWS
from stackwatch.signals.messages import TaggedArticle
from stackwatch.storage.clustering import cluster
from stackwatch.storage.entity_rows import entity_table, rematch
from stackwatch.storage.entity_rows import insert as insert_entities
from stackwatch.storage.increments import Changes, Versions, apply_increments
from stackwatch.storage.rebuild_plan import Bucket, RebuildChunk, bucket_span
from stackwatch.storage.scopes import NANOS_PER_UNIT, NOVELTY_NANOS, SCORE_NANOS, bucketed, scoped
from stackwatch.storage.scratch import Scratch, registered
from stackwatch.storage.zonemaps import at, span

__all__ = ["INCREMENTS_ABOVE", "Bucket", "Changes", "Derivation"]

_MEASURE_LIST = ", ".join(f"'{name}'" for name in MEASURES)
INCREMENTS_ABOVE = 5_000
"""Stored articles in the days a write touches above which increments cost less than a recount: a 100-article
write into days of 6,700 articles cost the same both ways, into days of 20,000 0.55x by increments, into days of
70 twice as much (a fixed cost of about 40 small statements)."""
_STATES_PER_INSERT = 50_000
"""Baseline rows gathered before they are inserted (a rebuild's hourly series hold tens of thousands each)."""
_SIGNAL_LIST = ", ".join(f"'{name}'" for name in SIGNALS)

# The recount: every measure of the buckets in _affected, from all of their stored rows.
_RECOUNT = f"""
CREATE OR REPLACE TEMP TABLE _facts AS
    WITH a AS (
        SELECT a.id, a.source, a.published_at, coalesce(s.story_id, a.id) AS story_id,
               coalesce(s.novelty, 1.0) AS novelty
        FROM (SELECT id, source, published_at FROM articles WHERE published_at >= {{lo}} AND published_at < {{hi}}) a
        LEFT JOIN (SELECT article_id, story_id, novelty FROM article_stories
                   WHERE published_at >= {{lo}} AND published_at < {{hi}}) s ON s.article_id = a.id
    ),
    b AS ({bucketed("a")})
    SELECT b.* FROM b SEMI JOIN _affected f ON f.bucket_width = b.bucket_width AND f.bucket_start = b.bucket_start;
CREATE OR REPLACE TEMP TABLE _entities AS
    SELECT article_id, entity FROM article_entities WHERE published_at >= {{lo}} AND published_at < {{hi}};
CREATE OR REPLACE TEMP TABLE _dynamics AS
    SELECT article_id, dynamic, score FROM article_dynamics
    WHERE published_at >= {{lo}} AND published_at < {{hi}} AND label;
CREATE OR REPLACE TEMP TABLE _scoped AS {scoped("_facts", "_entities", "_dynamics")};
CREATE OR REPLACE TEMP TABLE _measures AS
    SELECT m.*, m.article_count / t.article_count AS share
    FROM (SELECT bucket_width, bucket_start, dynamic, entity, source, count(*)::DOUBLE AS article_count,
                 count(DISTINCT story_id)::DOUBLE AS story_count, count(DISTINCT src)::DOUBLE AS source_count,
                 sum({SCORE_NANOS}) / {NANOS_PER_UNIT} AS score_sum,
                 sum({NOVELTY_NANOS}) / {NANOS_PER_UNIT} AS novelty
          FROM _scoped GROUP BY ALL) m
    JOIN (SELECT bucket_width, bucket_start, count(*)::DOUBLE AS article_count FROM _facts GROUP BY ALL) t
      USING (bucket_width, bucket_start);
"""  # noqa: S608 (names and literals of this package only)


@dataclass(frozen=True)
class Derivation:
    """What the store derives from articles: the gazetteer, composite indices and baseline parameters."""

    gazetteer: Gazetteer = field(default_factory=Gazetteer)
    composites: tuple[CompositeIndex, ...] = ()
    baseline: BaselineParams = field(default_factory=BaselineParams)
    increments_above: int = INCREMENTS_ABOVE
    """A write keeps measures by increments when the days it touches hold more stored articles than this, and
    recounts their buckets otherwise (both give the same rows; each is the cheaper on its side)."""

    # -- per article: entities and stories ---------------------------------------------------------------

    def derive_articles(
        self,
        connection: duckdb.DuckDBPyConnection,
        tagged: Sequence[TaggedArticle],
        replaced: Mapping[str, datetime] | None = None,
        before: Versions | None = None,
    ) -> Changes:
        """Write the batch's entities and stories; return the articles changed: the batch's, and those whose story
        or novelty changed. ``replaced``: the stored ``published_at`` of the batch's articles that were stored
        before (their rows are looked for at those dates: a new article has none); ``before``, their stored
        versions, captured before the write replaced them (increments.capture)."""
        if not tagged:
            return Changes({}, {})
        replaced = replaced or {}
        rows = entity_table(
            self.gazetteer, ((item.article.id, item.article.text, item.article.published_at) for item in tagged)
        )
        if old := span(replaced.values()):
            connection.execute(
                f"DELETE FROM article_entities WHERE published_at BETWEEN {old[0]} AND {old[1]}"  # noqa: S608
                " AND list_contains(?, article_id)",
                [list(replaced)],
            )
        insert_entities(connection, rows)
        batch = {item.article.id: item.article.published_at for item in tagged}
        restoried = cluster(connection, tagged, replaced)
        return Changes(batch, {key: value for key, value in restoried.items() if key not in batch}, before)

    # -- per write: measures by increments, then composites and baselines ---------------------------------

    def apply(self, connection: duckdb.DuckDBPyConnection, changes: Changes, *, now: datetime | None = None) -> None:
        """Bring every derived indicator up to date after a write: the measures of what ``changes`` touch, by
        increments (increments.py), then the composites and baselines of their buckets."""
        touched = changes.buckets()
        if not self._fuller_than_increments_need(connection, touched):
            self.recompute(connection, touched, now=now)
            return
        buckets = apply_increments(connection, changes, now)
        if not buckets:
            return
        lo, hi = bucket_span(buckets)
        within = f" AND i.bucket_start >= {at(lo)} AND i.bucket_start < {at(hi)}"
        per_dynamic = ", ".join(f"max(value) FILTER (WHERE indicator = '{name}') AS {name}" for name in MEASURES)
        with Scratch(connection) as scratch:
            scratch.put(
                "_touched_buckets",
                pa.table(
                    {
                        "bucket_width": [window for window, _ in buckets],
                        "bucket_start": pa.array([start for _, start in buckets], pa.timestamp("us", "UTC")),
                    }
                ),
            )
            scratch.keep(  # the composites' inputs, as the recount's _measures has them
                "_dynamic_measures",
                f"SELECT bucket_width, bucket_start, dynamic, entity, source, {per_dynamic} FROM indicators i"  # noqa: S608
                f" SEMI JOIN _touched_buckets USING (bucket_width, bucket_start) WHERE entity = '*' AND source = '*'"
                f" AND indicator IN ({_MEASURE_LIST}){within} GROUP BY ALL",
            )
            self._composites(connection, now, within, ("_touched_buckets", "_dynamic_measures"))
        self.recompute_signals(connection, buckets, now=now)

    def _fuller_than_increments_need(self, connection: duckdb.DuckDBPyConnection, touched: set[Bucket]) -> bool:
        days = sorted({start for window, start in touched if window == "1d"})
        if self.increments_above <= 0 or not days:
            return bool(days)
        rows = connection.execute(
            "SELECT coalesce(sum(value), 0) FROM indicators WHERE indicator = 'article_count' AND dynamic = '*'"  # noqa: S608
            f" AND entity = '*' AND source = '*' AND bucket_width = '1d' AND bucket_start >= {at(days[0])}"
            f" AND bucket_start <= {at(days[-1])} AND list_contains(?, bucket_start)",
            [days],
        ).fetchall()
        return bool(rows and rows[0][0] > self.increments_above)

    # -- per bucket, recounted: measures, composites, baselines (rebuild) -----------------------------

    def recompute(
        self,
        connection: duckdb.DuckDBPyConnection,
        buckets: Iterable[Bucket],
        *,
        signals: bool = True,
        now: datetime | None = None,
    ) -> int:
        """Recompute every derived indicator of ``buckets`` from stored rows; returns the rows written."""
        chosen = sorted(set(buckets))
        if not chosen:
            return 0
        when = pa.timestamp("us", "UTC")
        affected = pa.table(
            {
                "bucket_width": [window for window, _ in chosen],
                "bucket_start": pa.array([start for _, start in chosen], when),
                "bucket_end": pa.array(
                    [start + WINDOWS[window] for window, start in chosen], pa.timestamp("us", "UTC")
                ),
            }
        )
        with registered(connection, "_affected_rows", affected):
            connection.execute("CREATE OR REPLACE TEMP TABLE _affected AS SELECT * FROM _affected_rows")
        lo, hi = bucket_span(chosen)
        for statement in _RECOUNT.format(lo=at(lo), hi=at(hi)).split(";")[:-1]:  # one at a time: each profiled
            connection.execute(statement)
        within = f" AND i.bucket_start >= {at(lo)} AND i.bucket_start < {at(hi)}"  # prunes by zone maps
        template = "SELECT '{0}' AS indicator, dynamic, entity, source, bucket_width, bucket_start, {0} AS value"
        selects = " UNION ALL ".join(
            template.format(name) + " FROM _measures" + (" WHERE dynamic <> '*'" if name == "score_sum" else "")
            for name in MEASURES
        )
        connection.execute("CREATE OR REPLACE TEMP TABLE _fresh AS " + selects)
        # Rewrite only what changed: a recomputed bucket mostly holds the values it already had.
        connection.execute(
            f"DELETE FROM indicators i USING _affected f WHERE i.bucket_width = f.bucket_width"  # noqa: S608
            f" AND i.bucket_start = f.bucket_start AND i.indicator IN ({_MEASURE_LIST}){within}"
            " AND NOT EXISTS (SELECT 1 FROM _fresh n WHERE n.indicator = i.indicator AND n.dynamic = i.dynamic"
            " AND n.entity = i.entity AND n.source = i.source AND n.bucket_width = i.bucket_width"
            " AND n.bucket_start = i.bucket_start AND n.value = i.value)"
        )
        stamp = "now()" if now is None else "?::TIMESTAMPTZ"
        written = connection.execute(
            "INSERT INTO indicators SELECT n.*, " + stamp + " FROM _fresh n ANTI JOIN"  # noqa: S608
            " (SELECT * FROM indicators i WHERE true" + within + ") i"
            " ON n.indicator = i.indicator AND n.dynamic = i.dynamic AND n.entity = i.entity AND n.source = i.source"
            " AND n.bucket_width = i.bucket_width AND n.bucket_start = i.bucket_start",
            [] if now is None else [now],
        ).fetchone()
        count = int(written[0]) if written else 0
        count += self._composites(connection, now, within)
        if signals:
            count += self.recompute_signals(connection, chosen, now=now)
        return count

    def _composites(
        self,
        connection: duckdb.DuckDBPyConnection,
        now: datetime | None,
        within: str,
        tables: tuple[str, str] = ("_affected", "_measures"),
    ) -> int:
        """Replace the composites of the buckets in ``tables[0]`` by their values over the per-dynamic measures in
        ``tables[1]``."""
        buckets, measures = tables
        connection.execute(
            f"DELETE FROM indicators i USING {buckets} f WHERE i.bucket_width = f.bucket_width"  # noqa: S608
            f" AND i.bucket_start = f.bucket_start AND i.indicator = '{COMPOSITE}'" + within
        )
        rows: list[tuple[str, str, datetime, float]] = []
        for composite in self.composites:
            values: dict[tuple[str, datetime], dict[str, float]] = {}
            for window, start, dynamic, value in connection.execute(
                f"SELECT bucket_width, bucket_start, dynamic, {composite.indicator} FROM {measures}"  # noqa: S608
                " WHERE entity = '*' AND source = '*' AND list_contains(?, dynamic)",
                [list(composite.weights)],
            ).fetchall():
                values.setdefault((window, start), {})[dynamic] = float(value or 0.0)
            # A bucket left with no article (its articles were re-dated) has no composite, as after a rebuild.
            starts = connection.execute(f"SELECT DISTINCT bucket_width, bucket_start FROM {measures}").fetchall()  # noqa: S608
            rows += [(composite.name, w, s, composite.value(values.get((w, s), {}))) for w, s in starts]
        self._insert(connection, [(COMPOSITE, name, w, s, v) for name, w, s, v in rows], now)
        return len(rows)

    def recompute_signals(
        self, connection: duckdb.DuckDBPyConnection, buckets: Iterable[Bucket], *, now: datetime | None = None
    ) -> int:
        """EWMA baselines, z-scores and momentum of each dynamic's ``article_count``, from the earliest bucket of
        ``buckets`` on (the values before it cannot have changed: every signal is causal), resumed from the state
        ``baseline_state`` holds for the bucket before it: the cost follows the buckets rewritten, not the
        series' length. A series is dense from its first counted bucket to its last (empty buckets count 0), and
        so are its state rows."""
        earliest: dict[str, datetime] = {}
        for window, start in buckets:
            earliest[window] = min(start, earliest.get(window, start))
        written = 0
        rows: list[tuple[str, str, str, datetime, float]] = []
        states: list[tuple[str, str, datetime, BaselineState]] = []
        for window, since in earliest.items():
            series: dict[str, dict[datetime, float]] = {}
            for dynamic, start, value in connection.execute(
                f"SELECT dynamic, bucket_start, value FROM indicators WHERE indicator = 'article_count'"  # noqa: S608
                f" AND entity = '*' AND source = '*' AND bucket_width = ? AND bucket_start >= {at(since)}",
                [window],
            ).fetchall():
                series.setdefault(dynamic, {})[start] = float(value)
            resumed = _states_before(connection, window, since, sorted(series))
            ended = _series_with_state_from(connection, window, since) - series.keys()
            for table, only in (("indicators", f" AND indicator IN ({_SIGNAL_LIST})"), ("baseline_state", "")):
                connection.execute(
                    f"DELETE FROM {table} WHERE bucket_width = ? AND bucket_start >= {at(since)}" + only,  # noqa: S608
                    [window],
                )
            if ended:
                _trim_ended(connection, window, since, sorted(ended))
            step = WINDOWS[window]
            for dynamic, points in series.items():
                prior = resumed.get(dynamic)
                dense_starts = _dense(prior[0] + step if prior else min(points), max(points), step)
                values = [points.get(start, 0.0) for start in dense_starts]
                computed = baselines(values, self.baseline, prior[1] if prior else None)
                for start, point in zip(dense_starts, computed, strict=True):
                    rows += [
                        ("ewma_mean", dynamic, window, start, point.mean),
                        ("ewma_dev", dynamic, window, start, point.deviation),
                        ("zscore", dynamic, window, start, point.zscore),
                        ("momentum", dynamic, window, start, point.momentum),
                    ]
                    states.append((dynamic, window, start, point.state))
                if len(states) >= _STATES_PER_INSERT:  # a rebuild holds years of hourly buckets
                    written += self._flush_signals(connection, rows, states, now)
        return written + self._flush_signals(connection, rows, states, now)

    def _flush_signals(
        self,
        connection: duckdb.DuckDBPyConnection,
        rows: list[tuple[str, str, str, datetime, float]],
        states: list[tuple[str, str, datetime, BaselineState]],
        now: datetime | None,
    ) -> int:
        """Insert and clear the signal and state rows gathered so far; returns the signal rows written."""
        written = len(rows)
        self._insert(connection, rows, now)
        _insert_states(connection, states)
        rows.clear()
        states.clear()
        return written

    def _insert(
        self,
        connection: duckdb.DuckDBPyConnection,
        rows: Sequence[tuple[str, str, str, datetime, float]],
        now: datetime | None,
    ) -> None:
        if not rows:
            return
        table = pa.table(
            {
                "indicator": [row[0] for row in rows],
                "dynamic": [row[1] for row in rows],
                "bucket_width": [row[2] for row in rows],
                "bucket_start": pa.array([row[3] for row in rows], pa.timestamp("us", "UTC")),
                "value": pa.array([row[4] for row in rows], pa.float64()),
            }
        )
        stamp = "now()" if now is None else "?::TIMESTAMPTZ"
        insert = "INSERT INTO indicators SELECT indicator, dynamic, '*', '*', bucket_width, bucket_start"
        with registered(connection, "_derived_rows", table):
            connection.execute(insert + ", value, " + stamp + " FROM _derived_rows", [] if now is None else [now])

    # -- rebuild: every bucket, a chunk per transaction (planned by rebuild_plan.py) -------------------

    def rebuild_chunk(self, connection: duckdb.DuckDBPyConnection, chunk: RebuildChunk) -> int:
        """Replace the measures and composites of every bucket starting in the chunk's range by their values
        recomputed from stored rows (the baselines are :meth:`rebuild_signals`'); returns the rows written. The
        entities of the chunk's articles are matched again first, with the gazetteer of now (entity_rows.py)."""
        rematch(connection, self.gazetteer, chunk.since, chunk.until)
        bounds, params = [], []
        if chunk.since is not None:
            bounds.append(" AND bucket_start >= ?")
            params.append(chunk.since)
        if chunk.until is not None:
            bounds.append(" AND bucket_start < ?")
            params.append(chunk.until)
        connection.execute(
            f"DELETE FROM indicators WHERE indicator IN ({_MEASURE_LIST}, '{COMPOSITE}')" + "".join(bounds),  # noqa: S608
            params,
        )
        return self.recompute(connection, chunk.buckets, signals=False)

    def rebuild_signals(self, connection: duckdb.DuckDBPyConnection) -> int:
        """Replace every baseline, z-score and momentum (and their state) by their values over the stored article
        counts, each series from its first bucket."""
        connection.execute(f"DELETE FROM indicators WHERE indicator IN ({_SIGNAL_LIST})")  # noqa: S608
        connection.execute("DELETE FROM baseline_state")
        firsts = connection.execute(
            "SELECT bucket_width, min(bucket_start) FROM indicators WHERE indicator = 'article_count'"
            " AND entity = '*' AND source = '*' GROUP BY bucket_width"
        ).fetchall()
        return self.recompute_signals(connection, [(row[0], row[1]) for row in firsts])


def _dense(first: datetime, last: datetime, step: timedelta) -> list[datetime]:
    count = int((last - first) / step) + 1
    return [first + step * index for index in range(count)]


def _states_before(
    connection: duckdb.DuckDBPyConnection, window: str, since: datetime, dynamics: Sequence[str]
) -> dict[str, tuple[datetime, BaselineState]]:
    """Each series' last state before ``since``: the bucket just before it, or, for a series that was quiet up
    to ``since`` (or starts there), its last bucket before it, if any."""
    if not dynamics:
        return {}
    select = "SELECT dynamic, bucket_start, mean, variance, fast, slow FROM baseline_state WHERE bucket_width = ?"
    rows = connection.execute(
        f"{select} AND bucket_start >= {at(since - WINDOWS[window])} AND bucket_start < {at(since)}"
        " AND list_contains(?, dynamic)",
        [window, list(dynamics)],
    ).fetchall()
    found = {row[0]: (row[1], BaselineState(*row[2:])) for row in rows}
    if missing := [dynamic for dynamic in dynamics if dynamic not in found]:
        rows = connection.execute(
            f"{select} AND bucket_start < {at(since)} AND list_contains(?, dynamic)"
            " QUALIFY row_number() OVER (PARTITION BY dynamic ORDER BY bucket_start DESC) = 1",
            [window, missing],
        ).fetchall()
        found |= {row[0]: (row[1], BaselineState(*row[2:])) for row in rows}
    return found


def _series_with_state_from(connection: duckdb.DuckDBPyConnection, window: str, since: datetime) -> set[str]:
    rows = connection.execute(
        f"SELECT DISTINCT dynamic FROM baseline_state WHERE bucket_width = ? AND bucket_start >= {at(since)}",  # noqa: S608
        [window],
    ).fetchall()
    return {row[0] for row in rows}


def _trim_ended(connection: duckdb.DuckDBPyConnection, window: str, since: datetime, dynamics: list[str]) -> None:
    """Series that no longer reach ``since`` (their articles there were replaced): drop their state and signals
    after their new last bucket (all of them, for a series with no bucket left)."""
    lasts = dict(
        connection.execute(
            "SELECT dynamic, max(bucket_start) FROM indicators WHERE indicator = 'article_count'"  # noqa: S608
            f" AND entity = '*' AND source = '*' AND bucket_width = ? AND bucket_start < {at(since)}"
            " AND list_contains(?, dynamic) GROUP BY dynamic",
            [window, dynamics],
        ).fetchall()
    )
    for dynamic in dynamics:
        after = "" if lasts.get(dynamic) is None else f" AND bucket_start > {at(lasts[dynamic])}"
        for table, only in (("indicators", f" AND indicator IN ({_SIGNAL_LIST})"), ("baseline_state", "")):
            connection.execute(
                f"DELETE FROM {table} WHERE bucket_width = ? AND dynamic = ?{after}{only}",  # noqa: S608
                [window, dynamic],
            )


def _insert_states(
    connection: duckdb.DuckDBPyConnection, states: Sequence[tuple[str, str, datetime, BaselineState]]
) -> None:
    if not states:
        return
    table = pa.table(
        {
            "dynamic": [row[0] for row in states],
            "bucket_width": [row[1] for row in states],
            "bucket_start": pa.array([row[2] for row in states], pa.timestamp("us", "UTC")),
            "mean": pa.array([row[3].mean for row in states], pa.float64()),
            "variance": pa.array([row[3].variance for row in states], pa.float64()),
            "fast": pa.array([row[3].fast for row in states], pa.float64()),
            "slow": pa.array([row[3].slow for row in states], pa.float64()),
        }
    )
    with registered(connection, "_state_rows", table):
        connection.execute("INSERT INTO baseline_state SELECT * FROM _state_rows")
