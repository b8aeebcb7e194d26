"""``rules backtest`` and ``export`` while the service runs: they read the store file when it is free, else the
snapshot the service publishes, say which on stderr, and write neither.

The service is stood in for by what makes it the service here: another process that holds the DuckDB file open
for writing (DuckDB's lock), beside a snapshot made by the sink's own snapshot job.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.settings import load_settings
from stackwatch.storage.maintenance import EXPORTS, snapshot
from stackwatch.storage.reading import open_for_reading
from stackwatch.storage.store import Batch, Store
from tests.helpers.service import Service, pipeline_config
from tests.test_alerts import articles_for, config, scripted_history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
HOLDER = """
import sys
from stackwatch.storage.store import Store
with Store.open(sys.argv[1]):
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The configuration, its store (scripted history, as the sink keeps it) and the snapshot beside it."""
    db = tmp_path / "history.duckdb"
    path = config(tmp_path, db)
    snapshot_file = load_settings(path, secrets=False).storage.snapshot_file()
    with Store.open(db) as store:
        store.write(Batch(tagged=articles_for(scripted_history())))
        snapshot(store, snapshot_file)
    return path, db, snapshot_file


@contextmanager
def holding(db: Path) -> Iterator[None]:
    """Another process holds the store file for writing within the block, as the running service does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == b"ready"
        yield
    finally:
        holder.stdin.close()
        assert holder.wait(30) == 0
        holder.stdout.close()


def run(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(path)])


def backtest(path: Path) -> Result:
    return run(path, "rules", "backtest", "--since", "2026-05-01")


def test_with_the_file_free_backtest_reads_the_store_and_says_so(configured: tuple[Path, Path, Path]) -> None:
    path, db, _ = configured
    result = backtest(path)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"backtest: reading the store {db}"
    assert "alert(s)" in result.stdout


def test_while_the_service_holds_the_file_backtest_reads_the_snapshot_and_writes_neither(
    configured: tuple[Path, Path, Path],
) -> None:
    path, db, snapshot_file = configured
    free = backtest(path)
    assert free.exit_code == 0, free.output
    before = digest(snapshot_file)
    with holding(db):
        held_store = digest(db)
        result = backtest(path)
        assert digest(db) == held_store
    assert result.exit_code == 0, result.output
    said = result.stderr.splitlines()[0]
    assert said.startswith(f"backtest: reading the snapshot {snapshot_file} (")
    assert re.search(r"\(\d+s old; ", said), said
    assert re.search(rf"{re.escape(str(db))}: held by process \d+ \(a running service\?\)\)$", said), said
    assert result.stdout == free.stdout  # the snapshot holds the same history: the same firings
    assert digest(snapshot_file) == before


def test_while_the_service_holds_the_file_export_writes_the_snapshot_as_parquet(
    configured: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    path, db, snapshot_file = configured
    with Store.open(db) as store:
        expected = {table: store.count(table) for table in EXPORTS}
    before = digest(snapshot_file)
    target = tmp_path / "out" / "parquet"
    with holding(db):
        result = run(path, "export", "--parquet", str(target))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith(f"export: reading the snapshot {snapshot_file} (")
    assert "articles: " in result.stdout
    files = str(target / "articles" / "*" / "*.parquet")
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone() == (
        expected["articles"],
    )
    assert f"articles: {expected['articles']} rows" in result.stdout
    assert digest(snapshot_file) == before


def test_with_the_file_held_and_no_snapshot_both_commands_name_both_files_and_why(
    configured: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    path, db, snapshot_file = configured
    snapshot_file.unlink()
    with holding(db):
        results = [backtest(path), run(path, "export", "--parquet", str(tmp_path / "out"))]
    for result, command in zip(results, ("backtest", "export"), strict=True):
        assert result.exit_code != 0
        message = result.output
        assert f"{command}: cannot read the store or its snapshot: " in message
        assert re.search(rf"{re.escape(str(db))}: held by process \d+ \(a running service\?\); ", message)
        assert f"{snapshot_file}: no such file" in message
        assert "storage.snapshot_interval, which is 60s" in message
        assert "Traceback" not in message
    assert not snapshot_file.exists()


def test_a_snapshot_that_is_not_a_store_is_named_with_duckdbs_reason(configured: tuple[Path, Path, Path]) -> None:
    path, db, snapshot_file = configured
    snapshot_file.write_bytes(b"not a duckdb file " * 100)
    with holding(db):
        result = backtest(path)
    assert result.exit_code != 0
    assert f"{db}: held by process " in result.output
    assert f"{snapshot_file}: " in result.output
    assert snapshot_file.read_bytes() == b"not a duckdb file " * 100


def test_the_export_connection_writes_under_its_directory_and_nowhere_else(
    configured: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, db, snapshot_file = configured
    elsewhere = tmp_path / "elsewhere.csv"
    (tmp_path / "out").mkdir()
    with open_for_reading(db, snapshot_file, export_to=tmp_path / "out") as source:
        connection = source.store.connection
        connection.execute(f"COPY (SELECT 1 AS a) TO '{tmp_path / 'out' / 'ok.csv'}'")
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            connection.execute(f"COPY (SELECT 1 AS a) TO '{elsewhere}'")
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            connection.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error):
            connection.execute("CREATE TABLE written (a INTEGER)")  # read-only
    assert (tmp_path / "out" / "ok.csv").is_file()
    assert not elsewhere.exists()


HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); print('held', flush=True); sys.stdin.read()"
)
"""A reader of the store (as `stackwatch sql` is when no service answers yet), until its stdin closes."""


@pytest.mark.integration
def test_a_service_starting_while_a_reader_holds_the_file_waits_for_it(
    broker: str, unique: str, tmp_path: Path
) -> None:
    path = tmp_path / "stackwatch.duckdb"
    Store.open(path).close()
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "held"
    web_port = free_port()
    service = Service(pipeline_config(tmp_path, [broker], unique, web={"port": web_port}), web_port=web_port)
    try:
        deadline = time.monotonic() + 120
        while "is held by another process; trying again" not in service.output:
            assert time.monotonic() < deadline, service.output[-4000:]
            assert service.process.poll() is None, service.output[-4000:]
            time.sleep(0.2)
        reader.communicate("\n")  # the reader's query ends: the file is free
        assert service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[0]]) == [[0]]
    finally:
        reader.kill()
        code = service.stop()
    assert code == 0, service.output[-4000:]
