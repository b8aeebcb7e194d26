"""The live figures of one process, gathered when ``/metrics`` or ``/api/status`` is asked: each source's
counters, consumer lag, the sink's rows, the store's alerts and deliveries, and the snapshot's age.

A figure that cannot be read is left out (an empty lag, no counts, no age), with a log line: a scrape never
fails because the broker or the store is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackwatch.errors import BrokerError
from stackwatch.pipeline import metrics
from stackwatch.pipeline.kafka.lag import consumer_lag
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.runtime import Runtime
from stackwatch.settings.kafka import KafkaSettings
from stackwatch.storage import status as store_status

__all__ = ["LAG_TIMEOUT", "LiveFigures", "lag_groups"]

log = logging.getLogger(__name__)

LAG_TIMEOUT = 5.0
"""Seconds a scrape waits for the consumer lag before it goes without."""


def lag_groups(kafka: KafkaSettings) -> dict[str, list[str]]:
    """The consumer groups of a deployment and the topics each reads."""
    return TopicNames(kafka.topic_prefix).consumer_groups(kafka.app_id)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """``await figures.gather()``: the :class:`~stackwatch.pipeline.metrics.Live` record of this process now."""

    runtime: Runtime
    servers: tuple[str, ...]
    groups: Mapping[str, Sequence[str]]
    """Whose lag to measure (:func:`lag_groups`)."""
    snapshot_file: Path
    """The read-only snapshot the SQL front queries (``storage.snapshot_path``)."""

    def sources(self) -> tuple[metrics.SourceFigures, ...]:
        """Each source's counters, when this process runs the ingest role."""
        if self.runtime.ingest is None:
            return ()
        return tuple(
            metrics.SourceFigures(
                s.name, s.type, s.items_seen, s.items_rejected, s.failures, s.polls, s.consecutive_failures == 0
            )
            for s in self.runtime.ingest.scheduler.states.values()
        )

    async def lag(self) -> dict[str, dict[str, int]]:
        """Records not yet committed per group and topic; empty when the broker does not answer in time."""
        try:
            return await asyncio.wait_for(consumer_lag(self.servers, self.groups), LAG_TIMEOUT)
        except (BrokerError, TimeoutError) as error:
            log.debug("metrics: consumer lag unavailable: %s", error)
            return {}

    async def gather(self) -> metrics.Live:
        """Every figure this process has (see the module docstring)."""
        sources = self.sources()
        lag = await self.lag()
        sink = self.runtime.sink
        if sink is None or sink.store_thread is None:
            return metrics.Live(sources, lag)
        rows, thread = sink.rows_written, sink.store_thread
        alerts: dict[str, int] = {}
        deliveries: dict[str, int] = {}
        try:
            alerts, deliveries = await thread.call(store_status.alert_and_delivery_counts, thread.store.connection)
        except Exception as error:  # a metric scrape must not fail because the store is busy or broken
            log.warning("metrics: cannot count alerts and deliveries: %s", error)
        try:
            snapshot_age: float | None = max(0.0, time.time() - self.snapshot_file.stat().st_mtime)
        except OSError:
            snapshot_age = None
        return metrics.Live(sources, lag, rows, alerts, deliveries, snapshot_age)
