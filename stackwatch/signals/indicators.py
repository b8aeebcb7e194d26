"""Indicator maths: which bucket an article counts in, and the values of a bucket.

Values are computed from the set of articles in a bucket, never by incrementing, so counting the same
article twice (a replay, an at-least-once redelivery) changes nothing::

    >>> bucket_start(datetime(2026, 5, 1, 13, 45, tzinfo=UTC), "1h").isoformat()
    '2026-05-01T13:00:00+00:00'

An indicator row is keyed by (indicator, dynamic, entity, source, window, bucket start); ``*`` in dynamic,
entity or source means "all". The scopes: all articles ``(*, *, *)``, per dynamic ``(d, *, *)``, per dynamic ×
entity ``(d, e, *)``, per entity ``(*, e, *)``, per source ``(*, *, s)`` and per dynamic × source ``(d, *, s)``.
:func:`measures` is the reference definition of every measure; the store computes the same in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stackwatch.signals.messages import DynamicHit, IndicatorUpdate, Observation

__all__ = [
    "ALL",
    "COMPOSITE",
    "DERIVED",
    "MEASURES",
    "SIGNALS",
    "WINDOWS",
    "ArticleFacts",
    "IndicatorKey",
    "bucket_start",
    "count_update",
    "expired",
    "hits_for",
    "measures",
    "scope_values",
]

ALL = "*"
MEASURES = ("article_count", "story_count", "source_count", "score_sum", "share", "novelty")
"""Per scope and bucket: articles, distinct stories (near-duplicates collapsed), distinct sources, the sum of the
dynamic's scores (dynamic scopes only), the share of all the bucket's articles, and the sum of novelty."""
SIGNALS = ("ewma_mean", "ewma_dev", "zscore", "momentum")
"""Per dynamic, over its ``article_count`` series (see :mod:`stackwatch.signals.baselines`)."""
COMPOSITE = "composite"
DERIVED = frozenset((*MEASURES, *SIGNALS, COMPOSITE))
"""Indicators the store derives from stored articles; the stream's copies of these are for the rules agent."""

IndicatorKey = tuple[str, str, str, str, str, datetime]
"""(indicator, dynamic, entity, source, window, bucket start)."""

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


def bucket_start(moment: datetime, window: str) -> datetime:
    """The start of the ``window`` bucket (``1h`` or ``1d``, UTC) that contains ``moment``."""
    moment = moment.astimezone(UTC)
    if window == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    if window == "1d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown window {window!r} (known: {', '.join(WINDOWS)})")


def expired(start: datetime, window: str, now: datetime, retention: timedelta) -> bool:
    """Has the bucket that starts at ``start`` ended more than ``retention`` before ``now``?"""
    return start + WINDOWS[window] + retention < now


def hits_for(observed: Observation, windows: Iterable[str] = WINDOWS) -> list[DynamicHit]:
    """One hit per label per window: what the indicator stage counts."""
    return [
        DynamicHit(
            dynamic=label,
            window=window,
            bucket_start=bucket_start(observed.published_at, window),
            article_id=observed.article_id,
        )
        for label in observed.labels
        for window in windows
    ]


def count_update(hit: DynamicHit, article_ids: Iterable[str]) -> IndicatorUpdate:
    """The ``article_count`` of the hit's bucket, given every article id counted there so far."""
    return IndicatorUpdate(
        indicator="article_count",
        dynamic=hit.dynamic,
        window=hit.window,
        bucket_start=hit.bucket_start,
        value=float(len(set(article_ids))),
    )


@dataclass(frozen=True, slots=True)
class ArticleFacts:
    """What the measures need to know about one stored article."""

    id: str
    source: str
    published_at: datetime
    scores: Mapping[str, float]
    """Score per dynamic the article is labelled with (unlabelled dynamics are absent)."""
    entities: frozenset[str]
    story_id: str
    novelty: float


def measures(articles: Iterable[ArticleFacts], windows: Iterable[str] = WINDOWS) -> dict[IndicatorKey, float]:
    """Every measure of every scope and bucket of ``articles`` (duplicates by id count once)."""
    unique = {article.id: article for article in articles}
    groups: dict[tuple[str, str, str, str, datetime], list[tuple[ArticleFacts, float | None]]] = {}
    for window in windows:
        for article in unique.values():
            start = bucket_start(article.published_at, window)
            scopes: list[tuple[str, str, str, float | None]] = [
                (ALL, ALL, ALL, None),
                (ALL, ALL, article.source, None),
            ]
            scopes += [(ALL, entity, ALL, None) for entity in article.entities]
            for dynamic, score in article.scores.items():
                scopes.append((dynamic, ALL, ALL, score))
                scopes.append((dynamic, ALL, article.source, score))
                scopes += [(dynamic, entity, ALL, score) for entity in article.entities]
            for dynamic, entity, source, weight in scopes:
                groups.setdefault((dynamic, entity, source, window, start), []).append((article, weight))
    values: dict[IndicatorKey, float] = {}
    for (dynamic, entity, source, window, start), members in groups.items():
        total = len(groups[(ALL, ALL, ALL, window, start)])
        scope = scope_values(
            [article.story_id for article, _ in members],
            [article.source for article, _ in members],
            [article.novelty for article, _ in members],
            None if dynamic == ALL else [score or 0.0 for _, score in members],
            total,
        )
        values.update({(name, dynamic, entity, source, window, start): value for name, value in scope.items()})
    return values


def scope_values(
    stories: Sequence[str], sources: Sequence[str], novelty: Sequence[float], scores: Sequence[float] | None, total: int
) -> dict[str, float]:
    """The measures of one scope in one bucket, from its articles' stories, sources, novelty and (in a dynamic's
    scope, else None) scores; ``total``: the bucket's articles in all scopes. Sums add values rounded to 9
    decimals, as the store adds whole nanounits.

    >>> scope_values(["s1", "s1"], ["wire", "blog"], [1.0, 0.5], [0.9, 0.8], 4)["share"]
    0.5
    """
    values = {
        "article_count": float(len(stories)),
        "story_count": float(len(set(stories))),
        "source_count": float(len(set(sources))),
        "share": len(stories) / total if total else 0.0,
        "novelty": sum(round(value * 1e9) for value in novelty) / 1e9,
    }
    if scores is not None:
        values["score_sum"] = sum(round(score * 1e9) for score in scores) / 1e9
    return values
