"""The dashboard and the operations endpoints of a real running service, checked over HTTP and in headless Chromium.

One ``stackwatch up`` (the session broker, a JSONL file source with hostile titles, the keyword classifier, a
rule that fires) serves every test of this module. Chromium is Debian's package (``make setup`` installs it);
when it is missing the browser test fails: CI must run it.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.signals.messages import Article
from tests.helpers.browser import chromium
from tests.helpers.service import Service, write_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
# Connectors decode entities and then drop tags, so no feed puts markup in a title; a record produced to the raw
# topic by anything else can. The dashboard must show it as text whatever the path.
SCRIPT_TITLE = "<script>document.title='pwned'</script> Google TPU deal cuts reliance on Nvidia"
IMG_TITLE = "<img src=x onerror=\"document.title='pwned'\"> Trainium chips replace Nvidia GPUs"
HOSTILE = (1, 2)
"""Which of the articles are produced straight to the raw topic, markup and all."""


def _articles() -> list[dict[str, Any]]:
    # All in one hourly bucket (the middle of the last full hour): with "now" minus minutes, a run early in an hour
    # split them over two buckets, and an older bucket arriving after a newer one fires no alert, so the article
    # page of a hostile-titled article could show none.
    anchor = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    texts = [
        ("Meta signs deal to rent Google TPUs, cutting reliance on Nvidia", "custom silicon TPU Trainium"),
        (SCRIPT_TITLE, "Meta moves to TPU accelerators away from Nvidia CUDA"),
        (IMG_TITLE, "AWS says Anthropic trains on Trainium instead of Nvidia"),
        ("Microsoft raises data center capex to $80 billion", "hyperscaler capital expenditure on AI data centers"),
        ("Oracle plans gigawatt data center campus", "capex for AI infrastructure buildout"),
    ]
    return [
        {
            "id": f"dash-{index}",
            "url": f"https://news.example/{index}" if index != 2 else "javascript:alert(1)",
            "title": title,
            "summary": summary,
            "published_at": (anchor - timedelta(minutes=5 * index)).isoformat(),
        }
        for index, (title, summary) in enumerate(texts)
    ]


async def _produce_raw(broker: str, topic: str, records: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        for record in records:
            article = Article(
                id=record["id"],
                url=record["url"],
                title=record["title"],
                summary=record["summary"],
                source="wire",
                connector="file",
                published_at=datetime.fromisoformat(record["published_at"]),
                fetched_at=now,
            )
            await producer.send_and_wait(topic, encode(article), key=article.id.encode())
    finally:
        await producer.stop()


class Running:
    def __init__(self, service: Service, config: Path, base: str, raw: dict[str, Any]) -> None:
        self.service = service
        self.config = config
        self.base = base
        self.raw = raw
        self.img_id = self.script_id = ""

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30)


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("dashboard")
    feed = root / "feed.jsonl"
    articles = _articles()
    lines = [json.dumps(article) for index, article in enumerate(articles) if index not in HOSTILE] + ["{not json"]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    web_port = free_port()
    name = f"dash{int(time.time() * 1000) % 10**8}"
    raw: dict[str, Any] = {
        "kafka": {"bootstrap_servers": [broker], "app_id": name, "topic_prefix": name, "session_timeout": "6s"},
        "storage": {"path": str(root / "stackwatch.duckdb"), "flush_interval": "200ms", "snapshot_interval": "1s"},
        "state": {"path": str(root / "state")},
        "web": {"host": "127.0.0.1", "port": web_port},
        "classifier": {"backend": "keyword"},
        "sources": [{"name": "wire", "type": "file", "path": str(feed), "interval": "1s"}],
        "webhooks": [{"name": "ops", "url": f"http://127.0.0.1:{free_port()}/hook"}],
        "rules": [
            {"name": "decoupling-any", "kind": "threshold", "dynamic": "decoupling", "window": "1h", "op": ">=",
             "value": 1, "webhooks": ["ops"]},
        ],
    }  # fmt: skip
    config = write_config(root / "stackwatch.yaml", raw)
    service = Service(config, web_port=web_port)
    try:
        asyncio.run(_produce_raw(broker, f"{name}.articles.raw", [articles[index] for index in HOSTILE]))
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows[0][0] == 5)
        service.wait_until("SELECT count(*) FROM alerts", lambda rows: rows[0][0] >= 1)
        stored = service.sql("SELECT title, id FROM articles WHERE title LIKE '<%' ORDER BY title")
        assert [row[0][:8] for row in stored] == ["<img src", "<script>"]  # the markup is in the store as text
        running = Running(service, config, f"http://127.0.0.1:{web_port}", raw)
        running.img_id, running.script_id = stored[0][1], stored[1][1]
        yield running
    finally:
        service.stop()


def test_overview_renders_charts_alerts_and_hostile_titles_as_text_in_chromium(running: Running) -> None:
    url = running.base + "/dashboard/"
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", url).stdout
    # one chart per dynamic, the heat map, the alert with its evidence, the recent articles, the source
    assert len(re.findall(r'<svg[^>]*class="chart"', dom)) == 4
    assert 'class="heat"' in dom
    assert "decoupling-any" in dom, re.sub(r"<svg.*?</svg>", "<svg/>", dom, flags=re.S)[:6000]
    assert re.search(r'<ol class="evidence">.*?</ol>', dom, re.S)
    assert dom.count('class="article"') == 5
    assert "<td>wire</td>" in dom
    # the hostile titles are text: escaped in the DOM, no element built from them, no script ran
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=" in dom
    assert "<script" not in dom
    assert "<img" not in dom
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    assert 'href="javascript:' not in dom  # an article's javascript: link is not made a link
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-overview.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=1400,2200", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 10_000


def test_article_page_shows_scores_and_the_alert_it_fed_without_running_its_title(running: Running) -> None:
    dom = chromium(
        "--virtual-time-budget=2000", "--dump-dom", running.base + f"/dashboard/article/{running.img_id}"
    ).stdout
    assert '<h1 class="article-title">&lt;img src=x onerror=' in dom
    assert "<img" not in dom
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    assert 'href="javascript:' not in dom  # the article's javascript: link is not made a link
    scores = re.search(r'<table class="scores">(.*?)</table>', dom, re.S)
    assert scores is not None
    assert "decoupling" in scores.group(1)
    assert "decoupling-any" in dom


def test_every_page_carries_a_csp_that_allows_no_script(running: Running) -> None:
    article = f"/dashboard/article/{running.script_id}"
    for path in ("/dashboard/", "/dashboard/dynamic/decoupling", "/dashboard/entity/NVIDIA", article,
                 "/dashboard/static/style.css", "/metrics", "/healthz", "/readyz", "/api/status", "/nope"):  # fmt: skip
        response = running.get(path)
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp, path
        assert "script-src" not in csp, path
        assert response.headers.get("x-content-type-options") == "nosniff", path
    assert running.get("/dashboard/dynamic/weather").status_code == 404
    assert running.get("/dashboard/article/missing").status_code == 404
    entity = running.get("/dashboard/entity/Google?days=30")
    assert entity.status_code == 200
    assert "Entity: Google" in entity.text


def test_ready_and_health_say_why(running: Running) -> None:
    assert running.get("/healthz").json()["status"] == "ok"
    ready = running.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "reasons": []}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_give_the_figures_they_promise(running: Running) -> None:
    response = running.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    wire = (("source", "wire"),)
    read = 5 - len(HOSTILE)  # the file's articles; the hostile ones were produced by the test
    assert samples[("stackwatch_articles_fetched_total", wire)] == read + 1  # and 1 broken line
    assert samples[("stackwatch_articles_produced_total", wire)] == read
    assert samples[("stackwatch_articles_rejected_total", wire)] == 1
    assert samples[("stackwatch_source_up", wire)] == 1
    assert samples[("stackwatch_classify_batch_size_sum", ())] == 5
    assert samples[("stackwatch_classify_seconds_count", ())] >= 1
    assert samples[("stackwatch_sink_rows_total", ())] >= 5
    assert samples[("stackwatch_articles_stored_total", ())] >= 5  # 5 tagged: more only if delivered again
    assert samples[("stackwatch_sink_commit_seconds_count", ())] >= 1
    assert samples[("stackwatch_alerts_fired_total", (("severity", "warning"),))] >= 1
    assert sum(v for (name, _), v in samples.items() if name == "stackwatch_deliveries") >= 1
    lag = {labels: v for (name, labels), v in samples.items() if name == "stackwatch_consumer_lag"}
    assert len(lag) == 6  # the workers read 2 topics, the sink 4
    assert all(value >= 0 for value in lag.values())
    assert 0 <= samples[("stackwatch_snapshot_age_seconds", ())] < 60


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackwatch.pipeline.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_status_prints_a_compact_summary(running: Running) -> None:
    result = _cli("status", "-c", str(running.config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stackwatch: ready")
    assert "wire" in result.stdout
    assert "lag: total" in result.stdout
    assert "5 articles" in result.stdout
    assert "decoupling-any" in result.stdout


def test_reload_refuses_a_bad_config_and_applies_sources_webhooks_and_rules(running: Running, tmp_path: Path) -> None:
    original = running.config.read_text(encoding="utf-8")
    try:
        bad = dict(running.raw, sources=[{"name": "wire", "type": "rss"}])
        write_config(running.config, bad)
        refused = _cli("reload", "-c", str(running.config))  # the command checks the file first
        assert refused.returncode == 1
        assert "sources[0].url: required key is missing" in refused.stderr
        answer = httpx.post(running.base + "/api/reload", json={}, timeout=30)  # and so does the service
        assert answer.status_code == 422
        assert answer.json()["ok"] is False
        assert "sources[0].url" in answer.json()["error"]
        assert running.get("/readyz").status_code == 200
        assert [state["name"] for state in running.get("/api/sources").json()] == ["wire"]
        extra = tmp_path / "extra.jsonl"
        extra.write_text(json.dumps({"id": "x1", "title": "Nvidia Blackwell capex", "summary": "capex"}) + "\n")
        added = dict(
            running.raw,
            sources=[*running.raw["sources"], {"name": "extra", "type": "file", "path": str(extra), "interval": "1s"}],
            webhooks=[{"name": "ops", "url": "http://127.0.0.1:9/other"}],
            rules=[
                *running.raw["rules"],
                {"name": "capex-reloaded", "kind": "threshold", "dynamic": "capex", "op": ">=", "value": 1,
                 "webhooks": ["ops"]},
            ],
        )  # fmt: skip
        write_config(running.config, added)
        applied = _cli("reload", "-c", str(running.config))
        assert applied.returncode == 0, applied.stderr
        assert "applied: sources, webhooks, rules" in applied.stdout
        names = {state["name"] for state in running.get("/api/sources").json()}
        assert names == {"wire", "extra"}
        running.service.wait_until("SELECT count(*) FROM articles WHERE source = 'extra'", lambda rows: rows[0][0] == 1)
        # the rule added by the reload is live: the extra capex article fires it
        running.service.wait_until(
            "SELECT count(*) FROM alerts WHERE rule = 'capex-reloaded'", lambda rows: rows[0][0] >= 1
        )
        # SIGHUP does the same: back to the original sources
        running.config.write_text(original, encoding="utf-8")
        running.service.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while {s["name"] for s in running.get("/api/sources").json()} != {"wire"}:
            assert time.monotonic() < deadline, running.service.output[-3000:]
            time.sleep(0.2)
        # the wire source kept its state (and its checkpoint): nothing was fetched twice
        assert _samples(running.get("/metrics").text)[
            ("stackwatch_articles_produced_total", (("source", "wire"),))
        ] == 5 - len(HOSTILE)
    finally:
        running.config.write_text(original, encoding="utf-8")
