"""The store at scale within a low memory cap: 300,000 articles in a real DuckDB file, opened with a 64 MB
``storage.memory_limit`` (a 1 GB cap holds a store about sixteen times larger the same way).

The file is filled once per module: the articles, their dynamics, entities and stories straight through SQL (ids
are hashes, as the connectors make them), then every indicator through the product's own ``rebuild``. Before
schema migration 4 the primary keys' ART indexes alone outgrew this cap: the fill failed after 50,000 articles,
and a 500-article sink write failed on a 400,000-article store under 128 MB. Each test works on a copy.

No timing assertions: the module takes about a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from stackwatch.errors import StoreError
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.storage.derive import Derivation
from stackwatch.storage.maintenance import EXPORTS, apply_retention, export_parquet, snapshot
from stackwatch.storage.sink import DuckDBSink
from stackwatch.storage.store import MEMORY_KEY, Store

ARTICLES = 300_000
DAYS = 100
CAP = "64MB"
START = datetime(2025, 1, 1, tzinfo=UTC)
DYNAMICS = ("decoupling", "edge", "capex", "exclusivity", "export_controls", "power", "pricing", "talent")
ENTITIES = ("Nvidia", "AMD", "Google TPUs", "AWS Trainium", "Microsoft Azure", "OpenAI", "Meta", "CoreWeave")
PER_ARTICLE = ("article_dynamics", "article_entities", "article_stories")


def fill(store: Store, count: int, days: int) -> None:
    """``count`` articles evenly over ``days`` days from START, 100,000 a transaction: 8 dynamics each (a quarter
    labelled), one or two entities named in its title (rebuild matches them again), stories of three consecutive
    articles; bodies on all of them."""
    moment = f"TIMESTAMPTZ '{START.isoformat()}' + to_seconds((i * {days} * 86400 // {count})::BIGINT)"
    named = " || ' and ' || ".join(
        f"{list(ENTITIES)}[1 + (hash(i, {k}::BIGINT) % {len(ENTITIES)})::BIGINT]" for k in (0, 1)
    )
    title = f"'Title ' || i || ': ' || {named}"
    connection = store.connection
    for low in range(0, count, 100_000):
        rows = f"range({low}, {min(count, low + 100_000)}) t(i)"
        connection.execute("BEGIN TRANSACTION")
        connection.execute(
            f"INSERT INTO articles SELECT md5(i::VARCHAR), 'https://x.test/' || i, {title}, '',"
            f" repeat('body ', 40), 'outlet' || (i % 40), 'rss', NULL, {moment}, {moment}, [], 'v1', {moment},"
            f" {moment} FROM {rows}"
        )
        connection.execute(
            f"INSERT INTO article_dynamics SELECT md5(i::VARCHAR), d, (hash(i, d) % 1000) / 1000.0,"
            f" hash(i, d) % 4 = 0, 'v1', {moment} FROM {rows}, (SELECT unnest({list(DYNAMICS)}) AS d)"
        )
        connection.execute(
            "INSERT INTO article_entities (article_id, entity, mentions, published_at)"
            f" SELECT DISTINCT md5(i::VARCHAR),"
            f" {list(ENTITIES)}[1 + (hash(i, k) % {len(ENTITIES)})::BIGINT], 1, {moment} FROM {rows}, range(2) k(k)"
        )
        connection.execute(
            f"INSERT INTO article_stories SELECT md5(i::VARCHAR), md5((i - i % 3)::VARCHAR), hash(i),"
            f" {moment}, CASE WHEN i % 3 = 0 THEN 1.0 ELSE 0.5 END FROM {rows}"
        )
        connection.execute("COMMIT")
    connection.execute(
        "INSERT INTO stories SELECT story_id, min(story_id), min(published_at), max(published_at), count(*), 1"
        " FROM article_stories GROUP BY story_id"
    )


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "stackwatch.duckdb"
    with Store.open(path, memory_limit=CAP) as store:
        fill(store, ARTICLES, DAYS)
        store.rebuild()
        store.connection.execute("CHECKPOINT")
    return path


@pytest.fixture
def store(filled: Path, tmp_path: Path) -> Iterator[Store]:
    copy = tmp_path / "stackwatch.duckdb"
    shutil.copyfile(filled, copy)
    with Store.open(copy, memory_limit=CAP, derivation=Derivation(increments_above=0)) as opened:
        yield opened


def tagged(prefix: str, count: int, start: datetime, hours: float) -> list[TaggedArticle]:
    """``count`` articles spread over ``hours`` from ``start``, amid the stored ones (their buckets are full)."""
    items = []
    for number in range(count):
        published = start + timedelta(hours=hours * number / count)
        entity, other = ENTITIES[number % 8], ENTITIES[(number * 3 + 1) % 8]
        article = Article(
            f"{prefix}{number:06d}",
            f"https://y.test/{prefix}/{number}",
            f"{entity} signs a capacity deal with {other}, story {number % 97}",
            "",
            f"outlet{number % 40}",
            "rss",
            published,
            published,
            body="text " * 40,
        )
        labels = (DYNAMICS[number % 8],) if number % 3 else ()
        items.append(TaggedArticle(article, labels, {d: (number % 10) / 10 for d in DYNAMICS}, "v2", published))
    return items


def one(store: Store, sql: str) -> int:
    return int(store.query(sql).rows[0][0])


def indicator_digest(store: Store, since: datetime, until: datetime) -> list[tuple[object, ...]]:
    """Every indicator row of [since, until), in order, and per indicator the count and sum of all rows."""
    rows = store.query(
        "SELECT indicator, dynamic, entity, source, bucket_width, bucket_start, round(value, 9) FROM indicators"
        " WHERE bucket_start >= ? AND bucket_start < ? ORDER BY ALL",
        [since, until],
    ).rows
    totals = store.query("SELECT indicator, count(*), round(sum(value), 3) FROM indicators GROUP BY 1 ORDER BY 1").rows
    return rows + totals


def test_the_sink_writes_into_a_full_store_and_rebuild_equals_what_it_produced(store: Store) -> None:
    middle = START + timedelta(days=DAYS // 2)
    sink = DuckDBSink(store)
    batches = [
        tagged("n1_", 500, middle, 4),  # the default storage.batch_size
        tagged("n2_", 500, middle + timedelta(hours=3), 4),
        tagged("n3_", 2_000, middle + timedelta(hours=6), 36),
        tagged("n1_", 500, middle, 4),  # redelivered: replaces, adds nothing
    ]
    stored_at = {}
    for number, batch in enumerate(batches):
        for item in batch:
            sink.add(item)
        assert sink.flush().records == len(batch)
        if number == 0:
            stored_at = dict(store.query("SELECT id, stored_at FROM articles WHERE id LIKE 'n1_%'").rows)
    written = 3_000
    assert store.count("articles") == ARTICLES + written
    assert one(store, "SELECT count(DISTINCT id) FROM articles") == ARTICLES + written
    assert store.count("article_dynamics") == (ARTICLES + written) * len(DYNAMICS)
    assert one(store, "SELECT count(*) FROM (SELECT DISTINCT article_id, dynamic FROM article_dynamics)") == (
        ARTICLES + written
    ) * len(DYNAMICS)
    assert store.count("article_stories") == ARTICLES + written
    assert one(store, "SELECT count(DISTINCT story_id) FROM stories") == store.count("stories")
    # a replaced article keeps the time it was first stored
    assert dict(store.query("SELECT id, stored_at FROM articles WHERE id LIKE 'n1_%'").rows) == stored_at
    assert one(store, "SELECT count(*) FROM articles WHERE id LIKE 'n%' AND labels = [] AND body IS NULL") == 0
    since, until = middle - timedelta(days=1), middle + timedelta(days=3)
    streamed = indicator_digest(store, since, until)
    day = one(
        store,
        "SELECT value FROM indicators WHERE indicator = 'article_count' AND dynamic = '*' AND entity = '*'"
        f" AND source = '*' AND bucket_width = '1d' AND bucket_start = TIMESTAMPTZ '{middle.isoformat()}'",
    )
    assert day == ARTICLES // DAYS + 500 + 500 + 2_000 * 18 // 36  # the stored day's articles and the new ones

    rebuilt_rows = store.rebuild()
    assert rebuilt_rows > store.count("indicators") // 2
    assert indicator_digest(store, since, until) == streamed


def test_retention_export_and_snapshot_keep_their_counts(store: Store, tmp_path: Path) -> None:
    now = START + timedelta(days=DAYS)
    old = one(store, f"SELECT count(*) FROM articles WHERE published_at < TIMESTAMPTZ '{START + timedelta(days=60)}'")
    report = apply_retention(store, body_days=DAYS - 60, dead_letter_days=30, now=now)
    assert report.bodies_dropped == old > ARTICLES // 2
    assert one(store, "SELECT count(*) FROM articles WHERE body IS NULL") == old
    assert report.row_counts["articles"] == ARTICLES
    assert apply_retention(store, body_days=DAYS - 60, dead_letter_days=30, now=now).bodies_dropped == 0

    counts = export_parquet(store, tmp_path / "export")
    assert counts.keys() == EXPORTS.keys()
    reader = duckdb.connect()
    for table in ("articles", *PER_ARTICLE, "stories", "indicators"):
        assert counts[table] == store.count(table)
        files = str(tmp_path / "export" / table / "*" / "*.parquet")
        assert reader.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone() == (counts[table],)
    days = reader.execute(
        "SELECT count(DISTINCT day) FROM read_parquet(?, hive_partitioning = true)",
        [str(tmp_path / "export" / "articles" / "*" / "*.parquet")],
    ).fetchone()
    assert days == (DAYS,)

    copy = snapshot(store, tmp_path / "snapshot.duckdb")
    with Store.open(copy, read_only=True, memory_limit=CAP) as reader:
        for table in ("articles", *PER_ARTICLE, "stories", "indicators"):
            assert reader.count(table) == store.count(table)


def test_a_write_that_cannot_fit_fails_naming_the_cap_and_loses_nothing(store: Store) -> None:
    path = store.path
    before = {table: store.count(table) for table in ("articles", *PER_ARTICLE, "indicators")}
    store.close()
    batch = tagged("big_", 2_000, START + timedelta(days=10), 24)
    # 16 MB holds the articles' own rows, not their stories and indicators: it fails midway, after rows changed
    with Store.open(path, memory_limit="16MB") as starved:
        sink = DuckDBSink(starved)
        for item in batch:
            sink.add(item)
        refused = rf"^cannot write batch of 2000 records .*: out of memory: .*{MEMORY_KEY} \(16MB\).*raise {MEMORY_KEY}"
        with pytest.raises(StoreError, match=refused):
            sink.flush()
        assert len(sink) == len(batch)  # kept for the retry: the caller commits no offsets
        assert {table: starved.count(table) for table in before} == before
    with Store.open(path, memory_limit=CAP) as raised:
        retry = DuckDBSink(raised)
        for item in batch:
            retry.add(item)
        assert retry.flush().records == len(batch)
        assert raised.count("articles") == before["articles"] + len(batch)
