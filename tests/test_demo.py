"""The demo as a newcomer meets it: `stackwatch up` on the bundled configuration, offline, then looked at.

One run of the demo (its bundled source only: tests reach no internet) serves every test here. It must show a
market, not a spike: weeks of coverage per dynamic, alerts of several kinds with their evidence, stories carried
by several outlets, and a first run that says where to look.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import yaml

from stackwatch.pipeline.kafka.broker import free_port, wait_for_port
from stackwatch.pipeline.process.guide import DEMO_QUERIES
from tests.helpers.browser import chromium, screenshot
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, write_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
DYNAMICS = ("exclusivity", "capex", "decoupling", "edge")
DEMO_ITEMS = 539


@dataclass
class Demo:
    service: Service
    base: str
    receiver: LocalServer
    workdir: Path


def _unchanged(seen: list[object], rows: object, *, polls: int) -> bool:
    """True once ``rows`` has been the same for the last ``polls`` polls (``seen`` keeps them)."""
    seen.append(rows)
    return len(seen) >= polls and all(earlier == rows for earlier in seen[-polls:])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    config = yaml.safe_load((REPO / "stackwatch.yaml").read_text(encoding="utf-8"))
    config["sources"] = [source for source in config["sources"] if source["type"] == "demo"]
    web_port = free_port()
    config["web"]["port"] = web_port
    receiver = LocalServer()
    config["webhooks"][0]["url"] = receiver.url("/hook")
    service = Service(write_config(workdir / "stackwatch.yaml", config), web_port=web_port, cwd=workdir)
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[DEMO_ITEMS]], timeout=300)
        # the rules run behind the store: wait until the last weeks' alerts are in, and then for a quiet spell
        service.wait_until(
            "SELECT count(DISTINCT x.kind) FROM alerts a JOIN alert_details x ON x.alert_id = a.id",
            lambda rows: rows[0][0] >= 4,
            timeout=120,
        )
        seen: list[object] = []
        service.wait_until("SELECT count(*) FROM alerts", lambda rows: _unchanged(seen, rows, polls=6), timeout=120)
        yield Demo(service, f"http://127.0.0.1:{web_port}", receiver, workdir)
    finally:
        service.stop(signal.SIGINT)
        receiver.close()


def test_the_demo_plays_seventeen_weeks_of_news_in_event_time_order_from_several_outlets(demo: Demo) -> None:
    [[weeks, outlets, oldest_days]] = demo.service.sql(
        "SELECT count(DISTINCT date_trunc('week', published_at)), count(DISTINCT source), "
        "date_diff('day', min(published_at), now()) FROM articles"
    )
    assert weeks >= 17
    assert outlets >= 8
    assert oldest_days >= 112
    assert demo.service.sql("SELECT DISTINCT connector FROM articles") == [["demo"]]


def test_every_dynamic_has_coverage_in_many_weeks(demo: Demo) -> None:
    rows = demo.service.sql(
        "SELECT dynamic, count(DISTINCT date_trunc('week', bucket_start)) FROM indicators "
        "WHERE indicator = 'article_count' AND bucket_width = '1d' AND entity = '*' AND source = '*' "
        "AND dynamic <> '*' GROUP BY ALL"
    )
    weeks = {str(name): int(count) for name, count in rows}
    assert set(weeks) >= set(DYNAMICS)
    assert all(weeks[name] >= 8 for name in DYNAMICS), weeks


def test_alerts_of_four_kinds_fire_and_each_firing_carries_its_articles(demo: Demo) -> None:
    rows = demo.service.sql(
        "SELECT a.rule, x.kind, x.status, x.evidence FROM alerts a JOIN alert_details x ON x.alert_id = a.id"
    )
    kinds = {str(kind) for _, kind, _, _ in rows}
    assert {"spike", "trend", "cooccurrence", "first_seen"} <= kinds, kinds
    firing = [(rule, json.loads(evidence)) for rule, _, status, evidence in rows if status == "firing"]
    assert firing
    for rule, evidence in firing:
        assert evidence["articles"], f"{rule} fired with no article in its evidence"
    newcomers = demo.service.sql(
        "SELECT a.message FROM alerts a JOIN alert_details x ON x.alert_id = a.id WHERE x.kind = 'first_seen'"
    )
    assert any("Corvane" in str(message) for [message] in newcomers), newcomers


def test_the_demo_rules_webhooks_and_its_digest_reach_the_configured_receiver(demo: Demo) -> None:
    deadline = time.monotonic() + 120
    while True:  # the demo's alerts and its morning digest (the latest period's, sent at start) share the hook
        bodies = [json.loads(hook.body) for hook in demo.receiver.received("/hook")]
        types = {body["type"] for body in bodies}
        if "digest" in types and types & {"alert.fired", "alert.resolved", "alert.group"}:
            break
        assert time.monotonic() < deadline, f"webhook types so far: {sorted(types)}"
        time.sleep(0.2)
    alerts = [body for body in bodies if body["type"] != "digest"]
    assert all(body["data"]["alerts"] for body in alerts)


def test_syndicated_copies_fold_into_stories_carried_by_several_outlets(demo: Demo) -> None:
    [[stories, shared]] = demo.service.sql("SELECT count(*), count(*) FILTER (WHERE sources > 1) FROM stories")
    assert stories < DEMO_ITEMS
    assert shared >= 50


def test_the_first_run_says_where_to_look_and_its_queries_answer(demo: Demo) -> None:
    output = demo.service.output
    assert f"Dashboard   {demo.base}/dashboard/" in output
    assert "receive --port" in output
    for _, query in DEMO_QUERIES:
        assert query in output
        assert demo.service.sql(query), query


def _weeks_with_bars(svg: str) -> set[str]:
    """ISO weeks of the chart's bars that have a height, from each bar's tooltip ("2026-08-07 00:00: 3")."""
    weeks = set()
    for height, stamp in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"><title>(\d{4}-\d\d-\d\d)', svg):
        if float(height) > 0:
            year, week, _ = date.fromisoformat(stamp).isocalendar()
            weeks.add(f"{year}-W{week:02d}")
    return weeks


def test_in_a_browser_the_overview_shows_weeks_of_bars_per_dynamic_and_alerts_of_several_kinds(demo: Demo) -> None:
    url = demo.base + "/dashboard/"
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", url).stdout
    charts = re.findall(r'<figure class="dynamic">.*?</figure>', dom, re.S)
    assert len(charts) == len(DYNAMICS)
    for chart in charts:
        assert len(_weeks_with_bars(chart)) > 1, chart[:500]
    alerts = re.search(r'<ul class="alerts">(.*?)</ul>', dom, re.S)
    assert alerts is not None
    shown_kinds = set(re.findall(r'<span class="kind">([a-z_]+)</span>', alerts.group(1)))
    assert len(shown_kinds) > 1, alerts.group(1)[:2000]
    screenshot(url, "demo-overview.png", height=2400)


def test_in_a_browser_a_dynamic_page_shows_its_weeks_and_its_z_score(demo: Demo) -> None:
    url = demo.base + "/dashboard/dynamic/decoupling"
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", url).stdout
    chart = re.search(r'<figure class="wide">(.*?)</figure>', dom, re.S)
    assert chart is not None
    assert len(_weeks_with_bars(chart.group(1))) > 1
    assert 'class="zline"' in chart.group(1)
    screenshot(url, "demo-decoupling.png", height=1800)


def test_the_demo_stops_cleanly_on_ctrl_c_and_takes_its_broker_with_it(demo: Demo) -> None:
    broker_port = int(demo.service.output.split("broker 127.0.0.1:")[1].split()[0].rstrip(";"))
    code = demo.service.stop(signal.SIGINT)
    assert code == 0, demo.service.output[-4000:]
    assert "Traceback" not in demo.service.output
    assert "embedded broker stopped" in demo.service.output
    assert not wait_for_port("127.0.0.1", broker_port, timeout=1.0)
    assert (demo.workdir / "data" / "stackwatch.duckdb").exists()
