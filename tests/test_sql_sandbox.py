"""The SQL front is a sandbox by construction (issue #16).

Every ad-hoc query, from ``POST /api/sql`` or ``stackwatch sql``, runs in a process of its own on a read-only
DuckDB whose external access is off and whose configuration is locked, within a time limit, a memory cap, a
row cap and a number of concurrent queries; the parse-tree check is a second layer. Here a hostile corpus goes
through both fronts, on real DuckDB files and a real service, with a canary secret planted in a file and in
the environment of the process under test: no answer may carry it, nor any other file content or setting.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from stackwatch.errors import QueryBusy, QueryFailed, QueryRefused, QueryStopped
from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.pipeline.web.sqlfront import SqlFront
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.messages import Alert, Article, TaggedArticle
from stackwatch.storage.query import QueryLimits, run_query
from stackwatch.storage.sandbox import open_sandbox
from stackwatch.storage.store import Batch, Store
from tests.helpers.service import Service, pipeline_config

pytestmark = pytest.mark.integration  # query processes, a real service, the session's broker

CANARY = f"sw-canary-{uuid.uuid4().hex}"
CANARY_ENV = "STACKWATCH_SQL_CANARY"
NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
ARTICLES = 60
MAX_ROWS = 50
TIME_LIMIT = "3s"
RUNAWAY = "SELECT count(*) FROM range(1000000000000)"


# -- the hostile corpus --------------------------------------------------------------------------------------------
# Each case is (sql, layer): "refused" when the parse-tree check must refuse it with a reason; "contained" when it
# may reach the engine, which must answer harmlessly or fail (a parse error, a missing function, a limit).
# {dir} is a folder holding secret.csv, secret.json, secret.parquet and secret.txt, each with the canary in it.

_FILE_FUNCTIONS = [
    "read_text('{dir}/secret.txt')",
    "read_blob('{dir}/secret.txt')",
    "read_csv('{dir}/secret.csv')",
    "read_csv_auto('{dir}/secret.csv')",
    "read_json('{dir}/secret.json')",
    "read_json_auto('{dir}/secret.json')",
    "read_json_objects('{dir}/secret.json')",
    "read_ndjson('{dir}/secret.json')",
    "read_parquet('{dir}/secret.parquet')",
    "parquet_scan('{dir}/secret.parquet')",
    "parquet_metadata('{dir}/secret.parquet')",
    "parquet_schema('{dir}/secret.parquet')",
    "parquet_kv_metadata('{dir}/secret.parquet')",
    "glob('{dir}/*')",
    "sniff_csv('{dir}/secret.csv')",
    "read_text('/proc/self/environ')",
    "read_text('/proc/1/environ')",
    "read_csv('/etc/passwd')",
    "read_csv('http://127.0.0.1:9/x.csv')",
    "read_parquet('s3://bucket/x.parquet')",
    "read_text('file:///etc/passwd')",
    "read_text(['/etc/passwd', '{dir}/secret.txt'])",
    "duckdb_settings()",
    "duckdb_extensions()",
    "duckdb_secrets()",
    "duckdb_databases()",
    "duckdb_temporary_files()",
    "pragma_version()",
    "pragma_database_size()",
    "which_secret('s3://x', 's3')",
    "query('SELECT * FROM read_text(''{dir}/secret.txt'')')",
    "query_table('{dir}/secret.csv')",
    "checkpoint()",
    "iceberg_scan('{dir}/t')",
    "delta_scan('{dir}/t')",
    "sqlite_scan('{dir}/x.db', 't')",
]

HOSTILE: list[tuple[str, str]] = [
    # the review's findings: a read behind DESCRIBE/SHOW/SUMMARIZE, settings, checkpoint, auto-installed httpfs
    ("SUMMARIZE SELECT content FROM read_text('/proc/self/environ')", "refused"),
    ("DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "refused"),
    ("SUMMARIZE SELECT * FROM glob('/tmp/*')", "refused"),
    ("SUMMARIZE SELECT content FROM read_text('{dir}/secret.txt')", "refused"),
    ("DESCRIBE SELECT * FROM '{dir}/secret.csv'", "refused"),
    ("SHOW SELECT * FROM read_json('{dir}/secret.json')", "refused"),
    ("SUMMARIZE '{dir}/secret.parquet'", "refused"),
    ("DESCRIBE '{dir}/secret.csv'", "refused"),
    ("SHOW databases", "refused"),
    ("SELECT * FROM duckdb_settings()", "refused"),
    ("SELECT current_setting('memory_limit')", "refused"),
    ("SELECT current_setting('temp_directory')", "refused"),
    ("SELECT getenv('" + CANARY_ENV + "')", "refused"),
    ("SELECT getvariable('x')", "refused"),
    ("SELECT * FROM checkpoint()", "refused"),
    ("CALL checkpoint()", "refused"),
    ("CHECKPOINT", "refused"),
    ("FORCE CHECKPOINT", "refused"),
    ("SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "refused"),
    # a CTE named after a file, in every scope
    ('WITH "{dir}/secret.csv" AS (SELECT * FROM \'{dir}/secret.csv\') SELECT * FROM "{dir}/secret.csv"', "refused"),
    (
        'WITH "{dir}/secret.parquet" AS (SELECT * FROM \'{dir}/secret.parquet\') SELECT * FROM "{dir}/secret.parquet"',
        "refused",
    ),
    ('WITH "{dir}/secret.json" AS (SELECT * FROM \'{dir}/secret.json\') SELECT * FROM "{dir}/secret.json"', "refused"),
    ('WITH "secret.csv" AS (SELECT * FROM \'secret.csv\') SELECT * FROM "secret.csv"', "refused"),
    ("WITH secret AS (SELECT * FROM secret) SELECT * FROM secret", "refused"),
    ("SELECT * FROM (WITH \"{dir}/secret.csv\" AS (SELECT 1) SELECT 1), '{dir}/secret.csv'", "refused"),
    ("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x), x", "refused"),
    ('WITH a AS (SELECT * FROM "{dir}/secret.csv"), "{dir}/secret.csv" AS (SELECT 1) SELECT * FROM a', "refused"),
    ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "refused"),
    (
        "WITH a AS (WITH \"{dir}/secret.json\" AS (SELECT * FROM '{dir}/secret.json') "
        'SELECT * FROM "{dir}/secret.json") SELECT * FROM a',
        "refused",
    ),
    ("WITH a AS (SELECT 1) SELECT * FROM (SELECT * FROM '{dir}/secret.csv')", "refused"),
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM '{dir}/secret.csv') SELECT * FROM t", "refused"),
    ("WITH articles AS (SELECT * FROM '{dir}/secret.csv') SELECT * FROM articles", "refused"),
    # file, URL and setting functions, in every position
    *[(f"SELECT * FROM {call}", "refused") for call in _FILE_FUNCTIONS],
    ("SELECT * FROM articles WHERE id IN (SELECT content FROM read_text('{dir}/secret.txt'))", "refused"),
    ("SELECT (SELECT content FROM read_text('{dir}/secret.txt'))", "refused"),
    ("SELECT 1 WHERE EXISTS (SELECT * FROM read_csv('{dir}/secret.csv'))", "refused"),
    ("SELECT id FROM articles UNION ALL SELECT content FROM read_text('{dir}/secret.txt')", "refused"),
    ("SELECT * FROM articles a JOIN read_csv('{dir}/secret.csv') s ON true", "refused"),
    ("SELECT * FROM articles, LATERAL (SELECT * FROM read_text('{dir}/secret.txt'))", "refused"),
    ("SELECT * FROM '{dir}/secret.csv'", "refused"),
    ("FROM '{dir}/secret.parquet'", "refused"),
    ('SELECT * FROM "{dir}/secret.json"', "refused"),
    ("SELECT * FROM '{dir}/*.csv'", "refused"),
    ("SELECT * FROM '/etc/passwd'", "refused"),
    ("SELECT * FROM read_text('/etc/' || 'passwd')", "refused"),
    ("SELECT * FROM read_text((SELECT '/etc/passwd'))", "refused"),
    ("SELECT * FROM main.read_text('{dir}/secret.txt')", "refused"),
    ("SELECT * FROM system.main.read_text('{dir}/secret.txt')", "refused"),
    ("SELECT * FROM \"read_text\"('{dir}/secret.txt')", "refused"),
    ("SELECT * FROM stackwatch.main.articles", "refused"),
    ("SELECT * FROM information_schema.tables", "refused"),
    ("SELECT * FROM memory.main.x", "refused"),
    ("SELECT json_execute_serialized_sql(json_serialize_sql('SELECT 1'))", "refused"),
    # statements other than a query
    ("PRAGMA database_list", "refused"),
    ("PRAGMA show_tables", "refused"),
    ("ATTACH '{dir}/other.duckdb' AS other", "refused"),
    ("ATTACH ':memory:' AS m", "refused"),
    ("DETACH stackwatch", "refused"),
    ("USE memory", "refused"),
    ("COPY articles TO '{dir}/out.csv'", "refused"),
    ("COPY (SELECT * FROM indicators) TO '{dir}/out.parquet' (FORMAT parquet)", "refused"),
    ("COPY articles FROM '{dir}/secret.csv'", "refused"),
    ("EXPORT DATABASE '{dir}/dump'", "refused"),
    ("IMPORT DATABASE '{dir}/dump'", "refused"),
    ("INSTALL httpfs", "refused"),
    ("FORCE INSTALL httpfs FROM 'http://127.0.0.1:9'", "refused"),
    ("LOAD httpfs", "refused"),
    ("LOAD '{dir}/evil.duckdb_extension'", "refused"),
    ("SET enable_external_access = true", "refused"),
    ("SET GLOBAL memory_limit = '64GB'", "refused"),
    ("RESET lock_configuration", "refused"),
    ("SET VARIABLE x = 1", "refused"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')", "refused"),
    ("CREATE TABLE x AS SELECT 1", "refused"),
    ("CREATE TEMP TABLE t AS SELECT * FROM articles", "refused"),
    ("CREATE VIEW v AS SELECT * FROM read_text('{dir}/secret.txt')", "refused"),
    ("CREATE MACRO m() AS TABLE SELECT * FROM read_text('{dir}/secret.txt')", "refused"),
    ("INSERT INTO articles SELECT * FROM articles", "refused"),
    ("UPDATE articles SET title = 'x'", "refused"),
    ("DELETE FROM articles", "refused"),
    ("DROP TABLE articles", "refused"),
    ("ALTER TABLE articles ADD COLUMN x INT", "refused"),
    ("VACUUM", "refused"),
    ("BEGIN TRANSACTION", "refused"),
    ("EXPLAIN SELECT * FROM read_text('{dir}/secret.txt')", "refused"),
    ("EXPLAIN ANALYZE SELECT * FROM read_text('{dir}/secret.txt')", "refused"),
    ("SELECT 1; SELECT * FROM read_text('{dir}/secret.txt')", "refused"),
    # the same attacks in other clothes: case, comments, whitespace, Unicode look-alikes
    ("sUmMaRiZe SeLeCt content FrOm ReAd_TeXt('/proc/self/environ')", "refused"),
    ("/* hello */ DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "refused"),
    ("-- a comment\nSUMMARIZE SELECT * FROM glob('/tmp/*')", "refused"),
    ("\n\t  SUMMARIZE\n\tSELECT content\n\tFROM read_text('{dir}/secret.txt')", "refused"),
    ("SELECT/**/content/**/FROM/**/read_text('{dir}/secret.txt')", "refused"),
    ("SELECT * FROM read_csv /* x */ ('{dir}/secret.csv')", "refused"),
    ("WITH \"{dir}/SECRET.CSV\" AS (SELECT 1) SELECT * FROM '{dir}/secret.csv'", "refused"),
    ("(SELECT * FROM read_text('{dir}/secret.txt'))", "refused"),
    ("SELECT * FROM read_text('{dir}/secret.txt') -- ; trailing", "refused"),
    ("SELECT 'a\x00b'", "refused"),
    ("SELECT * FROM re\u0430d_text('{dir}/secret.txt')", "contained"),  # a Cyrillic "a"
    ("\uff33\uff25\uff2c\uff25\uff23\uff34 * FROM read_text('{dir}/secret.txt')", "refused"),  # fullwidth SELECT
    ("SELECT * FROM read\u200b_text('{dir}/secret.txt')", "refused"),  # a zero-width space
    ("SELECT * FROM articles WHERE title = '\uff0fetc\uff0fpasswd'", "contained"),  # fullwidth slashes
    ('SELECT * FROM "{dir}/secret.csv"\u037e', "refused"),  # a Greek question mark for ";"
    # runaway memory: stopped at sql.memory_limit, within the query's own process
    ("SELECT len(range(300000000))", "contained"),
    ("SELECT length(repeat('x', 1000000000))", "contained"),
    ("SELECT length(lpad('x', 1000000000, 'y'))", "contained"),
    ("SELECT string_agg(md5(range::text), ',') FROM range(30000000)", "contained"),
    ("SELECT range, md5(range::text) FROM range(30000000) ORDER BY 2", "contained"),
]

CASE_IDS = [f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_]+", "_", sql)[:48] for index, (sql, _) in enumerate(HOSTILE)]


def _render(sql: str, secrets: Path) -> str:
    return sql.replace("{dir}", str(secrets))


@dataclass(frozen=True)
class World:
    """Files the corpus aims at and markers that must never come back."""

    secrets: Path
    store: Path

    def leaks(self, text: str) -> list[str]:
        markers = [CANARY, "root:x:0:0", "temp_directory", "MiB", "enable_external_access =", str(self.store)]
        return [marker for marker in markers if marker in text]


def _plant_secrets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret.txt").write_text(f"{CANARY}\n", encoding="utf-8")
    (folder / "secret.csv").write_text(f"name,value\ncanary,{CANARY}\n", encoding="utf-8")
    (folder / "secret.json").write_text(json.dumps({"name": "canary", "value": CANARY}) + "\n", encoding="utf-8")
    with duckdb.connect() as plain:
        target = str(folder / "secret.parquet").replace("'", "''")
        plain.execute(f"COPY (SELECT 'canary' AS name, '{CANARY}' AS value) TO '{target}' (FORMAT parquet)")
    return folder


def tagged(number: int) -> TaggedArticle:
    at = NOON + timedelta(minutes=number)
    article = Article(f"a{number:04d}", f"https://x.test/{number}", f"title {number}", "summary", "wire", "rss", at, at)
    return TaggedArticle(article, ("capex",), {"capex": 0.9, "edge": 0.1}, "v1", at)


ALERT = Alert("alert_1", "capex-any", "warning", "capex", "article_count", "1h", NOON, 3.0, 1.0, "m", ())


def _build_store(path: Path) -> Path:
    with Store.open(path) as store:
        store.write(Batch(tagged=[tagged(n) for n in range(ARTICLES)], alerts=[ALERT]))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("sql")
    return World(_plant_secrets(root / "secrets"), _build_store(root / "store" / "stackwatch.duckdb"))


def _closed_port() -> int:
    return free_port()  # nothing listens there: the CLI runs the query itself


@pytest.fixture(scope="module")
def cli_config(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration whose service is not running: ``stackwatch sql`` opens the store file itself."""
    config = tmp_path_factory.mktemp("cli") / "stackwatch.yaml"
    raw = {
        "storage": {"path": str(world.store)},
        "web": {"host": "127.0.0.1", "port": _closed_port()},
        "sql": {"time_limit": TIME_LIMIT, "max_rows": MAX_ROWS},
    }
    config.write_text(json.dumps(raw), encoding="utf-8")
    return config


def stackwatch_sql(config: Path, sql: str, *options: str) -> Any:
    """``stackwatch sql -c CONFIG [OPTIONS] -- SQL`` (after ``--`` a query may start with ``--``)."""
    return CliRunner().invoke(cli, ["sql", "-c", str(config), *options, "--", sql])


# -- the engine alone ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('{dir}/secret.txt')",
        "SELECT * FROM '{dir}/secret.csv'",
        'WITH "{dir}/secret.csv" AS (SELECT * FROM \'{dir}/secret.csv\') SELECT * FROM "{dir}/secret.csv"',
        "SUMMARIZE SELECT content FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "SELECT * FROM glob('{dir}/*')",
        "COPY articles TO '{dir}/out.csv'",
        "EXPORT DATABASE '{dir}/dump'",
        "ATTACH '{dir}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET memory_limit = '64GB'",
        "RESET lock_configuration",
        "CREATE TABLE x AS SELECT 1",
        "DETACH stackwatch",
    ],
)
def test_the_engine_itself_refuses_files_urls_settings_and_writes(world: World, sql: str) -> None:
    """The first layer without the second: what the parse-tree check might miss, the configuration stops."""
    with open_sandbox(world.store, "256MB") as sandbox, pytest.raises(duckdb.Error) as refused:
        sandbox.execute(_render(sql, world.secrets)).fetchall()
    assert not world.leaks(str(refused.value))
    assert sorted(path.name for path in world.secrets.iterdir()) == [
        "secret.csv",
        "secret.json",
        "secret.parquet",
        "secret.txt",
    ]


# -- the CLI on a real DuckDB file -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "layer"), HOSTILE, ids=CASE_IDS)
def test_the_cli_refuses_or_contains_every_hostile_query(
    world: World, cli_config: Path, monkeypatch: pytest.MonkeyPatch, sql: str, layer: str
) -> None:
    monkeypatch.setenv(CANARY_ENV, CANARY)
    result = stackwatch_sql(cli_config, _render(sql, world.secrets), "--format", "json")
    assert not world.leaks(result.output), result.output
    if layer == "refused":
        assert result.exit_code != 0
        assert "refused" in result.output, result.output


def test_the_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 100


def test_the_cli_reads_the_store_and_marks_a_truncated_answer(world: World, cli_config: Path) -> None:
    counted = stackwatch_sql(cli_config, "SELECT count(*) AS n FROM articles", "--format", "json")
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.stdout) == [{"n": ARTICLES}]
    many = stackwatch_sql(cli_config, "SELECT id FROM articles ORDER BY id", "--format", "csv")
    assert many.exit_code == 0, many.output
    assert many.stdout.splitlines()[1:] == [f"a{n:04d}" for n in range(MAX_ROWS)]
    assert "truncated after 50 rows" in many.stderr


def test_the_cli_reports_a_stopped_query(cli_config: Path) -> None:
    stopped = stackwatch_sql(cli_config, RUNAWAY)
    assert stopped.exit_code != 0
    assert "query stopped after 3s (sql.time_limit)" in stopped.output


def _server_that_hangs_up() -> tuple[socket.socket, threading.Thread]:
    """A listener that reads a request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_the_cli_does_not_run_a_query_again_when_the_service_does_not_answer(world: World, tmp_path: Path) -> None:
    listener, thread = _server_that_hangs_up()
    try:
        config = tmp_path / "stackwatch.yaml"
        port = listener.getsockname()[1]
        config.write_text(json.dumps({"storage": {"path": str(world.store)}, "web": {"port": port}}))
        result = stackwatch_sql(config, "SELECT count(*) * 1000 + 7 AS n FROM articles", "--format", "json")
    finally:
        listener.close()
        thread.join(10)
    assert result.exit_code != 0
    assert "not run again" in result.output
    assert str(ARTICLES * 1000 + 7) not in result.output


# -- the runner and the front, with their limits --------------------------------------------------------------------


def test_the_runner_caps_rows_and_answers_json_values(world: World) -> None:
    answer = run_query(world.store, "SELECT id, published_at FROM articles ORDER BY id", QueryLimits(max_rows=3))
    assert answer.columns == ["id", "published_at"]
    assert answer.rows == [["a0000", "2026-05-01T12:00:00+00:00"], ["a0001", "2026-05-01T12:01:00+00:00"],
                           ["a0002", "2026-05-01T12:02:00+00:00"]]  # fmt: skip
    assert answer.truncated
    whole = run_query(world.store, "SELECT count(*) FROM articles", QueryLimits(max_rows=1))
    assert (whole.rows, whole.truncated) == ([[ARTICLES]], False)


def test_the_runner_cuts_an_answer_at_its_byte_cap(world: World) -> None:
    answer = run_query(world.store, "SELECT repeat('x', 1000) FROM range(100)", QueryLimits(max_answer_bytes=20_000))
    assert answer.truncated
    assert 10 <= len(answer.rows) < 20


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT nope FROM articles", QueryFailed),
        ("SELECT * FROM read_text('/etc/passwd')", QueryRefused),
        (RUNAWAY, QueryStopped),
        ("SELECT len(range(300000000))", QueryStopped),
    ],
)
def test_the_runner_raises_our_errors(world: World, sql: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        run_query(world.store, sql, QueryLimits(time_limit=1.0))
    if isinstance(raised.value, QueryStopped):
        assert raised.value.limit in {"sql.time_limit", "sql.memory_limit"}
        assert "stopped" in str(raised.value)


async def test_one_query_too_many_is_refused_while_the_others_run(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {"storage": {"path": str(tmp_path / "s.duckdb")}, "sql": {"max_concurrent": 1, "time_limit": "2s"}}, environ={}
    )
    thread = StoreThread(Store.open(settings.storage.path))
    front = SqlFront(settings)
    try:
        runaway = asyncio.create_task(front.answer(thread, RUNAWAY))
        await asyncio.sleep(0)  # the task takes its slot before its first wait
        assert front.running == 1
        with pytest.raises(QueryBusy, match=r"sql\.max_concurrent"):
            await front.answer(thread, "SELECT 1")
        with pytest.raises(QueryStopped, match=r"stopped after 2s \(sql.time_limit\)"):
            await runaway
        assert (await front.answer(thread, "SELECT count(*) FROM articles")).rows == [[0]]
    finally:
        await thread.close()


async def test_a_fresh_service_is_queryable_and_sees_each_write(tmp_path: Path) -> None:
    settings = settings_from_mapping({"storage": {"path": str(tmp_path / "s.duckdb")}}, environ={})
    thread = StoreThread(Store.open(settings.storage.path))
    front = SqlFront(settings)
    try:
        assert not settings.storage.snapshot_file().exists()
        assert (await front.answer(thread, "SELECT count(*) FROM articles")).rows == [[0]]
        await thread.call(thread.store.write, Batch(tagged=[tagged(1), tagged(2)]))
        seen: list[list[Any]] = []
        for _ in range(200):  # a new snapshot at most sql.max_staleness after the write
            seen = (await front.answer(thread, "SELECT count(*) FROM articles")).rows
            if seen == [[2]]:
                break
        assert seen == [[2]]
    finally:
        await thread.close()


# -- the API of a running service ------------------------------------------------------------------------------------


@dataclass
class Running:
    service: Service
    config: Path
    api: str
    base: str
    tagged_topic: str
    broker: str


@pytest.fixture(scope="module")
def running(broker: str, world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """``stackwatch sink`` on the corpus's store, with the canary in its environment."""
    root = tmp_path_factory.mktemp("service")
    name = f"t{uuid.uuid4().hex[:10]}"
    port = free_port()
    config = pipeline_config(
        root,
        [broker],
        name,
        storage={"path": str(world.store), "flush_interval": "200ms"},
        web={"host": "127.0.0.1", "port": port},
        sql={"time_limit": TIME_LIMIT, "max_rows": MAX_ROWS, "max_concurrent": 2},
    )
    service = Service(config, command="sink", web_port=port, env={CANARY_ENV: CANARY})
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows[0][0] >= ARTICLES)
        base = f"http://127.0.0.1:{port}"
        yield Running(service, config, f"{base}/api/sql", base, f"{name}.articles.tagged", broker)
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert "Traceback" not in service.output
    assert CANARY not in service.output


@pytest.mark.parametrize(("sql", "layer"), HOSTILE, ids=CASE_IDS)
def test_the_api_refuses_or_contains_every_hostile_query(running: Running, world: World, sql: str, layer: str) -> None:
    response = httpx.post(running.api, json={"sql": _render(sql, world.secrets)}, timeout=60)
    assert not world.leaks(response.text), response.text
    body = response.json()
    if layer == "refused":
        assert response.status_code == 400
        assert body["error"].startswith("refused: ")
    elif response.status_code != 200:
        assert response.status_code == 400, response.text
        assert body["error"]


def test_the_api_answers_ordinary_queries_and_marks_a_truncated_answer(running: Running) -> None:
    def ask(sql: str) -> dict[str, Any]:
        response = httpx.post(running.api, json={"sql": sql}, timeout=60)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    assert ask("SELECT count(*) FROM articles WHERE id < 'a0060'") == {
        "columns": ["count_star()"],
        "rows": [[ARTICLES]],
        "truncated": False,
    }
    many = ask("SELECT id FROM articles ORDER BY id")
    assert (len(many["rows"]), many["truncated"]) == (MAX_ROWS, True)
    assert ask("SELECT rule, severity FROM alerts")["rows"] == [["capex-any", "warning"]]
    assert ask("SELECT count(*) > 0 FROM indicators WHERE dynamic = 'capex'")["rows"] == [[True]]
    assert ask("SELECT published_at FROM articles ORDER BY id LIMIT 1")["rows"] == [["2026-05-01T12:00:00+00:00"]]
    assert ["articles"] in ask("SHOW TABLES")["rows"]
    assert ask("DESCRIBE articles")["rows"][0][:2] == ["id", "VARCHAR"]
    assert ask("WITH recent AS (SELECT * FROM articles) SELECT count(*) FROM recent WHERE id < 'a0060'")["rows"] == [
        [ARTICLES]
    ]


class Feeder:
    """Sends one tagged article every 100 ms to the sink's topic, as the classify agent would, until stopped."""

    def __init__(self, broker: str, topic: str, first: int) -> None:
        self._broker, self._topic, self._next = broker, topic, first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._broker, acks="all")
        await producer.start()
        try:
            while not self._stop.is_set():
                article = tagged(self._next)
                await producer.send_and_wait(self._topic, encode(article), key=article.article.id.encode())
                self._next += 1
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _stored(running: Running) -> int:
    status = httpx.get(f"{running.base}/api/status", timeout=30).json()
    return int(status["store"]["articles"])


def test_a_runaway_query_is_stopped_while_articles_keep_being_stored(running: Running) -> None:
    before = _stored(running)
    answer: dict[str, httpx.Response] = {}
    query = threading.Thread(
        target=lambda: answer.setdefault("response", httpx.post(running.api, json={"sql": RUNAWAY}, timeout=120))
    )
    readiness: list[int] = []
    stored_during: list[int] = []
    with Feeder(running.broker, running.tagged_topic, first=10_000):
        query.start()
        while query.is_alive():
            ready = httpx.get(f"{running.base}/readyz", timeout=30).status_code
            stored = _stored(running)
            if query.is_alive():  # both answers came while the query ran
                readiness.append(ready)
                stored_during.append(stored)
            time.sleep(0.2)
        query.join()
    response = answer["response"]
    assert response.status_code == 400
    assert response.json() == {"error": "query stopped after 3s (sql.time_limit)", "limit": "sql.time_limit"}
    assert readiness
    assert set(readiness) == {200}
    assert max(stored_during) > before  # the sink went on storing while the query ran
    running.service.wait_until("SELECT count(*) FROM articles", lambda rows: rows[0][0] >= max(stored_during))


def test_the_cli_through_the_service_reports_a_stopped_query_and_runs_it_nowhere_else(running: Running) -> None:
    result = stackwatch_sql(running.config, RUNAWAY)
    assert result.exit_code != 0
    assert result.output.strip() == "Error: query stopped after 3s (sql.time_limit)"


def test_one_query_more_than_sql_max_concurrent_is_answered_429(running: Running) -> None:
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def ask() -> None:
        response = httpx.post(running.api, json={"sql": RUNAWAY}, timeout=120)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=ask) for _ in range(3)]  # sql.max_concurrent is 2 here
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(response.status_code for response in responses) == [400, 400, 429]
    (busy,) = [response for response in responses if response.status_code == 429]
    assert "sql.max_concurrent" in busy.json()["error"]
    assert busy.headers["Retry-After"] == "1"
