"""The embedded broker's memory stays bounded: past `kafka.embedded_memory_limit` the service drains and restarts
itself in place with a fresh broker, and nothing is lost or counted twice across it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.errors import ConfigError
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.settings import settings_from_mapping
from stackwatch.settings.base import parse_size
from tests.helpers.faults import HEADLINES
from tests.helpers.service import Service, pipeline_config

pytestmark = pytest.mark.integration

ARTICLES = 14_000


def recycling_service(unique: str, tmp_path: Path) -> Service:
    """A service whose embedded broker outgrows its 64 MiB cap while it stores ``ARTICLES`` large articles."""
    feed = tmp_path / "articles.jsonl"
    start = datetime.now(UTC) - timedelta(hours=6)
    with feed.open("w", encoding="utf-8") as out:
        for number in range(ARTICLES):
            title = f"{HEADLINES[number % len(HEADLINES)]} (item {number})"
            published = (start + timedelta(seconds=number)).isoformat()
            out.write(
                json.dumps({"id": f"n{number}", "title": title, "summary": "lead " * 400, "published_at": published})
            )
            out.write("\n")
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [],
        unique,
        kafka={"bootstrap_servers": None, "embedded_memory_limit": "64MiB"},
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword", "batch_size": 256},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"}],
    )
    return Service(config, web_port=web_port)


def test_a_broker_over_its_memory_limit_is_recycled_in_place_and_loses_nothing(unique: str, tmp_path: Path) -> None:
    service = recycling_service(unique, tmp_path)
    try:
        service.wait_until(
            "SELECT count(*), count(DISTINCT id) FROM articles",
            lambda rows: rows == [[ARTICLES, ARTICLES]],
            timeout=400,
        )
        assert service.process.poll() is None  # the same process goes on
    finally:
        assert service.stop() == 0
    assert "over kafka.embedded_memory_limit" in service.output
    assert service.output.count("(embedded, memory only)") >= 2  # started again, with a fresh broker
    assert "Traceback" not in service.output


def test_a_sigterm_during_a_recycle_stops_the_service_instead_of_restarting_it(unique: str, tmp_path: Path) -> None:
    service = recycling_service(unique, tmp_path)
    try:
        deadline = time.monotonic() + 400
        while "over kafka.embedded_memory_limit" not in service.output:  # the recycle's own SIGTERM is under way
            assert service.process.poll() is None, service.output[-4000:]
            assert time.monotonic() < deadline, service.output[-4000:]
            time.sleep(0.05)
    finally:
        assert service.stop() == 0  # the operator's stop is not lost in the recycle's
    assert "stopping, not restarting" in service.output
    assert service.output.count("(embedded, memory only)") == 1  # never started again
    assert "Traceback" not in service.output


def test_the_memory_limit_takes_sizes_and_refuses_a_limit_below_a_fresh_broker() -> None:
    assert parse_size("512MB") == 512_000_000
    assert parse_size("2GiB") == 2 * 1024**3
    kafka = settings_from_mapping({"kafka": {"embedded_memory_limit": "512MB"}}, environ={}).kafka
    assert kafka.embedded_memory_limit == 512_000_000
    assert (
        settings_from_mapping({"kafka": {"embedded_memory_limit": None}}, environ={}).kafka.embedded_memory_limit
        is None
    )
    with pytest.raises(ConfigError, match="embedded_memory_limit"):
        settings_from_mapping({"kafka": {"embedded_memory_limit": "8MB"}}, environ={})
    with pytest.raises(ConfigError, match="embedded_memory_limit"):
        settings_from_mapping({"kafka": {"embedded_memory_limit": "lots"}}, environ={})
