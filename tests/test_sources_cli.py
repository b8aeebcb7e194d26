"""``stackwatch sources`` and ``stackwatch sources preview``: real files, a real local server, a real subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.connectors import CheckpointStore
from stackwatch.pipeline.cli.main import cli
from tests.helpers.http import LocalServer

FEEDS = Path(__file__).parent / "data" / "feeds"


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_preview_prints_articles_and_one_error_per_failed_input(tmp_path: Path) -> None:
    jsonl = tmp_path / "picked.jsonl"
    jsonl.write_text('{"id": "p1", "title": "Oracle buys GPUs", "url": "https://x.example/p1"}\n', encoding="utf-8")
    inputs = [FEEDS / "rss2_namespaces.xml", FEEDS / "broken_html.html", FEEDS / "jsonfeed.json", jsonl]
    result = CliRunner().invoke(cli, ["sources", "preview", *map(str, inputs), str(tmp_path / "missing.xml")])
    records = lines(result.stdout)
    assert result.exit_code == 1  # some inputs failed
    assert [r.get("connector") or r.get("error") for r in records] == [
        "rss",
        "rss",
        "rss",
        "not a feed: the document is HTML",
        "jsonfeed",
        "jsonfeed",
        "jsonfeed",
        "file",
        f"cannot read {tmp_path / 'missing.xml'}: No such file or directory",
    ]
    assert records[3]["input"] == str(FEEDS / "broken_html.html")
    assert records[0]["title"] == "Meta signs multi-billion TPU deal with Google Cloud"


@pytest.mark.integration
def test_preview_fetches_urls(http_server: LocalServer) -> None:
    http_server.route("/hn", (FEEDS / "hn.json").read_bytes(), headers={"Content-Type": "application/json"})
    http_server.route("/edgar", (FEEDS / "edgar.xml").read_bytes(), headers={"Content-Type": "application/atom+xml"})
    http_server.route("/busy", b"", status=429, headers={"Retry-After": "30"})
    urls = [http_server.url("/hn"), http_server.url("/edgar"), http_server.url("/busy")]
    result = CliRunner().invoke(cli, ["sources", "preview", *urls, "--user-agent", "Acme ops@acme.example"])
    records = lines(result.stdout)
    assert [r.get("connector") for r in records[:4]] == ["hackernews", "hackernews", "sec_edgar", "sec_edgar"]
    assert records[2]["title"] == "NVIDIA CORP: 8-K - Current report"
    assert records[4] == {"input": urls[2], "error": "HTTP 429: retry after 30s"}
    assert http_server.received("/edgar")[0].headers["user-agent"] == "Acme ops@acme.example"


def test_preview_loads_no_model() -> None:
    script = (
        "import sys\n"
        "from stackwatch.pipeline.cli.main import cli\n"
        f"cli(['sources', 'preview', {str(FEEDS / 'gdelt.json')!r}], standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'transformers', 'faust') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert "HEAVY []" in done.stdout
    assert len(lines(done.stdout.split("HEAVY")[0])) == 2


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "stackwatch.yaml"
    config.write_text(
        f"state: {{path: {tmp_path / 'state'}}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
        "sources:\n"
        "  - {name: wire, type: rss, url: 'https://wire.example/feed.xml'}\n"
        "  - {name: hn-tpu, type: hackernews, query: TPU}\n",
        encoding="utf-8",
    )
    return config


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sources_lists_state_from_checkpoints_when_no_service_answers(tmp_path: Path) -> None:
    config = _config(tmp_path, _closed_port())
    CheckpointStore(tmp_path / "state" / "checkpoints").save("wire", {"etag": '"v1"', "seen": ["a", "b"]})
    result = CliRunner().invoke(cli, ["sources", "-c", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["type"], r["ids_remembered"], r["etag"]) for r in rows] == [
        ("wire", "rss", 2, '"v1"'),
        ("hn-tpu", "hackernews", None, None),
    ]


@pytest.mark.integration
def test_sources_asks_the_running_service_first(http_server: LocalServer, tmp_path: Path) -> None:
    states = [{"name": "wire", "type": "rss", "last_success": "2026-05-01T12:00:00+00:00", "last_error": None,
               "items_seen": 7, "items_rejected": 1, "next_poll": "2026-05-01T12:05:00+00:00", "polls": 3}]  # fmt: skip
    http_server.route("/api/sources", json.dumps(states), headers={"Content-Type": "application/json"})
    config = _config(tmp_path, http_server.port)
    result = CliRunner().invoke(cli, ["sources", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "wire" in result.stdout
    assert "2026-05-01T12:05:00+00:00" in result.stdout
    assert "hn-tpu" not in result.stdout  # the live answer, not the config


@pytest.mark.integration
def test_backfill_rereads_a_source_through_the_running_service_without_duplicates(
    broker: str, unique: str, tmp_path: Path
) -> None:
    from stackwatch.pipeline.kafka.broker import free_port
    from tests.helpers.service import Service, pipeline_config

    feed = tmp_path / "articles.jsonl"
    feed.write_text("".join(json.dumps({"id": f"b{n}", "title": f"Item {n}"}) + "\n" for n in range(30)))
    port = free_port()
    config = pipeline_config(
        tmp_path, [broker], unique, web={"port": port}, classifier={"backend": "keyword"},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "1h"}],
    )  # fmt: skip
    service = Service(config, web_port=port)
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[30]], timeout=180)
        done = subprocess.run(
            [sys.executable, "-m", "stackwatch.pipeline.cli", "backfill", "backfill", "-c", str(config)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        unknown = subprocess.run(
            [sys.executable, "-m", "stackwatch.pipeline.cli", "backfill", "nope", "-c", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        time.sleep(2)
        stored = service.sql("SELECT count(*), count(DISTINCT id) FROM articles")
    finally:
        assert service.stop() == 0, service.output[-2000:]
    assert done.returncode == 0, done.stderr
    assert "30 article(s) produced again" in done.stdout
    assert unknown.returncode == 1
    assert "unknown source 'nope'" in unknown.stderr
    assert stored == [[30, 30]]
