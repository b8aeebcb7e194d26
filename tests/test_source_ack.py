"""A source's checkpoint follows what the store holds, not what the broker acknowledged.

The scheduler runs a real source class over plain values; the "store" is a set of ids that a test fills as a
sink would, and the checkpoints are real files.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.connectors.base import Checkpoint, PollResult, Source
from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.connectors.scheduler import Schedule, Scheduler
from stackwatch.signals.messages import Article, DeadLetter

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class ListSource(Source):
    """Serves ``items`` two at a time; its checkpoint is the position it read up to."""

    type = "list"

    def __init__(self, name: str, items: int) -> None:
        super().__init__(name)
        self.items = items
        self.positions: list[int] = []

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        position = int(checkpoint.get("position", 0))
        self.positions.append(position)
        ids = [f"{self.name}-{n}" for n in range(position, min(position + 2, self.items))]
        articles = [Article(i, f"https://example.test/{i}", i, "", self.name, "list", NOW, NOW) for i in ids]
        return PollResult(articles, checkpoint={"position": position + len(ids)}, more=position + 2 < self.items)


class Pipeline:
    """What the scheduler publishes to, and a store that holds what the test lets through."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.stored: set[str] = set()

    async def publish(self, articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        self.published += [article.id for article in articles]

    async def confirm(self, ids: Sequence[str]) -> Collection[str]:
        return self.stored & set(ids)


async def until(condition: Callable[[], bool], attempts: int = 200) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_the_checkpoint_waits_for_the_store_and_follows_it_in_order(tmp_path: Path) -> None:
    checkpoints = CheckpointStore(tmp_path)
    pipeline = Pipeline()
    source = ListSource("wire", 6)
    scheduler = Scheduler([(source, Schedule(interval=3600))], checkpoints, pipeline.publish, confirm=pipeline.confirm)
    await scheduler.start()
    try:
        await until(lambda: len(pipeline.published) == 6)
        assert source.positions == [0, 2, 4]  # it reads on from where it read up to, not from the stored checkpoint
        assert checkpoints.load("wire") == {}
        assert scheduler.unstored == 6

        pipeline.stored |= {"wire-2", "wire-3"}  # the second poll is stored, the first is not: nothing moves
        await asyncio.sleep(1.2)
        assert checkpoints.load("wire") == {}
        assert scheduler.unstored == 4

        pipeline.stored |= {"wire-0", "wire-1"}
        await until(lambda: checkpoints.load("wire") == {"position": 4})
        pipeline.stored |= {"wire-4", "wire-5"}
        assert await scheduler.settle(within=10) == 0
        assert checkpoints.load("wire") == {"position": 6}
    finally:
        await scheduler.stop()
        await scheduler.close()


async def test_a_stop_before_the_store_caught_up_reads_the_rest_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = CheckpointStore(tmp_path)
    pipeline = Pipeline()
    first = Scheduler([(ListSource("wire", 6), Schedule(interval=3600))], checkpoints, pipeline.publish,
                      confirm=pipeline.confirm)  # fmt: skip
    await first.start()
    await until(lambda: len(pipeline.published) == 6)
    pipeline.stored |= {"wire-0", "wire-1"}
    await first.stop()
    assert await first.settle(within=2) == 4  # bounded: the rest is not stored in time
    await first.close()
    assert checkpoints.load("wire") == {"position": 2}

    again = ListSource("wire", 6)
    second = Scheduler([(again, Schedule(interval=3600))], checkpoints, pipeline.publish, confirm=pipeline.confirm)
    with caplog.at_level(logging.WARNING, logger="stackwatch.connectors.scheduler"):
        await second.start()
        await until(lambda: len(pipeline.published) == 10)
    await second.stop()
    await second.close()
    assert again.positions[0] == 2  # the four articles never stored are read again
    assert pipeline.published[6:] == ["wire-2", "wire-3", "wire-4", "wire-5"]
    assert "source wire: resuming from its last stored point: up to 4 article(s)" in caplog.text


async def test_without_a_store_in_the_process_the_broker_acknowledgement_moves_the_checkpoint(
    tmp_path: Path,
) -> None:
    checkpoints = CheckpointStore(tmp_path)
    pipeline = Pipeline()
    scheduler = Scheduler([(ListSource("wire", 4), Schedule(interval=3600))], checkpoints, pipeline.publish)
    await scheduler.start()
    await until(lambda: checkpoints.load("wire") == {"position": 4})
    assert await scheduler.settle(within=1) == 0
    await scheduler.stop()
    await scheduler.close()


async def test_a_source_waits_while_too_much_it_read_is_not_stored(tmp_path: Path) -> None:
    pipeline = Pipeline()
    scheduler = Scheduler(
        [(ListSource("backlog", 100), Schedule(interval=3600))],
        CheckpointStore(tmp_path),
        pipeline.publish,
        confirm=pipeline.confirm,
        max_unstored=6,
    )
    await scheduler.start()
    try:
        await until(lambda: len(pipeline.published) == 6)
        await asyncio.sleep(1.2)
        assert len(pipeline.published) == 6  # the backlog waits for the store, not in the broker
        pipeline.stored |= set(pipeline.published[:4])
        await until(lambda: len(pipeline.published) == 10)
        await asyncio.sleep(1.2)
        assert len(pipeline.published) == 10
    finally:
        await scheduler.stop()
        await scheduler.close()
