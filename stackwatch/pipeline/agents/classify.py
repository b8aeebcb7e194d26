"""The classify agent: raw articles in batches → the classifier (off the event loop) → tagged articles.

Each batch also becomes one :class:`Observations` record for the rules stage (ids, sources, times, dynamics and
entities of its articles): one record per batch instead of several per article keeps the per-event cost of the
stages after classification far below the classifier's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from concurrent.futures import Future, ThreadPoolExecutor

import faust

from stackwatch.pipeline import metrics
from stackwatch.pipeline.agents.common import RULES_KEY, AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.classifier import NO_TEXT, Classifier
from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.messages import Article, MessageError, Observation, Observations, TaggedArticle

__all__ = ["register_classify"]


def register_classify(
    app: faust.App,
    topics: AgentTopics,
    load_classifier: Callable[[], Classifier],
    gazetteer: Gazetteer,
    *,
    batch_size: int,
    batch_timeout: float,
) -> Future[Classifier]:
    """Attach the classify agent. The classifier loads on the inference thread in the background (a model
    takes seconds), so the worker joins its group at once; the returned future tells when it is ready."""
    inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
    loading = inference.submit(load_classifier)
    dead = DeadLetters(topics.deadletter)

    @app.agent(topics.raw, name="classify")
    async def classify(stream: AsyncIterable[bytes]) -> None:
        # Wait for the model before taking any record: if it cannot load, the agent fails with nothing consumed.
        classifier = await asyncio.wrap_future(loading)
        # take() acks the batch after this body finishes, even if it raised: so it must not raise.
        async for batch in stream.take(batch_size, within=batch_timeout):  # type: ignore[attr-defined]
            articles: list[Article] = []
            for payload in batch:
                try:
                    article = decode(Article, payload)
                except MessageError as error:
                    await dead.send("classify", f"not an article: {error}", payload, "raw")
                    continue
                if not article.text.strip():
                    await dead.send("classify", NO_TEXT, payload, article.id)
                    continue
                articles.append(article)
            if not articles:
                continue
            try:
                loop = asyncio.get_running_loop()
                metrics.CLASSIFY_BATCH_SIZE.observe(len(articles))
                with metrics.CLASSIFY_SECONDS.time():
                    results = await loop.run_in_executor(inference, classifier.classify, [a.text for a in articles])
            except Exception as error:  # the model failed on this batch: keep the articles as dead letters
                for article in articles:
                    await dead.send("classify", f"classifier failed: {error}", encode(article), article.id)
                continue
            observed = []
            for article, result in zip(articles, results, strict=True):
                tagged = TaggedArticle(article, result.labels, result.scores, classifier.version)
                await topics.tagged.send(key=article.id.encode(), value=encode(tagged))
                observed.append(Observation.of(tagged, gazetteer.find(article.text)))
            # One key: the rules stage needs every observation, in order, on one partition.
            await topics.observations.send(key=RULES_KEY, value=encode(Observations(tuple(observed))))

    return loading
