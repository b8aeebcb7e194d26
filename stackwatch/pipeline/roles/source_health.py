"""The source-health watcher: judges ``kind: source_health`` rules on the wall clock and sends their alerts to the
alerts topic, where the sink stores and delivers them as it does the rules' (routes, grouping, silences).

    watcher = HealthWatcher(rules, ["wire", "blog"], sink.store, PollLog.beside(checkpoints), publish)
    alerts = await watcher.tick(utcnow())      # what one round sent (usually nothing)

It runs beside the sink (the store's writer), every :data:`CHECK_EVERY` seconds. Its inputs are all durable, so
a SIGKILL and a restart look like no restart: when each source last delivered is the ``stored_at`` of its newest
stored article, its poll outcomes are the scheduler's :class:`~stackwatch.connectors.poll_log.PollLog`, and which
health alerts are open is read back from the alerts the store recorded (an alert sent but not yet stored when the
process died is sent again under the same id, and the store keeps one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from mode import Service

from stackwatch.connectors import CheckpointStore
from stackwatch.connectors.poll_log import PollLog
from stackwatch.errors import StackwatchError
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.pipeline.kafka.producer import AckedProducer
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import KafkaSettings, Settings
from stackwatch.settings.alerts import SourceHealthRuleSettings
from stackwatch.signals.alerting import Route, route
from stackwatch.signals.messages import Alert, utcnow
from stackwatch.signals.source_health import Firing, HealthRule, Router, SourceReport, judge
from stackwatch.storage.source_activity import newest_stored, open_health_alerts

__all__ = ["CHECK_EVERY", "HealthWatcher", "SourceHealthService", "source_health_service", "watched"]

log = logging.getLogger(__name__)

CHECK_EVERY = 5.0
"""Seconds between two rounds: an alert fires at most this late after its duration has passed."""

Publish = Callable[[Sequence[Alert]], Awaitable[None]]
"""Sends alerts on; returns once they are safe (the broker acknowledged them)."""


class HealthWatcher:
    """Judges the health rules against the sources' deliveries and poll outcomes, one round per :meth:`tick`.

    ``sources``: the names of the enabled sources (a rule without ``source`` watches each); ``store``: gives the
    store's thread once it is open; ``started``: when watching began (default: the first round).
    """

    def __init__(
        self,
        rules: Sequence[HealthRule],
        sources: Sequence[str],
        store: Callable[[], Awaitable[StoreThread]],
        polls: PollLog,
        publish: Publish,
        *,
        router: Router = lambda labels: (),
        started: datetime | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.sources = list(sources)
        self._store = store
        self._polls = polls
        self._publish = publish
        self._router = router
        self.started = started
        self._firing: dict[tuple[str, str], Firing] | None = None
        """Open alerts: read from the store at the first round, then kept as this watcher sends."""
        self._delivered: dict[str, datetime] = {}
        self._high_water: datetime | None = None

    def reconfigure(self, rules: Sequence[HealthRule], sources: Sequence[str], router: Router) -> None:
        """Judge these rules and sources from the next round (a reload). Open alerts carry over: a source no
        longer watched resolves as gone, and an alert of a rule removed stays as it was."""
        self.rules, self.sources, self._router = tuple(rules), list(sources), router

    async def tick(self, now: datetime) -> list[Alert]:
        """One round at ``now``: the alerts it sent. Raises StoreError or BrokerError; the next round retries."""
        if self.started is None:
            self.started = now
        if not self.rules:
            return []
        thread = await self._store()
        connection = thread.store.connection
        if self._firing is None:
            self._firing = await thread.call(open_health_alerts, connection)
        newest = await thread.call(newest_stored, connection, self._high_water)
        for source, stored in newest.items():
            self._delivered[source] = max(stored, self._delivered.get(source, stored))
            self._high_water = max(stored, self._high_water or stored)
        statuses = self._polls.load_all(self.sources)
        reports = []
        for source in self.sources:
            status = statuses.get(source)
            reports.append(
                SourceReport(
                    source,
                    last_delivery=self._delivered.get(source),
                    last_success=status.last_success if status else None,
                    failing_since=status.failing_since if status else None,
                    consecutive_failures=status.consecutive_failures if status else 0,
                    last_error=status.last_error if status else None,
                )
            )
        alerts = judge(self.rules, reports, self._firing, now, watching_since=self.started, router=self._router)
        if alerts:
            await self._publish(alerts)
        for alert in alerts:
            key = (alert.rule, alert.dedup_key)
            if alert.status == "firing":
                labels = alert.labels
                self._firing[key] = Firing(alert.rule, key[1], labels["source"], labels["problem"], alert.bucket_start)
            else:
                self._firing.pop(key, None)
            log.warning("source health: %s %s: %s", alert.status, alert.rule, alert.message)
        return alerts


class SourceHealthService(Service):
    """Runs :meth:`HealthWatcher.tick` every ``every`` seconds on ``clock()``, sending through its own producer,
    connected once the watcher has a rule (at start, or after a reload that adds one)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        servers: Sequence[str],
        make_watcher: Callable[[Publish], HealthWatcher],
        *,
        every: float = CHECK_EVERY,
        clock: Callable[[], datetime] = utcnow,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topics = TopicNames(kafka.topic_prefix)
        self.producer = AckedProducer(
            servers, client_id=f"{kafka.app_id}-source-health", request_timeout=kafka.request_timeout
        )
        self.watcher = make_watcher(self.publish)
        self.every = every
        self.clock = clock
        self._stopping = asyncio.Event()

    async def publish(self, alerts: Sequence[Alert]) -> None:
        await self.producer.send_all([(self.topics.alerts, alert.id.encode(), encode(alert)) for alert in alerts])

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        connected = False
        while not self._stopping.is_set():
            if self.watcher.rules and not connected:  # no connection while there is nothing to watch
                if not await self.producer.start(self._stopping):
                    return
                connected = True
            try:
                await self.watcher.tick(self.clock())
            except StackwatchError as error:
                log.warning("source health: round skipped, retried in %.0fs: %s", self.every, error)
            try:
                async with asyncio.timeout(self.every):  # not wait_for: see Scheduler._run
                    await self._stopping.wait()
            except TimeoutError:
                continue

    async def on_stop(self) -> None:
        self._stopping.set()
        await self.producer.stop()


def watched(settings: Settings) -> tuple[list[HealthRule], list[str], Router]:
    """What a watcher judges under ``settings``: its ``source_health`` rules, the enabled sources, the routes."""
    rules = [item.health_rule() for item in settings.rules if isinstance(item, SourceHealthRuleSettings)]
    sources = [source.name for source in settings.sources if source.enabled]
    routes = [Route(item.match, tuple(item.webhooks)) for item in settings.alerting.routes]

    def router(labels: Any) -> list[str]:
        return route(labels, routes)

    return rules, sources, router


def source_health_service(
    settings: Settings,
    store: Callable[[], Awaitable[StoreThread]],
    servers: Sequence[str],
    **kwargs: Any,
) -> SourceHealthService:
    """The watcher of the ``source_health`` rules of ``settings``, reading ``store``. With no such rule it idles
    until a reload brings one (:meth:`HealthWatcher.reconfigure`)."""
    rules, sources, router = watched(settings)
    polls = PollLog.beside(CheckpointStore(settings.state.path / "checkpoints"))

    def make(publish: Publish) -> HealthWatcher:
        return HealthWatcher(rules, sources, store, polls, publish, router=router)

    return SourceHealthService(settings.kafka, servers, make, **kwargs)
