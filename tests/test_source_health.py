"""Source health on the wall clock: a source that stops delivering, or whose polls keep failing, fires once, resolves
on recovery, and a restart on the same DuckDB file neither fires it again nor forgets to resolve it.

A real feed on a local HTTP server is polled by the real scheduler; what it publishes is stored in a real DuckDB file
as the sink would store it, and so are the watcher's alerts. The watcher's clock is passed in: no test sleeps.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.connectors import CheckpointStore, RssSource, Schedule, Scheduler
from stackwatch.connectors.poll_log import PollLog, PollStatus
from stackwatch.errors import ConfigError
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import decode
from stackwatch.pipeline.roles.agents.rules import build_engine
from stackwatch.pipeline.roles.source_health import CHECK_EVERY, HealthWatcher, source_health_service, watched
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings, settings_from_mapping
from stackwatch.signals.messages import Alert, Article, DeadLetter, TaggedArticle, utcnow
from stackwatch.signals.rules import alert_id
from stackwatch.signals.source_health import Firing, HealthRule, SourceReport, judge
from stackwatch.storage.source_activity import newest_stored, open_health_alerts
from stackwatch.storage.store import Batch, Store
from tests.helpers.faults import alert_ids
from tests.helpers.http import LocalServer
from tests.helpers.kafka_parts import create_topic, read_values
from tests.helpers.service import Service, pipeline_config

SCHEDULE = Schedule(interval=300.0, jitter=0.0)
STALE = HealthRule("feed-stale", source="wire", stale_after=timedelta(hours=2))
FAILING = HealthRule("feed-failing", source="wire", failing_after=timedelta(minutes=30))
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def feed_with(items: range) -> bytes:
    entries = "".join(
        f"<item><title>Story {n}</title><link>https://wire.example/{n}</link><guid>wire-{n}</guid></item>"
        for n in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{entries}</channel></rss>'.encode()


@dataclass
class Sink:
    """Stores what the scheduler publishes and the alerts the watcher sends, as the sink role would."""

    thread: StoreThread
    sent: list[Alert] = field(default_factory=list)
    lose_alerts: bool = False
    """The process dies with the alerts in the memory-only broker: sent, never stored."""

    async def store(self) -> StoreThread:
        return self.thread

    async def articles(self, articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        tagged = [TaggedArticle(article, (), {}, "v1") for article in articles]
        await self.thread.call(self.thread.store.write, Batch(tagged=tagged))

    async def alerts(self, alerts: Sequence[Alert]) -> None:
        self.sent += alerts
        if not self.lose_alerts:
            await self.thread.call(self.thread.store.write, Batch(alerts=list(alerts)))

    async def newest(self, source: str = "wire") -> datetime:
        return (await self.thread.call(newest_stored, self.thread.store.connection))[source]


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Sink]:
    """A store on ``path`` for the length of the block: leaving it is the process ending."""
    thread = StoreThread(Store.open(path))
    try:
        yield Sink(thread)
    finally:
        await thread.close()


def watcher(sink: Sink, state: Path, rules: Sequence[HealthRule], started: datetime) -> HealthWatcher:
    polls = PollLog.beside(CheckpointStore(state))
    return HealthWatcher(rules, ["wire"], sink.store, polls, sink.alerts, started=started)


@pytest.fixture
def feed(http_server: LocalServer) -> LocalServer:
    http_server.route("/feed.xml", feed_with(range(2)), headers={"Content-Type": "application/rss+xml"})
    return http_server


async def poll(scheduler: Scheduler, source: RssSource) -> None:
    await scheduler.step(source, SCHEDULE)


async def test_a_feed_with_nothing_new_fires_once_on_the_wall_clock(feed: LocalServer, tmp_path: Path) -> None:
    store_file, state = tmp_path / "store.duckdb", tmp_path / "checkpoints"
    async with running(store_file) as sink:
        source = RssSource("wire", feed.url("/feed.xml"))
        scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(state), sink.articles)
        await poll(scheduler, source)
        first = await sink.newest()
        health = watcher(sink, state, [STALE], first)

        assert await health.tick(first + timedelta(hours=1)) == []
        await poll(scheduler, source)  # the feed offers the same two items: nothing new is stored
        assert await sink.newest() == first
        fired = await health.tick(first + timedelta(hours=2))
        assert [(a.rule, a.status, a.labels["source"], a.labels["problem"]) for a in fired] == [
            ("feed-stale", "firing", "wire", "stale")
        ]
        assert fired[0].id == alert_id("feed-stale", "feed-stale|wire|stale", (first + timedelta(hours=2)).isoformat())
        assert "no new article for 2h" in fired[0].message
        assert await health.tick(first + timedelta(hours=3)) == []  # still stale: fired once
        await scheduler.stop()

    async with running(store_file) as sink:  # killed, and started again a minute later
        restarted = first + timedelta(hours=3, minutes=1)
        health = watcher(sink, state, [STALE], restarted)
        assert await health.tick(restarted) == []
        assert await health.tick(restarted + timedelta(hours=2)) == []  # stale again by any count: still open
        assert list(await sink.thread.call(open_health_alerts, sink.thread.store.connection)) == [
            ("feed-stale", "feed-stale|wire|stale")
        ]


async def test_a_feed_that_delivers_again_while_the_service_is_down_is_resolved_after_the_restart(
    feed: LocalServer, tmp_path: Path
) -> None:
    store_file, state = tmp_path / "store.duckdb", tmp_path / "checkpoints"
    async with running(store_file) as sink:
        source = RssSource("wire", feed.url("/feed.xml"))
        scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(state), sink.articles)
        await poll(scheduler, source)
        first = await sink.newest()
        fired = await watcher(sink, state, [STALE], first).tick(first + timedelta(hours=2))
        assert [alert.status for alert in fired] == ["firing"]
        feed.route("/feed.xml", feed_with(range(3)), headers={"Content-Type": "application/rss+xml"})
        await poll(scheduler, source)  # a new item is stored; the process dies before the watcher's next round
        await scheduler.stop()

    async with running(store_file) as sink:
        delivered = await sink.newest()
        assert delivered > first
        # The watcher's clock runs ahead of the store's by 2 h: place the restart within the real gap between the
        # two deliveries, so that the new article is less than 2 h old and the clock still moves forward.
        restarted = fired[0].bucket_start + (delivered - first) / 3
        health = watcher(sink, state, [STALE], restarted)
        resolved = await health.tick(restarted)
        assert [(a.status, a.id) for a in resolved] == [
            ("resolved", alert_id("feed-stale", "feed-stale|wire|stale", fired[0].bucket_start.isoformat(), "resolved"))
        ]
        assert "delivers again" in resolved[0].message
        assert await health.tick(restarted + (delivered - first) / 3) == []

    async with running(store_file) as sink:  # and a restart after the resolution has nothing to resolve
        assert await sink.thread.call(open_health_alerts, sink.thread.store.connection) == {}
        assert await watcher(sink, state, [STALE], restarted).tick(restarted + (delivered - first) / 2) == []


async def test_a_feed_that_stops_answering_fires_once_survives_a_restart_and_resolves_when_it_answers(
    tmp_path: Path,
) -> None:
    store_file, state = tmp_path / "store.duckdb", tmp_path / "checkpoints"
    server = LocalServer()
    url, port = server.url("/feed.xml"), server.port
    server.close()  # nothing answers on the feed's port any more
    async with running(store_file) as sink:
        source = RssSource("wire", url)
        scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(state), sink.articles)
        await poll(scheduler, source)
        await poll(scheduler, source)
        since = scheduler.states["wire"].failing_since
        assert since is not None
        assert scheduler.states["wire"].consecutive_failures == 2
        health = watcher(sink, state, [FAILING], since)
        assert await health.tick(since + timedelta(minutes=29)) == []
        fired = await health.tick(since + timedelta(minutes=30))
        assert [(a.status, a.labels["problem"], a.values["consecutive_failures"]) for a in fired] == [
            ("firing", "failing", 2.0)
        ]
        assert fired[0].message.startswith("source wire: no successful poll for 30m (2 failed in a row; failing after")
        assert "last error: cannot fetch" in fired[0].message
        await scheduler.stop()

    async with running(store_file) as sink:  # a new process: its scheduler takes the failures back from the log
        source = RssSource("wire", url)
        scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(state), sink.articles)
        assert scheduler.states["wire"].failing_since == since
        await poll(scheduler, source)
        assert scheduler.states["wire"].consecutive_failures == 3
        health = watcher(sink, state, [FAILING], since + timedelta(hours=1))
        assert await health.tick(since + timedelta(hours=2)) == []  # still failing, already open: not fired again

        server = LocalServer(port)  # the feed answers again
        try:
            server.route("/feed.xml", feed_with(range(2)), headers={"Content-Type": "application/rss+xml"})
            await poll(scheduler, source)
        finally:
            server.close()
        assert scheduler.states["wire"].poll_status().failing_since is None
        resolved = await health.tick(since + timedelta(hours=2, seconds=5))
        expected = alert_id("feed-failing", "feed-failing|wire|failing", fired[0].bucket_start.isoformat(), "resolved")
        assert [(a.status, a.id) for a in resolved] == [("resolved", expected)]
        await scheduler.stop()


async def test_a_feed_that_keeps_asking_to_come_back_later_is_failing_too(
    http_server: LocalServer, tmp_path: Path
) -> None:
    http_server.route("/feed.xml", b"busy", status=503, headers={"Retry-After": "60"})
    source = RssSource("wire", http_server.url("/feed.xml"))
    scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(tmp_path), lambda articles, rejected: asyncio.sleep(0))
    try:
        assert await scheduler.step(source, SCHEDULE) == 60.0
        assert await scheduler.step(source, SCHEDULE) == 60.0
    finally:
        await scheduler.stop()
    status = PollLog.beside(CheckpointStore(tmp_path)).load("wire")
    assert status is not None
    assert status.failing_since is not None
    assert status.consecutive_failures == 0  # the backoff is the source's to ask for: no failure counted
    assert status.last_error is not None
    assert "HTTP 503" in status.last_error


async def test_an_alert_lost_before_the_store_recorded_it_is_sent_again_under_its_id(tmp_path: Path) -> None:
    store_file, state = tmp_path / "store.duckdb", tmp_path / "checkpoints"
    PollLog.beside(CheckpointStore(state)).save("wire", PollStatus(failing_since=T0, consecutive_failures=9))
    async with running(store_file) as sink:
        sink.lose_alerts = True
        lost = await watcher(sink, state, [FAILING], T0).tick(T0 + timedelta(hours=1))
    async with running(store_file) as sink:
        again = await watcher(sink, state, [FAILING], T0 + timedelta(hours=2)).tick(T0 + timedelta(hours=2))
        assert [alert.id for alert in again] == [alert.id for alert in lost] != []
        assert list(await sink.thread.call(open_health_alerts, sink.thread.store.connection)) == [
            ("feed-failing", "feed-failing|wire|failing")
        ]


# -- the judgement on plain values ------------------------------------------------------------------------------


def test_a_source_that_never_delivered_fires_stale_after_from_when_watching_began() -> None:
    rule = HealthRule("stale", stale_after=timedelta(hours=1))
    reports = [SourceReport("wire"), SourceReport("blog", last_delivery=T0 + timedelta(minutes=30))]
    assert judge([rule], reports, {}, T0 + timedelta(minutes=59), watching_since=T0) == []
    fired = judge([rule], reports, {}, T0 + timedelta(hours=1), watching_since=T0)
    assert [(a.labels["source"], a.bucket_start) for a in fired] == [("wire", T0 + timedelta(hours=1))]
    assert "has stored no article yet" in fired[0].message


def test_time_the_service_was_down_counts_against_no_source() -> None:
    rule = HealthRule("stale", stale_after=timedelta(hours=1))
    old = SourceReport("wire", last_delivery=T0 - timedelta(days=3))
    assert judge([rule], [old], {}, T0 + timedelta(minutes=10), watching_since=T0) == []
    assert len(judge([rule], [old], {}, T0 + timedelta(hours=1), watching_since=T0)) == 1


def test_not_knowing_resolves_nothing_and_a_source_no_longer_watched_resolves() -> None:
    rule = HealthRule("both", stale_after=timedelta(hours=1), failing_after=timedelta(minutes=5))
    since = T0 - timedelta(hours=1)
    firing = {
        ("both", "both|wire|stale"): Firing("both", "both|wire|stale", "wire", "stale", since),
        ("both", "both|wire|failing"): Firing("both", "both|wire|failing", "wire", "failing", since),
        ("both", "both|gone|stale"): Firing("both", "both|gone|stale", "gone", "stale", since),
    }
    unknown = SourceReport("wire")  # a restart that lost every in-memory fact about the source
    alerts = judge([rule], [unknown], firing, T0, watching_since=T0)
    assert [(a.labels["source"], a.status) for a in alerts] == [("gone", "resolved")]
    assert "no longer watched" in alerts[0].message


def test_routes_and_the_rules_own_webhooks_pick_the_targets() -> None:
    rule = HealthRule("stale", stale_after=timedelta(hours=1), labels={"team": "ops"}, webhooks=("pager",))
    fired = judge(
        [rule],
        [SourceReport("wire")],
        {},
        T0 + timedelta(hours=1),
        watching_since=T0,
        router=lambda labels: ["chat"] if labels.get("team") == "ops" else [],
    )
    assert fired[0].webhooks == ("pager", "chat")
    assert fired[0].labels["kind"] == "source_health"
    assert fired[0].labels["team"] == "ops"


# -- configuration ----------------------------------------------------------------------------------------------


def config(**rule: Any) -> dict[str, Any]:
    return {
        "sources": [{"name": "wire", "type": "rss", "url": "https://wire.example/feed.xml"}],
        "rules": [{"name": "feeds", "kind": "source_health", **rule}],
    }


def problems(**rule: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(config(**rule), secrets=False)
    return str(raised.value)


def test_the_configuration_names_the_key_that_is_wrong() -> None:
    assert "rules[0].stale_after: name stale_after, failing_after or both" in problems()
    assert "rules[0].stale_after" in problems(stale_after="soon")
    assert "rules[0].failing_after" in problems(failing_after=0)
    assert "rules[0].for: not used by a source_health rule" in problems(stale_after="2h", **{"for": 3})
    assert "rules[0].cooldown: not used by a source_health rule" in problems(stale_after="2h", cooldown="1h")
    assert "rules[0].source: unknown source 'wirre' (defined: wire)" in problems(stale_after="2h", source="wirre")
    assert "rules[0].dedup: unknown field 'dynamic'" in problems(stale_after="2h", dedup="{rule}|{dynamic}")


async def no_store() -> StoreThread:
    raise AssertionError("not read in this test")


def test_a_valid_rule_is_watched_on_the_wall_clock_and_not_by_the_stream(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {**config(stale_after="2h", failing_after="30m", labels={"team": "ops"}), "state": {"path": str(tmp_path)}},
        secrets=False,
    )
    assert isinstance(settings, Settings)
    assert build_engine(settings.rules, settings.alerting).rules == []
    rule = settings.rules[0]
    assert rule.kind == "source_health"
    health = source_health_service(settings, no_store, ["127.0.0.1:1"])
    assert health is not None
    assert health.watcher.rules == (
        HealthRule("feeds", None, timedelta(hours=2), timedelta(minutes=30), labels={"team": "ops"}),
    )
    assert health.watcher.sources == ["wire"]


def test_a_reload_gives_the_watcher_its_new_rules_and_sources(tmp_path: Path) -> None:
    """A service started with no source_health rule watches from the reload that adds one."""
    state = {"path": str(tmp_path)}
    before = settings_from_mapping({"sources": config()["sources"], "state": state}, secrets=False)
    health = source_health_service(before, no_store, ["127.0.0.1:1"])
    assert health.watcher.rules == ()
    assert asyncio.run(health.watcher.tick(T0)) == []  # nothing to judge: the store is not read
    more = {"name": "blog", "type": "rss", "url": "https://blog.example/feed.xml"}
    after = settings_from_mapping(
        {**config(stale_after="2h"), "sources": [*config()["sources"], more], "state": state}, secrets=False
    )
    health.watcher.reconfigure(*watched(after))
    assert [rule.name for rule in health.watcher.rules] == ["feeds"]
    assert health.watcher.sources == ["wire", "blog"]


async def test_the_service_sends_its_alerts_to_the_alerts_topic(broker: str, unique: str, tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {
            **config(stale_after="1h"),
            "kafka": {"topic_prefix": unique, "app_id": unique},
            "state": {"path": str(tmp_path / "state")},
        },
        secrets=False,
    )
    await create_topic(broker, f"{unique}.alerts")
    async with running(tmp_path / "store.duckdb") as sink:
        service = source_health_service(settings, sink.store, [broker])
        assert service is not None
        try:
            assert await service.producer.start(asyncio.Event())
            started = utcnow()
            assert await service.watcher.tick(started) == []
            fired = await service.watcher.tick(started + timedelta(hours=1))
        finally:
            await service.producer.stop()
    values = [decode(Alert, value) for value in await read_values(broker, f"{unique}.alerts")]
    assert [alert.id for alert in values] == [alert.id for alert in fired] != []


# -- the whole service --------------------------------------------------------------------------------------------


def test_stackwatch_up_pages_a_feed_that_fails_once_across_a_sigkill_and_resolves_it(
    unique: str, http_server: LocalServer, tmp_path: Path
) -> None:
    """`stackwatch up` with the embedded broker: the firing goes out through the outbox to the webhook, the process is
    killed, the feed still fails after the restart (no second firing), then answers again (resolved)."""
    http_server.route("/hook", "ok")
    http_server.route("/feed.xml", b"broken", status=500)
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [],
        unique,
        kafka={"bootstrap_servers": None},
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword"},
        sources=[{"name": "wire", "type": "rss", "url": http_server.url("/feed.xml"), "interval": "1s",
                  "max_backoff": "1s"}],
        webhooks=[{"name": "ops", "url": http_server.url("/hook")}],
        alerting={"group_wait": "1s", "group_interval": "1s"},
        rules=[{"name": "wire-down", "kind": "source_health", "source": "wire", "failing_after": "2s",
                "webhooks": ["ops"]}],
    )  # fmt: skip
    query = (
        "SELECT a.id, d.status FROM alerts a JOIN alert_details d ON d.alert_id = a.id"
        " WHERE a.rule = 'wire-down' ORDER BY a.fired_at"
    )
    service = Service(config, web_port=web_port, name="first")
    try:
        fired = service.wait_until(query, lambda rows: len(rows) == 1)
        firing_id = fired[0][0]
        assert fired[0][1] == "firing"
        hooks = http_server.wait_for("/hook")
        assert firing_id in alert_ids(json.loads(hooks[0].body))
    finally:
        service.stop(signal.SIGKILL)

    polls_before = len(http_server.received("/feed.xml"))
    service = Service(config, web_port=web_port, name="second")
    try:
        service.wait_until("SELECT 1", lambda rows: rows == [[1]])
        http_server.wait_for("/feed.xml", polls_before + 2)  # failing after the restart too
        time.sleep(2 * CHECK_EVERY)  # the watcher's rounds while it still fails: none may fire again
        assert service.sql(query) == [[firing_id, "firing"]]

        http_server.route("/feed.xml", feed_with(range(2)), headers={"Content-Type": "application/rss+xml"})
        rows = service.wait_until(query, lambda rows: len(rows) == 2)
        assert [row[1] for row in rows] == ["firing", "resolved"]
        resolved_id = rows[1][0]
        http_server.wait_for("/hook", 2)
        assert any(resolved_id in alert_ids(json.loads(hook.body)) for hook in http_server.received("/hook"))
    finally:
        service.stop()
