"""The dashboard and the operations endpoints of a real running service, checked over HTTP and in headless Chromium.

One ``stackwatch up`` (the session broker, a JSONL file source with hostile titles, the keyword classifier, a
user-defined dynamic, an entity with an awkward name, a rule that fires) serves every test of this module.
Chromium is Debian's package (``make setup`` installs it); when it is missing the browser test fails: CI must run
it.
"""

from __future__ import annotations

import asyncio
import html
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
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.signals.messages import Alert, Article
from stackwatch.storage.dashboard.reads import alert_views
from stackwatch.storage.store import Batch, Store
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
ODD = "AT&T / Ünïcode 100% Labs"
"""A configured entity whose name needs percent-encoding in a URL (the last article mentions it)."""
LEASING = "gpu_leasing_2"
"""A user-defined dynamic (the last article is labelled with it)."""


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
        ("Oracle plans gigawatt data center campus", "capex for AI infrastructure buildout with Unicode Labs"),
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
        "dynamics": [{"name": LEASING, "description": "GPU capacity leased out", "keywords": [r"\bgigawatt\b"]}],
        "entities": [{"name": ODD, "aliases": ["unicode labs"]}],
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
    # one chart per dynamic (the four built in and the user's), the heat map, the alert with its evidence, the
    # recent articles, the source
    assert len(re.findall(r'<svg[^>]*class="chart"', dom)) == 5
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
                 "/dashboard/search?q=%3Cscript%3E", "/dashboard/search?since=x", "/dashboard/entity/nobody",
                 "/dashboard/static/style.css", "/metrics", "/healthz", "/readyz", "/api/status", "/nope"):  # fmt: skip
        response = running.get(path)
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp, path
        assert "script-src" not in csp, path
        assert response.headers.get("x-content-type-options") == "nosniff", path
    for bare, target in (
        ("/dashboard", "/dashboard/"),
        ("/dashboard?days=7&width=1h", "/dashboard/?days=7&width=1h"),
        (
            "/dashboard?x=%0d%0aSet-Cookie:%20a=b&y=//evil.test",
            "/dashboard/?x=%0D%0ASet-Cookie%3A+a%3Db&y=%2F%2Fevil.test",
        ),
    ):
        redirect = running.get(bare)
        assert (redirect.status_code, redirect.headers["location"]) == (308, target)  # the query re-encoded
        assert "set-cookie" not in redirect.headers
    assert running.get("/dashboard/dynamic/weather").status_code == 404
    assert running.get("/dashboard/article/missing").status_code == 404
    entity = running.get("/dashboard/entity/Google?days=30")
    assert entity.status_code == 200
    assert "Entity: Google" in entity.text


# -- reading at a glance: the range, the links, the names, the search ------------------------------------------------


def _on(page: str) -> list[str]:
    """The ranges the nav marks as in force."""
    return re.findall(r'<a href="[^"]*" class="on" aria-current="true">([^<]*)</a>', page)


def test_a_page_that_names_no_range_opens_on_the_default_for_the_volume_and_says_so(running: Running) -> None:
    overview = running.get("/dashboard/").text  # five articles this week: hourly bars would be needles
    assert _on(overview) == ["182d · 1w"]
    assert "default for this volume" in overview
    assert "the default for this store's volume" in overview
    named = running.get("/dashboard/?days=7&width=1h").text
    assert _on(named) == ["7d · 1h"]
    assert "default for this volume" not in named
    assert _on(running.get("/dashboard/dynamic/decoupling?days=30").text) == ["30d · 1d"]
    assert _on(running.get(f"/dashboard/article/{running.script_id}").text) == ["182d · 1w"]


def test_each_dynamics_chart_has_a_legend_and_the_zscore_its_own_axis(running: Running) -> None:
    weekly = running.get("/dashboard/dynamic/decoupling").text
    legend = re.search(r'<g class="legend">(.*?)</g>', weekly)
    assert legend is not None
    assert "articles per week" in legend.group(1)
    assert "highest daily z-score of the week (right axis)" in legend.group(1)
    assert re.search(r'class="axis z" data-tick="max"', weekly)
    assert re.search(r'class="axis z" data-tick="zero"', weekly)
    assert "articles per hour" in running.get("/dashboard/dynamic/decoupling?days=7&width=1h").text


def _dashboard_links(page: str) -> list[str]:
    hrefs = (html.unescape(href) for href in re.findall(r'href="([^"]*)"', page))
    return [href for href in hrefs if href.startswith("/dashboard/") and not href.startswith("/dashboard/static/")]


@pytest.mark.parametrize(("query", "days", "width"), [("?days=30&width=1d", "30", "1d"), ("", "182", "1w")])
def test_every_link_from_a_page_to_another_carries_the_range(
    running: Running, query: str, days: str, width: str
) -> None:
    pages = ["/dashboard/", "/dashboard/dynamic/decoupling", "/dashboard/entity/NVIDIA",
             f"/dashboard/article/{running.script_id}", f"/dashboard/dynamic/{LEASING}"]  # fmt: skip
    for path in pages:
        links = _dashboard_links(running.get(path + query).text)
        assert len(links) >= 3, path
        for link in links:
            fields = parse_qs(urlsplit(link).query)
            assert (fields.get("days"), fields.get("width")) == ([days], [width]), (path, link)
    search = running.get("/dashboard/search?q=tpu" + query.replace("?", "&")).text
    assert re.search(rf'<input type="hidden" name="days" value="{days}">', search)
    assert all(f"days={days}&width={width}" in link for link in _dashboard_links(search))
    heat = re.search(r'<svg[^>]*class="heat".*?</svg>', running.get("/dashboard/" + query).text, re.S)
    assert heat is not None
    assert all(f"days={days}&width={width}" in link for link in _dashboard_links(heat.group(0)))
    assert len(_dashboard_links(heat.group(0))) > 5  # entity labels, cells and dynamic heads


def test_entity_pages_answer_any_case_and_any_configured_name(running: Running) -> None:
    for written in ("NVIDIA", "nvidia", "nViDiA"):
        page = running.get(f"/dashboard/entity/{written}")
        assert page.status_code == 200, written
        assert "<h1>Entity: NVIDIA</h1>" in page.text
    for written in (ODD, ODD.lower(), ODD.upper()):
        page = running.get("/dashboard/entity/" + quote(written, safe=""))
        assert page.status_code == 200, written
        assert f"<h1>Entity: {html.escape(ODD)}</h1>" in page.text
        assert "Oracle plans gigawatt data center campus" in page.text
    unknown = running.get("/dashboard/entity/" + quote("Nobody & Co/%", safe=""))
    assert unknown.status_code == 404
    assert "unknown entity &#39;Nobody &amp; Co/%&#39;: neither the gazetteer nor the store has it" in unknown.text


def test_dynamic_pages_answer_any_case_and_user_defined_dynamics(running: Running) -> None:
    for written in (LEASING, LEASING.upper()):
        page = running.get(f"/dashboard/dynamic/{written}")
        assert page.status_code == 200, written
        assert f"<h1>Dynamic: {LEASING}</h1>" in page.text
        assert "Oracle plans gigawatt data center campus" in page.text
    assert "<h1>Dynamic: capex</h1>" in running.get("/dashboard/dynamic/CaPeX").text
    assert running.get("/dashboard/dynamic/weather").status_code == 404
    assert running.get("/dashboard/dynamic/" + quote("capex/../x", safe="")).status_code == 404


def _titles(page: str) -> list[str]:
    return [html.unescape(title) for title in re.findall(r'<a class="title" href="[^"]*">([^<]*)</a>', page)]


def test_search_finds_stored_articles_by_text_and_filters_newest_first(running: Running) -> None:
    by_text = running.get("/dashboard/search?q=tpu")
    assert by_text.status_code == 200
    assert _titles(by_text.text) == ["Meta signs deal to rent Google TPUs, cutting reliance on Nvidia", SCRIPT_TITLE]
    assert "2 matching articles" in by_text.text
    assert _titles(running.get(f"/dashboard/search?entity={quote(ODD.lower())}").text) == [
        "Oracle plans gigawatt data center campus"
    ]
    assert len(_titles(running.get("/dashboard/search?dynamic=DECOUPLING&source=WIRE").text)) == 3
    assert len(_titles(running.get("/dashboard/search?q=nvidia&dynamic=decoupling").text)) == 3
    today = datetime.now(UTC)
    recent = f"since={today - timedelta(days=1):%Y-%m-%d}&until={today:%Y-%m-%d}"
    assert len(_titles(running.get(f"/dashboard/search?{recent}").text)) == 5
    assert "no matching articles" in running.get("/dashboard/search?until=2001-01-01").text
    page = running.get("/dashboard/")
    assert re.search(r'<form class="search" method="get" action="/dashboard/search" role="search">', page.text)


@pytest.mark.parametrize(
    ("q", "titles"),
    [
        ("<script>document.title='pwned'</script>", [SCRIPT_TITLE]),  # found as text, shown as text
        ('"><img src=x onerror="document.title=\'pwned\'">', []),
        ("%", []),
        ("_", []),
        ("' OR 1=1 --", []),
        ("\x00", []),
        ("Nvidia" + "%" * 2000, []),  # 6 KiB in the address: 8 KiB is the server's limit
    ],
)
def test_a_hostile_search_is_matched_literally_and_rendered_inert_in_chromium(
    running: Running, q: str, titles: list[str]
) -> None:
    url = running.base + "/dashboard/search?q=" + quote(q, safe="")
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200
    assert _titles(answer.text) == titles
    dom = chromium("--virtual-time-budget=2000", "--dump-dom", url).stdout
    assert "<script" not in dom
    assert "<img" not in dom
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    assert 'name="q" value="' in dom  # the text is back in the box, as an attribute value


def test_a_search_longer_than_the_server_reads_is_refused_not_failed(running: Running) -> None:
    answer = running.get("/dashboard/search?q=" + "%25" * 5000)  # 15 KiB: past aiohttp's 8190-byte request line
    assert answer.status_code == 400
    assert "pwned" not in answer.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since: expected a date as YYYY-MM-DD, got &#39;yesterday&#39;"),
        ("until=2026-02-30", "until: expected a date as YYYY-MM-DD, got &#39;2026-02-30&#39;"),
        ("since=2026-03-05&until=2026-03-01", "until: 2026-03-01 is before since (2026-03-05)"),
        (
            "dynamic=weather",
            "dynamic: unknown dynamic &#39;weather&#39; (known: exclusivity, capex, decoupling, edge, ",
        ),
        ("dynamic=%3Cscript%3E", "dynamic: unknown dynamic &#39;&lt;script&gt;&#39;"),
        ("entity=Nobody", "entity: unknown entity &#39;Nobody&#39; (neither the gazetteer nor the store)"),
        ("page=0", "page: expected a whole number from 1 to 1000, got &#39;0&#39;"),
        ("since=%00", "since: expected a date as YYYY-MM-DD, got &#39;\\x00&#39;"),
    ],
)
def test_a_search_field_that_cannot_be_read_is_a_400_page_naming_it(running: Running, query: str, message: str) -> None:
    answer = running.get("/dashboard/search?q=tpu&" + query)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert message in answer.text
    assert '<form class="filters"' in answer.text  # the form again, to fix the field
    assert 'value="tpu"' in answer.text
    assert _titles(answer.text) == []


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


def test_the_alert_recorded_last_comes_first_whatever_its_bucket(tmp_path: Path) -> None:
    """An alert on an older bucket that fires now (late articles) is the news, not the one judged an hour ago."""
    day = datetime(2026, 5, 1, tzinfo=UTC)

    def fired(alert_id: str, bucket: datetime) -> Alert:
        return Alert(alert_id, "surge", "warning", "capex", "article_count", "1h", bucket, 5.0, 3.0, "m", ())

    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(alerts=[fired("newer-bucket", day + timedelta(hours=5))]))
        store.write(Batch(alerts=[fired("late-bucket", day + timedelta(hours=1))]))
        views = alert_views(store.connection, "true", [], 10)
    assert [view.id for view in views] == ["late-bucket", "newer-bucket"]
