"""The dashboard's reads of the store: fixed, parameterised SQL returning frozen records.

Every function takes the writer's connection and runs on the store thread (``StoreThread.call``)::

    overview = await thread.call(queries.overview, thread.store.connection, Range(days=7, width="1h"))

Nothing here formats or escapes: templates do (Jinja2 autoescape). By job: :mod:`.records` (what a page shows),
:mod:`.reads` (the pieces pages share), :mod:`.pages` (one read per page), :mod:`.lookups` (the recent volume that
picks the default range, entity names), :mod:`.search` (the article search).
"""

from __future__ import annotations

from stackwatch.storage.dashboard.lookups import entity_names, recent_volume
from stackwatch.storage.dashboard.pages import (
    ALERTS,
    ARTICLES,
    LATEST_ALERTS,
    RECENT_ARTICLES,
    STORIES,
    article_detail,
    dynamic_detail,
    entity_detail,
    overview,
)
from stackwatch.storage.dashboard.records import (
    WIDTHS,
    AlertView,
    ArticleDetail,
    ArticleEntity,
    ArticleRow,
    DynamicDetail,
    EntityDetail,
    EntityRoles,
    Evidence,
    ModelChange,
    Overview,
    Point,
    Range,
    RecentVolume,
    SearchFilters,
    SearchResult,
    Series,
    SilenceView,
    SourceVolume,
    StoryRow,
)
from stackwatch.storage.dashboard.search import COUNT_CAP, search_articles

__all__ = [
    "ALERTS",
    "ARTICLES",
    "COUNT_CAP",
    "LATEST_ALERTS",
    "RECENT_ARTICLES",
    "STORIES",
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
    "article_detail",
    "dynamic_detail",
    "entity_detail",
    "entity_names",
    "overview",
    "recent_volume",
    "search_articles",
]
