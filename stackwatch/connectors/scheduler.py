"""Runs sources on their intervals and moves their checkpoints forward only once what they read is safe.

    scheduler = Scheduler(sources, checkpoints, publish, confirm=store_has)
    await scheduler.start()
    ...
    await scheduler.stop()                # no more polls
    await scheduler.settle(within=60.0)   # wait until what was read is stored; checkpoints follow
    await scheduler.close()

Per source: an interval with jitter, exponential backoff with a cap after failures, ``Retry`` honoured, and a
state record (last success, last error, items seen, next poll) for ``stackwatch sources`` and health checks. Its
poll outcomes (last success, failures in a row and since when) are saved after every poll in a
:class:`~stackwatch.connectors.poll_log.PollLog` and restored at start, for the source-health watcher.
Per host: a :class:`~stackwatch.connectors.politeness.HostLimiter` bounds requests in flight and spaces them
out, shared by every source that talks to that host.

When is an article safe? Without ``confirm``, once the publisher returned (the broker acknowledged it): right for
a durable Kafka. With ``confirm`` (a callable saying which article ids the store holds), only once the store has
it: a source polls on from the cursor it read up to, but its stored checkpoint stays at the last poll whose
articles are all stored, so a crash at any moment leaves every article either stored or read again at the next
start. That is what makes the embedded, memory-only broker safe to lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stackwatch.connectors.base import Checkpoint, Publisher, Source
from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.connectors.politeness import HostLimiter
from stackwatch.connectors.poll_log import PollLog, PollStatus
from stackwatch.errors import SourceError
from stackwatch.signals.messages import utcnow

__all__ = ["Confirm", "Schedule", "Scheduler", "SourceState"]

log = logging.getLogger(__name__)

Confirm = Callable[[Sequence[str]], Awaitable[Collection[str]]]
"""Given article ids, answers which of them the store holds (stored, or dead-lettered): those are done."""

CONFIRM_EVERY = 0.5
"""Seconds between two questions to the store about the articles read but not yet known to be stored."""

MAX_UNSTORED = 5_000
"""With ``confirm``: a source with this many articles read and not yet stored waits before its next poll, so a
backlog (a large file, a backfill) flows at the store's pace instead of piling up in the broker."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a source is polled."""

    interval: float
    jitter: float = 0.1
    max_backoff: float = 3600.0

    def backoff(self, consecutive_failures: int) -> float:
        """Seconds to wait after that many failures in a row: the interval, doubled per failure, capped. (The
        exponent stops at 60: past some 1,000 failures a float power overflows, and the source's task with it.)"""
        return min(self.max_backoff, self.interval * 2.0 ** min(consecutive_failures - 1, 60))


@dataclass
class SourceState:
    """What is known of a source's health."""

    name: str
    type: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    """When the current run of polls without a success began: failures, or answers asking to come back later (429,
    503); None once a poll succeeds."""
    failures: int = 0
    items_seen: int = 0
    items_rejected: int = 0
    next_poll: datetime | None = None
    polls: int = 0
    history: list[str] = field(default_factory=list)
    backfill: str | None = None
    """``pending``, ``running`` or ``done`` once a backfill was asked for."""
    backfill_items: int = 0
    unstored: int = 0
    """Articles read and published, not yet known to be stored: read again if the service stops now."""

    def failed(self, reason: str) -> None:
        """Count one more failure, in a row and in all, and remember its reason and time."""
        self.last_error_at = utcnow()
        if self.failing_since is None:
            self.failing_since = self.last_error_at
        self.consecutive_failures += 1
        self.failures += 1
        self.last_error = reason

    def succeeded(self) -> None:
        """A poll succeeded: the run of failures, if any, is over."""
        self.last_success = utcnow()
        self.consecutive_failures = 0
        self.failing_since = None

    def poll_status(self) -> PollStatus:
        """What the poll log keeps of this state."""
        return PollStatus(
            self.last_success, self.failing_since, self.consecutive_failures, self.last_error, source=self.name
        )

    def restore(self, status: PollStatus) -> None:
        """Take back the outcomes a previous run saved (``status``)."""
        self.last_success = status.last_success
        self.failing_since = status.failing_since
        self.consecutive_failures = status.consecutive_failures
        self.last_error = status.last_error


@dataclass(slots=True)
class _Read:
    """One poll's checkpoint, and the ids of its articles the store does not hold yet."""

    checkpoint: Checkpoint
    waiting: set[str]


class Scheduler:
    """Polls each source in its own task."""

    def __init__(
        self,
        sources: Sequence[tuple[Source, Schedule]],
        checkpoints: CheckpointStore,
        publish: Publisher,
        *,
        limiter: HostLimiter | None = None,
        confirm: Confirm | None = None,
        max_unstored: int = MAX_UNSTORED,
        polls: PollLog | None = None,
    ) -> None:
        """``polls``: where poll outcomes are saved and restored from (default: beside the checkpoints)."""
        self._sources = list(sources)
        self._max_unstored = max_unstored
        self._checkpoints = checkpoints
        self._publish = publish
        self._confirm = confirm
        self.limiter = limiter or HostLimiter()
        self._tasks: list[asyncio.Task[None]] = []
        self._confirming: asyncio.Task[None] | None = None
        self._cursors: dict[str, Checkpoint] = {}
        """Where each source has read up to in this run (ahead of its stored checkpoint while reads wait)."""
        self._reads: dict[str, deque[_Read]] = {source.name: deque() for source, _ in self._sources}
        self._settled = asyncio.Event()
        """Set by the confirming task whenever every article read is known to be stored."""
        self._confirmed = asyncio.Event()
        """Set by the confirming task after each round: sources waiting for room look again."""
        self._carried: set[str] = set()
        """Sources taken over from the scheduler this one replaced: they resume nothing."""
        self.states = {source.name: SourceState(source.name, source.type) for source, _ in self._sources}
        self.polls = polls if polls is not None else PollLog.beside(checkpoints)
        for name, status in self.polls.load_all(list(self.states)).items():
            self.states[name].restore(status)
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

    def carry_over(self, previous: Scheduler, names: Collection[str]) -> None:
        """Keep what ``previous`` (a scheduler this one replaces on a reload) knew of the sources ``names`` that
        stay: their state, where they read up to, and their reads still waiting for the store."""
        for name in set(names) & set(previous.states) & set(self.states):
            self._carried.add(name)
            self.states[name] = previous.states[name]
            self._reads[name] = previous._reads[name]
            if name in previous._cursors:
                self._cursors[name] = previous._cursors[name]

    async def start(self) -> None:
        for source, schedule in self._sources:
            self._tasks.append(asyncio.create_task(self._run(source, schedule), name=f"source:{source.name}"))
        if self._confirm is not None and self._confirming is None:
            self._confirming = asyncio.create_task(self._confirm_reads(), name="sources:confirm")

    @property
    def unstored(self) -> int:
        """Articles read and published by every source, not yet known to be stored."""
        return sum(len(read.waiting) for reads in self._reads.values() for read in reads)

    async def settle(self, within: float) -> int:
        """Wait up to ``within`` seconds until every article read is known to be stored (checkpoints then follow);
        returns how many are still not (they are read again at the next start)."""
        if self.unstored and self._confirming is not None:
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._settled.wait()
        return self.unstored

    async def close(self) -> None:
        """Stop confirming (after :meth:`stop` and :meth:`settle`): what is unconfirmed stays to be read again."""
        task, self._confirming = self._confirming, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        """Stop polling and close the sources. Confirming goes on until :meth:`close`."""
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
        elif source.name in self._cursors:
            checkpoint = self._cursors[source.name]
        else:
            checkpoint = self._checkpoints.load(source.name)
        async with self.limiter.slot(source.host):
            result = await source.poll(checkpoint)
        articles = result.articles
        if articles and source.full_text is not None:
            articles = await source.full_text.enrich(articles)
        if articles or result.rejected:
            await self._publish(articles, result.rejected)
        self._advance(source.name, result.checkpoint, {article.id for article in articles})
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
            if state.failing_since is None:  # not a failure for the backoff, but no success either (source health)
                state.failing_since = state.last_error_at
            return result.retry.after
        state.succeeded()
        return 0.0 if result.more else None

    def _advance(self, name: str, checkpoint: Checkpoint, published: set[str]) -> None:
        """The source has read up to ``checkpoint``: store it now, or once ``published`` (and every earlier
        poll's articles) are stored."""
        self._cursors[name] = checkpoint
        reads = self._reads[name]
        if self._confirm is None or (not published and not reads):
            self._checkpoints.save(name, checkpoint)
            return
        reads.append(_Read(checkpoint, published))
        state = self.states[name]
        if not state.unstored and published:
            self._checkpoints.save_unstored(name, len(published))  # so a crash from here on is told at restart
        state.unstored = sum(len(read.waiting) for read in reads)

    async def _confirm_reads(self) -> None:
        """Ask the store which waiting articles it holds; store each source's newest checkpoint whose articles
        and predecessors' articles are all stored."""
        assert self._confirm is not None
        while True:
            await asyncio.sleep(CONFIRM_EVERY)
            for name, reads in self._reads.items():
                if not reads:
                    continue
                try:
                    stored = set(await self._confirm([item for read in reads for item in read.waiting]))
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the store is busy or failing: ask again next time, lose nothing
                    log.warning("sources: cannot ask the store what is stored yet: %s", error)
                    break
                for read in reads:
                    read.waiting -= stored
                done: _Read | None = None
                while reads and not reads[0].waiting:
                    done = reads.popleft()
                if done is not None:
                    self._checkpoints.save(name, done.checkpoint)
                unstored = sum(len(read.waiting) for read in reads)
                if unstored != self.states[name].unstored:
                    self.states[name].unstored = unstored
                    self._checkpoints.save_unstored(name, unstored)
            if not self.unstored:
                self._settled.set()
            self._confirmed.set()

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
            state.failed(_describe(error))
            delay = schedule.backoff(state.consecutive_failures) * (1 + random.uniform(0, schedule.jitter))
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
        self._save_status(state)
        return delay

    def _save_status(self, state: SourceState) -> None:
        try:
            self.polls.save(state.name, state.poll_status())
        except OSError as error:  # a status not saved only delays a health alert; polling goes on
            log.warning("source %s: cannot save its poll status: %s", state.name, error)

    async def _run(self, source: Source, schedule: Schedule) -> None:
        state = self.states[source.name]
        unstored = 0 if source.name in self._carried else self._checkpoints.load_unstored(source.name)
        if unstored:
            log.warning(
                "source %s: resuming from its last stored point: up to %d article(s) read before the last stop were "
                "not stored yet and are read again (items the source no longer offers cannot be)",
                source.name,
                unstored,
            )
        while True:
            try:
                await source.setup()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                state.failed(f"setup failed: {_describe(error)}")
                self._save_status(state)
                delay = schedule.backoff(state.consecutive_failures)
                log.error("source %s: %s; retrying in %.0fs", source.name, state.last_error, delay)
                state.next_poll = utcnow() + timedelta(seconds=delay)
                await asyncio.sleep(delay)
        wake = self._wake[source.name]
        while True:
            while self._confirm is not None and state.unstored >= self._max_unstored:
                self._confirmed.clear()
                await self._confirmed.wait()
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
