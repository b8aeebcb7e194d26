"""Indicator maths: which bucket an article counts in, and the value of a bucket.

Values are computed from the set of article ids in a bucket, never by incrementing, so counting the same
article twice (a replay, an at-least-once redelivery) changes nothing::

    >>> bucket_start(datetime(2026, 5, 1, 13, 45, tzinfo=UTC), "1h").isoformat()
    '2026-05-01T13:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from stackwatch.signals.messages import DynamicHit, IndicatorUpdate, TaggedArticle

__all__ = ["WINDOWS", "bucket_start", "count_update", "hits_for"]

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


def bucket_start(moment: datetime, window: str) -> datetime:
    """The start of the ``window`` bucket (``1h`` or ``1d``, UTC) that contains ``moment``."""
    moment = moment.astimezone(UTC)
    if window == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    if window == "1d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown window {window!r} (known: {', '.join(WINDOWS)})")


def hits_for(tagged: TaggedArticle, windows: Iterable[str] = WINDOWS) -> list[DynamicHit]:
    """One hit per label per window: what the indicator stage counts."""
    return [
        DynamicHit(
            dynamic=label,
            window=window,
            bucket_start=bucket_start(tagged.article.published_at, window),
            article_id=tagged.article.id,
            score=tagged.scores.get(label, 1.0),
        )
        for label in tagged.labels
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
