"""benchmarks.scale at small sizes, as CI runs it: every step runs to its end within a low memory cap and the counts
agree. No timing assertions (the figures are the benchmark's to print). And the store commands show their
progress, a line per step, when stderr is not a terminal.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from benchmarks.fill import Market, fill_market
from benchmarks.scale import QUERIES, Options, dense_reference, run
from stackwatch.pipeline.cli.main import cli
from stackwatch.storage.maintenance import EXPORTS
from stackwatch.storage.store import Store

CAP = "64MB"
END = datetime(2026, 6, 1, 12, tzinfo=UTC)
FILLED = 6
"""Tables the fill writes over all its days: articles, their dynamics, entities and stories, stories, indicators."""
PAGES = {"overview", "dynamic_detail", "entity_detail", "article_detail", "search"}


def test_the_scale_benchmark_runs_every_step_to_the_end_and_its_counts_agree() -> None:
    printed: list[str] = []
    progress: list[str] = []
    options = Options(days=150, memory_limit=CAP, batch=500, writes=2, repeats=2)

    results = run([20_000, 60_000], options, out=printed.append, log=progress.append)

    assert [(result.size, result.days) for result in results] == [(20_000, 150), (60_000, 150), (20_000, 50)]
    assert results[2].mismatches == []  # the smallest store again, with the largest's daily volume
    for result in results[:2]:
        assert result.finished == {"fill": True, "rebuild": True, "retention": True, "export": True}
        assert result.mismatches == []
        assert result.counts["articles"] == result.size + 2 * 500
        assert result.rebuild_steps[0] == result.rebuild_steps[1] > 1  # the chunks, then the baselines
        assert result.rebuilt_rows > 0
        assert result.bodies_dropped > 0  # bodies are kept 120 days, retention keeps 90
        assert result.export_steps[1] >= len(EXPORTS) + 4 * FILLED  # each month of a filled table, one per other
        assert result.pages.keys() == PAGES
        assert result.queries.keys() == QUERIES.keys()
        assert len(result.write_seconds) == 2
        assert result.file_bytes > 0
        assert result.rss.keys() == {"fill", "rebuild", "reads", "sink", "retention", "export"}
        assert result.peak_rss > 0
        assert result.duckdb_memory.keys() == {"reads", "sink"}
        assert 0 < max(result.duckdb_memory.values()) <= 64 * 2**20  # the cap holds what DuckDB accounts for
    assert sum("counts agree" in line for line in printed) == 3
    assert any(line.startswith("== 20,000 articles over 50 days") for line in printed)
    assert dense_reference(results)[0].startswith("== the store's size alone: a write into 60,000 articles costs")
    assert any(line.startswith("== 60,000 articles") for line in printed)
    for job in ("fill", "rebuild", "retention", "export"):
        assert any(re.match(rf"\s+{job}\s+100% \((\d+)/\1 steps", line) for line in progress), job


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store holds 5,000 articles over 150 days (bodies on the last 120), without indicators."""
    path = tmp_path / "stackwatch.duckdb"
    with Store.open(path, memory_limit=CAP) as store:
        fill_market(store, Market(5_000, days=150, end=END))
    file = tmp_path / "stackwatch.yaml"
    file.write_text(json.dumps({"storage": {"path": str(path), "memory_limit": CAP}}))
    return file


def steps(stderr: str, job: str) -> list[tuple[int, int]]:
    return [(int(done), int(total)) for done, total in re.findall(rf"^{job}: (\d+)/(\d+) steps$", stderr, re.M)]


def test_rebuild_retention_and_export_print_a_line_per_step_when_stderr_is_no_terminal(
    config: Path, tmp_path: Path
) -> None:
    runner = CliRunner()

    rebuilt = runner.invoke(cli, ["rebuild", "-c", str(config)])
    assert rebuilt.exit_code == 0, rebuilt.output
    lines = steps(rebuilt.stderr, "rebuild")
    total = lines[-1][1]
    assert lines == [(done, total) for done in range(1, total + 1)]  # each chunk of days, then the baselines
    assert total > 2
    assert rebuilt.stdout.startswith("rebuilt ")

    kept = runner.invoke(cli, ["retention", "-c", str(config)])
    assert kept.exit_code == 0, kept.output
    lines = steps(kept.stderr, "retention")
    assert lines[-1][0] == lines[-1][1] == len(lines) > 2  # months of bodies, dead letters, checkpoint
    assert json.loads(kept.stdout)["rows"]["articles"] == 5_000  # stdout stays the report alone

    exported = runner.invoke(cli, ["export", "-c", str(config), "--parquet", str(tmp_path / "export")])
    assert exported.exit_code == 0, exported.output
    lines = steps(exported.stderr, "export")
    assert lines == [(done, len(lines)) for done in range(1, len(lines) + 1)]
    assert len(lines) >= len(EXPORTS) + 4 * FILLED  # a month of a table a step: 150 days span 5 or 6 months
    assert "articles: 5000 rows" in exported.stdout
    files = str(tmp_path / "export" / "articles" / "*" / "*.parquet")
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone() == (5_000,)
