"""Rules that count stories, live: the rules stage hears of articles from the sink once they are stored and
grouped, so one event reported by three outlets is one story to every rule (pipeline/roles/sink.py), a story
rule sees it reach three outlets, and a watch rule hears of the one headline it matches."""

from __future__ import annotations

from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.signals.messages import utcnow
from stackwatch.storage.store import Store
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, pipeline_config
from tests.test_stories_events import ANTHROPIC, GOOGLE, LATER

pytestmark = pytest.mark.integration

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{outlet}</title><link>http://127.0.0.1/</link><description>news</description>
<item><title>{title}</title><link>http://127.0.0.1/{outlet}/1</link><guid isPermaLink="false">{outlet}-1</guid>
  <description>{summary}</description><pubDate>{published}</pubDate></item>
</channel></rss>"""


def story_rule(name: str, indicator: str, value: float) -> dict[str, Any]:
    """A threshold rule on all articles of the day (one bucket: the three reports share one publication time)."""
    return {"name": name, "kind": "threshold", "indicator": indicator, "window": "1d", "op": ">=", "value": value,
            "webhooks": ["ops"]}  # fmt: skip


def test_a_story_count_rule_fires_once_for_one_event_covered_by_three_outlets(
    broker: str, unique: str, http_server: LocalServer, tmp_path: Path
) -> None:
    published = format_datetime(utcnow())
    sources = []
    for report in (ANTHROPIC, GOOGLE, LATER):
        path = f"/{report.source}.xml"
        feed = FEED.format(outlet=report.source, title=report.title, summary=report.summary, published=published)
        http_server.route(path, feed, headers={"Content-Type": "application/rss+xml"})
        sources.append({"name": report.source, "type": "rss", "url": http_server.url(path), "interval": "2s"})
    http_server.route("/hook", "ok")
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        web={"host": "127.0.0.1", "port": web_port},
        sources=sources,
        webhooks=[{"name": "ops", "url": http_server.url("/hook")}],
        rules=[
            story_rule("one-event", "story_count", 1),
            story_rule("two-events", "story_count", 2),
            story_rule("three-reports", "article_count", 3),
            {"name": "wide", "kind": "story", "value": 3, "webhooks": ["ops"]},
            {"name": "tpu-orders", "kind": "watch", "match": r"\btpu\b.*\border\b", "webhooks": ["ops"]},
        ],
    )
    service = Service(config, web_port=web_port)
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[3]])
        service.wait_until(
            "SELECT count(*) FROM alerts WHERE rule = 'three-reports'", lambda rows: rows[0][0] >= 1, timeout=60
        )
        stories = service.sql("SELECT count(DISTINCT story_id) FROM article_stories")
        service.wait_until("SELECT count(*) FROM alerts WHERE rule = 'wide'", lambda rows: rows[0][0] >= 1, timeout=30)
        service.wait_until("SELECT count(*) FROM alerts WHERE rule = 'tpu-orders'", lambda rows: rows[0][0] >= 1)
        watched = service.sql("SELECT message FROM alerts WHERE rule = 'tpu-orders'")
        alerts = service.sql(
            "SELECT a.rule, d.status, a.value FROM alerts a JOIN alert_details d ON d.alert_id = a.id ORDER BY 1"
        )
        evidence = service.sql(
            "SELECT d.evidence->>'$.sql' FROM alerts a JOIN alert_details d ON d.alert_id = a.id WHERE a.rule = 'wide'"
        )
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert stories == [[1]]
    assert alerts == [
        ["one-event", "firing", 1.0],
        ["three-reports", "firing", 3.0],
        ["tpu-orders", "firing", 1.0],
        ["wide", "firing", 3.0],
    ]
    assert watched == [[f"New in all articles: {GOOGLE.title} (techdaily)"]]  # the one headline it matches
    with Store.open(tmp_path / "stackwatch.duckdb", read_only=True) as store:  # its SQL counts the three outlets
        assert store.query(evidence[0][0]).rows == [(3, 3)]
