"""Fault tests: nothing is lost and nothing is counted twice when processes die at random moments.

These run the real service against the session broker (which outlives the service, as a Kafka cluster
would). The keyword classifier is used here: the subject is delivery semantics, not the model, and the
transformer would make each run minutes longer without testing anything more.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackwatch.pipeline.kafka.broker import EmbeddedBroker, free_port
from tests.helpers.faults import HEADLINES, check_store, write_articles
from tests.helpers.http import LocalServer
from tests.helpers.kafka_proxy import SilencingProxy
from tests.helpers.kafka_trace import where_records_stopped
from tests.helpers.service import Service, pipeline_config, threshold_rule

pytestmark = pytest.mark.integration

ARTICLES = 10_000
KILLS = 5


def test_sigkill_at_random_moments_loses_nothing_and_counts_nothing_twice(
    broker: str, unique: str, http_server: LocalServer, tmp_path: Path
) -> None:
    feed = tmp_path / "articles.jsonl"
    write_articles(feed, ARTICLES)
    http_server.route("/hook", "ok")
    store_path = tmp_path / "stackwatch.duckdb"
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        storage={"batch_size": 2000},
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword", "batch_size": 256},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"}],
        webhooks=[{"name": "ops", "url": http_server.url("/hook")}],
        alerting={"group_wait": "1s", "group_interval": "1s"},
        # Rules judge buckets in arrival order and ignore updates for a bucket already closed; with four
        # partitions interleaving, a threshold that the first decoupling article crosses fires however they race.
        rules=[threshold_rule("decoupling-seen", "decoupling")],
    )
    rng = random.Random(20261121)
    outputs = []
    for attempt in range(KILLS):
        service = Service(config, web_port=web_port, name=f"run{attempt}")
        time.sleep(rng.uniform(5.0, 14.0))
        service.stop(signal.SIGKILL)
        outputs.append(service.output)
    final = Service(config, web_port=web_port, name="final")
    try:
        try:
            final.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[ARTICLES]], timeout=400)
        except AssertionError as short:
            stored = {int(title.rsplit(" ", 1)[1][:-1]) for (title,) in final.sql("SELECT title FROM articles")}
            missing = [f"(item {n})" for n in range(ARTICLES) if n not in stored]
            trace = where_records_stopped(broker, unique, [unique, f"{unique}-sink"], missing[:5])
            raise AssertionError(f"{short}\nmissing, and where their records are:\n{trace}") from None
        # Let indicators, alerts and deliveries settle: no outstanding delivery, and stable counts.
        final.wait_until(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'", lambda rows: rows == [[0]], timeout=120
        )
        time.sleep(3)
    finally:
        assert final.stop() == 0, final.output[-3000:]
    assert "Traceback" not in final.output

    check_store(store_path, config, http_server, ARTICLES)


def append_articles(path: Path, start: int, count: int) -> None:
    with path.open("a", encoding="utf-8") as out:
        for number in range(start, start + count):
            out.write(
                json.dumps({"id": f"o{number}", "title": f"{HEADLINES[number % len(HEADLINES)]} ({number})"}) + "\n"
            )


def test_a_broker_unreachable_at_start_and_frozen_mid_run_loses_nothing(unique: str, tmp_path: Path) -> None:
    feed = tmp_path / "articles.jsonl"
    append_articles(feed, 0, 50)
    port = free_port()
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [f"127.0.0.1:{port}"],
        unique,
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword"},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"}],
    )
    service = Service(config, web_port=web_port)
    broker = EmbeddedBroker(port=port, log_file=tmp_path / "broker.log")
    try:
        deadline = time.monotonic() + 60
        while "unreachable" not in service.output and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "unreachable" in service.output
        assert service.process.poll() is None  # waiting, not dead
        broker.start()
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[50]], timeout=180)

        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)  # the broker hangs: every request times out
        try:
            append_articles(feed, 50, 50)
            time.sleep(15)
            assert service.process.poll() is None
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        service.wait_until(
            "SELECT count(*), count(DISTINCT id) FROM articles", lambda rows: rows == [[100, 100]], timeout=240
        )
    finally:
        code = service.stop()
        broker.stop()
    assert code == 0, service.output[-3000:]
    assert "Traceback" not in service.output
    checkpoint = json.loads((tmp_path / "state" / "checkpoints" / "backfill.json").read_text(encoding="utf-8"))
    assert list(checkpoint["offsets"].values()) == [feed.stat().st_size]  # the connector held, then finished


def test_a_produce_request_the_broker_never_answers_is_sent_again(unique: str, tmp_path: Path) -> None:
    """One of the agents' produce requests goes unanswered on a connection that stays open: after
    ``kafka.request_timeout`` it is sent again on a new one, so the pipeline and its commits do not wait on it."""
    feed = tmp_path / "articles.jsonl"
    append_articles(feed, 0, 20)
    broker_port, web_port = free_port(), free_port()
    with SilencingProxy(("127.0.0.1", broker_port)) as proxy:
        broker = EmbeddedBroker(port=broker_port, advertised=proxy.address, log_file=tmp_path / "broker.log")
        broker.start()
        proxy.silence_next_produce_to(f"{unique}.articles.tagged")
        config = pipeline_config(
            tmp_path,
            [proxy.address],
            unique,
            kafka={"request_timeout": "2s"},
            web={"host": "127.0.0.1", "port": web_port},
            classifier={"backend": "keyword"},
            sources=[{"name": "wire", "type": "file", "path": str(feed), "interval": "500ms"}],
        )
        service = Service(config, web_port=web_port)
        try:
            service.wait_until(
                "SELECT count(*), count(DISTINCT id) FROM articles", lambda rows: rows == [[20, 20]], timeout=90
            )
        finally:
            code = service.stop()
            broker.stop()
    assert proxy.silenced == 1
    assert code == 0, service.output[-3000:]
    assert "after the signal" not in service.output  # stopped by itself, not by the last resort


def test_a_full_disk_pauses_the_sink_without_losing_anything(broker: str, unique: str, tmp_path: Path) -> None:
    """The sink process may not grow any file past a limit (as on a full disk); lifting it lets it finish."""
    feed = tmp_path / "articles.jsonl"
    body = "lorem ipsum dolor sit amet " * 400  # ~10 KB per article: the store outgrows the limit quickly
    with feed.open("w", encoding="utf-8") as out:
        for number in range(1500):
            out.write(
                json.dumps({"id": f"d{number}", "title": f"{HEADLINES[number % 5]} ({number})", "text": body}) + "\n"
            )
    ports = {role: free_port() for role in ("sink", "worker", "ingest")}
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        storage={"batch_size": 200},
        classifier={"backend": "keyword"},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"}],
    )
    limit = 6 * 1024 * 1024
    sink = Service(config, command="sink", web_port=ports["sink"], file_size_limit=limit)
    others = [Service(config, command=role, web_port=ports[role]) for role in ("worker", "ingest")]
    try:
        deadline = time.monotonic() + 240
        ready: Any = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{ports['sink']}/readyz", timeout=10)
            except httpx.TransportError:  # not listening yet
                time.sleep(0.5)
                continue
            ready = response.json()
            if response.status_code == 503 and any("sink" in reason for reason in ready["reasons"]):
                break
            time.sleep(0.5)
        assert sink.process.poll() is None, sink.output[-3000:]  # still running: paused, not crashed
        assert any("sink" in reason for reason in ready["reasons"]), ready
        stored_while_full = sink.sql("SELECT count(*) FROM articles")[0][0]
        assert stored_while_full < 1500

        resource.prlimit(sink.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        sink.wait_until(
            "SELECT count(*), count(DISTINCT id) FROM articles", lambda rows: rows == [[1500, 1500]], timeout=300
        )
    finally:
        codes = [service.stop() for service in [*others, sink]]
    assert codes == [0, 0, 0], sink.output[-3000:]


def test_a_receiver_down_across_a_service_restart_still_gets_the_alert_once(
    broker: str, unique: str, tmp_path: Path
) -> None:
    feed = tmp_path / "articles.jsonl"
    append_articles(feed, 0, 5)  # one decoupling headline among them
    hook_port = free_port()  # nothing listens here yet: the receiver is down
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword"},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "500ms"}],
        webhooks=[{"name": "ops", "url": f"http://127.0.0.1:{hook_port}/hook"}],
        alerting={"group_wait": "1s", "group_interval": "1s"},
        rules=[
            {
                "name": "decoupling-any",
                "kind": "threshold",
                "dynamic": "decoupling",
                "op": ">=",
                "value": 1,
                "webhooks": ["ops"],
            }
        ],
    )
    first = Service(config, web_port=web_port, name="first")
    try:
        failed = first.wait_until(
            "SELECT id, attempts, last_error FROM notifications WHERE status = 'pending' AND attempts >= 1",
            lambda rows: len(rows) == 1,
            timeout=180,
        )
    finally:
        assert first.stop() == 0, first.output[-3000:]
    notification_id = failed[0][0]

    receiver = LocalServer(port=hook_port)
    receiver.route("/hook", "ok")
    second = Service(config, web_port=web_port, name="second")
    try:
        received = receiver.wait_for("/hook", timeout=120)
        second.wait_until("SELECT count(*) FROM notifications WHERE status = 'delivered'", lambda rows: rows == [[1]])
        time.sleep(2)  # nothing more should arrive
    finally:
        assert second.stop() == 0, second.output[-3000:]
        receiver.close()
    assert len(receiver.received("/hook")) == 1
    assert received[0].headers["webhook-id"] == notification_id  # the same id as the failed attempt
