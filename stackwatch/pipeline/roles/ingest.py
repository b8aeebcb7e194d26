"""The ingest role: connectors polling their sources, articles produced to the raw topic."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Any

from mode import Service

from stackwatch.connectors import CheckpointStore, Scheduler, build_source
from stackwatch.connectors.scheduler import Confirm
from stackwatch.pipeline import metrics
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.pipeline.kafka.producer import AckedProducer
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.settings import KafkaSettings, SourceSettings, StateSettings
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["HALT_WITHIN", "IngestService"]

log = logging.getLogger(__name__)

HALT_WITHIN = 10.0
"""Seconds each step of a halt may take; a stop must never hang on a stuck source or an unacknowledged send."""


async def _within(seconds: float, what: str, step: Awaitable[None]) -> None:
    # asyncio.wait, not wait_for: wait_for would wait on a step that does not end when cancelled.
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("stopping: %s did not stop within %.0fs; going on without them", what, seconds)


class IngestService(Service):
    """Runs every enabled source of ``sources``, checkpointed under ``state.path``. A source's checkpoint advances
    once ``confirm`` says its articles are stored (when the sink runs in this process), else once the broker
    acknowledged them (a durable Kafka)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        sources: Sequence[SourceSettings],
        state: StateSettings,
        servers: Sequence[str],
        *,
        confirm: Confirm | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topics = TopicNames(kafka.topic_prefix)
        self.confirm = confirm
        self.producer = AckedProducer(
            servers, client_id=f"{kafka.app_id}-ingest", request_timeout=kafka.request_timeout
        )
        self.sources = tuple(sources)
        self.checkpoints = CheckpointStore(state.path / "checkpoints")
        self.scheduler = Scheduler(
            [build_source(source) for source in self.sources if source.enabled],
            self.checkpoints,
            self.publish,
            confirm=confirm,
        )
        self._stopping = asyncio.Event()
        self.connected = False

    async def replace_sources(self, sources: Sequence[SourceSettings]) -> None:
        """Poll ``sources`` from now on (``stackwatch reload``): a new scheduler replaces the running one, and the
        sources whose settings did not change keep their state, checkpoint and host limits, so nothing is fetched
        twice."""
        previous = self.scheduler
        kept = {source.name for source in sources if source.enabled and source in self.sources}
        scheduler = Scheduler(
            [build_source(source) for source in sources if source.enabled],
            self.checkpoints,
            self.publish,
            limiter=previous.limiter,
            confirm=self.confirm,
        )
        scheduler.carry_over(previous, kept)
        await previous.stop()
        await previous.close()
        self.scheduler = scheduler
        self.sources = tuple(sources)
        if self.connected:
            await scheduler.start()

    async def publish(self, articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        records: list[tuple[str, bytes | None, bytes]] = [
            (self.topics.raw, article.id.encode(), encode(article)) for article in articles
        ]
        records += [(self.topics.deadletter, None, encode(letter)) for letter in rejected]
        await self.producer.send_all(records)
        for source, count in Counter(article.source for article in articles).items():
            metrics.ARTICLES_PRODUCED.labels(source=source).inc(count)

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        if await self.producer.start(self._stopping) and not self._stopping.is_set():
            self.connected = True
            await self.scheduler.start()
            log.info("ingest: %d source(s) running", len(self.scheduler.states))

    async def halt(self) -> None:
        """Stop polling and producing (idempotent): the first step of a graceful stop, bounded in time."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        await _within(HALT_WITHIN, "the connectors", self.scheduler.stop())
        await _within(HALT_WITHIN, "the ingest producer", self.producer.stop())

    async def settle(self, within: float) -> int:
        """After :meth:`halt`: wait up to ``within`` seconds for what was read to be stored; returns how many
        articles are still not (they are read again at the next start)."""
        return await self.scheduler.settle(within)

    async def on_stop(self) -> None:
        await self.halt()
        await self.scheduler.close()
