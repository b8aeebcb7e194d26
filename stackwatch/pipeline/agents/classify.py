"""The classify agent: raw articles in batches → the classifier (off the event loop) → tagged articles.

Each batch also becomes one :class:`Observations` record for the rules stage (ids, sources, times, dynamics and
entities of its articles): one record per batch instead of several per article keeps the per-event cost of the
stages after classification far below the classifier's own.

Batches are pipelined: while one is being classified, the next is gathered and queued behind it, so the model
processes never wait for the agent. A batch's records are acknowledged (and so become committable) only after its
tagged articles and observations were sent, and batches are sent in the order they were taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import faust

from stackwatch.pipeline import metrics
from stackwatch.pipeline.agents.common import RULES_KEY, AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.classifier import NO_TEXT, Classification, Classifier
from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.messages import Article, MessageError, Observation, Observations, TaggedArticle

__all__ = ["IN_FLIGHT", "register_classify"]

IN_FLIGHT = 2
"""Batches being classified at once: one running, one queued behind it."""


def register_classify(
    app: faust.App,
    topics: AgentTopics,
    load_classifier: Callable[[], Classifier],
    gazetteer: Gazetteer,
    *,
    batch_size: int,
    batch_timeout: float,
) -> Future[Classifier]:
    """Attach the classify agent. The classifier loads on an inference thread in the background (a model
    takes seconds), so the worker joins its group at once; the returned future tells when it is ready."""
    inference = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="classify")
    loading = inference.submit(load_classifier)
    dead = DeadLetters(topics.deadletter)

    def timed_classify(classifier: Classifier, texts: list[str]) -> list[Classification]:
        with metrics.CLASSIFY_SECONDS.time():
            return classifier.classify(texts)

    @app.agent(topics.raw, name="classify")
    async def classify(stream: Any) -> None:
        # Wait for the model before taking any record: if it cannot load, the agent fails with nothing consumed.
        classifier = await asyncio.wrap_future(loading)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(IN_FLIGHT)
        previous: asyncio.Task[None] | None = None

        async def finish(
            before: asyncio.Task[None] | None,
            classified: asyncio.Future[list[Classification]],
            articles: list[Article],
            events: Sequence[Any],
        ) -> None:
            try:
                try:
                    results = await classified
                except Exception as error:  # the model failed on this batch: keep the articles as dead letters
                    results = None
                    failure = f"classifier failed: {error}"
                if before is not None:
                    await before  # send in the order the batches were taken
                if results is None:
                    for article in articles:
                        await dead.send("classify", failure, encode(article), article.id)
                else:
                    observed = []
                    for article, result in zip(articles, results, strict=True):
                        tagged = TaggedArticle(article, result.labels, result.scores, classifier.version)
                        await topics.tagged.send(key=article.id.encode(), value=encode(tagged))
                        observed.append(Observation.of(tagged, gazetteer.find(article.text)))
                    # One key: the rules stage needs every observation, in order, on one partition.
                    await topics.observations.send(key=RULES_KEY, value=encode(Observations(tuple(observed))))
                for event in events:
                    await stream.ack(event)
            finally:
                slots.release()

        try:
            # noack_take: records are acknowledged by ``finish`` once their results were sent, not when taken.
            async for events in stream.noack_take(batch_size, within=batch_timeout):
                if previous is not None and previous.done() and previous.exception() is not None:
                    raise previous.exception()  # type: ignore[misc]
                articles, kept = await _decode(events, dead, stream)
                if not articles:
                    continue
                await slots.acquire()
                metrics.CLASSIFY_BATCH_SIZE.observe(len(articles))
                classified = loop.run_in_executor(inference, timed_classify, classifier, [a.text for a in articles])
                previous = asyncio.ensure_future(finish(previous, classified, articles, kept))
        finally:
            if previous is not None and not previous.done():
                await asyncio.shield(previous)  # what was taken is sent and acknowledged, or redelivered

    return loading


async def _decode(events: Sequence[Any], dead: DeadLetters, stream: Any) -> tuple[list[Article], list[Any]]:
    """The batch's articles and their events; what is not an article with text is dead-lettered and acknowledged."""
    articles: list[Article] = []
    kept = []
    for event in events:
        payload = event.value
        try:
            article = decode(Article, payload)
        except MessageError as error:
            await dead.send("classify", f"not an article: {error}", payload, "raw")
            await stream.ack(event)
            continue
        if not article.text.strip():
            await dead.send("classify", NO_TEXT, payload, article.id)
            await stream.ack(event)
            continue
        articles.append(article)
        kept.append(event)
    return articles, kept
