"""Hacker News stories by query, newest first, from the public Algolia search API.

    source = HackerNewsSource("hn-tpu", "TPU OR Trainium")
    # GET https://hn.algolia.com/api/v1/search_by_date?tags=story&query=TPU+OR+Trainium&hitsPerPage=50

Stories without a link (Ask HN) point at their discussion page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.jsonapi import iso_time, load_json, parse_items
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["HN_ENDPOINT", "HackerNewsSource", "articles_from_hn", "parse_hn"]

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


def articles_from_hn(
    data: Any, source: str, fetched_at: datetime, connector: str = "hackernews"
) -> tuple[list[Article], list[DeadLetter]]:
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise ParseError('not an HN search answer: no "hits" list')
    return parse_items(data["hits"], _record, source, connector, fetched_at)


def parse_hn(
    content: bytes,
    source: str,
    fetched_at: datetime,
    *,
    connector: str = "hackernews",
    charset: str | None = None,
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from an Algolia HN search response; ParseError when it is not one."""
    return articles_from_hn(load_json(content, charset), source, fetched_at, connector)


class HackerNewsSource(HttpPollingSource):
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
        options = options or HttpOptions(accept="application/json")
        super().__init__(name, endpoint, params=params, options=options, transport=transport)

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_hn(document.content, self.name, fetched_at, connector=self.type, charset=document.charset)
