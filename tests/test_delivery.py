"""Webhook delivery against real local HTTP receivers and a real DuckDB outbox.

Time never passes in these tests: each round asks the deliverer what is due at a later ``now`` instead of
sleeping, so retries scheduled minutes or hours ahead are attempted at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from stackwatch.pipeline.roles.delivery import RETRY_SCHEDULE, Deliverer, retry_delay
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import WebhookSettings, settings_from_mapping
from stackwatch.signals.messages import Alert
from stackwatch.storage.outbox import Grouping, retry_pending_now
from stackwatch.storage.store import Batch, Store
from tests.helpers.http import LocalServer, Recorded, Reply

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkw"
NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
NO_WAIT = Grouping(group_wait=timedelta(0), repeat_interval=timedelta(days=3650))  # rounds are days apart: no repeats


def alert(
    rule: str = "surge", dynamic: str = "capex", severity: str = "warning", hooks: tuple[str, ...] = ("ops",)
) -> Alert:
    labels = {"alertname": rule, "severity": severity, "dynamic": dynamic, "window": "1h"}
    return Alert(
        f"alert_{rule}_{dynamic}_{severity}", rule, severity, dynamic, "article_count", "1h", NOON, 5.0, 3.0,
        f"{dynamic} article_count 5 >= 3", hooks, NOON, labels=labels, values={"article_count": 5.0},
    )  # fmt: skip


def hook(url: str, **extra: Any) -> WebhookSettings:
    return WebhookSettings(name="ops", url=url, secret=SECRET, **extra)


def later(hours: float = 24) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def rounds(store: Store, hooks: list[WebhookSettings], count: int, grouping: Grouping = NO_WAIT) -> None:
    """``count`` delivery rounds, each at a ``now`` a day after the previous one."""

    async def go() -> None:
        thread = StoreThread(store)
        deliverer = Deliverer(thread, {item.name: item for item in hooks}, grouping)
        try:
            for index in range(count):
                await deliverer.deliver_due(now=later(24 * (index + 1)))
        finally:
            await deliverer.close()

    asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "alerts.duckdb") as opened:
        yield opened


def statuses(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT status, attempts, last_status FROM deliveries ORDER BY id").rows


def scripted(*replies: Reply) -> Callable[[Recorded], Reply]:
    queue = list(replies)
    return lambda _request: queue.pop(0) if len(queue) > 1 else queue[0]


def test_the_signature_verifies_with_the_standardwebhooks_library(store: Store, http_server: LocalServer) -> None:
    http_server.route("/hook", "ok")
    store.write(Batch(alerts=[alert()]))
    rounds(store, [hook(http_server.url("/hook"))], 1)
    (request,) = http_server.received("/hook")
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "alert.fired"
    assert payload["data"]["rule"] == "surge"
    assert payload["data"]["alerts"][0]["evidence"]["sql"].startswith("SELECT d.dynamic, count(DISTINCT a.id)")
    assert statuses(store) == [("delivered", 1, 200)]


def test_three_500s_then_200_is_one_accepted_delivery_with_one_webhook_id(
    store: Store, http_server: LocalServer
) -> None:
    http_server.route("/hook", responder=scripted(Reply(500), Reply(500), Reply(500), Reply(200, b"ok")))
    store.write(Batch(alerts=[alert()]))
    rounds(store, [hook(http_server.url("/hook"))], 6)
    requests = http_server.received("/hook")
    assert len(requests) == 4
    assert len({request.headers["webhook-id"] for request in requests}) == 1
    assert [Webhook(SECRET).verify(r.body, r.headers)["data"]["id"] for r in requests] == [alert().id] * 4
    assert statuses(store) == [("delivered", 4, 200)]


def test_410_stops_and_the_last_try_marks_the_delivery_dead(store: Store, http_server: LocalServer) -> None:
    http_server.route("/gone", status=410)
    http_server.route("/broken", status=500)
    gone = WebhookSettings(name="gone", url=http_server.url("/gone"))
    broken = WebhookSettings(name="broken", url=http_server.url("/broken"))
    store.write(Batch(alerts=[alert("a", hooks=("gone",)), alert("b", hooks=("broken",))]))
    rounds(store, [gone, broken], len(RETRY_SCHEDULE) + 3)
    assert len(http_server.received("/gone")) == 1
    assert len(http_server.received("/broken")) == len(RETRY_SCHEDULE) + 1
    rows = store.query("SELECT webhook, status, attempts FROM deliveries WHERE webhook <> 'ops' ORDER BY 1").rows
    assert rows == [("broken", "dead", len(RETRY_SCHEDULE) + 1), ("gone", "dead", 1)]


def test_429_retry_after_is_honoured(store: Store, http_server: LocalServer) -> None:
    http_server.route("/hook", status=429, headers={"Retry-After": "3600"})
    store.write(Batch(alerts=[alert()]))
    before = datetime.now(UTC)
    rounds(store, [hook(http_server.url("/hook"))], 1)
    (row,) = store.query("SELECT next_attempt_at, status, last_status FROM notifications").rows
    assert row[1:] == ("pending", 429)
    assert row[0] >= before + timedelta(seconds=3600)  # not the 5 s of the first step of the schedule


def test_the_schedule_is_jittered_capped_and_ends() -> None:
    for attempt, base in enumerate(RETRY_SCHEDULE, start=1):
        delay = retry_delay(attempt)
        assert delay is not None
        assert 0.9 * base <= delay <= 1.1 * base
        assert delay <= 36000
    assert retry_delay(len(RETRY_SCHEDULE) + 1) is None
    assert retry_delay(1, retry_after=10**9) == 36000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_receiver_down_across_a_restart_still_gets_the_alert(tmp_path: Path) -> None:
    path = tmp_path / "restart.duckdb"
    port = free_port()
    target = hook(f"http://127.0.0.1:{port}/hook")
    with Store.open(path) as first:
        first.write(Batch(alerts=[alert()]))
        rounds(first, [target], 2)  # nobody listens: refused twice, still pending
        assert statuses(first) == [("pending", 2, None)]
    receiver = LocalServer(port=port)
    try:
        receiver.route("/hook", "ok")
        with Store.open(path) as second:  # a new process: a reopened store and a new deliverer
            rounds(second, [target], 1)
            assert statuses(second) == [("delivered", 3, 200)]
        (request,) = receiver.received("/hook")
        assert Webhook(SECRET).verify(request.body, request.headers)["data"]["id"] == alert().id
    finally:
        receiver.close()


def test_a_start_makes_backed_off_notifications_due_but_keeps_a_receivers_retry_after(
    store: Store, http_server: LocalServer
) -> None:
    http_server.route("/down", status=500)
    http_server.route("/busy", status=429, headers={"Retry-After": "3600"})
    down = WebhookSettings(name="down", url=http_server.url("/down"))
    busy = WebhookSettings(name="busy", url=http_server.url("/busy"))
    store.write(Batch(alerts=[alert("a", hooks=("down",)), alert("b", hooks=("busy",))]))
    rounds(store, [down, busy], 1)
    start = datetime.now(UTC)
    assert retry_pending_now(store.connection, start) == 1
    rows = store.query("SELECT webhook, attempts, next_attempt_at <= ? FROM notifications ORDER BY 1", [start]).rows
    assert rows == [("busy", 1, False), ("down", 1, True)]
    mirrored = store.query("SELECT webhook, next_attempt_at <= ? FROM deliveries ORDER BY 1", [start]).rows
    assert mirrored == [("busy", False), ("down", True)]


def test_redirects_to_another_host_are_not_followed(store: Store, http_server: LocalServer) -> None:
    other = LocalServer()
    try:
        other.route("/hook", "ok")
        http_server.route(
            "/away", status=307, headers={"Location": other.url("/hook").replace("127.0.0.1", "localhost")}
        )
        http_server.route("/moved", status=308, headers={"Location": "/hook"})
        http_server.route("/hook", "ok")
        store.write(Batch(alerts=[alert("a", hooks=("away",)), alert("b", hooks=("moved",))]))
        away = WebhookSettings(name="away", url=http_server.url("/away"))
        moved = WebhookSettings(name="moved", url=http_server.url("/moved"))
        rounds(store, [away, moved], 1)
        assert other.received("/hook") == []
        assert len(http_server.received("/hook")) == 1  # same host: followed
        rows = store.query("SELECT webhook, status, last_error FROM deliveries ORDER BY 1").rows
        assert rows[0][:2] == ("away", "pending")
        assert "redirect to another host" in rows[0][2]
        assert rows[1][:2] == ("moved", "delivered")
    finally:
        other.close()


def test_slow_and_huge_receivers_are_bounded(store: Store, http_server: LocalServer) -> None:
    http_server.route("/huge", body=b"x" * 5_000_000)
    release = threading.Event()

    def stall(_request: Recorded) -> Reply:
        release.wait(10)
        return Reply(200)

    http_server.route("/slow", responder=stall)
    store.write(Batch(alerts=[alert("a", hooks=("huge",)), alert("b", hooks=("slow",))]))
    huge = WebhookSettings(name="huge", url=http_server.url("/huge"))
    slow = WebhookSettings(name="slow", url=http_server.url("/slow"), timeout=0.5)
    try:
        rounds(store, [huge, slow], 1)
    finally:
        release.set()
    rows = store.query("SELECT webhook, status, last_error FROM deliveries ORDER BY 1").rows
    assert rows[0][:2] == ("huge", "delivered")
    assert rows[1][:2] == ("slow", "pending")
    assert "timed out" in rows[1][2]


def test_concurrency_per_target_is_bounded(store: Store, http_server: LocalServer) -> None:
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most seen

    def busy(_request: Recorded) -> Reply:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return Reply(200)

    http_server.route("/hook", responder=busy)
    store.write(Batch(alerts=[alert(f"rule{i}") for i in range(6)]))
    rounds(store, [hook(http_server.url("/hook"), max_concurrency=2)], 1)
    assert len(http_server.received("/hook")) == 6
    assert in_flight[1] <= 2


@pytest.mark.parametrize("format", ["slack", "discord"])
def test_slack_and_discord_bodies(store: Store, http_server: LocalServer, format: str) -> None:
    http_server.route("/hook", "ok")
    store.write(Batch(alerts=[alert()]))
    rounds(store, [WebhookSettings(name="ops", url=http_server.url("/hook"), format=format)], 1)
    body = json.loads(http_server.received("/hook")[0].body)
    if format == "slack":
        assert body["blocks"][0]["type"] == "header"
        assert "surge" in body["blocks"][1]["text"]["text"]
        assert "surge" in body["text"]
    else:
        assert body["embeds"][0]["title"] == "[WARNING] surge"
        assert len(body["content"]) <= 2000


def test_a_secret_that_cannot_sign_is_the_notifications_error_backed_off_not_a_crash_loop(
    store: Store, http_server: LocalServer
) -> None:
    http_server.route("/hook", "ok")
    # Settings refuse such a secret at load (tests/test_config_errors.py); built past validation here, it stands
    # for anything that fails while a request is prepared.
    broken = WebhookSettings.model_construct(name="ops", url=http_server.url("/hook"), secret=SecretStr("abcde"))
    store.write(Batch(alerts=[alert()]))

    async def go() -> tuple[int, int]:
        deliverer = Deliverer(StoreThread(store), {"ops": broken}, NO_WAIT)
        try:
            moment = datetime.now(UTC)
            return await deliverer.deliver_due(now=moment), await deliverer.deliver_due(now=moment)
        finally:
            await deliverer.close()

    assert asyncio.run(go()) == (1, 0)  # tried once, then backed off: not due again a moment later
    assert http_server.received("/hook") == []
    (row,) = store.query("SELECT status, attempts, last_error, next_attempt_at > now() FROM notifications").rows
    assert row[:2] == ("pending", 1)
    assert row[2].startswith("cannot prepare the request: Error: Invalid base64-encoded string")
    assert "abcde" not in row[2]
    assert row[3] is True


def test_a_webhook_whose_secret_was_not_loaded_is_never_sent_unsigned(store: Store, http_server: LocalServer) -> None:
    http_server.route("/hook", "ok")
    raw = {"webhooks": [{"name": "ops", "url": http_server.url("/hook"), "secret_env": "STACKWATCH_UNSET_SECRET"}]}
    settings = settings_from_mapping(raw, environ={}, secrets=False)  # as `stackwatch sql` loads it
    store.write(Batch(alerts=[alert()]))
    rounds(store, list(settings.webhooks), 1)
    assert http_server.received("/hook") == []
    (row,) = store.query("SELECT status, last_error FROM deliveries").rows
    assert row[0] == "pending"
    assert "STACKWATCH_UNSET_SECRET" in row[1]
    assert "not sending unsigned" in row[1]
