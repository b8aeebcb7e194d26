"""The Faust agents: classify → fan out per dynamic → count per bucket → evaluate rules.

Every agent is at-least-once: a crash replays records since the last commit, and every stage is idempotent
(article ids are stable, indicator values are full values computed from id sets, alert ids derive from the
rule and the bucket). A record an agent cannot handle goes to the dead-letter topic with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust

from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.classifier import NO_TEXT, Classifier
from stackwatch.signals.indicators import count_update, hits_for
from stackwatch.signals.messages import (
    Article,
    DeadLetter,
    DynamicHit,
    IndicatorUpdate,
    MessageError,
    TaggedArticle,
)
from stackwatch.signals.rules import ThresholdRule

__all__ = ["AgentTopics", "register_agents"]

log = logging.getLogger(__name__)

ID_PREFIX = 16
"""Bucket membership keeps this many hex digits of each article id (64 bits: no collision within a bucket)."""


@dataclass(frozen=True)
class AgentTopics:
    raw: Any
    tagged: Any
    hits: Any
    indicators: Any
    alerts: Any
    deadletter: Any


def register_agents(
    app: faust.App,
    topics: AgentTopics,
    classifier: Classifier,
    rules: Sequence[ThresholdRule],
    *,
    batch_size: int,
    batch_timeout: float,
) -> None:
    """Attach the worker role's agents to ``app``."""
    inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
    bucket_members = app.Table("bucket-members", default=list)

    async def dead_letter(stage: str, reason: str, payload: bytes | None, origin: str) -> None:
        log.warning("%s: dead-lettered %s: %s", stage, origin, reason)
        letter = DeadLetter(
            stage=stage,
            reason=reason,
            payload=(payload or b"")[:4000].decode("utf-8", "replace"),
            origin=origin,
        )
        await topics.deadletter.send(value=encode(letter))

    @app.agent(topics.raw, name="classify")
    async def classify(stream: AsyncIterable[bytes]) -> None:
        async for batch in stream.take(batch_size, within=batch_timeout):  # type: ignore[attr-defined]
            articles: list[Article] = []
            for payload in batch:
                try:
                    article = decode(Article, payload)
                except MessageError as error:
                    await dead_letter("classify", f"not an article: {error}", payload, "raw")
                    continue
                if not article.text.strip():
                    await dead_letter("classify", NO_TEXT, payload, article.id)
                    continue
                articles.append(article)
            if not articles:
                continue
            try:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(inference, classifier.classify, [a.text for a in articles])
            except Exception as error:  # the model failed on this batch: keep the articles as dead letters
                for article in articles:
                    await dead_letter("classify", f"classifier failed: {error}", encode(article), article.id)
                continue
            for article, result in zip(articles, results, strict=True):
                tagged = TaggedArticle(article, result.labels, result.scores, classifier.version)
                await topics.tagged.send(key=article.id.encode(), value=encode(tagged))

    @app.agent(topics.tagged, name="fan-out")
    async def fan_out(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                tagged = decode(TaggedArticle, payload)
            except MessageError as error:
                await dead_letter("fan-out", f"not a tagged article: {error}", payload, "tagged")
                continue
            for hit in hits_for(tagged):
                await topics.hits.send(key=hit.key.encode(), value=encode(hit))

    @app.agent(topics.hits, name="count")
    async def count(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                hit = decode(DynamicHit, payload)
            except MessageError as error:
                await dead_letter("count", f"not a dynamic hit: {error}", payload, "hits")
                continue
            members: list[str] = bucket_members[hit.key]
            short_id = hit.article_id[:ID_PREFIX]
            if short_id not in members:
                members = [*members, short_id]
                bucket_members[hit.key] = members
            # Always emit the full value: a replay after a crash re-sends what may not have reached the topic.
            update = count_update(hit, members)
            await topics.indicators.send(key=update.key.encode(), value=encode(update))

    @app.agent(topics.indicators, name="evaluate")
    async def evaluate(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                update = decode(IndicatorUpdate, payload)
            except MessageError as error:
                await dead_letter("evaluate", f"not an indicator update: {error}", payload, "indicators")
                continue
            for rule in rules:
                alert = rule.evaluate(update)
                if alert is not None:
                    await topics.alerts.send(key=alert.id.encode(), value=encode(alert))
