"""Hacker News stories by query, newest first, from the public Algolia search API.

    source = HackerNewsSource("hn-tpu", "TPU OR Trainium")
    # GET https://hn.algolia.com/api/v1/search_by_date?tags=story&query=TPU+OR+Trainium&hitsPerPage=50

Stories without a link (Ask HN) point at their discussion page.
"""

from __future__ import annotations

from typing import Any

import httpx

from stackwatch.connectors.http import HttpOptions
from stackwatch.connectors.json_source import JsonItems, JsonSource, iso_time
from stackwatch.errors import ParseError

__all__ = ["HN_ENDPOINT", "HackerNewsSource", "hn_items"]

HN_ENDPOINT = "https://hn.algolia.com/api/v1/search_by_date"
_ITEM_URL = "https://news.ycombinator.com/item?id="


def _record(hit: dict[str, Any]) -> dict[str, Any]:
    object_id = hit.get("objectID") if isinstance(hit.get("objectID"), str | int) else None
    url = hit.get("url") or (f"{_ITEM_URL}{object_id}" if object_id is not None else None)
    published = iso_time(hit.get("created_at")) or iso_time(hit.get("created_at_i"))
    return {
        "id": f"hn:{object_id}" if object_id is not None else None,
        "title": hit.get("title") or hit.get("story_title"),
        "url": url,
        "summary": hit.get("story_text") or "",
        "published_at": published,
        "language": None,
    }


def hn_items(data: Any) -> JsonItems:
    """The stories of an Algolia HN search response; ParseError when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise ParseError('not an HN search answer: no "hits" list')
    return JsonItems(data["hits"], _record)


class HackerNewsSource(JsonSource):
    """Polls the Algolia HN search for stories matching ``query``, newest first."""

    type = "hackernews"

    def __init__(
        self,
        name: str,
        query: str,
        *,
        endpoint: str = HN_ENDPOINT,
        hits: int = 50,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        params = {"tags": "story", "query": query, "hitsPerPage": str(hits)}
        super().__init__(name, endpoint, params=params, options=options, transport=transport)

    def items(self, data: Any) -> JsonItems:
        return hn_items(data)
