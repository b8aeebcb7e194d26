"""The DuckDB store on real files: idempotent writes, the outbox, and the read-only SQL front."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import duckdb
import pytest

from stackwatch.errors import QueryRefused, StoreError
from stackwatch.pipeline.roles.sink import gather_seconds
from stackwatch.settings.storage import StorageSettings
from stackwatch.signals.messages import Alert, Article, DeadLetter, IndicatorUpdate, TaggedArticle
from stackwatch.storage.dashboard import Range, dynamic_detail, entity_detail
from stackwatch.storage.derive import Bucket, Changes, Derivation
from stackwatch.storage.readonly import check_query
from stackwatch.storage.schema import MIGRATIONS, current_version
from stackwatch.storage.sink import DuckDBSink
from stackwatch.storage.store import Batch, Store, delivery_id

NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
PER_ARTICLE = ("articles", "article_dynamics", "article_entities", "article_stories", "stories")


def tagged(article_id: str, labels: tuple[str, ...] = ("edge",)) -> TaggedArticle:
    article = Article(
        article_id,
        f"https://x.test/{article_id}",
        f"title {article_id}",
        "summary",
        "wire",
        "rss",
        NOON,
        NOON,
    )
    return TaggedArticle(article, labels, {"edge": 0.9, "capex": 0.1}, "v1", NOON)


def alert(alert_id: str = "alert_1") -> Alert:
    return Alert(alert_id, "edge-any", "warning", "edge", "article_count", "1h", NOON, 3.0, 1.0, "m", ("ops", "chat"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "db" / "stackwatch.duckdb") as opened:
        yield opened


def test_writing_the_same_batch_twice_leaves_the_same_rows(store: Store) -> None:
    batch = Batch(
        tagged=[tagged("a"), tagged("b"), tagged("a")],
        indicators=[IndicatorUpdate("article_count", "edge", "1h", NOON, 2.0)],
        alerts=[alert()],
        dead_letters=[DeadLetter("connector", "bad xml", "<rss", "wire")],
    )
    store.write(batch)
    store.write(batch)
    assert store.count("articles") == 2
    assert store.count("article_dynamics") == 4
    # derived from the two stored articles, not from the stream's update (which the store leaves to the rules)
    assert store.query(
        "SELECT value FROM indicators WHERE indicator = 'article_count' AND dynamic = 'edge' AND entity = '*'"
        " AND source = '*' AND bucket_width = '1h'"
    ).rows == [(2.0,)]
    assert store.count("alerts") == 1
    assert store.count("deliveries") == 2
    assert store.count("dead_letters") == 1


def test_indicator_rows_hold_the_latest_full_value(store: Store) -> None:
    store.write(Batch(indicators=[IndicatorUpdate("custom_count", "edge", "1h", NOON, 1.0)]))
    store.write(Batch(indicators=[IndicatorUpdate("custom_count", "edge", "1h", NOON, 5.0)]))
    assert store.query("SELECT value FROM indicators").rows == [(5.0,)]


def test_an_alert_gets_one_pending_delivery_per_webhook_with_a_stable_id(store: Store) -> None:
    store.write(Batch(alerts=[alert()]))
    store.write(Batch(alerts=[alert()]))  # recorded twice: still one row per webhook
    rows = store.query("SELECT id, webhook, status, attempts FROM deliveries ORDER BY webhook").rows
    assert rows == [
        (delivery_id("alert_1", "chat"), "chat", "pending", 0),
        (delivery_id("alert_1", "ops"), "ops", "pending", 0),
    ]


def test_the_sink_keeps_its_buffer_when_a_flush_fails(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store.open(path)
    sink = DuckDBSink(store)
    sink.add(tagged("a"))
    store.close()
    with pytest.raises(StoreError, match="cannot write"):  # a closed connection: the write cannot happen
        sink.flush()
    assert len(sink) == 1
    with Store.open(path) as reopened:
        retry = DuckDBSink(reopened)
        retry.add(tagged("a"))
        assert retry.flush().records == 1
        assert reopened.count("articles") == 1


class BrokenDerivation(Derivation):
    """Fails midway, after rows were changed (a rebuild's chunk has dropped its buckets' rows), as a DuckDB error
    inside a transaction would."""

    def apply(self, connection: duckdb.DuckDBPyConnection, changes: Changes, **_: Any) -> None:
        raise duckdb.ConversionException("value out of range")

    def recompute(self, connection: duckdb.DuckDBPyConnection, buckets: Iterable[Bucket], **_: Any) -> int:
        raise duckdb.ConversionException("value out of range")


def test_a_write_or_rebuild_that_fails_midway_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as healthy:
        healthy.write(Batch(tagged=[tagged("a")]))
        indicators = healthy.count("indicators")
    assert indicators > 0
    with Store.open(path, derivation=BrokenDerivation()) as store:
        with pytest.raises(StoreError, match=r"^cannot write batch of 2 records to .*: .*value out of range"):
            store.write(Batch(tagged=[tagged("b")], alerts=[alert()]))
        with pytest.raises(StoreError, match=r"^cannot rebuild indicators in .*: .*value out of range"):
            store.rebuild()
        assert store.count("articles") == 1
        assert store.count("alerts") == 0
        assert store.count("indicators") == indicators


def test_a_read_only_store_cannot_write_and_a_missing_one_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    Store.open(path).close()
    with Store.open(path, read_only=True) as reader:
        with pytest.raises(StoreError, match="cannot write"):
            reader.write(Batch(tagged=[tagged("a")]))
        assert reader.query("SELECT count(*) FROM articles").rows == [(0,)]
    with pytest.raises(StoreError, match="cannot open DuckDB file"):
        Store.open(tmp_path / "missing.duckdb", read_only=True)


@pytest.mark.parametrize("version", [3, 4])
def test_an_older_store_keeps_its_rows_and_loses_the_keys_that_grow_with_every_article(
    tmp_path: Path, version: int
) -> None:
    with Store.open(tmp_path / "current.duckdb") as current:
        current.write(Batch(tagged=[tagged("a"), tagged("b", ("edge", "capex"))]))
        rows = {table: current.query(f"SELECT * FROM {table} ORDER BY ALL").rows for table in PER_ARTICLE}
    path = tmp_path / f"v{version}.duckdb"
    with duckdb.connect(str(path)) as old:  # a store as that schema left it, holding the same rows
        current_version(old)
        for number, script in enumerate(MIGRATIONS[:version], start=1):
            old.execute(script)
            old.execute("INSERT INTO schema_version VALUES (?, now())", [number])
        old.execute(f"ATTACH '{tmp_path / 'current.duckdb'}' AS current (READ_ONLY)")
        for table in PER_ARTICLE:  # the columns it had (schema 5 added published_at to dynamics and entities)
            columns = [row[0] for row in old.execute(f"SELECT * FROM {table} LIMIT 0").description or []]
            old.execute(f"INSERT INTO {table} SELECT {', '.join(columns)} FROM current.{table}")
    with Store.open(path) as migrated:
        assert {table: migrated.query(f"SELECT * FROM {table} ORDER BY ALL").rows for table in PER_ARTICLE} == rows
        keyed = migrated.connection.execute(
            "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
        assert not {row[0] for row in keyed} & set(PER_ARTICLE)
        assert {row[0] for row in keyed} >= {"alerts", "deliveries", "dead_letters"}  # these stay small
        first = migrated.query("SELECT stored_at FROM articles WHERE id = 'a'").rows[0][0]
        migrated.write(Batch(tagged=[tagged("a", ("capex",))]))  # replaced by id: one row, first stored_at kept
        assert migrated.query("SELECT labels, stored_at FROM articles WHERE id = 'a'").rows == [(["capex"], first)]
        assert migrated.count("articles") == 2
        assert migrated.count("article_dynamics") == 4


KNOWN = {"articles", "indicators", "alerts"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM articles",
        "select title from articles where source = 'wire' limit 5",
        "WITH recent AS (SELECT * FROM articles) SELECT count(*) FROM recent",
        "SELECT dynamic, sum(value) FROM indicators GROUP BY ALL",
        "SELECT * FROM range(3)",
        "DESCRIBE articles",
        "SHOW TABLES",
    ],
)
def test_plain_queries_pass_the_read_only_check(sql: str) -> None:
    check_query(sql, KNOWN)


HOSTILE = [
    "DROP TABLE articles",
    "DELETE FROM articles",
    "UPDATE articles SET title = 'x'",
    "INSERT INTO articles SELECT * FROM articles",
    "CREATE TABLE x AS SELECT 1",
    "ALTER TABLE articles ADD COLUMN x INT",
    "SELECT 1; DROP TABLE articles",
    "COPY articles TO '/tmp/out.csv'",
    "EXPORT DATABASE '/tmp/dump'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CALL pragma_version()",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'data.parquet'",
    "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('threads')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM other.main.articles",
    "WITH x AS (SELECT * FROM read_json('/etc/x.json')) SELECT * FROM x",
    "SELECT * FROM articles WHERE id IN (SELECT content FROM read_text('/etc/passwd'))",
    "CHECKPOINT",
    "VACUUM",
    "SELECT * FROM query('SELECT 1')",
    "SELECT 'a\x00b'",
    "SELEC nonsense",
    "IMPORT DATABASE '/tmp/dump'",
    "DETACH stackwatch_snapshot",
    "USE other",
    "COPY (SELECT * FROM indicators) TO '/tmp/x.parquet' (FORMAT parquet)",
    "SELECT * FROM parquet_scan('/tmp/x.parquet')",
    "CREATE OR REPLACE VIEW top_entities AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT * FROM articles",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM iceberg_scan('s3://bucket/t')",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_writes_and_file_access_are_refused_with_a_reason(sql: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check_query(sql, KNOWN)
    assert str(refused.value)


def test_refused_queries_leave_the_store_untouched(store: Store) -> None:
    store.write(Batch(tagged=[tagged("a")]))
    for sql in HOSTILE:
        with pytest.raises(QueryRefused):
            store.query(sql)
    assert store.count("articles") == 1


@pytest.mark.parametrize(
    ("last_write", "expected"),
    [
        (0.0, 1.0),  # quick writes: the flush interval
        (0.1, 1.0),
        (0.4, 3.6),  # slow writes: nine times as long, so writing takes a tenth of the sink's time
        (5.0, 10.0),  # at most max_flush_interval
    ],
)
def test_the_sink_gathers_longer_after_slow_writes(last_write: float, expected: float) -> None:
    assert gather_seconds(last_write, StorageSettings()) == pytest.approx(expected)


def test_a_long_flush_interval_raises_the_default_longest_gather() -> None:
    assert gather_seconds(5.0, StorageSettings(flush_interval=30)) == 30
    assert gather_seconds(5.0, StorageSettings(flush_interval=0.5, max_flush_interval=2)) == 2


def test_the_dynamic_and_entity_pages_count_each_other_over_the_range(store: Store) -> None:
    recent = datetime.now(UTC) - timedelta(hours=3)
    stories = [
        ("n1", "NVIDIA ships Blackwell", ("edge",)),
        ("n2", "NVIDIA and Oracle expand a cluster", ("edge", "capex")),
        ("o1", "Oracle raises capex", ("capex",)),
    ]
    store.write(
        Batch(
            tagged=[
                TaggedArticle(
                    Article(key, f"https://x.test/{key}", title, "", "wire", "rss", recent, recent),
                    labels,
                    dict.fromkeys(labels, 0.9),
                    "v1",
                    recent,
                )
                for key, title, labels in stories
            ]
        )
    )
    week = Range(days=7, width="1h")
    edge = dynamic_detail(store.connection, "edge", week)
    assert edge.entities == (("NVIDIA", 2), ("Blackwell", 1), ("Oracle", 1))  # a chip is an entity of its own
    assert [article.id for article in edge.articles] == ["n1", "n2"]
    nvidia = entity_detail(store.connection, "NVIDIA", week)
    assert nvidia.dynamics == (("edge", 2), ("capex", 1))
    assert nvidia.series.total == 2
    assert entity_detail(store.connection, "Oracle", week).dynamics == (("capex", 2), ("edge", 1))


def moved(article_id: str, title: str, published: datetime, labels: tuple[str, ...] = ("edge",)) -> TaggedArticle:
    article = Article(article_id, f"https://x.test/{article_id}", title, "", "wire", "rss", published, published)
    return TaggedArticle(article, labels, {"edge": 0.9, "capex": 0.4}, "v1", published)


def test_an_article_re_published_a_year_later_moves_all_its_rows_and_rebuild_equals_the_stream(
    store: Store,
) -> None:
    """Every statement of a write is bounded by the dates it touches; a replaced article's rows are found at the
    date it had, wherever that is, and its story follows it."""
    title = "Nvidia books Rubin capacity at TSMC for a hyperscaler"
    later = NOON + timedelta(days=365)
    store.write(Batch(tagged=[moved(f"c{n}", title, NOON + timedelta(minutes=n)) for n in range(3)]))
    store.write(Batch(tagged=[moved("far", "AMD wins an order", later), moved("c9", title, later)]))
    store.write(Batch(tagged=[moved("c0", title, later + timedelta(minutes=5), ("capex",))]))  # the root moves
    store.write(Batch(tagged=[moved("c1", title + " again", NOON + timedelta(minutes=1))]))  # same date, new text
    store.write(Batch(tagged=[moved("c0", title, later + timedelta(minutes=5), ("capex",))]))  # a replay
    per_id = {
        table: store.query(f"SELECT {key}, count(*) FROM {table} GROUP BY 1 HAVING count(*) > {per}").rows
        for table, key, per in (
            ("articles", "id", 1),
            ("article_dynamics", "article_id", 2),
            ("article_stories", "article_id", 1),
            ("stories", "story_id", 1),
        )
    }
    assert per_id == {"articles": [], "article_dynamics": [], "article_stories": [], "stories": []}
    dated = "SELECT count(*) FROM {} t JOIN articles a ON a.id = t.article_id WHERE t.published_at <> a.published_at"
    assert [store.query(dated.format(t)).rows[0][0] for t in ("article_dynamics", "article_stories")] == [0, 0]
    spans = "SELECT story_id, min(published_at), max(published_at), count(*) FROM article_stories GROUP BY 1 ORDER BY 1"
    assert (
        store.query(spans).rows
        == store.query("SELECT story_id, first_seen, last_seen, articles FROM stories ORDER BY 1").rows
    )
    streamed = store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows
    day = "SELECT value FROM indicators WHERE indicator = 'article_count' AND dynamic = '*' AND entity = '*'"
    assert store.query(day + " AND source = '*' AND bucket_width = '1d' ORDER BY bucket_start").rows == [(2.0,), (3.0,)]
    store.rebuild()
    assert store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows == streamed


class Profiled:
    """A real connection that keeps DuckDB's profile of each statement it runs (DuckDB writes the last one's)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, output: Path) -> None:
        self.connection, self.output, self.profiles = connection, output, list[dict[str, Any]]()
        connection.execute("PRAGMA enable_profiling = 'json'")
        connection.execute("SET profiling_coverage = 'ALL'")
        connection.execute(f"PRAGMA profiling_output = '{output}'")

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        relation = self.connection.execute(sql, params)
        self.profiles.append(json.loads(self.output.read_text()))
        return relation

    def sql(self, sql: str) -> Any:
        """Runs the statement now (DuckDB's relation would run it when read) and keeps its rows and profile."""
        rows = self.connection.sql(sql).to_arrow_table()
        self.profiles.append(json.loads(self.output.read_text()))
        return SimpleNamespace(to_arrow_table=lambda: rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def scans(self) -> list[tuple[str, str, int, int]]:
        """(statement, table, row groups read, row groups in the table) of each table scan profiled."""
        found = []
        for profile in self.profiles:
            nodes = list(profile.get("operator", []))
            while nodes:
                node = nodes.pop()
                nodes += node.get("children", [])
                if "row_groups_scanned" in node:
                    table = str(node["extra_info"].get("Table", "")).rsplit(".", 1)[-1]
                    scanned, total = node["row_groups_scanned"], node["total_row_groups_to_scan"]
                    found.append((profile["query"]["sql"], table, scanned, total))
        return found


def test_a_write_of_one_day_reads_only_that_days_row_groups(tmp_path: Path) -> None:
    """DuckDB skips a row group (~122,880 rows) whose min/max of published_at rule the write's dates out: a
    write's cost depends on the write, not on how much the store holds (schema migration 5)."""
    moment = f"TIMESTAMPTZ '{(NOON - timedelta(days=140)).isoformat()}' + to_seconds(i * 40)"  # 2,160 a day
    rows = "range(600000) t(i)"
    path = tmp_path / "full.duckdb"
    with Store.open(path) as filled:
        connection = filled.connection
        connection.execute(
            f"INSERT INTO articles SELECT md5(i::VARCHAR), 'https://x.test/' || i, 'Title ' || i, '', NULL, 'wire',"
            f" 'rss', NULL, {moment}, {moment}, [], 'v1', {moment}, {moment} FROM {rows}"
        )
        for table, values in (
            ("article_dynamics", f"'edge', 0.9, true, 'v1', {moment}"),
            ("article_entities", f"'Nvidia', 1, {moment}"),
            ("article_stories", f"md5(i::VARCHAR), hash(i), {moment}, 1.0"),
        ):
            columns = "(article_id, entity, mentions, published_at)" if table == "article_entities" else ""
            connection.execute(f"INSERT INTO {table} {columns} SELECT md5(i::VARCHAR), {values} FROM {rows}")
        filled.write(Batch(tagged=[tagged("a")]))  # an article on a day amid the stored ones
    with duckdb.connect(str(path)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        profiled = Profiled(connection, tmp_path / "profile.json")
        store = Store(cast(duckdb.DuckDBPyConnection, profiled), path, False, Derivation())
        store.write(Batch(tagged=[tagged("a", ("capex",)), tagged("b")]))  # one replaced, one new
    read = [scan for scan in profiled.scans() if scan[1] in PER_ARTICLE]
    bounded = [scan for scan in read if "stored_at FROM articles WHERE id IN" not in scan[0]]  # not the id lookup
    assert {scan[1] for scan in bounded} >= {"articles", "article_dynamics", "article_entities", "article_stories"}
    assert len(bounded) >= 12  # replacing, clustering, recomputing
    assert all(scan[3] >= 5 for scan in bounded)  # the tables span several row groups
    # A write reads the row group of its day (stories: of ±3 days), and the one its own rows were appended to.
    assert [scan for scan in bounded if scan[2] > 3] == []
