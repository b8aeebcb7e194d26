"""The indicator agents: tagged articles → one hit per dynamic and bucket (repartitioned) → bucket counts.

The count agent keeps each bucket's article ids in a changelogged table and always emits the bucket's *full*
``article_count``, so an at-least-once redelivery or a replay after a crash never counts an article twice. These
updates feed the rules agent, which needs them within seconds. The numbers analysts query are not these: the
sink recomputes every derived indicator from the stored articles in the same transaction as the article writes
(see ``storage/derive.py``), so the DuckDB tables are exact whatever the stream did.

Memory stays bounded: a bucket's membership is dropped ``retention`` after the bucket ends, and hits for
buckets older than that are not counted by the stream (the store still counts them exactly).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from datetime import timedelta

import faust
from aiokafka.partitioner import murmur2

from stackwatch.pipeline.agents.common import AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.indicators import count_update, expired, hits_for
from stackwatch.signals.messages import DynamicHit, MessageError, TaggedArticle, parse_time, utcnow

__all__ = ["DEFAULT_RETENTION", "ID_PREFIX", "PRUNE_EVERY", "key_partition", "register_indicators"]

ID_PREFIX = 16
"""Bucket membership keeps this many hex digits of each article id (64 bits: no collision within a bucket)."""
DEFAULT_RETENTION = timedelta(days=3)
PRUNE_EVERY = 300.0
"""Seconds between sweeps of expired buckets, per partition."""


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (the hits topic and the table's changelog agree)."""
    return int(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def register_indicators(app: faust.App, topics: AgentTopics, *, retention: timedelta = DEFAULT_RETENTION) -> None:
    dead = DeadLetters(topics.deadletter)
    bucket_members = app.Table("bucket-members", default=list)
    last_sweep: dict[int, float] = {}

    @app.agent(topics.tagged, name="fan-out")
    async def fan_out(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                tagged = decode(TaggedArticle, payload)
            except MessageError as error:
                await dead.send("fan-out", f"not a tagged article: {error}", payload, "tagged")
                continue
            for hit in hits_for(tagged):
                await topics.hits.send(key=hit.key.encode(), value=encode(hit))

    def sweep(partition: int) -> None:
        # Only keys of the event's own partition: a table write goes to the current event's changelog partition.
        partitions = int(app.conf.topic_partitions)
        now = utcnow()
        for key in list(bucket_members.keys()):
            _, window, start = str(key).split("|", 2)
            if key_partition(str(key), partitions) == partition and expired(parse_time(start), window, now, retention):
                del bucket_members[key]

    @app.agent(topics.hits, name="count")
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for payload in stream:
            event = stream.current_event
            partition = event.message.partition if event is not None else 0
            if time.monotonic() - last_sweep.get(partition, 0.0) > PRUNE_EVERY:
                last_sweep[partition] = time.monotonic()
                sweep(partition)
            try:
                hit = decode(DynamicHit, payload)
            except MessageError as error:
                await dead.send("count", f"not a dynamic hit: {error}", payload, "hits")
                continue
            if expired(hit.bucket_start, hit.window, utcnow(), retention):
                continue  # too late for alerts; the store recomputes this bucket exactly from stored articles
            members: list[str] = bucket_members[hit.key]
            short_id = hit.article_id[:ID_PREFIX]
            if short_id not in members:
                members = [*members, short_id]
                bucket_members[hit.key] = members
            # Always emit the full value: a replay after a crash re-sends what may not have reached the topic.
            update = count_update(hit, members)
            await topics.indicators.send(key=update.key.encode(), value=encode(update))
