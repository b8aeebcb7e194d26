"""The dashboard's reads of the store: fixed, parameterised SQL returning frozen records.

Every function takes the writer's connection and runs on the store thread (``StoreThread.call``)::

    overview = await thread.call(queries.overview, thread.store.connection, Range(days=7, width="1h"))

Nothing here formats or escapes: templates do (Jinja2 autoescape). By job: :mod:`.records` (what a page shows),
:mod:`.reads` (the pieces pages share), :mod:`.pages` (one read per page).
"""

from __future__ import annotations

from stackwatch.storage.dashboard.pages import article_detail, dynamic_detail, entity_detail, overview
from stackwatch.storage.dashboard.records import (
    AlertView,
    ArticleDetail,
    ArticleRow,
    DynamicDetail,
    EntityDetail,
    Overview,
    Point,
    Range,
    Series,
    SilenceView,
    SourceVolume,
    StoryRow,
)

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
    "article_detail",
    "dynamic_detail",
    "entity_detail",
    "overview",
]
