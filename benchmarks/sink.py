"""The sink's write speed against a naive one-INSERT-per-row loop, its per-write cost as the store grows, and the
dashboard views' latency.

    python -m benchmarks.sink                      # 100,000 articles; views on 1,000,000
    python -m benchmarks.sink --articles 20000 --view-articles 200000 --memory-limit 256MB

Part 1 writes tagged articles with their indicator updates through ``Store.write`` in sink-sized batches (which
also derives entities, stories and every indicator in the same transactions), then writes a sample of the same
articles and updates with one INSERT per row, each its own transaction, on a fresh file in the same run. The
ratio is articles per second, fast over naive. Part 2 fills a file with synthetic articles straight through SQL,
rebuilds the indicators, and times the views a dashboard reads. Both files are opened with the service's default
``storage.memory_limit`` (1GB) unless ``--memory-limit`` says otherwise.

The per-write cost is the median time of a few more sink batches written into two files filled as part 2's is, at
the same articles per day: one of ``--articles``, one of ``--view-articles``. Each batch is ``--batch`` articles
published within a day and a half (as a sink batch of a live stream is) amid the stored ones, so it recomputes
buckets as full in either file: what differs is only how much the store holds.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from benchmarks.fill import DYNAMICS, VIEWS_START, fill, synthetic, updates_for
from benchmarks.machine import machine
from stackwatch.signals.messages import IndicatorUpdate, TaggedArticle
from stackwatch.storage.store import DEFAULT_MEMORY_LIMIT, Batch, Store


def fast(
    path: Path, articles: list[TaggedArticle], updates: list[IndicatorUpdate], batch: int, memory_limit: str
) -> float:
    per_article = max(1, len(updates) // max(1, len(articles)))
    started = time.perf_counter()
    with Store.open(path, memory_limit=memory_limit) as store:
        for start in range(0, len(articles), batch):
            chunk = articles[start : start + batch]
            store.write(Batch(tagged=chunk, indicators=updates[start * per_article : (start + batch) * per_article]))
    return time.perf_counter() - started


def naive(path: Path, articles: list[TaggedArticle], updates: list[IndicatorUpdate]) -> float:
    """One INSERT per row, each its own transaction: what a first sink often looks like. (The sample's ids are
    unique and the file is fresh, so a plain INSERT stores what the store's replace-by-id would.)"""
    Store.open(path).close()  # the same schema
    connection = duckdb.connect(str(path))
    started = time.perf_counter()
    for tagged in articles:
        a = tagged.article
        connection.execute(
            "INSERT INTO articles (id, url, title, summary, body, source, connector, language,"
            " published_at, fetched_at, labels, model_version, tagged_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                a.id,
                a.url,
                a.title,
                a.summary,
                a.body,
                a.source,
                a.connector,
                a.language,
                a.published_at,
                a.fetched_at,
                list(tagged.labels),
                tagged.model_version,
                tagged.tagged_at,
            ],
        )
        for dynamic, score in tagged.scores.items():
            connection.execute(
                "INSERT INTO article_dynamics VALUES (?, ?, ?, ?, ?, ?)",
                [a.id, dynamic, score, dynamic in tagged.labels, tagged.model_version, a.published_at],
            )
    for update in updates:
        connection.execute(
            "DELETE FROM indicators WHERE indicator = ? AND dynamic = ? AND bucket_width = ? AND bucket_start = ?",
            [update.indicator, update.dynamic, update.window, update.bucket_start],
        )
        connection.execute(
            "INSERT INTO indicators VALUES (?, ?, '*', '*', ?, ?, ?, ?)",
            [update.indicator, update.dynamic, update.window, update.bucket_start, update.value, update.updated_at],
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


VIEWS = {
    "daily dynamic volume, 30 days": (
        "SELECT * FROM daily_dynamic_volume WHERE day >= TIMESTAMPTZ '{end}' - INTERVAL 30 DAYS ORDER BY day, dynamic"
    ),
    "top entities per dynamic": "SELECT * FROM top_entities WHERE rank <= 10",
    "latest alerts with evidence": "SELECT * FROM latest_alerts",
    "hourly series of one dynamic, 7 days": (
        "SELECT bucket_start, value FROM indicators WHERE indicator = 'article_count' AND dynamic = 'edge'"
        " AND entity = '*' AND source = '*' AND bucket_width = '1h'"
        " AND bucket_start >= TIMESTAMPTZ '{end}' - INTERVAL 7 DAYS ORDER BY bucket_start"
    ),
}


def per_write(path: Path, batch: int, start: datetime, memory_limit: str, writes: int = 3) -> float:
    """Median seconds of ``writes`` sink batches of ``batch`` articles, each published within a day and a half from
    ``start`` on (new ids), written into the full store at ``path``."""
    seconds = []
    with Store.open(path, memory_limit=memory_limit) as store:
        for number in range(writes):
            when = start + timedelta(days=2 * number)
            probe = synthetic(batch, seed=100 + number, start=when, days=1.5, prefix=f"p{number}_")
            started = time.perf_counter()
            store.write(Batch(tagged=probe))
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def time_views(path: Path, days: int, repeats: int = 5) -> dict[str, float]:
    end = (VIEWS_START + timedelta(days=days)).isoformat()
    results = {}
    with Store.open(path, read_only=True) as store:
        for name, sql in VIEWS.items():
            query = sql.format(end=end)
            store.query(query)  # warm
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                store.query(query)
                times.append(time.perf_counter() - started)
            results[name] = statistics.median(times)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--naive-articles", type=int, default=300, help="the naive loop writes this sample")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--view-articles", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="storage.memory_limit of both files")
    args = parser.parse_args(argv)
    print(f"{machine()}; DuckDB {duckdb.__version__}")
    with tempfile.TemporaryDirectory(prefix="stackwatch-bench-") as tmp:
        directory = Path(tmp)
        articles = synthetic(args.articles)
        updates = updates_for(articles)
        sample = articles[: args.naive_articles]
        sample_updates = updates_for(sample)
        fast_seconds = fast(directory / "fast.duckdb", articles, updates, args.batch, args.memory_limit)
        with Store.open(directory / "fast.duckdb", read_only=True) as store:
            rows = sum(
                store.count(t)
                for t in (
                    "articles",
                    "article_dynamics",
                    "article_entities",
                    "article_stories",
                    "stories",
                    "indicators",
                )
            )
        naive_seconds = naive(directory / "naive.duckdb", sample, sample_updates)
        naive_rows = len(sample) * (1 + len(DYNAMICS)) + 2 * len(sample_updates)
        fast_rate = len(articles) / fast_seconds
        naive_rate = len(sample) / naive_seconds
        print(
            f"sink, {len(articles):,} tagged articles + {len(updates):,} indicator updates, batches of {args.batch:,}"
        )
        print(
            f"  batched sink:   {fast_rate:10,.0f} articles/s  ({rows / fast_seconds:,.0f} rows/s incl. derived"
            f" entities, stories and {rows:,} rows in all; {fast_seconds:.1f} s)"
        )
        print(
            f"  one INSERT/row: {naive_rate:10,.0f} articles/s  ({naive_rows / naive_seconds:,.0f} rows/s;"
            f" {len(sample):,}-article sample, {naive_seconds:.1f} s)"
        )
        print(f"  speed-up:       {fast_rate / naive_rate:10.1f}x  (target >= 20x)")
        small_days = max(4, round(args.days * len(articles) / args.view_articles))  # the same articles per day
        fill(directory / "small.duckdb", len(articles), small_days, args.memory_limit)
        small_start = VIEWS_START + timedelta(days=small_days // 2 - 1)
        small = per_write(directory / "small.duckdb", args.batch, small_start, args.memory_limit)
        (directory / "small.duckdb").unlink()
        rebuilt = fill(directory / "views.duckdb", args.view_articles, args.days, args.memory_limit)
        size = (directory / "views.duckdb").stat().st_size
        print(
            f"dashboard views on {args.view_articles:,} articles over {args.days} days ({size / 1e6:,.0f} MB file,"
            f" filled through SQL, then rebuilt in {rebuilt:.0f} s within storage.memory_limit {args.memory_limit}),"
            " median of 5"
        )
        for name, seconds in time_views(directory / "views.duckdb", args.days).items():
            print(f"  {name:40s} {seconds * 1000:8.1f} ms")
        views_start = VIEWS_START + timedelta(days=args.days // 2 - 1)
        large = per_write(directory / "views.duckdb", args.batch, views_start, args.memory_limit)
        daily = args.view_articles / args.days
        print(
            f"sink per-write cost: a batch of {args.batch:,} articles published within 1.5 days amid {daily:,.0f}"
            " stored a day, median of 3"
        )
        print(f"  into a file of {len(articles):>11,} articles  {small * 1000:8.0f} ms")
        print(f"  into a file of {args.view_articles:>11,} articles  {large * 1000:8.0f} ms  ({large / small:.2f}x)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
