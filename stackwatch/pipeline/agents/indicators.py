"""The indicator agents: tagged articles → one hit per dynamic and bucket (repartitioned) → bucket values.

Values are computed from the set of article ids in a bucket, kept in a changelogged table, so an
at-least-once redelivery or a replay after a crash never counts an article twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

import faust

from stackwatch.pipeline.agents.common import AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.indicators import count_update, hits_for
from stackwatch.signals.messages import DynamicHit, MessageError, TaggedArticle

__all__ = ["ID_PREFIX", "register_indicators"]

ID_PREFIX = 16
"""Bucket membership keeps this many hex digits of each article id (64 bits: no collision within a bucket)."""


def register_indicators(app: faust.App, topics: AgentTopics) -> None:
    dead = DeadLetters(topics.deadletter)
    bucket_members = app.Table("bucket-members", default=list)

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

    @app.agent(topics.hits, name="count")
    async def count(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                hit = decode(DynamicHit, payload)
            except MessageError as error:
                await dead.send("count", f"not a dynamic hit: {error}", payload, "hits")
                continue
            members: list[str] = bucket_members[hit.key]
            short_id = hit.article_id[:ID_PREFIX]
            if short_id not in members:
                members = [*members, short_id]
                bucket_members[hit.key] = members
            # Always emit the full value: a replay after a crash re-sends what may not have reached the topic.
            update = count_update(hit, members)
            await topics.indicators.send(key=update.key.encode(), value=encode(update))
