"""What the embedded broker (Tansu 0.6, memory engine) answers about offsets, and lag that does not trust it.

The first tests pin the broker's known limits, so that a Tansu upgrade that lifts one shows up here: ListOffsets
"latest" is the newest batch's start plus one, and records are never trimmed (no retention, no DeleteRecords).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from stackwatch.pipeline.kafka.lag import consumer_lag, high_watermarks

pytestmark = pytest.mark.integration

BATCHES, PER_BATCH = 3, 4  # records at offsets 0-11, in batches starting at 0, 4 and 8


@dataclass(frozen=True)
class Topic:
    """A one-partition topic holding three batches of four records."""

    servers: list[str]
    name: str

    @property
    def partition(self) -> TopicPartition:
        return TopicPartition(self.name, 0)


async def produce_batches(servers: list[str], topic: str, batches: int, per_batch: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for number in range(batches):
            batch = producer.create_batch()
            for index in range(per_batch):
                assert batch.append(key=None, value=f"{number}-{index}".encode(), timestamp=None) is not None
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


@pytest.fixture
async def batched(broker: str, unique: str) -> Topic:
    admin = AIOKafkaAdminClient(bootstrap_servers=[broker])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    await produce_batches([broker], unique, BATCHES, PER_BATCH)
    return Topic([broker], unique)


async def fetched_offsets(topic: Topic, start: int) -> tuple[list[int], int | None]:
    """The offsets a fetch from ``start`` returns, and the high watermark it reports."""
    consumer = AIOKafkaConsumer(bootstrap_servers=topic.servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([topic.partition])
        consumer.seek(topic.partition, start)
        offsets: list[int] = []
        while len(offsets) < BATCHES * PER_BATCH - start:
            records = await consumer.getmany(topic.partition, timeout_ms=1000)
            offsets += [record.offset for record in records.get(topic.partition, [])]
        return offsets, consumer.highwater(topic.partition)
    finally:
        await consumer.stop()


async def commit(topic: Topic, group: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=topic.servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([topic.partition])
        await consumer.commit({topic.partition: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def test_the_broker_answers_latest_with_the_newest_batch_start_plus_one_not_the_high_watermark(
    batched: Topic,
) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=batched.servers)
    await consumer.start()
    try:
        listed = await consumer.end_offsets([batched.partition])
    finally:
        await consumer.stop()
    _, highwater = await fetched_offsets(batched, 0)
    assert highwater == BATCHES * PER_BATCH == 12
    assert listed[batched.partition] == (BATCHES - 1) * PER_BATCH + 1 == 9


async def test_high_watermarks_come_from_a_fetch(batched: Topic, unique: str) -> None:
    ends = await high_watermarks(batched.servers, [batched.partition])
    assert ends == {batched.partition: 12}


async def test_an_empty_partition_ends_at_zero(broker: str, unique: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=[broker])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    partitions = [TopicPartition(unique, 0), TopicPartition(unique, 1)]
    assert await high_watermarks([broker], partitions) == dict.fromkeys(partitions, 0)


async def test_lag_counts_the_rest_of_the_newest_batch(batched: Topic, unique: str) -> None:
    # Committed inside the newest batch (8-11): two records to go. ListOffsets says the partition ends at 9,
    # which would make the lag max(0, 9 - 10) = 0 and a drain believe it was done.
    await commit(batched, f"{unique}-g", 10)
    await commit(batched, f"{unique}-done", 12)
    lag = await consumer_lag(batched.servers, {f"{unique}-g": [batched.name], f"{unique}-done": [batched.name]})
    assert lag == {f"{unique}-g": {batched.name: 2}, f"{unique}-done": {batched.name: 0}}


async def test_lag_of_a_group_that_never_committed_counts_every_record(batched: Topic, unique: str) -> None:
    assert await consumer_lag(batched.servers, {f"{unique}-new": [batched.name, f"{unique}-absent"]}) == {
        f"{unique}-new": {batched.name: 12, f"{unique}-absent": 0}
    }


async def test_the_broker_cannot_delete_records_and_keeps_them_whatever_the_retention(broker: str, unique: str) -> None:
    """Why the embedded broker's memory grows with every record produced (see stackwatch.pipeline.kafka.broker). Its
    retention would run in the maintenance it does every 10 minutes, which does nothing in the memory engine
    (tansu-storage/src/dynostore.rs ``maintain``): the records below stay there after any wait too."""
    admin = AIOKafkaAdminClient(bootstrap_servers=[broker], request_timeout_ms=10_000)
    await admin.start()
    try:
        configs = {"retention.ms": "1", "retention.bytes": "1", "segment.ms": "1"}
        await admin.create_topics([NewTopic(unique, num_partitions=1, replication_factor=1, topic_configs=configs)])
        await produce_batches([broker], unique, BATCHES, PER_BATCH)
        with pytest.raises(KafkaError):  # Tansu's handler panics ("not yet implemented"); the connection closes
            await asyncio.wait_for(
                admin.delete_records({TopicPartition(unique, 0): RecordsToDelete(before_offset=8)}), 30
            )
    finally:
        await admin.close()
    offsets, highwater = await fetched_offsets(Topic([broker], unique), 0)
    assert offsets == list(range(12))  # everything is still there, from offset 0
    assert highwater == 12
