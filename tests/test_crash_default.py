"""SIGKILL against the default mode: `stackwatch up` with the embedded, memory-only broker it starts itself.

Nothing the broker held survives a kill, so this is the test of the design: a source's checkpoint follows what
the store holds, the rules rebuild their state from the store, and the broker dies with the service. Articles
stream from a `file` source and from a local RSS server whose feed grows while the service is killed and started
again; the keyword classifier keeps each run short (the subject is delivery, not the model).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from stackwatch.pipeline.kafka.broker import free_port
from tests.helpers.faults import HEADLINES, check_store, descendants, still_running, write_articles
from tests.helpers.http import LocalServer, Recorded, Reply
from tests.helpers.service import Service, pipeline_config, threshold_rule

pytestmark = pytest.mark.integration

FILE_ARTICLES = 9_500
FEED_ARTICLES = 500
KILLS = 5


class GrowingFeed:
    """An RSS feed that gains ten items a second up to ``total``, with an ETag per state (304 when unchanged)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()

    def __call__(self, request: Recorded) -> Reply:
        count = min(self.total, int((time.monotonic() - self.started) * 10))
        etag = f'"items-{count}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag})
        items = "".join(
            f"<item><title>{HEADLINES[n % len(HEADLINES)]} (feed {n})</title>"
            f"<link>https://wire.example/{n}</link><guid>wire-{n}</guid></item>"
            for n in range(count - 1, -1, -1)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>wire</title>{items}</channel></rss>'
        return Reply(200, body.encode(), {"Content-Type": "application/rss+xml", "ETag": etag})


def test_sigkill_of_the_default_mode_loses_nothing_and_leaves_no_process(
    unique: str, http_server: LocalServer, tmp_path: Path
) -> None:
    feed = tmp_path / "articles.jsonl"
    write_articles(feed, FILE_ARTICLES)
    http_server.route("/hook", "ok")
    http_server.route("/feed.xml", responder=GrowingFeed(FEED_ARTICLES))
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [],
        unique,
        kafka={"bootstrap_servers": None},
        storage={"batch_size": 2000},
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword", "batch_size": 256},
        sources=[
            {"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"},
            {"name": "wire", "type": "rss", "url": http_server.url("/feed.xml"), "interval": "1s"},
        ],
        webhooks=[{"name": "ops", "url": http_server.url("/hook")}],
        alerting={"group_wait": "1s", "group_interval": "1s"},
        rules=[threshold_rule("decoupling-seen", "decoupling")],
    )
    rng = random.Random(20261202)
    left_behind: dict[int, set[int]] = {}
    for attempt in range(KILLS):
        service = Service(config, web_port=web_port, name=f"run{attempt}")
        time.sleep(rng.uniform(5.0, 14.0))
        children = descendants(service.process.pid)
        service.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while still_running(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        if still_running(children):
            left_behind[attempt] = still_running(children)
    final = Service(config, web_port=web_port, name="final")
    try:
        final.wait_until(
            "SELECT count(*) FROM articles", lambda rows: rows == [[FILE_ARTICLES + FEED_ARTICLES]], timeout=400
        )
        final.wait_until(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'", lambda rows: rows == [[0]], timeout=120
        )
        time.sleep(3)  # let indicators, alerts and deliveries settle
    finally:
        assert final.stop() == 0, final.output[-3000:]
    assert "Traceback" not in final.output
    check_store(tmp_path / "stackwatch.duckdb", config, http_server, FILE_ARTICLES + FEED_ARTICLES)
    assert left_behind == {}, "processes outlived a SIGKILL of the service"
