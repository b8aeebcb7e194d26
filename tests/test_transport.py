"""Unit tests of the Faust consumer's record bookkeeping (stackwatch/pipeline/transport.py): a fetch a rebalance
overtook is not handed on, and a record from before a rebalance is never counted as processed.

The fetch is a stub here (these are the pure parts); ``tests/test_faults.py`` runs the same code against a broker,
killing the service at random moments, and a lost record there fails its count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from stackwatch.pipeline.transport import StackwatchApp

FIRST, SECOND = TP("articles", 0), TP("articles", 1)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"value", None, 0, 5, ())


class Fetching:
    """The app's consumer with a scripted fetch: ``fetched`` is what the broker returned, ``active`` the partitions
    not paused when the records are handed on, ``during_fetch`` what happens while the fetch waits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.app = StackwatchApp("unit", broker="kafka://127.0.0.1:9", store="memory://", loop=loop)
        self.consumer = self.app.consumer
        self.fetched = {tp: [record(tp, offset) for offset in range(10, 13)] for tp in (FIRST, SECOND)}
        self.active = {FIRST, SECOND}
        self.during_fetch: list[str] = []
        self.seeks: list[tuple[TP, int]] = []
        self.committed: dict[TP, int | None] = {FIRST: 10, SECOND: 10}
        self.app.topics.acks_enabled_for = lambda topic: topic == FIRST.topic
        self.consumer._wait_next_records = self._wait_next_records
        # The consumer's thread runs its calls inline here, on a stand-in for aiokafka's consumer.
        self.consumer._thread.call_thread = self._inline
        self.consumer._thread._ensure_consumer = lambda: self
        self.consumer.assignment = lambda: {FIRST, SECOND}
        self.consumer.highwater = lambda tp: 13

    async def _wait_next_records(self, timeout: float) -> tuple[object, set[TP]]:  # noqa: ASYNC109 (Faust's)
        for event in self.during_fetch:
            if event == "rewind":
                await self.consumer.perform_seek()
            elif event == "rebalance":
                self.app.consumer_generation_id += 1
        return self.fetched, self.active

    @staticmethod
    async def _inline(function: Callable[..., Awaitable[object]], *args: object, **kwargs: object) -> object:
        return await function(*args, **kwargs)

    # aiokafka's consumer, as far as the thread uses it
    def assignment(self) -> set[TP]:
        return {FIRST, SECOND}

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def position(self, tp: TP) -> int:
        return 0

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    def handed_on(self) -> list[tuple[TP, int]]:
        async def collect() -> list[tuple[TP, int]]:
            return [(tp, message.offset) async for tp, message in self.consumer.getmany(1.0)]

        return self.app.loop.run_until_complete(collect())


@pytest.fixture
def fetching() -> Iterator[Fetching]:
    scripted = Fetching(asyncio.new_event_loop())
    yield scripted
    # The consumer never started, so nothing closes the loops made for it: the app's and its thread's.
    scripted.app.loop.close()
    scripted.consumer._thread.thread_loop.close()


def test_every_fetched_record_is_handed_on_when_nothing_intervenes(fetching: Fetching) -> None:
    assert sorted(fetching.handed_on()) == [(tp, offset) for tp in (FIRST, SECOND) for offset in (10, 11, 12)]
    assert fetching.seeks == []


def test_a_fetch_overtaken_by_a_rebalance_is_not_handed_on_for_the_rewind_reads_it_again(fetching: Fetching) -> None:
    fetching.during_fetch = ["rebalance"]

    assert fetching.handed_on() == []


def test_a_rewind_takes_a_partition_without_a_committed_offset_back_to_its_start(fetching: Fetching) -> None:
    fetching.committed = {FIRST: 10, SECOND: None}
    fetching.during_fetch = ["rewind"]

    fetching.handed_on()
    assert fetching.seeks == [(SECOND, 0)]  # aiokafka alone leaves it where it is


def test_a_rewind_leaves_table_changelogs_to_recovery(fetching: Fetching) -> None:
    changelog = TP("rule-state-changelog", 0)
    fetching.app.tables._changelogs[changelog.topic] = object()  # as registering a table does
    fetching.app.topics.acks_enabled_for = lambda topic: True
    fetching.committed = {FIRST: 10, changelog: None}
    fetching.during_fetch = ["rewind"]

    fetching.handed_on()
    assert fetching.seeks == []


def test_a_record_from_before_a_rebalance_is_done_but_not_committable_when_acked(fetching: Fetching) -> None:
    before = fetching.consumer._to_message(FIRST, record(FIRST, 10))
    fetching.consumer.track_message(before)
    fetching.app.consumer_generation_id += 1
    after = fetching.consumer._to_message(FIRST, record(FIRST, 11))

    assert fetching.consumer.ack(before) is False
    assert fetching.consumer.ack(after) is True
    assert before.acked
    assert before not in fetching.consumer.unacked  # a stop does not wait for it
    assert list(fetching.consumer._acked[FIRST]) == [11]
