"""Restarts of the default mode as specifications: `stackwatch up` with the embedded, memory-only broker it starts
itself, stopped and started again. A restart must look like no restart: the store keeps every article, and the
rules remember what they had seen, because their state is rebuilt from the store.

The keyword classifier is used: the subject is what survives a restart, not the model.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.pipeline.kafka.broker import free_port
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, pipeline_config, threshold_rule

pytestmark = pytest.mark.integration

DECOUPLING = "Meta signs deal to rent Google TPUs, cutting its reliance on Nvidia"
CAPEX = "Microsoft raises capex guidance for AI data centers to $80 billion"
EDGE = "Apple expands on-device models; inference runs locally on the NPU"
UNRELATED = "Bakery on Main Street wins the regional sourdough prize"


class Feed:
    """A JSONL file a `file` source follows; each call appends articles."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        path.touch()

    def add(self, title: str, published: datetime, text: str = "") -> None:
        record = {
            "id": f"n{self.count}",
            "title": f"{title} (item {self.count})",
            "published_at": published.isoformat(),
        }
        if text:
            record["summary"] = text
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        self.count += 1


class Deployment:
    """One test's service: its config (embedded broker), feed, webhook receiver and runs."""

    def __init__(self, tmp_path: Path, unique: str, receiver: LocalServer, rules: list[dict[str, Any]], **extra: Any):
        self.feed = Feed(tmp_path / "articles.jsonl")
        self.receiver = receiver
        receiver.route("/hook", "ok")
        self.web_port = free_port()
        self.config = pipeline_config(
            tmp_path,
            [],
            unique,
            kafka={"bootstrap_servers": None},
            web={"host": "127.0.0.1", "port": self.web_port},
            classifier={"backend": "keyword"},
            sources=[{"name": "wire", "type": "file", "path": str(self.feed.path), "interval": "300ms"}],
            webhooks=[{"name": "ops", "url": receiver.url("/hook")}],
            alerting={"group_wait": "500ms", "group_interval": "1s"},
            rules=rules,
            **extra,
        )
        self.runs = 0

    def start(self) -> Service:
        self.runs += 1
        return Service(self.config, web_port=self.web_port, name=f"run{self.runs}")

    def run(self, stored: int, *, alerts: int = 0, sig: int = signal.SIGTERM) -> str:
        """Start; wait until ``stored`` articles are stored and at least ``alerts`` alerts were delivered; stop
        with ``sig``. The run's output."""
        service = self.start()
        try:
            service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[stored]], timeout=180)
            if alerts:
                self.wait_for_alerts(lambda received: len(received) >= alerts, service)
        finally:
            code = service.stop(sig)
        if sig == signal.SIGTERM:
            assert code == 0, service.output[-3000:]
        return service.output

    def alerts_received(self) -> list[tuple[str, str, str, str]]:
        """(webhook-id, alert id, status, entity) of every alert received, as a receiver that drops repeated
        webhook-ids sees them (a delivery may be retried after a crash, always under the same webhook-id).
        Fails when one alert arrived under two webhook-ids."""
        found: dict[tuple[str, str], tuple[str, str, str, str]] = {}
        for request in self.receiver.received("/hook"):
            webhook_id = request.headers.get("webhook-id", "")
            for alert in json.loads(request.body)["data"]["alerts"]:
                item = (webhook_id, alert["id"], alert["status"], alert["labels"].get("entity", ""))
                found.setdefault((webhook_id, alert["id"]), item)
        ids = [alert for _, alert in found]
        assert len(ids) == len(set(ids)), f"an alert arrived under more than one webhook-id: {sorted(found)}"
        return list(found.values())

    def wait_for_alerts(self, predicate: Callable[[list[tuple[str, str, str, str]]], bool], service: Service) -> None:
        service.wait_until(
            "SELECT count(*) FROM notifications WHERE status <> 'delivered'", lambda rows: rows == [[0]], timeout=60
        )
        service.wait_until(
            "SELECT count(*) FROM notifications", lambda rows: predicate(self.alerts_received()), timeout=60
        )


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=hours)


def test_a_threshold_crossed_across_a_restart_fires_once(tmp_path: Path, unique: str, http_server: LocalServer) -> None:
    deployment = Deployment(tmp_path, unique, http_server, [threshold_rule("three-an-hour", "decoupling", 3)])
    deployment.feed.add(DECOUPLING, hours_ago(0))
    deployment.feed.add(DECOUPLING, hours_ago(0))
    deployment.run(2)
    assert deployment.alerts_received() == []

    deployment.feed.add(DECOUPLING, hours_ago(0))
    output = deployment.run(3, alerts=1)
    assert "rules: state rebuilt from 2 stored article(s)" in output
    [(webhook_id, _, status, _)] = deployment.alerts_received()
    assert status == "firing"
    assert webhook_id


def test_a_cooldown_holds_across_a_restart(tmp_path: Path, unique: str, http_server: LocalServer) -> None:
    rule = threshold_rule("capex-seen", "capex", 1, cooldown="6h")
    deployment = Deployment(tmp_path, unique, http_server, [rule])
    deployment.feed.add(CAPEX, hours_ago(3))
    deployment.run(1, alerts=1, sig=signal.SIGKILL)

    deployment.feed.add(CAPEX, hours_ago(1))  # a new episode two hours later: inside the cooldown
    deployment.feed.add(UNRELATED, hours_ago(0))
    deployment.run(3, alerts=2)
    statuses = [status for _, _, status, _ in deployment.alerts_received()]
    assert statuses == ["firing", "resolved"]  # the first episode and its end; the second is muted


def test_a_for_streak_survives_a_restart(tmp_path: Path, unique: str, http_server: LocalServer) -> None:
    deployment = Deployment(tmp_path, unique, http_server, [threshold_rule("edge-two-hours", "edge", 1, **{"for": 2})])
    deployment.feed.add(EDGE, hours_ago(2))
    deployment.run(1)
    deployment.feed.add(EDGE, hours_ago(1))
    deployment.run(2, alerts=1)
    [(_, _, status, _)] = deployment.alerts_received()
    assert status == "firing"


def test_first_seen_arming_survives_a_restart(tmp_path: Path, unique: str, http_server: LocalServer) -> None:
    rule = {"name": "new-at-the-edge", "kind": "first_seen", "dynamic": "edge", "days": 2, "webhooks": ["ops"]}
    deployment = Deployment(tmp_path, unique, http_server, [rule])
    deployment.feed.add("Akamai moves inference at the edge into 4,000 points of presence", hours_ago(72))
    deployment.run(1, sig=signal.SIGKILL)
    deployment.feed.add("Microsoft ships on-device models for Copilot+ PCs", hours_ago(0))
    deployment.run(2, alerts=1)
    assert [(status, entity) for _, _, status, entity in deployment.alerts_received()] == [("firing", "Microsoft")]


def test_a_sigterm_during_a_backlog_loses_nothing(tmp_path: Path, unique: str, http_server: LocalServer) -> None:
    articles = 3000
    deployment = Deployment(tmp_path, unique, http_server, [], storage={"drain_timeout": "1s"})
    start = hours_ago(10)
    for number in range(articles):
        deployment.feed.add((DECOUPLING, CAPEX, EDGE, UNRELATED)[number % 4], start + timedelta(seconds=12 * number))
    first = deployment.start()
    try:
        first.wait_until("SELECT count(*) > 0 FROM articles", lambda rows: rows == [[True]], timeout=180)
    finally:
        assert first.stop(signal.SIGTERM) == 0, first.output[-3000:]

    second = deployment.start()
    try:
        second.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[articles]], timeout=300)
        rows = second.sql("SELECT count(*), count(DISTINCT id) FROM articles")
    finally:
        assert second.stop() == 0
    assert rows == [[articles, articles]]
