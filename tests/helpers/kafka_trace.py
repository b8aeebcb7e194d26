"""Where in the pipeline's topics records went missing: a fault test's report when its count falls short.

    report = where_records_stopped("127.0.0.1:9092", "t1234", ["t1234", "t1234-sink"], ["(item 5842)"])

For each needle: the topic, partition and offset of every record of the prefix's topics that contains it, with
each group's committed offset on that partition. The topics are read from their start without a group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from stackwatch.pipeline.kafka.lag import high_watermarks

__all__ = ["where_records_stopped"]


async def _committed(bootstrap: str, group: str, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: offset for tp in partitions if (offset := await consumer.committed(tp)) is not None}
    finally:
        await consumer.stop()


async def _trace(bootstrap: str, prefix: str, groups: Sequence[str], needles: Sequence[str]) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith(prefix) and "changelog" not in t)
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await high_watermarks([bootstrap], partitions)  # ListOffsets would stop at the newest batch's start
        found: list[tuple[str, TopicPartition, int]] = []
        while any(position < ends[tp] for tp, position in [(tp, await consumer.position(tp)) for tp in partitions]):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    value = (record.value or b"").decode("utf-8", "replace")
                    found += [(needle, tp, record.offset) for needle in needles if needle in value]
    finally:
        await consumer.stop()
    committed = {group: await _committed(bootstrap, group, partitions) for group in groups}
    lines: list[str] = []
    for needle in needles:
        lines.append(f"{needle}:")
        for _, tp, offset in (hit for hit in found if hit[0] == needle):
            marks = ", ".join(f"{group} at {offsets[tp]}" for group, offsets in committed.items() if tp in offsets)
            lines.append(f"  {tp.topic}[{tp.partition}]@{offset} (end {ends[tp]}; {marks or 'no group'})")
    return lines


def where_records_stopped(bootstrap: str, prefix: str, groups: Sequence[str], needles: Sequence[str]) -> str:
    """The report described in the module docstring, as text."""
    try:
        return "\n".join(asyncio.run(_trace(bootstrap, prefix, groups, needles)))
    except Exception as error:  # a report, never a second failure
        return f"(no trace: {error!r})"
