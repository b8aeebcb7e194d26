"""Operations pieces that need no running pipeline: the web token, the security middleware on a real local
aiohttp server, JSON logs, the metrics exposition, SVG escaping, the dashboard's range parsing and status text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiohttp import web as aioweb
from prometheus_client.parser import text_string_to_metric_families

from stackwatch.errors import ConfigError
from stackwatch.pipeline import metrics
from stackwatch.pipeline.cli.ops import render_status
from stackwatch.pipeline.process.logs import JsonFormatter, log_formatter, log_level
from stackwatch.pipeline.web.auth import token_guard
from stackwatch.pipeline.web.dashboard import charts
from stackwatch.pipeline.web.dashboard.ranges import parse_range
from stackwatch.pipeline.web.dashboard.templating import build_environment, safe_url
from stackwatch.pipeline.web.headers import CSP, security_headers
from stackwatch.settings import settings_from_mapping
from stackwatch.storage.dashboard import Point, Range, Series
from tests.helpers.web_app import served_app


def test_a_non_loopback_bind_needs_a_token_from_the_environment() -> None:
    assert settings_from_mapping({}).web.token() is None
    with pytest.raises(ConfigError, match="not a loopback address"):
        settings_from_mapping({"web": {"host": "0.0.0.0"}}).web.token()
    web = settings_from_mapping({"web": {"host": "0.0.0.0", "token_env": "SW_TOKEN"}}).web
    with pytest.raises(ConfigError, match="SW_TOKEN is not set"):
        web.token({})
    assert web.token({"SW_TOKEN": "s3cret"}) == "s3cret"
    assert settings_from_mapping({"web": {"host": "::1"}}).web.token() is None


@pytest.fixture
async def guarded() -> AsyncIterator[str]:
    async def hello(request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(text="hello")

    app = aioweb.Application(middlewares=[security_headers, token_guard("s3cret")])
    app.router.add_get("/healthz", hello)
    app.router.add_get("/dashboard/", hello)
    async with served_app(app) as base:
        yield base


async def test_the_guard_wants_the_token_except_on_probes_and_sets_headers_everywhere(guarded: str) -> None:
    async with httpx.AsyncClient(base_url=guarded) as client:
        assert (await client.get("/healthz")).status_code == 200
        refused = await client.get("/dashboard/")
        assert refused.status_code == 401
        assert refused.headers["content-security-policy"] == CSP
        wrong = await client.get("/dashboard/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await client.get("/dashboard/", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert ok.headers["content-security-policy"] == CSP
        by_query = await client.get("/dashboard/?token=s3cret")  # a browser link: sets a cookie for the next pages
        assert by_query.status_code == 200
        assert (await client.get("/dashboard/")).status_code == 200
        missing = await client.get("/nope", headers={"Authorization": "Bearer s3cret"})
        assert missing.status_code == 404
        assert missing.headers["content-security-policy"] == CSP


def test_logs_are_json_lines_off_a_terminal_and_text_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(log_formatter("auto", io.StringIO()), JsonFormatter)
    assert not isinstance(log_formatter("auto", Tty()), JsonFormatter)
    assert isinstance(log_formatter("json", Tty()), JsonFormatter)
    record = logging.LogRecord("stackwatch.sink", logging.WARNING, __file__, 1, "wrote %d rows", (3,), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning"
    assert line["logger"] == "stackwatch.sink"
    assert line["message"] == "wrote 3 rows"
    assert datetime.fromisoformat(line["ts"]).tzinfo is not None
    monkeypatch.setenv("STACKWATCH_LOG_LEVEL", "debug")
    assert log_level("info") == "DEBUG"
    monkeypatch.setenv("STACKWATCH_LOG_LEVEL", "loud")
    assert log_level("warning") == "WARNING"


def test_metrics_render_live_figures_by_label() -> None:
    live = metrics.Live(
        sources=(metrics.SourceFigures("wire", "rss", 10, 2, 1, 4, False),),
        lag={"g": {"t.raw": 3}},
        sink_rows=12,
        alerts={"critical": 2},
        deliveries={"delivered": 1, "pending": 1},
        snapshot_age=4.5,
    )
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render(live).decode())
        for sample in family.samples
    }
    assert values[("stackwatch_articles_fetched_total", (("source", "wire"),))] == 12
    assert values[("stackwatch_articles_rejected_total", (("source", "wire"),))] == 2
    assert values[("stackwatch_source_up", (("source", "wire"),))] == 0
    assert values[("stackwatch_consumer_lag", (("group", "g"), ("topic", "t.raw")))] == 3
    assert values[("stackwatch_alerts_fired_total", (("severity", "critical"),))] == 2
    assert values[("stackwatch_deliveries", (("status", "pending"),))] == 1
    assert values[("stackwatch_snapshot_age_seconds", ())] == 4.5
    metrics.render(metrics.Live())  # a process without these roles exports none of them


def test_svg_charts_escape_every_name() -> None:
    hostile = '<script>alert(1)</script>"'
    start = Range(7, "1h").since
    series = Series(hostile, (Point(start + timedelta(hours=1), 3.0),), (Point(start + timedelta(hours=1), 2.0),))
    for svg in (
        charts.volume_chart(series, Range()),
        charts.line_chart(series, Range()),
        charts.heat_map([hostile], ["capex"], {(hostile, "capex"): 1.0}),
    ):
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg


def test_templates_autoescape_and_links_are_http_only() -> None:
    rendered = (
        build_environment()
        .from_string("{{ title }}|{{ url|safe_url }}|{{ name|seg }}")
        .render(title="<img src=x onerror=alert(1)>", url="javascript:alert(1)", name="a/b c")
    )
    assert rendered == "&lt;img src=x onerror=alert(1)&gt;||a%2Fb%20c"
    assert safe_url("https://x.test/a") == "https://x.test/a"
    assert safe_url("data:text/html,hi") == ""


def test_range_parsing_gives_none_when_no_offered_range_is_named() -> None:
    assert parse_range({}) is None  # the page then picks the default from the store's volume
    assert parse_range({"days": "30"}) == Range(30, "1d")
    assert parse_range({"days": "90", "width": "1h"}) == Range(90, "1d")
    assert parse_range({"days": "1000000", "width": "1y"}) is None


def test_status_text_is_compact() -> None:
    text = render_status(
        {"ready": False, "reasons": ["sink: DuckDB store not open yet"]},
        {
            "roles": ["ingest", "sink", "worker"],
            "uptime": 61,
            "lag": {"sw": {"sw.articles.raw": 2}},
            "sources": [
                {"name": "wire", "type": "rss", "last_success": datetime.now(UTC).isoformat(), "items_seen": 4,
                 "items_rejected": 0, "consecutive_failures": 2, "last_error": "HTTP 503"},
            ],
            "store": {"articles": 4, "last_stored": None, "dead_letters": 0, "alerts": {"warning": 1},
                      "deliveries": {"pending": 1}, "snapshot_age": 3.0,
                      "last_alerts": [{"fired_at": datetime.now(UTC).isoformat(), "severity": "warning",
                                       "rule": "r", "dynamic": "capex", "message": "m"}]},
        },
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[0].startswith("stackwatch: NOT READY")
    assert "! sink: DuckDB store not open yet" in text
    assert "ERR wire" in text
    assert "HTTP 503" in text
    assert "lag: total 2" in text
    assert "4 articles" in text
    assert len(lines) == 7
