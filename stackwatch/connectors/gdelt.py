"""The GDELT DOC 2.0 API article list by query.

    source = GdeltSource("gdelt-capex", '"data center" (capex OR "capital expenditure")')
    # GET https://api.gdeltproject.org/api/v2/doc/doc?query=...&mode=artlist&format=json&sort=datedesc&...

GDELT answers a query with no matches with ``{}``, and a bad query with a plain-text message (rejected).
"""

from __future__ import annotations

from typing import Any

import httpx

from stackwatch.connectors.http import HttpOptions
from stackwatch.connectors.json_source import JsonItems, JsonSource, iso_time
from stackwatch.errors import ParseError

__all__ = ["GDELT_ENDPOINT", "GdeltSource", "gdelt_items"]

GDELT_ENDPOINT = "https://api.gdeltproject.org/api/v2/doc/doc"
_LANGUAGES = {
    "english": "en",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "chinese": "zh",
    "japanese": "ja",
    "korean": "ko",
    "italian": "it",
    "portuguese": "pt",
    "russian": "ru",
    "dutch": "nl",
    "arabic": "ar",
}


def _record(item: dict[str, Any]) -> dict[str, Any]:
    language = item.get("language")
    return {
        "id": None,  # GDELT has no item id: the canonical URL is it
        "title": item.get("title"),
        "url": item.get("url"),
        "summary": "",
        "published_at": iso_time(item.get("seendate")),
        "language": _LANGUAGES.get(language.lower()) if isinstance(language, str) else None,
    }


def gdelt_items(data: Any) -> JsonItems:
    """The articles of a GDELT DOC 2.0 ``mode=artlist&format=json`` answer; ParseError when it is not one."""
    if not isinstance(data, dict):
        raise ParseError(f"not a GDELT artlist answer: expected an object, got {type(data).__name__}")
    articles = data.get("articles", [])
    if not isinstance(articles, list):
        raise ParseError('not a GDELT artlist answer: "articles" is not a list')
    return JsonItems(articles, _record)


class GdeltSource(JsonSource):
    """Polls the GDELT DOC 2.0 article list for ``query`` (GDELT asks for at most one request per 5 s)."""

    type = "gdelt"

    def __init__(
        self,
        name: str,
        query: str,
        *,
        endpoint: str = GDELT_ENDPOINT,
        timespan: str = "1d",
        max_records: int = 75,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        params = {
            "query": query,
            "mode": "artlist",
            "format": "json",
            "sort": "datedesc",
            "timespan": timespan,
            "maxrecords": str(max_records),
        }
        super().__init__(name, endpoint, params=params, options=options, transport=transport)

    def items(self, data: Any) -> JsonItems:
        return gdelt_items(data)
