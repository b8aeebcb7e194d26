"""The classify agent: raw articles in batches → the classifier (off the event loop) → tagged articles.

The rules stage hears of the tagged articles from the sink, once they are stored and grouped into stories
(:mod:`stackwatch.pipeline.roles.sink`).

Batches are pipelined, so the model processes do not wait while the agent sends one batch's results and gathers
the next: up to :data:`IN_FLIGHT` batches are between take and acknowledgement, the next queued in the model
processes behind the running one. A batch's records are acknowledged (and so become committable) only after its
tagged articles and dead letters were sent, batch after batch in the order taken and record after
record in offset order: a crash, a kill or a stop at any point leaves them to be read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import faust
from faust import EventT

from stackwatch.pipeline import metrics
from stackwatch.pipeline.kafka.codec import decode, encode
from stackwatch.pipeline.roles.agents.common import AgentTopics, DeadLetters
from stackwatch.signals.classifier import NO_TEXT, Classification, Classifier
from stackwatch.signals.messages import Article, MessageError

__all__ = ["IN_FLIGHT", "register_classify"]

log = logging.getLogger(__name__)

IN_FLIGHT = 2
"""Batches between take and acknowledgement: one being classified, the next queued behind it."""

STOP_GRACE = 10.0
"""Seconds a stopping agent waits for its batches in flight to be sent; what is left is read again after restart."""


@dataclass(frozen=True)
class _Batch:
    """One taken batch: every event in offset order, the articles to classify, and the rejected payloads."""

    events: Sequence[EventT[bytes]]
    articles: list[Article]
    rejected: list[tuple[str, bytes | None, str]]  # (reason, payload, origin)


def _sort(events: Sequence[EventT[bytes]]) -> _Batch:
    articles: list[Article] = []
    rejected: list[tuple[str, bytes | None, str]] = []
    for event in events:
        payload = event.value
        try:
            article = decode(Article, payload)
        except MessageError as error:
            rejected.append((f"not an article: {error}", payload, "raw"))
            continue
        if not article.text.strip():
            rejected.append((NO_TEXT, payload, article.id))
            continue
        articles.append(article)
    return _Batch(events, articles, rejected)


def register_classify(
    app: faust.App,
    topics: AgentTopics,
    load_classifier: Callable[[], Classifier],
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
        metrics.CLASSIFY_BATCH_SIZE.observe(len(texts))
        with metrics.CLASSIFY_SECONDS.time():
            return classifier.classify(texts)

    @app.agent(topics.raw, name="classify")
    async def classify(stream: faust.StreamT[bytes]) -> None:
        # Wait for the model before taking any record: if it cannot load, the agent fails with nothing consumed.
        classifier = await asyncio.wrap_future(loading)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def finish(
            before: asyncio.Task[None] | None,
            batch: _Batch,
            classified: asyncio.Future[list[Classification]] | None,
        ) -> None:
            """Send the batch's results once the batch before it is done, then acknowledge its records."""
            try:
                failure = None
                results: list[Classification] = []
                if classified is not None:
                    try:
                        results = await classified
                    except Exception as error:  # the model failed on this batch: keep the articles as dead letters
                        failure = f"classifier failed: {error}"
                if before is not None:
                    await before  # raises what the batch before raised: this one must not overtake it
                try:
                    for reason, payload, origin in batch.rejected:
                        await dead.send("classify", reason, payload, origin)
                    if failure is not None:
                        for article in batch.articles:
                            await dead.send("classify", failure, encode(article), article.id)
                    else:
                        for article, result in zip(batch.articles, results, strict=True):
                            tagged = result.tagged(article, classifier.version)
                            await topics.tagged.send(key=article.id.encode(), value=encode(tagged))
                except Exception:
                    log.exception(
                        "classify: sending a batch failed; its records stay unacknowledged and are read again"
                    )
                    raise
                for event in batch.events:
                    await stream.ack(event)
            finally:
                slots.release()

        last: asyncio.Task[None] | None = None
        try:
            # noack_take: ``finish`` acknowledges the records once their results were sent, not take() when taken.
            # Faust hands an agent a Stream; noack_take is on Stream only, not on the StreamT it types agents with.
            async for events in cast(faust.Stream[bytes], stream).noack_take(batch_size, within=batch_timeout):
                if last is not None and last.done() and (failed := last.exception()) is not None:
                    raise failed  # a send failed: crash, acknowledge nothing more
                # noack_take yields the events themselves, cast to the value type (faust/streams.py, noack_take).
                batch = _sort(cast(Sequence[EventT[bytes]], events))
                await slots.acquire()
                classified = None
                if batch.articles:
                    texts = [article.text for article in batch.articles]
                    classified = loop.run_in_executor(inference, timed_classify, classifier, texts)
                last = asyncio.ensure_future(finish(last, batch, classified))
        finally:
            if last is not None and not last.done():
                # Each batch waits for the one before it, so the last one done means all are.
                done, _ = await asyncio.wait({last}, timeout=STOP_GRACE)
                if not done:
                    log.warning(
                        "classify: batches still unsent after %.0fs; they are read again after restart", STOP_GRACE
                    )
                    last.cancel()  # cancels the whole chain: nothing unsent is acknowledged
            if last is not None and last.done() and not last.cancelled():
                last.exception()  # a failed send was logged by ``finish``; asyncio need not report it again

    return loading
