"""Kafka scenes for the tests of the Faust/aiokafka adapter and of the upstream behaviour it works around.

    await create_topic(broker, topic, partitions=2)
    await produce(broker, topic, {0: 6, 1: 4})                  # one batch per partition, values "<p>-<offset>"
    values = await read_values(broker, topic)                   # every value in the topic, from its start
    await kept_after_sending_to_another(AIOKafkaProducer, broker, unique)   # False: aiokafka forgot the first
    with broker_behind_proxy(tmp_path) as proxy: ...            # a broker of its own, clients told of the proxy
    with frozen(broker): ...                                    # SIGSTOP: the broker answers nothing meanwhile

    async with HandAssigned(app, broker, topic, partitions=2) as assigned:
        await assigned.commit({0: 10})           # the group's committed offsets, through a second client
        await assigned.rewind()                  # what Faust does after a rebalance (``Consumer.perform_seek``)
        records = await assigned.handed_on()     # one ``Consumer.getmany``: [(partition, offset), ...]

``HandAssigned``: fetches, commits and seeks are the real broker's, through the Faust consumer's own thread and
aiokafka consumer. Only the group's rebalance is replaced: the partitions are assigned by hand and made active, as
Faust's ``on_partitions_assigned`` does, and the topic is registered as streamed (its records are acknowledged), as
Faust's Conductor does when an agent subscribes. That is the one way to put a rewind between a fetch and the records
it returned, an interleaving a real rebalance produces only by chance. The private parts of Faust used here (the
consumer's thread, the Conductor's index) are checked by ``tests/test_upstream.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP, Message

from stackwatch.pipeline.kafka.broker import EmbeddedBroker, free_port
from stackwatch.pipeline.kafka.lag import high_watermarks
from tests.helpers.kafka_proxy import SilencingProxy

__all__ = [
    "HandAssigned",
    "broker_behind_proxy",
    "create_topic",
    "frozen",
    "kept_after_sending_to_another",
    "produce",
    "read_values",
]


async def create_topic(broker: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(broker: str, topic: str, per_partition: Mapping[int, int]) -> None:
    """``count`` records to each partition, in one batch: values ``"<partition>-<offset>"``."""
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        for partition, count in per_partition.items():
            batch = producer.create_batch()
            for offset in range(count):
                assert batch.append(key=None, value=f"{partition}-{offset}".encode(), timestamp=None) is not None
            await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()


async def read_values(broker: str, topic: str) -> list[bytes]:
    """Every value of a one-partition topic, from its start to its high watermark."""
    partition = TopicPartition(topic, 0)
    end = (await high_watermarks([broker], [partition]))[partition]
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        values: list[bytes] = []
        while await consumer.position(partition) < end:
            for records in (await consumer.getmany(partition, timeout_ms=1000)).values():
                values += [record.value for record in records]
        return values
    finally:
        await consumer.stop()


async def kept_after_sending_to_another(producer_type: type[AIOKafkaProducer], broker: str, unique: str) -> bool:
    """Whether a producer that learned of a topic from its first metadata (for all topics) still knows it after it
    first sends to another topic, new to it."""
    first, second = f"{unique}.{producer_type.__name__}.first", f"{unique}.{producer_type.__name__}.second"
    await create_topic(broker, first)
    producer = producer_type(bootstrap_servers=broker)
    try:
        await producer.start()  # its first metadata: every topic
        await (await producer.send(first, b"one"))
        await create_topic(broker, second)
        await (await producer.send(second, b"two"))  # a topic it did not know: metadata for it is requested
        await producer.client.force_metadata_update()
        return producer.client.cluster.partitions_for_topic(first) is not None
    finally:
        await producer.stop()


@contextlib.contextmanager
def broker_behind_proxy(directory: Path) -> Iterator[SilencingProxy]:
    """A broker of its own behind a :class:`SilencingProxy`; clients connect to ``proxy.address`` only."""
    port = free_port()
    with SilencingProxy(("127.0.0.1", port)) as proxy:
        broker = EmbeddedBroker(port=port, advertised=proxy.address, log_file=directory / "proxied-broker.log")
        broker.start()
        try:
            yield proxy
        finally:
            broker.stop()


@contextlib.contextmanager
def frozen(broker: EmbeddedBroker) -> Iterator[None]:
    """The broker stopped (SIGSTOP) meanwhile: its connections stay open and nothing is answered."""
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.pid, signal.SIGCONT)


class HandAssigned:
    """``app``'s consumer with every partition of ``topic`` assigned (see the module docstring)."""

    def __init__(self, app: faust.App, broker: str, topic: str, partitions: int = 1, *, streamed: bool = True) -> None:
        self.app = app
        self.consumer = app.consumer
        self.broker = broker
        self.topic = topic
        self.partitions = [TP(topic, partition) for partition in range(partitions)]
        self.streamed = streamed
        self.messages: list[Message] = []
        """Every message handed on, kept alive (Faust tracks unacknowledged messages in a WeakSet)."""

    async def __aenter__(self) -> Self:
        if self.streamed:
            self.app.topics.add(self.app.topic(self.topic))
            await self.app.topics._update_indices()  # as the Conductor does when an agent subscribes
        thread = self.consumer._thread
        await thread.start()
        client = thread._ensure_consumer()
        await thread.call_thread(client.assign, [TopicPartition(tp.topic, tp.partition) for tp in self.partitions])
        self.consumer.resume_partitions(self.partitions)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for message in self.messages:  # nothing of Faust's waits on them after the test, failed or not
            if not message.acked:
                self.consumer.ack(message)
        await self.consumer._thread.stop()

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit ``{partition: offset}`` for the app's group, through a client of its own."""
        client = AIOKafkaConsumer(bootstrap_servers=self.broker, group_id=self.app.conf.id, enable_auto_commit=False)
        await client.start()
        try:
            client.assign([TopicPartition(self.topic, partition) for partition in offsets])
            await client.commit(
                {TopicPartition(self.topic, part): OffsetAndMetadata(offset, "") for part, offset in offsets.items()}
            )
        finally:
            await client.stop()

    async def committed(self, partition: int = 0) -> int | None:
        """The group's committed offset of ``partition``, as the broker holds it."""
        client = AIOKafkaConsumer(bootstrap_servers=self.broker, group_id=self.app.conf.id, enable_auto_commit=False)
        await client.start()
        try:
            offset: int | None = await client.committed(TopicPartition(self.topic, partition))
            return offset
        finally:
            await client.stop()

    async def rewind(self) -> None:
        """What Faust does after a rebalance: every partition back to the group's committed offset."""
        await self.consumer.perform_seek()

    async def position(self, partition: int = 0) -> int:
        position: int = await self.consumer.position(TP(self.topic, partition))
        return position

    async def handed_on(self, *, rewind_after: int | None = None) -> list[tuple[int, int]]:
        """What one ``getmany`` hands on, as (partition, offset); ``rewind_after``: rewind once that many were.

        Every message is tracked as the Conductor does before a stream gets it (so a stop waits for its ack)."""
        handed: list[tuple[int, int]] = []
        async for tp, message in self.consumer.getmany(5.0):
            self.consumer.track_message(message)
            self.messages.append(message)
            handed.append((tp.partition, message.offset))
            if len(handed) == rewind_after:
                await self.rewind()
        return handed

    async def read_to_end(self, ends: Mapping[int, int]) -> list[tuple[int, int]]:
        """``getmany`` until every partition's position reached ``{partition: end}``; what was handed on."""
        handed: list[tuple[int, int]] = []
        for _ in range(20):  # a bound, for a test that fails rather than hangs
            if all([await self.position(partition) >= end for partition, end in ends.items()]):
                break
            handed += await self.handed_on()
        return handed
