"""Consumer lag: how many records each consumer group has yet to commit, per topic.

    lag = await consumer_lag(["127.0.0.1:9092"], {"stackwatch": ["stackwatch.articles.raw"]})
    # {"stackwatch": {"stackwatch.articles.raw": 0}}

A partition's end is its high watermark as a fetch reports it, not what ListOffsets "latest" answers: the
embedded broker (Tansu 0.6) answers that with the start offset of its newest batch plus one, so a batch of ten
records at offsets 0-9 ends at 1 there, and a group that committed 5 would show no lag with 4 records to go.
Committed offsets are read with a group consumer that never joins the group (``committed()``), which the embedded
broker answers; the admin client's OffsetFetch version is one it does not.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stackwatch.errors import BrokerError

__all__ = ["consumer_lag", "high_watermarks", "total_lag"]

FETCH_WITHIN = 4.0
"""Seconds the fetches that report the high watermarks may take."""


def _consumer(servers: Sequence[str], group: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=list(servers),
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
        fetch_max_wait_ms=50,  # an empty partition answers after this
        max_partition_fetch_bytes=64 * 1024,  # a batch larger than this still comes whole, and alone
    )


async def _fetched_high_watermarks(
    consumer: AIOKafkaConsumer, partitions: Collection[TopicPartition], within: float
) -> dict[TopicPartition, int]:
    """Assign ``partitions`` to a started ``consumer`` and fetch from each one's newest batch (or the last record)
    until every fetch answered with its partition's high watermark."""
    listed = await consumer.end_offsets(list(partitions))  # at most the watermark: a place to fetch from
    consumer.assign(list(partitions))
    for tp in partitions:
        consumer.seek(tp, max(0, listed[tp] - 1))
    deadline = time.monotonic() + within
    missing = set(partitions)
    while missing:
        if time.monotonic() > deadline:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(missing))
            raise BrokerError(f"no fetch reported the high watermark of {names} within {within:.0f}s")
        await consumer.getmany(*missing, timeout_ms=100)
        missing = {tp for tp in missing if consumer.highwater(tp) is None}
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in partitions}


async def high_watermarks(
    servers: Sequence[str], partitions: Collection[TopicPartition], within: float = FETCH_WITHIN
) -> dict[TopicPartition, int]:
    """The offset the next record of each partition will get, as a fetch reports it (see the module docstring)."""
    if not partitions:
        return {}
    consumer = _consumer(servers, None)
    try:
        await consumer.start()
        return await _fetched_high_watermarks(consumer, partitions, within)
    except KafkaError as error:
        raise BrokerError(f"cannot read high watermarks from {','.join(servers)}: {error}") from error
    finally:
        await consumer.stop()


async def consumer_lag(servers: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Records not yet committed, per group and topic (a partition never committed counts from offset 0)."""
    result: dict[str, dict[str, int]] = {}
    for group, topics in groups.items():
        consumer = _consumer(servers, group)
        try:
            await consumer.start()
            existing = await consumer.topics()
            partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                if topic in existing
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = await _fetched_high_watermarks(consumer, partitions, FETCH_WITHIN) if partitions else {}
            per_topic = dict.fromkeys(topics, 0)
            for tp, end in ends.items():
                committed = await consumer.committed(tp)
                per_topic[tp.topic] += max(0, end - (committed or 0))
            result[group] = per_topic
        except KafkaError as error:
            raise BrokerError(f"cannot read the lag of group {group} from {','.join(servers)}: {error}") from error
        finally:
            await consumer.stop()
    return result


def total_lag(lag: Mapping[str, Mapping[str, int]]) -> int:
    return sum(count for topics in lag.values() for count in topics.values())
