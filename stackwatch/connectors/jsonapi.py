"""JSON APIs as sources: a small declarative mapping from response fields to article fields.

    mapping = JsonMapping(items="data.posts", title="headline", url="link", published="date")
    articles, rejected = parse_json(content, mapping.find, "vendor-api", "http_json", utcnow())

Paths are dotted (``data.posts``; a number indexes a list: ``results.0.items``); an empty ``items`` path means
the document itself is the list. Times may be ISO-8601 strings, RFC 2822 dates or Unix seconds; a time that
cannot be read becomes the fetch time rather than costing the article.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from stackwatch.connectors.http import HttpOptions
from stackwatch.connectors.json_source import JsonItems, JsonSource, iso_time
from stackwatch.errors import ParseError

__all__ = ["HttpJsonSource", "JsonMapping", "dig"]


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    if not path:
        return value
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """Where a JSON API keeps its items and, inside each item, the article fields."""

    items: str = ""
    title: str = "title"
    url: str = "url"
    published: str = "published"
    summary: str = "summary"
    id: str = "id"

    def find(self, data: Any) -> JsonItems:
        """The items where the mapping says they are; ParseError when there is no list there."""
        items = dig(data, self.items)
        if not isinstance(items, list):
            where = f"at {self.items!r}" if self.items else "at the top level"
            raise ParseError(f"no list of items {where} (found {type(items).__name__})")
        return JsonItems(items, self.record)

    def record(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _string(dig(item, self.id)) if self.id else None,
            "title": dig(item, self.title),
            "url": dig(item, self.url),
            "summary": dig(item, self.summary),
            "published_at": iso_time(dig(item, self.published)),
        }


class HttpJsonSource(JsonSource):
    """Any JSON API, mapped to articles by a :class:`JsonMapping`."""

    type = "http_json"

    def __init__(
        self,
        name: str,
        url: str,
        mapping: JsonMapping,
        *,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name, url, options=options, transport=transport)
        self.mapping = mapping

    def items(self, data: Any) -> JsonItems:
        return self.mapping.find(data)
