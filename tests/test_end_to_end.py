"""The whole stream, end to end, as a user runs it: a real broker, a real feed server, a real webhook receiver."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.storage.store import Store
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, pipeline_config, threshold_rule, write_config

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"end-to-end test secret").decode()

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Wire</title><link>http://127.0.0.1/</link><description>AI infrastructure wire</description>
<item><title>Meta signs multibillion-dollar deal to rent Google TPUs, cutting its reliance on Nvidia GPUs</title>
  <link>http://127.0.0.1/news/meta-tpu?utm_source=rss</link><guid isPermaLink="false">wire-1</guid>
  <description>Meta will rent Google's custom TPU accelerators from 2026 and may buy them for its own data
  centres from 2027, a move away from Nvidia's GPUs and CUDA software.</description>
  <pubDate>{now}</pubDate><dc:creator>Staff</dc:creator></item>
<item><title>Amazon's Trainium 3 chips to power Anthropic's next models as AWS pushes custom silicon</title>
  <link>http://127.0.0.1/news/trainium</link><guid isPermaLink="false">wire-2</guid>
  <description>AWS said Project Rainier now runs on its in-house Trainium accelerators
  instead of Nvidia GPUs.</description>
  <pubDate>{now}</pubDate></item>
<item><title>Local bakery wins award for sourdough</title><link>http://127.0.0.1/news/bread</link>
  <guid isPermaLink="false">wire-3</guid><description>The bakery on Main Street took first prize.</description>
  <pubDate>{now}</pubDate></item>
</channel></rss>"""


def rfc822_now() -> str:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    return format_datetime(datetime.now(UTC))


def test_feed_to_duckdb_to_signed_webhook(broker: str, unique: str, http_server: LocalServer, tmp_path: Path) -> None:
    http_server.route("/feed.xml", FEED.replace("{now}", rfc822_now()), headers={"Content-Type": "application/rss+xml"})
    http_server.route("/hook", "ok")
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        web={"host": "127.0.0.1", "port": web_port},
        sources=[{"name": "wire", "type": "rss", "url": http_server.url("/feed.xml"), "interval": "2s"}],
        webhooks=[{"name": "ops", "url": http_server.url("/hook"), "secret_env": "STACKWATCH_E2E_SECRET"}],
        rules=[threshold_rule("decoupling-any", "decoupling")],
    )
    service = Service(config, web_port=web_port, env={"STACKWATCH_E2E_SECRET": SECRET})
    try:
        rows = service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[3]])
        assert rows == [[3]]
        hooks = http_server.wait_for("/hook", timeout=120)
        service.wait_until("SELECT count(*) FROM deliveries WHERE status = 'delivered'", lambda rows: rows[0][0] >= 1)
        tagged = service.sql("SELECT title FROM articles WHERE list_contains(labels, 'decoupling') ORDER BY title")
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert "Traceback" not in service.output

    delivered = hooks[0]
    payload = Webhook(SECRET).verify(delivered.body, delivered.headers)  # raises unless the signature is right
    assert payload["type"] == "alert.fired"
    assert payload["data"]["rule"] == "decoupling-any"
    assert delivered.headers["webhook-id"].startswith("msg_")
    assert len(tagged) == 2
    assert SECRET not in service.output  # secrets are never logged

    with Store.open(tmp_path / "stackwatch.duckdb", read_only=True) as store:  # flushed and released on stop
        assert store.count("articles") == 3
        assert store.query(
            "SELECT value FROM indicators WHERE indicator = 'article_count' AND dynamic = 'decoupling'"
            " AND entity = '*' AND source = '*' AND bucket_width = '1h'"
        ).rows == [(2.0,)]
        assert store.count("alerts") == 1
    assert len(http_server.received("/hook")) == 1  # one alert per bucket, however many updates tripped it


def test_roles_refuse_to_run_without_a_real_kafka(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"kafka": {"bootstrap_servers": None}})
    service = Service(config, command="worker", web_port=free_port())
    service.process.wait(60)
    code = service.stop()
    assert code != 0
    assert "only `stackwatch up` starts an embedded broker" in service.output
    assert "Traceback" not in service.output
