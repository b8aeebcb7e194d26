"""The store at millions of articles, within ``storage.memory_limit``: what each storage operation costs as the store
grows.

    python -m benchmarks.scale                                   # 1,000,000 and 10,000,000 articles, 1GB cap
    python -m benchmarks.scale --sizes 1000000 --memory-limit 1GB

For each size it fills a fresh DuckDB file with four years of a news market (:class:`benchmarks.fill.Market`:
volume growing over the years, a few outlets carrying most of it, the built-in dynamics rising, falling and
spiking, the gazetteer's entities skewed, wire stories syndicated by up to 40 outlets, alerts with evidence),
straight through SQL, then measures in this order:

1. ``rebuild`` (every derived indicator, from the articles), as ``stackwatch rebuild`` runs it;
2. the file's size, checkpointed;
3. p50/p95 of the dashboard's page reads (overview, a dynamic, an entity, an article, a search) over the ranges
   the dashboard offers, and of ten typical analyst queries, on the writer's connection as the service runs them
   (one warm-up each, not counted);
4. the sink's per-write cost: ``--writes`` batches of ``--batch`` articles, each published within a day and a half
   at the live edge amid the stored ones (median; ratio against the smallest size of the run: flat is the goal);
5. retention (bodies older than 90 days, as the service's default) and Parquet export, as their commands run them.

Every size ends by checking that the counts agree (rows written, rebuilt, dropped and exported). Progress goes to
stderr; figures to stdout. Peak RSS is this process's high-water mark during the size (reset between sizes where
Linux allows it).
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.fill import Filled, Market, fill_market, phrase, synthetic
from benchmarks.machine import machine
from stackwatch.pipeline.web.dashboard.ranges import RANGES
from stackwatch.pipeline.web.dashboard.search import PAGE_SIZE
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entities import Gazetteer
from stackwatch.storage.dashboard import (
    Range,
    SearchFilters,
    article_detail,
    dynamic_detail,
    entity_detail,
    overview,
    search_articles,
)
from stackwatch.storage.derive import Derivation
from stackwatch.storage.maintenance import EXPORTS, apply_retention, export_parquet
from stackwatch.storage.store import DEFAULT_MEMORY_LIMIT, Batch, Store

__all__ = ["QUERIES", "Options", "Result", "duckdb_peak", "main", "measure", "peak_rss", "reset_peak_rss"]

COMPOSITES = (CompositeIndex("moat_pressure", {"decoupling": 1, "edge": 1, "exclusivity": -1, "capex": -1}),)
"""The composite of the docs' example, so the overview reads one."""
BODY_DAYS = 90
"""Retention's ``storage.retention.body_days`` (the service's default)."""

QUERIES: dict[str, str] = {
    "weekly volume per dynamic, 26 weeks": (
        "SELECT date_trunc('week', day) AS week, dynamic, sum(articles) AS articles FROM daily_dynamic_volume"
        " WHERE day >= now() - INTERVAL 26 WEEKS GROUP BY ALL ORDER BY week, dynamic"
    ),
    "top entities per dynamic, this month": (
        "SELECT dynamic, entity, sum(value) AS articles FROM indicators WHERE indicator = 'article_count'"
        " AND bucket_width = '1d' AND dynamic <> '*' AND entity <> '*' AND source = '*'"
        " AND bucket_start >= date_trunc('month', now()) GROUP BY dynamic, entity"
        " QUALIFY rank() OVER (PARTITION BY dynamic ORDER BY sum(value) DESC, entity) <= 5"
        " ORDER BY dynamic, articles DESC"
    ),
    "an entity's dynamics by month": (
        "SELECT date_trunc('month', bucket_start) AS month, dynamic, sum(value) AS articles FROM indicators"
        " WHERE indicator = 'article_count' AND bucket_width = '1d' AND entity = 'NVIDIA' AND dynamic <> '*'"
        " AND source = '*' GROUP BY ALL ORDER BY month, dynamic"
    ),
    "stories carried by most outlets, 90 days": (
        "SELECT title, sources, articles, first_seen FROM stories WHERE first_seen >= now() - INTERVAL 90 DAYS"
        " ORDER BY sources DESC, articles DESC LIMIT 20"
    ),
    "alerts with evidence": "SELECT fired_at, rule, dynamic, value, status, evidence FROM latest_alerts LIMIT 20",
    "source volumes, 30 days": (
        "SELECT source, count(*) AS articles, max(published_at) AS latest FROM articles"
        " WHERE published_at >= now() - INTERVAL 30 DAYS GROUP BY source ORDER BY articles DESC"
    ),
    "share of coverage per dynamic, weekly": (
        "SELECT date_trunc('week', bucket_start) AS week, dynamic, avg(value) AS share FROM indicators"
        " WHERE indicator = 'share' AND bucket_width = '1d' AND dynamic <> '*' AND entity = '*' AND source = '*'"
        " AND bucket_start >= now() - INTERVAL 182 DAYS GROUP BY ALL ORDER BY week, dynamic"
    ),
    "z-score peaks": (
        "SELECT bucket_start, dynamic, value AS zscore FROM indicators WHERE indicator = 'zscore'"
        " AND bucket_width = '1d' AND value >= 3 ORDER BY value DESC, bucket_start LIMIT 20"
    ),
    "full-text LIKE search": (
        "SELECT id, title, source, published_at FROM articles WHERE title ILIKE '%stargate%'"
        " OR summary ILIKE '%stargate%' ORDER BY published_at DESC LIMIT 50"
    ),
    "one company's articles by day, 90 days": (
        "SELECT a.published_at::DATE AS day, count(*) AS articles, count(DISTINCT a.source) AS sources"
        " FROM articles a JOIN article_entities e ON e.article_id = a.id WHERE e.entity = 'AMD'"
        " AND a.published_at >= now() - INTERVAL 90 DAYS GROUP BY ALL ORDER BY day"
    ),
}
"""Ten queries an analyst runs with ``stackwatch sql`` (checked read-only, as the service checks them)."""

_OLD_BODIES = "SELECT count(*) FROM articles WHERE body IS NOT NULL AND published_at < ?"
PER_ARTICLE = ("articles", "article_dynamics", "article_entities", "article_stories", "stories")

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    days: int = 4 * 365 + 1
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    batch: int = 5_000
    writes: int = 3
    repeats: int = 20
    end: datetime | None = None
    """Where every size's market ends (default: the next hour)."""


@dataclass(frozen=True, slots=True)
class Spread:
    """Seconds at the 50th and 95th percentiles of a set of timings."""

    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        if len(seconds) < 2:
            return cls(seconds[0], seconds[0])
        cuts = statistics.quantiles(seconds, n=20, method="inclusive")
        return cls(cuts[9], cuts[18])


@dataclass
class Steps:
    """A job's ``progress(done, total)``: remembers the last call, logs each tenth of the way and the end."""

    label: str
    log: Log
    last: tuple[int, int] = (0, 0)
    started: float = field(default_factory=time.perf_counter)
    _shown: int = -1

    def __call__(self, done: int, total: int) -> None:
        self.last = (done, total)
        tenth = done * 10 // max(total, 1)
        if tenth > self._shown:
            self._shown = tenth
            elapsed = time.perf_counter() - self.started
            self.log(f"  {self.label:10s} {tenth * 10:3d}% ({done:,}/{total:,} steps, {elapsed:,.0f} s)")

    @property
    def finished(self) -> bool:
        return self.last[1] > 0 and self.last[0] == self.last[1]


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    expected: int
    actual: int


@dataclass
class Result:
    """What one size measured (seconds, bytes, rows)."""

    size: int
    days: int
    filled: Filled
    fill_seconds: float
    rebuild_seconds: float
    rebuilt_rows: int
    rebuild_steps: tuple[int, int]
    file_bytes: int
    pages: dict[str, Spread]
    queries: dict[str, Spread]
    stored_per_day: float
    write_seconds: list[float]
    batch: int
    retention_seconds: float
    bodies_dropped: int
    retention_steps: tuple[int, int]
    export_seconds: float
    export_bytes: int
    export_steps: tuple[int, int]
    counts: dict[str, int]
    checks: list[Check]
    rss: dict[str, int]
    duckdb_memory: dict[str, int]
    """Each step's peak of the memory DuckDB accounts for (``duckdb_memory()``: what ``memory_limit`` caps)."""
    """Peak RSS of each step (fill, rebuild, reads, sink, retention, export), bytes."""
    finished: dict[str, bool]
    """Whether each job's progress reached its last step."""

    @property
    def write_median(self) -> float:
        return statistics.median(self.write_seconds)

    @property
    def peak_rss(self) -> int:
        return max(self.rss.values())

    @property
    def mismatches(self) -> list[Check]:
        return [check for check in self.checks if check.expected != check.actual]


def reset_peak_rss() -> None:
    """Reset this process's RSS high-water mark (Linux 4.0+: ``5`` to ``/proc/self/clear_refs``), if allowed."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss() -> int:
    try:
        found = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    except OSError:
        found = None
    kilobytes = int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes * 1024


_SAMPLED = ("reads", "sink")
"""The steps whose DuckDB memory is sampled. A sampling query is a transaction: it keeps DuckDB from checkpointing
while it is open (retention's CHECKPOINT fails; fill and rebuild would leave the file larger), so the steps that
write in bulk are measured by ``python -m benchmarks.rebuild_memory`` instead."""


@contextmanager
def duckdb_peak(connection: duckdb.DuckDBPyConnection, every: float = 0.1) -> Iterator[list[int]]:
    """The highest total of ``duckdb_memory()`` seen while the block runs, sampled from a thread of its own (a
    cursor: DuckDB serves it beside the block's statements)."""
    peak = [0]
    done = threading.Event()
    cursor = connection.cursor()

    def sample() -> None:
        while not done.is_set():
            row = cursor.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
            peak[0] = max(peak[0], int(row[0] or 0) if row else 0)
            done.wait(every)

    sampler = threading.Thread(target=sample, name="duckdb-memory", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        cursor.close()


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _spread(calls: Sequence[Callable[[], Any]], repeats: int) -> Spread:
    """Timings of ``repeats`` calls, taken in turn from ``calls``, after one warm-up call of each."""
    for call in calls:
        call()
    return Spread.of([_timed(calls[number % len(calls)])[0] for number in range(repeats)])


def _one(store: Store, sql: str, params: Sequence[Any] = ()) -> int:
    row = store.connection.execute(sql, list(params)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def page_reads(store: Store, market: Market, now: datetime) -> dict[str, list[Callable[[], object]]]:
    """Each dashboard page's read, over the ranges the dashboard offers and a spread of names and filters."""
    connection = store.connection
    ranges = [Range(days, width) for days, width in RANGES]
    dynamics = list(market.dynamics)
    entities = [entity.name for entity in market.entities]
    picks = [entities[0], entities[len(entities) // 2], entities[-1], entities[1]]
    picked = connection.execute(  # as the pages link them: with the UTC day each was published on
        "SELECT id, (published_at AT TIME ZONE 'UTC')::DATE FROM articles "
        "USING SAMPLE reservoir(20 ROWS) REPEATABLE (7) ORDER BY id"
    ).fetchall()
    names = [composite.name for composite in COMPOSITES]
    searches = [
        SearchFilters(q="stargate"),
        SearchFilters(q="GPU cluster", dynamic=dynamics[0]),
        SearchFilters(entity=entities[1], since=now - timedelta(days=30)),
        SearchFilters(q="chip", source=market.sources()[0]),
        SearchFilters(q="export licence", until=now - timedelta(days=365)),
    ]
    return {
        "overview": [partial(overview, connection, r, dynamics, names) for r in ranges],
        "dynamic_detail": [partial(dynamic_detail, connection, d, r) for r in ranges for d in dynamics[: len(ranges)]],
        "entity_detail": [partial(entity_detail, connection, e, r) for r in ranges for e in picks],
        "article_detail": [partial(article_detail, connection, str(key), day) for key, day in picked],
        "search": [partial(search_articles, connection, f, PAGE_SIZE) for f in searches],
    }


@dataclass
class _Run:
    """One size being measured: its store and market, and what its steps record."""

    store: Store
    market: Market
    options: Options
    log: Log
    checks: list[Check] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)
    duckdb_memory: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record the step's peak RSS (the high-water mark is reset before it, where Linux allows), and for the
        :data:`_SAMPLED` steps DuckDB's own peak."""
        reset_peak_rss()
        with duckdb_peak(self.store.connection) if name in _SAMPLED else nullcontext([0]) as peak:
            yield
        self.rss[name] = peak_rss()
        if name in _SAMPLED:
            self.duckdb_memory[name] = peak[0]

    def check(self, what: str, expected: int, actual: int) -> None:
        self.checks.append(Check(what, expected, actual))

    def reads(self) -> tuple[dict[str, Spread], dict[str, Spread]]:
        """p50/p95 of each dashboard page and each analyst query."""
        store = self.store
        pages = page_reads(store, self.market, self.market.end)
        queries: dict[str, list[Callable[[], Any]]] = {
            name: [partial(store.query, sql)] for name, sql in QUERIES.items()
        }
        reads = {**pages, **queries}
        spreads = {}
        for number, (name, calls) in enumerate(reads.items(), start=1):
            spreads[name] = _spread(calls, self.options.repeats)
            self.log(f"  reads      {number}/{len(reads)}: {name}, p95 {spreads[name].p95 * 1000:,.0f} ms")
        return {name: spreads[name] for name in pages}, {name: spreads[name] for name in QUERIES}

    def writes(self) -> list[float]:
        """Seconds of each sink batch, published within a day and a half at the live edge, amid stored ones."""
        market, options = self.market, self.options
        entities = [phrase(entity, self.store.derivation.gazetteer) for entity in market.entities]
        seconds = []
        for number in range(options.writes):
            probe = synthetic(
                options.batch,
                seed=100 + number,
                start=market.end - timedelta(days=2 * (options.writes - number)),
                days=1.5,
                prefix=f"p{number}_",
                dynamics=market.dynamics,
                entities=entities,
                sources=market.sources(),
                weights=market.source_weights(),
            )
            took, _ = _timed(partial(self.store.write, Batch(tagged=probe)))
            seconds.append(took)
            self.log(f"  sink       batch {number + 1}/{options.writes}: {took * 1000:,.0f} ms")
        return seconds


def measure(size: int, options: Options, directory: Path, log: Log = _stderr) -> Result:
    """Fill a store of ``size`` articles in ``directory`` and measure it (see the module's docstring); the file
    and the export are removed at the end."""
    kwargs: dict[str, Any] = {} if options.end is None else {"end": options.end}
    market = Market(size, days=options.days, **kwargs)
    path = directory / f"scale-{size}.duckdb"
    derivation = Derivation(Gazetteer(market.entities), COMPOSITES)
    with Store.open(path, derivation=derivation, memory_limit=options.memory_limit) as store:
        run = _Run(store, market, options, log)
        fill_steps = Steps("fill", log)
        with run.step("fill"):
            fill_seconds, filled = _timed(lambda: fill_market(store, market, fill_steps))
        run.check("articles filled", size, store.count("articles"))
        rebuild = Steps("rebuild", log)
        with run.step("rebuild"):
            rebuild_seconds, rebuilt = _timed(lambda: store.rebuild(rebuild))
        store.connection.execute("CHECKPOINT")
        file_bytes = path.stat().st_size
        with run.step("reads"):
            pages, queries = run.reads()
        week = _one(store, "SELECT count(*) FROM articles WHERE published_at >= ?", [market.end - timedelta(days=7)])
        with run.step("sink"):
            write_seconds = run.writes()
        articles = size + options.writes * options.batch
        run.check("articles after the sink's batches", articles, store.count("articles"))

        moment = datetime.now(UTC)
        cutoff = moment - timedelta(days=BODY_DAYS)
        old_bodies = _one(store, _OLD_BODIES, [cutoff])
        retention = Steps("retention", log)
        with run.step("retention"):
            retention_seconds, report = _timed(
                lambda: apply_retention(store, body_days=BODY_DAYS, dead_letter_days=30, now=moment, progress=retention)
            )
        run.check("bodies dropped", old_bodies, report.bodies_dropped)
        run.check("bodies older than 90 days left", 0, _one(store, _OLD_BODIES, [cutoff]))

        target = directory / f"export-{size}"
        export = Steps("export", log)
        with run.step("export"):
            export_seconds, exported = _timed(lambda: export_parquet(store, target, export))
        export_bytes = sum(file.stat().st_size for file in target.rglob("*.parquet"))
        shutil.rmtree(target)

        counts = {table: store.count(table) for table in (*PER_ARTICLE, "indicators", "alerts")}
        for table in EXPORTS.keys() & counts.keys():
            run.check(f"{table} exported", counts[table], exported[table])
        run.check("distinct article ids", articles, _one(store, "SELECT count(DISTINCT id) FROM articles"))
        run.check("article_dynamics", articles * len(market.dynamics), counts["article_dynamics"])
        run.check("article_stories", articles, counts["article_stories"])
        run.check("stories", _one(store, "SELECT count(DISTINCT story_id) FROM article_stories"), counts["stories"])
        run.check("alerts", filled.alerts, counts["alerts"])
    path.unlink()
    return Result(
        size=size,
        days=options.days,
        filled=filled,
        fill_seconds=fill_seconds,
        rebuild_seconds=rebuild_seconds,
        rebuilt_rows=rebuilt,
        rebuild_steps=rebuild.last,
        file_bytes=file_bytes,
        pages=pages,
        queries=queries,
        stored_per_day=week / 7,
        write_seconds=write_seconds,
        batch=options.batch,
        retention_seconds=retention_seconds,
        bodies_dropped=report.bodies_dropped,
        retention_steps=retention.last,
        export_seconds=export_seconds,
        export_bytes=export_bytes,
        export_steps=export.last,
        counts=counts,
        checks=run.checks,
        rss=run.rss,
        duckdb_memory=run.duckdb_memory,
        finished={
            "fill": fill_steps.finished,
            "rebuild": rebuild.finished,
            "retention": retention.finished,
            "export": export.finished,
        },
    )


def _ms(spread: Spread) -> str:
    return f"{spread.p50 * 1000:9,.1f} / {spread.p95 * 1000:9,.1f} ms"


def report(result: Result, smallest: Result) -> list[str]:
    """The lines printed for one size."""
    million = result.size / 1e6
    median = result.write_median
    lines = [
        f"== {result.size:,} articles over {result.days:,} days ({result.size / result.days:,.0f} a day on average)",
        f"  fill, straight through SQL   {result.fill_seconds:9,.1f} s   ({result.filled.stories:,} stories,"
        f" {result.filled.alerts:,} alerts with evidence, {result.filled.chunks:,} transactions)",
        f"  rebuild                      {result.rebuild_seconds:9,.1f} s   ({result.rebuild_steps[1]:,} steps,"
        f" {result.rebuilt_rows:,} indicator rows)",
        f"  DuckDB file                  {result.file_bytes / 1e6:9,.0f} MB  ({result.file_bytes / 1e6 / million:,.0f}"
        " MB per million articles)",
        "  dashboard pages                  p50 /       p95",
        *(f"    {name:40s} {_ms(spread)}" for name, spread in result.pages.items()),
        "  analyst queries                  p50 /       p95",
        *(f"    {name:40s} {_ms(spread)}" for name, spread in result.queries.items()),
        f"  sink, a {result.batch:,}-article batch at the live edge amid {result.stored_per_day:,.0f} stored a day,"
        f" median of {len(result.write_seconds)}: {median * 1000:,.0f} ms ({result.batch / median:,.0f} articles/s;"
        f" {median / smallest.write_median:.2f}x the {smallest.size:,}-article store's)",
        f"  retention ({BODY_DAYS}-day bodies)      {result.retention_seconds:9,.1f} s   ({result.bodies_dropped:,}"
        f" bodies dropped, {result.retention_steps[1]:,} steps)",
        f"  export, Parquet by day       {result.export_seconds:9,.1f} s   ({result.export_steps[1]:,} steps,"
        f" {result.export_bytes / 1e6:,.0f} MB)",
        f"  peak RSS                     {result.peak_rss / 1e6:9,.0f} MB  ("
        + ", ".join(f"{step} {rss / 1e6:,.0f}" for step, rss in result.rss.items())
        + ")",
        f"  DuckDB's own peak            {max(result.duckdb_memory.values()) / 1e6:9,.0f} MB  (what"
        f" memory_limit caps: "
        + ", ".join(f"{step} {used / 1e6:,.0f}" for step, used in result.duckdb_memory.items())
        + ")",
    ]
    if result.mismatches:
        lines += [
            f"  COUNTS DISAGREE: {c.what}: expected {c.expected:,}, found {c.actual:,}" for c in result.mismatches
        ]
    else:
        lines.append(
            f"  counts agree ({len(result.checks)} checks): {result.counts['articles']:,} articles, "
            f"{result.counts['indicators']:,} indicator rows"
        )
    return lines


def run(sizes: Sequence[int], options: Options, out: Log = print, log: Log = _stderr) -> list[Result]:
    """Measure each size in turn in a temporary directory, printing each size's figures as it ends. With more than
    one size, the smallest is measured a second time, last, over as few days as give it the largest's daily volume
    (:func:`dense_reference`)."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="stackwatch-scale-") as tmp:
        for size in sizes:
            result = measure(size, options, Path(tmp), log)
            results.append(result)
            for line in report(result, results[0]):
                out(line)
        if len(results) > 1:
            days = max(1, round(options.days * results[0].size / results[-1].size))
            result = measure(results[0].size, replace(options, days=days), Path(tmp), log)
            results.append(result)
            for line in report(result, results[0]):
                out(line)
    return results


def dense_reference(results: Sequence[Result]) -> list[str]:
    """A write's cost grows with two things the sizes above change together: the store (rows to skip) and the
    buckets it lands in (a day of a 10 M-article store over four years holds 100 times a 100 k one's). The last
    result, the smallest store with the largest's daily volume, separates them."""
    if len(results) < 3:
        return []
    reference, largest = results[-1], results[-2]
    ratio = largest.write_median / reference.write_median
    return [
        f"== the store's size alone: a write into {largest.size:,} articles costs {ratio:.2f}x one into"
        f" {reference.size:,} articles with the same daily volume ({largest.stored_per_day:,.0f} and"
        f" {reference.stored_per_day:,.0f} stored a day around the write)"
    ]


def summary(results: Sequence[Result]) -> list[str]:
    """One line per size, the sink's cost against the smallest size's."""
    first = results[0]
    lines = [
        "== summary      write ms  ratio  articles/s  rebuild s  retention s  export s  pages p95 ms  queries p95 ms"
        "  MB/M articles  peak RSS MB"
    ]
    for result in results:
        median = result.write_median
        dense = "*" if result.days != first.days else " "
        lines.append(
            f"  {result.size:>12,}{dense}{median * 1000:9,.0f} {median / first.write_median:6.2f}"
            f" {result.batch / median:11,.0f}"
            f" {result.rebuild_seconds:10,.1f} {result.retention_seconds:12,.1f} {result.export_seconds:9,.1f}"
            f" {max(s.p95 for s in result.pages.values()) * 1000:13,.1f}"
            f" {max(s.p95 for s in result.queries.values()) * 1000:15,.1f}"
            f" {result.file_bytes / result.size:14,.0f} {result.peak_rss / 1e6:12,.0f}"
        )
    if any(result.days != first.days for result in results):
        lines.append("  * over fewer days: the largest store's daily volume")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="articles per store, comma-separated")
    parser.add_argument("--days", type=int, default=Options.days, help="days of news each store holds")
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="storage.memory_limit of each store")
    parser.add_argument("--batch", type=int, default=Options.batch, help="articles per sink batch")
    parser.add_argument("--writes", type=int, default=Options.writes, help="sink batches per size (median)")
    parser.add_argument("--repeats", type=int, default=Options.repeats, help="timings per page and query")
    args = parser.parse_args(argv)
    sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    options = Options(args.days, args.memory_limit, args.batch, args.writes, args.repeats)
    print(f"{machine()}; DuckDB {duckdb.__version__}; storage.memory_limit {args.memory_limit}", flush=True)
    started = time.perf_counter()
    results = run(sizes, options, lambda line: print(line, flush=True))
    for line in summary(results) + dense_reference(results):
        print(line)
    print(f"== {len(results)} sizes in {time.perf_counter() - started:,.0f} s")
    if any(result.mismatches for result in results):
        raise SystemExit("counts disagree (see above)")


if __name__ == "__main__":
    main()
