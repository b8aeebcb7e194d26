"""What the dashboard shows, as frozen records: the time range, series of points, and one record per row kind.

The queries that fill them are in :mod:`.reads` (shared pieces) and :mod:`.pages` (one function per page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stackwatch.signals.messages import Explanation

__all__ = [
    "WIDTHS",
    "AlertView",
    "ArticleDetail",
    "ArticleEntity",
    "ArticleRow",
    "DynamicDetail",
    "EntityDetail",
    "EntityRoles",
    "Evidence",
    "ModelChange",
    "Overview",
    "Point",
    "Range",
    "RecentVolume",
    "SearchFilters",
    "SearchResult",
    "Series",
    "SilenceView",
    "SourceVolume",
    "StoryRow",
]

WIDTHS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
"""The bucket widths a page can show. The store keeps ``1h`` and ``1d`` buckets; ``1w`` (ISO weeks, from Monday
00:00 UTC) is summed from the daily rows when a page is read."""


@dataclass(frozen=True, slots=True)
class Range:
    """The time window a page shows: the last ``days`` days in ``width`` buckets (``1h``, ``1d`` or ``1w``).

    The window ends where the current bucket ends (the next hour, day or Monday, UTC) and starts ``days`` before.
    """

    days: int = 7
    width: str = "1h"

    @property
    def bucket(self) -> timedelta:
        """The length of one bucket."""
        return WIDTHS[self.width]

    @property
    def stored_width(self) -> str:
        """The stored bucket width the range reads: weeks are sums of days."""
        return "1d" if self.width == "1w" else self.width

    @property
    def until(self) -> datetime:
        """Where the range ends: the end of the current bucket."""
        now = datetime.now(UTC)
        if self.width == "1h":
            return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.width == "1w":
            return day - timedelta(days=day.weekday()) + timedelta(weeks=1)
        return day + timedelta(days=1)

    @property
    def since(self) -> datetime:
        """Where the range starts: ``days`` before :attr:`until`."""
        return self.until - timedelta(days=self.days)

    @property
    def daily_since(self) -> datetime:
        """Where the range starts in whole days: for the sums over daily buckets, whatever ``width`` is."""
        return self.since if self.width != "1h" else Range(self.days, "1d").since


@dataclass(frozen=True, slots=True)
class RecentVolume:
    """Articles stored in the last 7, 30 and 90 days (whole UTC days, today included): what the default range is
    chosen from."""

    last_7d: int = 0
    last_30d: int = 0
    last_90d: int = 0


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What a search asks for; each field is optional (empty or None: no filter).

    ``q`` is matched literally and case-insensitively in the title or the summary; ``dynamic`` and ``entity`` are
    names as stored (a labelled dynamic, a mentioned entity); ``source`` is matched case-insensitively;
    ``since`` is inclusive and ``until`` exclusive.
    """

    q: str = ""
    dynamic: str | None = None
    entity: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class ModelChange:
    """From ``at`` (a publication time) on, articles in the range were tagged by classifier ``version``."""

    at: datetime
    version: str


@dataclass(frozen=True, slots=True)
class Series:
    """One scope's volume (``article_count``) and ``zscore`` (or a composite's value) over the range, and where
    in it the classifier version changed (its numbers before and after come from different models)."""

    name: str
    volume: tuple[Point, ...]
    zscore: tuple[Point, ...] = ()
    changes: tuple[ModelChange, ...] = ()

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
class SearchResult:
    """One page of matching articles, newest first, and how many match: all of them, or (``more``) at least
    ``total``, when the count stopped at its cap."""

    total: int
    articles: tuple[ArticleRow, ...]
    more: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """An article of an alert's evidence as it was stored when the alert fired. ``id`` is None in evidence stored
    before ids were (the page then links the article's own URL); anything may be missing in stored JSON."""

    id: str | None
    title: str
    url: str
    source: str
    published_at: datetime | None
    why: str = ""
    """The sentence that drove the article's label for the alert's dynamic, when the evidence stored one."""


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    rule: str
    kind: str
    """The rule's kind as configured (``spike``, ``first_seen``, ...)."""
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
    evidence: tuple[Evidence, ...]
    """The articles stored with the alert when it fired (``alert_details.evidence``), best first."""


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
    """The id of the story's first article (its page is the story's link)."""
    title: str
    articles: int
    sources: int
    last_seen: datetime
    first_seen: datetime | None = None


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
class EntityRoles:
    """An entity's articles in a scope (a dynamic's, an entity's own), and in how many of them the text gives it
    each role (``signals/entity_roles.py``)."""

    entity: str
    kind: str
    articles: int
    buyer: int = 0
    displaced_vendor: int = 0
    party: int = 0


@dataclass(frozen=True, slots=True)
class DynamicDetail:
    name: str
    series: Series
    entities: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]
    alerts: tuple[AlertView, ...]
    drivers: tuple[EntityRoles, ...] = ()
    """Entities driving the dynamic: by articles as buyer or party, then by articles where they are not the
    displaced vendor (those do not count for them here)."""
    displaced: tuple[EntityRoles, ...] = ()
    """Entities the dynamic's articles name as the vendor being moved away from, most first."""


@dataclass(frozen=True, slots=True)
class EntityDetail:
    name: str
    series: Series
    dynamics: tuple[tuple[str, int], ...]
    articles: tuple[ArticleRow, ...]
    stories: tuple[StoryRow, ...]
    kind: str = "company"
    roles: tuple[tuple[str, EntityRoles], ...] = ()
    """Per dynamic its articles label, the entity's roles in them."""


@dataclass(frozen=True, slots=True)
class ArticleEntity:
    """An entity one article names: how often, its kind, and the roles the text gives it there."""

    name: str
    mentions: int
    kind: str = "company"
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArticleDetail:
    article: ArticleRow
    summary: str
    connector: str
    fetched_at: datetime | None
    model_version: str | None
    entities: tuple[ArticleEntity, ...]
    story: StoryRow | None
    alerts: tuple[AlertView, ...]
    explanations: tuple[Explanation, ...] = ()
    """Per label, the sentence that drove it and its share of the dynamic's logit."""
