"""JSON Feed 1.x (https://jsonfeed.org/version/1.1) documents and sources.

    source = JsonFeedSource("vendor-blog", "https://vendor.example/feed.json")
    articles, rejected = parse_json(content, json_feed_items, "vendor-blog", "jsonfeed", utcnow())

An item's ``language`` defaults to the feed's; ``url`` falls back to ``external_url``, ``summary`` to the text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackwatch.connectors.json_source import JsonItems, JsonSource, iso_time
from stackwatch.errors import ParseError

__all__ = ["JsonFeedSource", "is_json_feed", "json_feed_items"]

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def is_json_feed(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("version", "")).startswith(_VERSION_PREFIX)


def json_feed_items(data: Any) -> JsonItems:
    """The items of a JSON Feed, each read with the feed's language as its default; ParseError if not one."""
    if not is_json_feed(data):
        raise ParseError(f'not a JSON Feed: no "version" starting with {_VERSION_PREFIX}')
    items = data.get("items")
    if not isinstance(items, list):
        raise ParseError(f"expected a list of items, got {type(items).__name__}")
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

    return JsonItems(items, record)


class JsonFeedSource(JsonSource):
    """Polls one JSON Feed URL."""

    type = "jsonfeed"
    accept: ClassVar[str] = "application/feed+json, application/json"

    def items(self, data: Any) -> JsonItems:
        return json_feed_items(data)
