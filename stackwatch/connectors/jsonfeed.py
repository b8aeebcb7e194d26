"""JSON Feed 1.x (https://jsonfeed.org/version/1.1) documents and sources.

articles, rejected = parse_json_feed(content, "vendor-blog", utcnow())
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.jsonapi import iso_time, load_json, parse_items
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["JsonFeedSource", "is_json_feed", "parse_json_feed"]

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def is_json_feed(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("version", "")).startswith(_VERSION_PREFIX)


def parse_json_feed(
    content: bytes,
    source: str,
    fetched_at: datetime,
    *,
    connector: str = "jsonfeed",
    charset: str | None = None,
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a JSON Feed; ParseError when the document is not one."""
    data = load_json(content, charset)
    return articles_from_json_feed(data, source, fetched_at, connector)


def articles_from_json_feed(
    data: Any, source: str, fetched_at: datetime, connector: str = "jsonfeed"
) -> tuple[list[Article], list[DeadLetter]]:
    if not is_json_feed(data):
        raise ParseError(f'not a JSON Feed: no "version" starting with {_VERSION_PREFIX}')
    feed_language = data.get("language") if isinstance(data.get("language"), str) else None

    def record(item: dict[str, Any]) -> dict[str, Any]:
        url = item.get("url") or item.get("external_url")
        summary = item.get("summary") or item.get("content_text") or item.get("content_html")
        raw_id = item.get("id")
        return {
            "id": raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None,
            "title": item.get("title"),
            "url": url,
            "summary": summary,
            "published_at": iso_time(item.get("date_published") or item.get("date_modified")),
            "language": item.get("language") if isinstance(item.get("language"), str) else feed_language,
        }

    return parse_items(data.get("items"), record, source, connector, fetched_at)


class JsonFeedSource(HttpPollingSource):
    """Polls one JSON Feed URL."""

    type = "jsonfeed"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = options or HttpOptions(accept="application/feed+json, application/json")
        super().__init__(name, url, options=options, transport=transport)

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_json_feed(document.content, self.name, fetched_at, connector=self.type, charset=document.charset)
