"""What the dashboard shows, as frozen records: the time range, series of points, and one record per row kind.

The queries that fill them are in :mod:`.reads` (shared pieces) and :mod:`.pages` (one function per page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "AlertView",
    "ArticleDetail",
    "ArticleRow",
    "DynamicDetail",
    "EntityDetail",
    "Overview",
    "Point",
    "Range",
    "Series",
    "SilenceView",
    "SourceVolume",
    "StoryRow",
]


@dataclass(frozen=True, slots=True)
class Range:
    """The time window a page shows: the last ``days`` days in ``width`` buckets (``1h`` or ``1d``)."""

    days: int = 7
    width: str = "1h"

    @property
    def since(self) -> datetime:
        now = datetime.now(UTC)
        if self.width == "1d":
            now = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        else:
            now = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return now - timedelta(days=self.days)

    @property
    def daily_since(self) -> datetime:
        """Where the range starts in whole days: for the sums over daily buckets, whatever ``width`` is."""
        return Range(self.days, "1d").since


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One scope's volume (``article_count``) and ``zscore`` (or a composite's value) over the range."""

    name: str
    volume: tuple[Point, ...]
    zscore: tuple[Point, ...] = ()

    @property
    def total(self) -> float:
        return sum(point.value for point in self.volume)


@dataclass(frozen=True, slots=True)
class ArticleRow:
    id: str
    title: str
    url: str
    source: str
    published_at: datetime
    labels: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    rule: str
    severity: str
    dynamic: str
    bucket_width: str
    bucket_start: datetime
    value: float
    threshold: float
    message: str
    fired_at: datetime
    status: str
    deliveries: tuple[tuple[str, str], ...]
    evidence: tuple[ArticleRow, ...]


@dataclass(frozen=True, slots=True)
class SourceVolume:
    """A source as the store sees it: articles per day over the range and the newest article."""

    name: str
    articles: int
    per_day: float
    last_article: datetime | None


@dataclass(frozen=True, slots=True)
class StoryRow:
    story_id: str
    title: str
    articles: int
    sources: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class SilenceView:
    """An active silence: what it mutes, until when, who set it and why."""

    id: str
    matchers: tuple[str, ...]
    ends_at: datetime
    created_by: str
    comment: str


@dataclass(frozen=True, slots=True)
class Overview:
    range: Range
    dynamics: tuple[Series, ...]
    composites: tuple[Series, ...]
    entities: tuple[str, ...]
    heat: dict[tuple[str, str], float]
    alerts: tuple[AlertView, ...]
    articles: tuple[ArticleRow, ...]
    sources: tuple[SourceVolume, ...]
    totals: dict[str, int]
    silences: tuple[SilenceView, ...] = ()


@dataclass(frozen=True, slots=True)
class DynamicDetail:
    name: str
    series: Series
    entities: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True, slots=True)
class EntityDetail:
    name: str
    series: Series
    dynamics: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]


@dataclass(frozen=True, slots=True)
class ArticleDetail:
    article: ArticleRow
    summary: str
    connector: str
    fetched_at: datetime | None
    model_version: str | None
    entities: tuple[tuple[str, int], ...]
    story: StoryRow | None
    alerts: tuple[AlertView, ...]
