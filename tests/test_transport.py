"""Tests of Stackwatch's Kafka transport (stackwatch/pipeline/kafka/transport.py, kafka.py).

The consumer's record bookkeeping is tested on a stub of aiokafka's consumer (these are the pure parts): a record
fetched before its partition was rewound is not handed on, one fetched after is, and a record from before a
rebalance is never counted as processed. ``tests/test_faults.py`` runs the same code against a broker, killing the
service at random moments, and a lost record there fails its count. The producer's topic metadata is tested on the
session broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stackwatch.pipeline.kafka.producer import TopicKeepingProducer
from stackwatch.pipeline.kafka.transport import StackwatchApp

FIRST, SECOND = TP("articles", 0), TP("articles", 1)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"value", None, 0, 5, ())


class Fetching:
    """The app's consumer on a stand-in for aiokafka's: ``fetched`` is what the next fetch returns,
    ``during_fetch`` what happens while it waits ("rewind": a rebalance and the rewind to the committed offsets),
    ``committed_offsets`` the group's."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.app = StackwatchApp("unit", broker="kafka://127.0.0.1:9", store="memory://", loop=loop)
        self.consumer = self.app.consumer
        self.fetched = {tp: [record(tp, offset) for offset in range(10, 13)] for tp in (FIRST, SECOND)}
        self.during_fetch: list[str] = []
        self.seeks: list[tuple[TP, int]] = []
        self.committed_offsets: dict[TP, int | None] = {FIRST: 10, SECOND: 10}
        self.app.topics.acks_enabled_for = lambda topic: topic == FIRST.topic
        # The consumer's thread runs its calls inline here, on this stand-in for aiokafka's consumer.
        self.consumer._thread.call_thread = self._inline
        self.consumer._thread._ensure_consumer = lambda: self
        self.consumer.assignment = lambda: {FIRST, SECOND}
        self.consumer.highwater = lambda tp: 13
        self.consumer.flow_active = True  # as after the first assignment
        self.consumer._set_active_tps({FIRST, SECOND})

    @staticmethod
    async def _inline(function: Callable[..., Awaitable[object]], *args: object, **kwargs: object) -> object:
        return await function(*args, **kwargs)

    # aiokafka's consumer, as far as the thread uses it
    _closed = False
    _max_poll_records = 500

    @property
    def _fetcher(self) -> Fetching:
        return self

    @property
    def _subscriptions(self) -> Fetching:
        return self

    @contextmanager
    def fetch_context(self) -> Iterator[None]:
        yield

    async def fetched_records(self, partitions: object, timeout: float, max_records: int) -> object:  # noqa: ASYNC109
        for event in self.during_fetch:
            if event == "rewind":
                self.app.consumer_generation_id += 1
                await self.consumer.perform_seek()
        return self.fetched

    def assignment(self) -> set[TP]:
        return {FIRST, SECOND}

    async def committed(self, tp: TP) -> int | None:
        return self.committed_offsets[tp]

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def position(self, tp: TP) -> int:
        return 0

    def handed_on(self, rewind_after: int | None = None) -> list[tuple[TP, int]]:
        """What one ``getmany`` hands on; ``rewind_after``: rewind once that many records were handed on."""

        async def collect() -> list[tuple[TP, int]]:
            handed = []
            async for tp, message in self.consumer.getmany(1.0):
                handed.append((tp, message.offset))
                if len(handed) == rewind_after:
                    await self.consumer.perform_seek()
            return handed

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


def test_records_fetched_after_a_rewind_are_handed_on(fetching: Fetching) -> None:
    fetching.during_fetch = ["rewind"]  # the fetch was waiting when the rebalance came: it reads from the rewind

    assert sorted(fetching.handed_on()) == [(tp, offset) for tp in (FIRST, SECOND) for offset in (10, 11, 12)]


def test_records_fetched_before_a_rewind_are_not_handed_on_for_the_rewind_reads_them_again(
    fetching: Fetching,
) -> None:
    fetching.fetched = {FIRST: [record(FIRST, offset) for offset in range(10, 14)]}

    # the first record goes on; then the partition is rewound, and the rest of that fetch is stale
    assert fetching.handed_on(rewind_after=1) == [(FIRST, 10)]
    assert (FIRST, 10) in fetching.seeks


def test_a_rewind_takes_a_streamed_partition_without_a_committed_offset_back_to_its_start(
    fetching: Fetching,
) -> None:
    fetching.committed_offsets = {FIRST: 10, SECOND: None}
    fetching.during_fetch = ["rewind"]

    fetching.handed_on()
    assert sorted(fetching.seeks) == [(FIRST, 10), (SECOND, 0)]  # aiokafka alone leaves SECOND where it is


def test_a_rewind_leaves_table_changelogs_to_recovery(fetching: Fetching) -> None:
    changelog = TP("rule-state-changelog", 0)
    fetching.app.tables._changelogs[changelog.topic] = object()  # as registering a table does
    fetching.app.topics.acks_enabled_for = lambda topic: True
    fetching.consumer.assignment = lambda: {FIRST, changelog}
    fetching.assignment = lambda: {FIRST, changelog}  # type: ignore[method-assign]
    fetching.committed_offsets = {FIRST: 10, changelog: None}
    fetching.during_fetch = ["rewind"]

    fetching.handed_on()
    assert fetching.seeks == [(FIRST, 10)]


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


@pytest.mark.parametrize(("cause", "attempts"), [(UnknownTopicOrPartitionError(), 3), (MessageSizeTooLargeError(), 1)])
def test_a_send_failing_for_a_reason_that_passes_is_tried_again_and_any_other_raises(
    monkeypatch: pytest.MonkeyPatch, cause: KafkaError, attempts: int
) -> None:
    loop = asyncio.new_event_loop()
    app = StackwatchApp("unit", broker="kafka://127.0.0.1:9", store="memory://", loop=loop)
    tried: list[str] = []

    async def fails_twice(self: object, topic: str, *args: object, **kwargs: object) -> str:  # Faust's own send
        tried.append(topic)
        if len(tried) < 3:
            raise ProducerSendError(f"Error while sending: {cause!r}") from cause
        return "sent"

    monkeypatch.setattr(faust_aiokafka.Producer, "send", fails_twice)
    try:
        outcome = loop.run_until_complete(app.producer.send("articles", None, b"{}", None, None, None))
    except ProducerSendError as error:
        outcome = error.__cause__
    finally:
        loop.close()
    assert tried == ["articles"] * attempts
    assert outcome == ("sent" if attempts == 3 else cause)


@pytest.mark.integration
@pytest.mark.parametrize(("producer_type", "kept"), [(AIOKafkaProducer, False), (TopicKeepingProducer, True)])
async def test_a_topic_sent_to_stays_in_the_producers_metadata_after_it_first_sends_to_another(
    broker: str, unique: str, producer_type: type[AIOKafkaProducer], kept: bool
) -> None:
    """aiokafka alone drops the first topic from its metadata (its waiting batches then have no leader)."""
    first, second = f"{unique}.{producer_type.__name__}.first", f"{unique}.{producer_type.__name__}.second"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    producer = producer_type(bootstrap_servers=broker)
    try:
        await admin.create_topics([NewTopic(first, num_partitions=1, replication_factor=1)])
        await producer.start()  # its first metadata: every topic
        await (await producer.send(first, b"one"))
        await admin.create_topics([NewTopic(second, num_partitions=1, replication_factor=1)])
        await (await producer.send(second, b"two"))  # a topic it did not know: metadata for it is requested
        await producer.client.force_metadata_update()

        assert (producer.client.cluster.partitions_for_topic(first) is not None) is kept
    finally:
        await producer.stop()
        await admin.close()
