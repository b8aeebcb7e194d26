"""Runs sources on their intervals and moves their checkpoints forward only after a publish succeeded.

    scheduler = Scheduler(sources, checkpoints, publish)
    await scheduler.start()
    ...
    await scheduler.stop()

Per source: an interval with jitter, exponential backoff with a cap after failures, ``Retry`` honoured, and a
state record (last success, last error, items seen, next poll) for ``stackwatch sources`` and health checks.
Per host: a :class:`~stackwatch.connectors.politeness.HostLimiter` bounds requests in flight and spaces them
out, shared by every source that talks to that host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stackwatch.connectors.base import Checkpoint, Publisher, Source
from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.connectors.politeness import HostLimiter
from stackwatch.errors import SourceError
from stackwatch.signals.messages import utcnow

__all__ = ["Schedule", "Scheduler", "SourceState"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a source is polled."""

    interval: float
    jitter: float = 0.1
    max_backoff: float = 3600.0


@dataclass
class SourceState:
    """What is known of a source's health."""

    name: str
    type: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    failures: int = 0
    items_seen: int = 0
    items_rejected: int = 0
    next_poll: datetime | None = None
    polls: int = 0
    history: list[str] = field(default_factory=list)
    backfill: str | None = None
    """``pending``, ``running`` or ``done`` once a backfill was asked for."""
    backfill_items: int = 0


class Scheduler:
    """Polls each source in its own task."""

    def __init__(
        self,
        sources: Sequence[tuple[Source, Schedule]],
        checkpoints: CheckpointStore,
        publish: Publisher,
        *,
        limiter: HostLimiter | None = None,
    ) -> None:
        self._sources = list(sources)
        self._checkpoints = checkpoints
        self._publish = publish
        self.limiter = limiter or HostLimiter()
        self._tasks: list[asyncio.Task[None]] = []
        self.states = {source.name: SourceState(source.name, source.type) for source, _ in self._sources}
        self._wake = {source.name: asyncio.Event() for source, _ in self._sources}
        self._backfills: set[str] = set()

    def backfill(self, name: str) -> None:
        """Re-read source ``name`` from the start at once: its next poll ignores the stored checkpoint.

        What was produced before is produced again; the store's upserts make that harmless. Raises KeyError for
        an unknown source. ``states[name].backfill`` goes ``pending`` → ``running`` → ``done``.
        """
        state = self.states[name]
        self._backfills.add(name)
        state.backfill, state.backfill_items = "pending", 0
        self._wake[name].set()

    async def start(self) -> None:
        for source, schedule in self._sources:
            self._tasks.append(asyncio.create_task(self._run(source, schedule), name=f"source:{source.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for source, _ in self._sources:
            try:
                await source.stop()
                if source.full_text is not None:
                    await source.full_text.close()
            except Exception as error:  # a source that fails to close must not keep the others open
                log.warning("source %s: error while stopping: %s", source.name, error)

    async def poll_once(self, source: Source) -> float | None:
        """Poll, publish, then checkpoint. Returns a delay the source asked for, or None for its interval.

        Raises SourceError when the poll failed (after publishing its rejects and storing its checkpoint).
        """
        state = self.states[source.name]
        if source.name in self._backfills:
            self._backfills.discard(source.name)
            checkpoint: Checkpoint = {}
            state.backfill = "running"
        else:
            checkpoint = self._checkpoints.load(source.name)
        async with self.limiter.slot(source.host):
            result = await source.poll(checkpoint)
        articles = result.articles
        if articles and source.full_text is not None:
            articles = await source.full_text.enrich(articles)
        if articles or result.rejected:
            await self._publish(articles, result.rejected)
        self._checkpoints.save(source.name, result.checkpoint)
        state.polls += 1
        state.items_seen += len(result.articles)
        if state.backfill == "running":
            state.backfill_items += len(result.articles)
            if not result.more and source.name not in self._backfills:
                state.backfill = "done"
        state.items_rejected += len(result.rejected)
        for letter in result.rejected:
            log.warning("source %s: rejected: %s", source.name, letter.reason)
        if result.error is not None:
            raise SourceError(result.error)
        if result.retry is not None:
            log.warning(
                "source %s: asked to come back in %.0fs (%s)",
                source.name,
                result.retry.after,
                result.retry.reason,
            )
            state.last_error = result.retry.reason
            state.last_error_at = utcnow()
            return result.retry.after
        state.last_success = utcnow()
        state.consecutive_failures = 0
        return 0.0 if result.more else None

    async def step(self, source: Source, schedule: Schedule) -> float:
        """One poll with its failure handling; returns the delay until the next one (also in next_poll)."""
        state = self.states[source.name]
        try:
            delay = await self.poll_once(source)
            if delay is None:
                delay = schedule.interval * (1 + random.uniform(0, schedule.jitter))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Any failure of one source (fetch, parse, publish) is logged and retried; the others go on.
            state.consecutive_failures += 1
            state.failures += 1
            state.last_error = _describe(error)
            state.last_error_at = utcnow()
            delay = min(schedule.max_backoff, schedule.interval * 2 ** (state.consecutive_failures - 1))
            delay *= 1 + random.uniform(0, schedule.jitter)
            level = logging.WARNING if isinstance(error, SourceError) else logging.ERROR
            log.log(
                level,
                "source %s: %s; retrying in %.0fs",
                source.name,
                state.last_error,
                delay,
                exc_info=not isinstance(error, SourceError),
            )
        state.next_poll = utcnow() + timedelta(seconds=delay)
        return delay

    async def _run(self, source: Source, schedule: Schedule) -> None:
        state = self.states[source.name]
        while True:
            try:
                await source.setup()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                state.consecutive_failures += 1
                state.failures += 1
                state.last_error = f"setup failed: {_describe(error)}"
                state.last_error_at = utcnow()
                delay = min(schedule.max_backoff, schedule.interval * 2 ** (state.consecutive_failures - 1))
                log.error("source %s: %s; retrying in %.0fs", source.name, state.last_error, delay)
                state.next_poll = utcnow() + timedelta(seconds=delay)
                await asyncio.sleep(delay)
        wake = self._wake[source.name]
        while True:
            delay = await self.step(source, schedule)
            # A backfill cuts the wait short. Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
            # lands as the event is set, and this task would then outlive Scheduler.stop (a stop that hangs).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()
            wake.clear()


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if not isinstance(error, SourceError) else text
