"""Scheduled digests: when each is due, the ``digests:`` section's checks, and sending through a real local
receiver from the fixed store (:mod:`tests.helpers.digest_store`), once per period, across a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from stackwatch.errors import ConfigError
from stackwatch.pipeline.app import build_runtime
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.roles.digest_schedule import DigestSender, digest_dynamics, last_due
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings, settings_from_mapping
from stackwatch.settings.digests import DigestSettings
from stackwatch.storage.store import Store
from tests.helpers.digest_store import fill_digest_store
from tests.helpers.http import LocalServer, Reply

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkw"
AFTER = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)
"""Five minutes after the fixed store's day ended: the morning digest (at 00:00) is due."""


def _daily(at: str = "08:00", **fields: Any) -> DigestSettings:
    return DigestSettings.model_validate({"name": "d", "at": at, "webhooks": ["w"], **fields})


# -- when a digest is due -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (
            datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
            datetime(2026, 3, 9, 8, tzinfo=UTC),
            datetime(2026, 3, 10, 8, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 10, 7, 59, tzinfo=UTC),
            datetime(2026, 3, 8, 8, tzinfo=UTC),
            datetime(2026, 3, 9, 8, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 10, 12, tzinfo=UTC),
            datetime(2026, 3, 9, 8, tzinfo=UTC),
            datetime(2026, 3, 10, 8, tzinfo=UTC),
        ),
    ],
)
def test_a_daily_digest_covers_the_day_before_its_latest_time(now: datetime, start: datetime, end: datetime) -> None:
    period = last_due(_daily(), now)
    assert (period.start, period.end) == (start, end)


def test_a_weekly_digest_covers_the_week_before_its_latest_weekday_and_time() -> None:
    weekly = _daily("07:30", period="weekly", weekday="monday")
    tuesday = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert last_due(weekly, tuesday).end == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    assert last_due(weekly, tuesday).start == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    monday_early = datetime(2026, 3, 9, 7, tzinfo=UTC)
    assert last_due(weekly, monday_early).end == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


# -- the section ----------------------------------------------------------------------------------------------------


def _settings(digests: list[dict[str, Any]], path: Path | None = None) -> Settings:
    raw: dict[str, Any] = {
        "webhooks": [{"name": "chat", "url": "http://127.0.0.1:9/chat", "format": "slack"}],
        "digests": digests,
    }
    if path is not None:
        raw["storage"] = {"path": str(path)}
    return settings_from_mapping(raw, environ={})


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (450, "digests[0].at: expected a time of day in quotes, such as '07:30' (YAML read 450 as a number)"),
        ("7:30", "digests[0].at: expected a UTC time of day as HH:MM, such as 07:30, got '7:30'"),
        ("24:00", "digests[0].at: expected a UTC time of day as HH:MM"),
    ],
)
def test_a_time_that_is_not_hh_mm_is_refused_by_key(at: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _settings([{"name": "m", "at": at, "webhooks": ["chat"]}])
    assert message in str(error.value)


def test_a_digest_names_its_dynamics_in_any_case_or_gets_them_all() -> None:
    settings = _settings(
        [{"name": "one", "dynamics": ["DECOUPLING"], "webhooks": ["chat"]}, {"name": "all", "webhooks": ["chat"]}]
    )
    assert digest_dynamics(settings) == {"one": ("decoupling",), "all": settings.taxonomy().names}


# -- sending --------------------------------------------------------------------------------------------------------


class World:
    """The fixed store (open for writing, as the sink holds it), a receiver, and a sender for two webhooks."""

    def __init__(self, path: Path, server: LocalServer, client: httpx.AsyncClient) -> None:
        self.path = path
        self.server = server
        self.client = client
        raw = {
            "storage": {"path": str(path)},
            "webhooks": [
                {"name": "chat", "url": server.url("/slack"), "format": "slack"},
                {"name": "ops", "url": server.url("/standard"), "secret_env": "DIGEST_SECRET"},
            ],
            "digests": [{"name": "morning", "at": "00:00", "dynamics": ["decoupling"], "webhooks": ["chat", "ops"]}],
        }
        self.settings = settings_from_mapping(raw, environ={"DIGEST_SECRET": SECRET})
        self.thread = StoreThread(Store.open(path))

    def sender(self) -> DigestSender:
        hooks = {hook.name: hook for hook in self.settings.webhooks}
        dynamics = digest_dynamics(self.settings)

        async def store() -> StoreThread:
            return self.thread

        return DigestSender(self.settings.digests, hooks, dynamics, store, self.client)

    async def restart(self) -> None:
        await self.thread.close()
        self.thread = StoreThread(Store.open(self.path))

    async def rows(self) -> list[tuple[Any, ...]]:
        result = await self.thread.call(
            self.thread.store.query,
            "SELECT webhook, group_key, status, attempts, alert_ids FROM notifications ORDER BY webhook",
        )
        return result.rows


@pytest.fixture
async def world(tmp_path: Path, http_server: LocalServer) -> AsyncIterator[World]:
    http_server.route("/slack", "ok")
    http_server.route("/standard", "ok")
    async with httpx.AsyncClient() as client:
        built = World(fill_digest_store(tmp_path / "stackwatch.duckdb"), http_server, client)
        try:
            yield built
        finally:
            await built.thread.close()


async def test_a_due_digest_goes_to_each_webhook_once_in_its_format(world: World) -> None:
    sent = await world.sender().tick(AFTER)
    assert len(sent) == 2
    (slack,) = world.server.received("/slack")
    (standard,) = world.server.received("/standard")
    blocks = json.loads(slack.body)["blocks"]
    assert blocks[0]["text"]["text"].startswith("*Stackwatch digest: morning*\n2026-03-09 00:00 to 2026-03-10 00:00")
    assert "Articles: 4 (+2 from 2)" in blocks[1]["text"]["text"]
    payload = Webhook(SECRET).verify(standard.body, standard.headers)
    assert payload["type"] == "digest"
    assert [section["dynamic"] for section in payload["data"]["dynamics"]] == ["decoupling"]
    assert standard.headers["webhook-id"] in sent
    assert await world.rows() == [
        ("chat", "digest:morning", "delivered", 1, []),
        ("ops", "digest:morning", "delivered", 1, []),
    ]
    assert await world.sender().tick(AFTER + timedelta(hours=3)) == []  # the same period: sent already


async def test_a_restart_neither_repeats_a_sent_digest_nor_forgets_the_next(world: World) -> None:
    await world.sender().tick(AFTER)
    await world.restart()
    assert await world.sender().tick(AFTER + timedelta(minutes=1)) == []
    assert len(world.server.requests) == 2
    next_day = await world.sender().tick(AFTER + timedelta(days=1))
    assert len(next_day) == 2
    assert len(world.server.requests) == 4


async def test_a_failed_send_is_retried_after_its_delay_and_given_up_after_the_last(world: World) -> None:
    world.server.route("/slack", responder=lambda request: Reply(500, b"down"))
    await world.sender().tick(AFTER)
    assert ("chat", "digest:morning", "retrying", 1, []) in await world.rows()
    assert await world.sender().tick(AFTER + timedelta(seconds=30)) == []  # before the first delay
    assert len(world.server.received("/slack")) == 1
    world.server.route("/slack", "ok")
    retried = await world.sender().tick(AFTER + timedelta(seconds=61))
    assert len(retried) == 1
    assert ("chat", "digest:morning", "delivered", 2, []) in await world.rows()
    ids = {request.headers["webhook-id"] for request in world.server.received("/slack")}
    assert len(ids) == 1  # a retry is the same message to the receiver


async def test_a_receiver_that_keeps_failing_is_given_up(world: World) -> None:
    world.server.route("/slack", responder=lambda request: Reply(500, b"down"))
    at = AFTER
    for _ in range(6):
        await world.sender().tick(at)
        at += timedelta(hours=2)
    assert ("chat", "digest:morning", "failed", 5, []) in await world.rows()
    assert len(world.server.received("/slack")) == 5


# -- in the service -------------------------------------------------------------------------------------------------


def test_the_sink_role_runs_the_digests_beside_it_when_any_is_configured(tmp_path: Path) -> None:
    with_digest = _settings([{"name": "m", "webhooks": ["chat"]}], tmp_path / "s.duckdb")
    runtime = build_runtime(with_digest, ["sink"], ["127.0.0.1:9"], web_port=free_port())
    assert [type(service).__name__ for service in runtime.services].count("DigestService") == 1
    without = build_runtime(_settings([], tmp_path / "t.duckdb"), ["sink"], ["127.0.0.1:9"], web_port=free_port())
    assert "DigestService" not in [type(service).__name__ for service in without.services]
